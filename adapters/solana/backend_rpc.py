"""The cluster backend: a Solana JSON-RPC endpoint (devnet, mainnet) through solana-py's
``AsyncClient``.

What it needs (see README "RPC mode"): the deployed program id, the vault, the venue's
authority keypair (config.authority) and a fee payer with SOL, and for each market the
address of the Pyth ``PriceUpdateV2`` account the program should read (a sponsored feed
account of the Pyth push oracle). Transactions are sent with preflight and confirmed by
polling ``getSignatureStatuses`` until the blockhash's last valid block height; an
expired transaction can never land, so sending the action again is safe.

Not mirrorable here (reported as such by the projection): faucet deposits (the chain
never saw that money) and anything the program wants an agent to sign (``withdraw``)
unless the venue holds that agent's key in its keyring.

A dev chain (``DevChain``: the RPC peer, surfpool) is a cluster with cheat codes: there the
venue writes the oracle accounts itself (``surfnet_setAccount``, as the embedded backend
does), and its faucet (``dev_fund``) gives an agent SOL by ``requestAirdrop`` and test USDC
by a real SPL ``mint_to`` signed with the test mint's authority, as one would on devnet.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from spl.token.instructions import (MintToParams, create_idempotent_associated_token_account,
                                    get_associated_token_address, mint_to)

from adapters.solana.backend import Built, SignatureStatus, TransientError, TxOutcome, Unmirrorable, custom_code_of
from adapters.solana.escrow import PYTH_RECEIVER_ID, TOKEN_PROGRAM_ID, EscrowProgram

ACCOUNTS_PER_REQUEST_MAX = 100  # getMultipleAccounts' limit
CONFIRM_POLL_S = 0.5
TRANSIENT = (httpx.HTTPError, SolanaRpcException, OSError, TimeoutError)
AGENT_SOL_LAMPORTS = 10**9  # dev_fund: an agent's SOL for fees and its agent PDA's rent...
AGENT_SOL_LAMPORTS_LOW = AGENT_SOL_LAMPORTS // 10  # ...airdropped when it has less than this
DEV_CALL_TIMEOUT_S = 10.0  # one cheat-code request


class DevChain:
    """A dev chain's cheat codes over JSON-RPC: surfpool's ``surfnet_setAccount(pubkey,
    {lamports, data (hex), owner, executable, rentEpoch})``, which the RPC peer serves too.
    Never on a real cluster: there the accounts are not ours to write."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.AsyncClient(timeout=DEV_CALL_TIMEOUT_S)
        self._id = 0

    async def call(self, method: str, params: list):
        self._id += 1
        resp = await self.http.post(self.url, json={"jsonrpc": "2.0", "id": self._id, "method": method,
                                                    "params": params})
        resp.raise_for_status()
        body = resp.json()
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error'].get('message')} ({self.url} is no dev chain?)")
        return body.get("result")

    async def set_account(self, key: Pubkey, data: bytes, owner: Pubkey, lamports: int) -> None:
        await self.call("surfnet_setAccount", [str(key), {"lamports": lamports, "data": data.hex(),
                                                          "owner": str(owner), "executable": False,
                                                          "rentEpoch": 0}])

    async def close(self) -> None:
        await self.http.aclose()


class RpcBackend:
    def __init__(self, client: AsyncClient, escrow: EscrowProgram, vault: Pubkey, authority: Keypair, payer: Keypair,
                 *, usdc_mint: Pubkey | None = None, oracle_accounts: dict[int, Pubkey] | None = None,
                 keyring: dict[str, Keypair] | None = None, commitment=Confirmed, sleep=asyncio.sleep,
                 dev_chain: DevChain | None = None, price_account_data=None, mint_authority: Keypair | None = None):
        """``dev_chain`` (with ``price_account_data``, the PriceUpdateV2 bytes of a market, as
        the embedded backend's): write the oracle accounts from the venue's oracle.
        ``mint_authority``: the test USDC mint's authority, for ``dev_fund``."""
        self.client = client
        self.escrow = escrow  # the deployment's program id and IDL (given: adapters never import programs/)
        self.vault = vault
        self.authority = authority
        self.payer = payer
        self.usdc_mint = usdc_mint
        self.oracle_accounts = dict(oracle_accounts or {})
        self.keyring = dict(keyring or {})
        self.commitment = commitment
        self.sleep = sleep
        self.dev_chain = dev_chain
        self.price_account_data = price_account_data
        self.mint_authority = mint_authority
        self.posted: dict[int, tuple[int, int]] = {}  # dev chain: market -> (price_e8, publish_ns) written
        self.oracle_rewrites = 0  # liquidations whose price was not the last one posted
        self._price_lamports: int | None = None
        self._chain_id: str | None = None

    @classmethod
    def for_reading(cls, url: str, escrow: EscrowProgram, vault: Pubkey) -> RpcBackend:
        """A backend that only reads (reconcile): no keys."""
        return cls(AsyncClient(url), escrow, vault, Keypair(), Keypair())

    async def close(self) -> None:
        await self.client.close()
        if self.dev_chain is not None:
            await self.dev_chain.close()

    async def chain_id(self) -> str:
        if self._chain_id is None:
            genesis = await self._call(self.client.get_genesis_hash())
            self._chain_id = f"rpc:{genesis.value}:{self.escrow.program_id}"
        return self._chain_id

    def signer_for(self, owner: Pubkey) -> Keypair | None:
        return self.keyring.get(str(owner))

    async def _call(self, awaitable):
        try:
            return await awaitable
        except TRANSIENT as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error

    # ------------------------------------------------------------------ sending
    async def build(self, ixs: list[Instruction], signers: list[Keypair], unsigned=()) -> Built:
        if unsigned:
            raise Unmirrorable(f"the program needs the signature of {', '.join(map(str, unsigned))}, which the venue "
                               "does not hold")
        latest = (await self._call(self.client.get_latest_blockhash(self.commitment))).value
        return build_transaction(ixs, self.payer, signers, latest.blockhash, latest.last_valid_block_height)

    async def submit(self, built: Built) -> TxOutcome:
        sig = str(built.signature)
        try:
            await self.client.send_raw_transaction(bytes(built.tx), opts=TxOpts(
                skip_confirmation=True, skip_preflight=False, preflight_commitment=self.commitment))
        except RPCException as error:
            failed = preflight_failure(sig, error)
            if failed is None:
                raise TransientError(f"send: {error}") from error
            return failed
        except TRANSIENT as error:
            raise TransientError(f"send: {error}") from error
        return await self._landed(sig, built.last_valid_block_height)

    async def _landed(self, sig: str, last_valid_block_height: int | None) -> TxOutcome:
        """Poll ``sig``'s status until it landed (or can no longer land: TransientError)."""
        while True:
            status = await self.signature_status(sig, last_valid_block_height)
            if status == SignatureStatus.LANDED_OK:
                return TxOutcome(sig, True)
            if status == SignatureStatus.LANDED_FAILED:
                err = self._last_err
                return TxOutcome(sig, False, err, custom_code_of(err))
            if status == SignatureStatus.NEVER:
                raise TransientError(f"{sig} expired before it landed")
            await self.sleep(CONFIRM_POLL_S)

    async def send_as(self, ixs: list[Instruction], payer: Keypair) -> TxOutcome:
        """An agent's own transaction, signed and paid by ``payer`` (a demo agent's deposit)."""
        latest = (await self._call(self.client.get_latest_blockhash(self.commitment))).value
        return await self.submit(build_transaction(ixs, payer, [], latest.blockhash,
                                                   latest.last_valid_block_height))

    _last_err = ""

    async def signature_status(self, signature: str, last_valid_block_height: int | None) -> str:
        resp = await self._call(self.client.get_signature_statuses([Signature.from_string(signature)],
                                                                   search_transaction_history=True))
        status = resp.value[0]
        if status is not None and status.confirmation_status is not None and \
                str(status.confirmation_status).lower().endswith(("confirmed", "finalized")):
            if status.err is not None:
                self._last_err = str(status.err)
                return SignatureStatus.LANDED_FAILED
            return SignatureStatus.LANDED_OK
        if status is None and last_valid_block_height is not None:
            height = (await self._call(self.client.get_block_height(self.commitment))).value
            if height > last_valid_block_height:
                return SignatureStatus.NEVER
        return SignatureStatus.UNKNOWN

    async def set_time(self, ts_ns: int) -> None:
        return None  # a cluster keeps its own clock

    # ------------------------------------------------------------------ reading
    async def get_raw_accounts(self, keys: list[Pubkey]):
        out = []
        for start in range(0, len(keys), ACCOUNTS_PER_REQUEST_MAX):
            chunk = keys[start:start + ACCOUNTS_PER_REQUEST_MAX]
            resp = await self._call(self.client.get_multiple_accounts(chunk, commitment=self.commitment))
            out += [None if a is None else (a.owner, bytes(a.data)) for a in resp.value]
        return out

    async def token_balance(self, key: Pubkey) -> int:
        resp = await self._call(self.client.get_token_account_balance(key, commitment=self.commitment))
        return int(resp.value.amount)

    async def deposit_on_chain(self, ref: str) -> bool:
        from adapters.solana.watcher import parse_get_transaction
        try:
            sig = Signature.from_string(ref.split(":", 1)[0])
        except ValueError:
            return False
        resp = await self._call(self.client.get_transaction(sig, encoding="json", commitment=self.commitment,
                                                            max_supported_transaction_version=0))
        result = json.loads(resp.to_json()).get("result")
        return bool(parse_get_transaction(result, self.escrow.program_id))

    async def dev_deposit_landed(self, seq: int) -> bool:
        return False

    async def dev_deposit(self, owner: Pubkey, amount_e6: int, seq: int):
        raise Unmirrorable("a deposit the chain never saw (faucet) cannot be mirrored onto a cluster")

    async def withdraw_destination(self, owner: Pubkey, destination: str):
        try:
            dest = Pubkey.from_string(destination)
        except ValueError:
            dest = owner
        raw = (await self.get_raw_accounts([dest]))[0]
        if raw is not None and raw[0] == TOKEN_PROGRAM_ID:
            return dest, []
        if self.usdc_mint is None:
            raise Unmirrorable(f"destination {destination} is not a token account and no USDC mint is configured")
        return (get_associated_token_address(dest, self.usdc_mint),
                [create_idempotent_associated_token_account(self.payer.pubkey(), dest, self.usdc_mint)])

    async def post_price(self, market: int, price_e8: int, conf_e8: int, publish_ns: int) -> None:
        """A dev chain: write the venue's oracle price into the market's PriceUpdateV2 account.
        A cluster: nothing (the Pyth push oracle keeps those accounts fresh)."""
        if self.dev_chain is not None and market in self.oracle_accounts:
            if await self._write_price(market, price_e8, conf_e8, publish_ns):
                self.posted[market] = (price_e8, publish_ns)

    async def price_account(self, market: int, price_e8: int, publish_ns: int) -> Pubkey:
        """The account a liquidation reads. On a dev chain it holds the last ``post_price``; a
        journal without that OracleUpdated gets the event's own price written (conf 0)."""
        try:
            key = self.oracle_accounts[market]
        except KeyError:
            raise Unmirrorable(f"no Pyth PriceUpdateV2 account configured for market {market}") from None
        if self.dev_chain is not None and self.posted.get(market) != (price_e8, publish_ns):
            if not await self._write_price(market, price_e8, 0, publish_ns):
                raise Unmirrorable(f"market {market} has no dev oracle feed")
            self.oracle_rewrites += 1
        return key

    async def _write_price(self, market: int, price_e8: int, conf_e8: int, publish_ns: int) -> bool:
        data = self.price_account_data(market, price_e8, publish_ns, conf_e8)
        if data is None:
            return False  # a market without a dev feed
        if self._price_lamports is None:
            self._price_lamports = (await self._call(
                self.client.get_minimum_balance_for_rent_exemption(len(data)))).value
        try:
            await self.dev_chain.set_account(self.oracle_accounts[market], data, PYTH_RECEIVER_ID,
                                             self._price_lamports)
        except TRANSIENT as error:
            raise TransientError(f"surfnet_setAccount: {error}") from error
        return True

    # ------------------------------------------------------------------ dev chain faucet
    async def dev_fund(self, owner: Pubkey, amount_e6: int) -> Pubkey:
        """The dev chain's faucet: SOL for the agent's fees and rent (``requestAirdrop``) and
        ``amount_e6`` of test USDC minted into its associated token account by a real SPL
        ``mint_to`` (the venue holds the test mint's authority). The token account."""
        if self.mint_authority is None or self.usdc_mint is None:
            raise Unmirrorable("no test USDC: [settlement] usdc_mint and usdc_mint_authority_keypair are needed")
        balance = (await self._call(self.client.get_balance(owner, self.commitment))).value
        if balance < AGENT_SOL_LAMPORTS_LOW:
            airdrop = (await self._call(self.client.request_airdrop(owner, AGENT_SOL_LAMPORTS, self.commitment)))
            await self._landed(str(airdrop.value), None)
        ata = get_associated_token_address(owner, self.usdc_mint)
        minted = await self.submit(await self.build(
            [create_idempotent_associated_token_account(self.payer.pubkey(), owner, self.usdc_mint),
             mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=self.usdc_mint, dest=ata,
                                  mint_authority=self.mint_authority.pubkey(), amount=amount_e6))],
            [self.mint_authority]))
        if not minted.ok:
            raise RuntimeError(f"minting test USDC to {owner} failed: {minted.error}")
        return ata


def build_transaction(ixs: list[Instruction], payer: Keypair, signers: list[Keypair], blockhash,
                      last_valid_block_height: int | None) -> Built:
    """A legacy transaction paid by ``payer`` and signed by everyone it needs."""
    keys = [payer] + [k for k in signers if k.pubkey() != payer.pubkey()]
    unique = list({k.pubkey(): k for k in keys}.values())
    tx = Transaction(unique, Message.new_with_blockhash(ixs, payer.pubkey(), blockhash), blockhash)
    return Built(tx, tx.signatures[0], last_valid_block_height)


def preflight_failure(signature: str, error: RPCException) -> TxOutcome | None:
    """The failed outcome inside a preflight (simulation) failure, or None when the RPC
    error is something else (then nothing was decided: transient)."""
    body = error.args[0] if error.args else None
    data = getattr(body, "data", None)
    err = getattr(data, "err", None)
    if err is None:
        return None
    text = str(err)
    if "BlockhashNotFound" in text:
        return None  # the node is behind or the blockhash aged out: build again
    if "AlreadyProcessed" in text:
        return TxOutcome(signature, True)  # this very transaction landed already
    return TxOutcome(signature, False, text, custom_code_of(text), list(getattr(data, "logs", None) or []))
