"""The embedded backend: the escrow program inside an in-process LiteSVM
(a ``programs/escrow/localnet.World`` given by ``venue.settlement``: real SPL Token, a USDC mint,
the vault, the config).

Dev chain conventions (a LiteSVM is a development chain, never money):
- Its clock follows the journal: before each settlement it is set to the event's time.
- Faucet deposits (credits the chain never saw) are mirrored by minting test USDC to the
  agent's associated token account and depositing it on the agent's behalf, in one
  transaction (memo ``agentperp:dev-deposit:seq=N``, create-ATA-idempotent, mint_to,
  deposit). ``deposit`` has no replay guard on chain, so the memo is the guard: the
  backend indexes the memos of the transactions that landed (the chain's own history,
  which lives exactly as long as this in-process chain) and a seq found there is done.
- Instructions the program wants the *agent* to sign (deposit, withdraw) are signed with
  the agent's key when a keyring holds it; otherwise the SVM runs with signature
  verification off (``sigverify=False``, the default) and the agent's signature slot stays
  empty. The program's signer checks (the is_signer flags) still run.
- Oracle: before a liquidation the market's PriceUpdateV2 account is written with the
  engine's price and publish time (conf 0), owned by the real Pyth receiver id.
- The chain dies with the process; ``chain_id`` is random per instance, so a checkpoint
  of an earlier instance is void and the projection starts again from seq 0.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.state import TokenAccount
from solders.transaction import Transaction
from spl.token.instructions import (MintToParams, create_idempotent_associated_token_account,
                                    get_associated_token_address, mint_to)

from adapters.solana.backend import Built, SignatureStatus, TxOutcome, Unmirrorable, custom_code_of
from adapters.solana.escrow import PYTH_RECEIVER_ID, TOKEN_PROGRAM_ID, EscrowProgram

NS = 1_000_000_000
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
DEV_DEPOSIT_MEMO = b"agentperp:dev-deposit:seq="
AGENT_SOL_LAMPORTS = 10**9  # rent for an agent PDA is ~0.0015 SOL; top up below a tenth of this


def oracle_key(market: int) -> Pubkey:
    """The embedded PriceUpdateV2 account of a market (a fixed address)."""
    return Keypair.from_seed(hashlib.sha256(b"agentperp:dev-oracle:%d" % market).digest()).pubkey()


PriceAccountData = Callable[..., "bytes | None"]  # (market, price_e8, publish_ns, conf_e8=0) -> PriceUpdateV2


class LiteSvmBackend:
    """The embedded chain. ``world`` is a LiteSVM with the program loaded and its config
    initialized (``svm``, ``authority``, ``payer``, ``vault``, ``mint``: ``programs/escrow``'s
    ``localnet.World``); ``escrow`` the program's id and IDL; ``price_account_data`` the dev
    oracle's PriceUpdateV2 bytes of a market (None: the market has no feed). All are given by
    ``venue.settlement.litesvm_backend``: adapters never import ``programs`` (DESIGN §2)."""

    def __init__(self, world, escrow: EscrowProgram, price_account_data: PriceAccountData,
                 keyring: dict[str, Keypair] | None = None):
        self.world = world
        self.svm: LiteSVM = world.svm
        self.escrow = escrow
        self.price_account_data = price_account_data
        self.authority = world.authority
        self.payer = world.payer
        self.vault = world.vault
        self.mint = world.mint
        self.keyring = dict(keyring or {})
        self._chain_id = f"litesvm:{uuid.uuid4()}"
        self._funded: set[Pubkey] = set()
        self.external_log: list[tuple[str, int, object]] = []  # (signature, slot, message) that landed
        self._dev_deposits: dict[int, str] = {}  # journal seq -> signature, from the memos that landed
        self.posted: dict[int, tuple[int, int]] = {}  # market -> (price_e8, publish_ns) in its oracle account
        self.oracle_rewrites = 0  # liquidations whose price was not the last one posted

    async def chain_id(self) -> str:
        return self._chain_id

    def signer_for(self, owner: Pubkey) -> Keypair | None:
        return self.keyring.get(str(owner))

    # ------------------------------------------------------------------ sending
    async def build(self, ixs: list[Instruction], signers: list[Keypair], unsigned=()) -> Built:
        self.svm.expire_blockhash()  # identical instructions sent again must be a new transaction
        blockhash = self.svm.latest_blockhash()
        tx = Transaction.new_unsigned(Message.new_with_blockhash(ixs, self.payer.pubkey(), blockhash))
        seen = {self.payer.pubkey()}
        keys = [self.payer] + [k for k in signers if not (k.pubkey() in seen or seen.add(k.pubkey()))]
        tx.partial_sign(keys, blockhash)
        return Built(tx, tx.signatures[0])

    async def submit(self, built: Built) -> TxOutcome:
        result = self.svm.send_transaction(built.tx)
        sig = str(built.signature)
        if hasattr(result, "err"):
            err = str(result.err())
            return TxOutcome(sig, False, err, custom_code_of(err), list(result.meta().logs()))
        message = built.tx.message
        for ix in message.instructions:
            if message.account_keys[ix.program_id_index] == MEMO_PROGRAM_ID and ix.data.startswith(DEV_DEPOSIT_MEMO):
                self._dev_deposits[int(ix.data[len(DEV_DEPOSIT_MEMO):])] = sig
        return TxOutcome(sig, True, logs=list(result.logs()), compute_units=result.compute_units_consumed())

    def send_external(self, tx: Transaction) -> TxOutcome:
        """Send a transaction built outside the venue (an agent's own deposit on the
        embedded chain); the deposit watcher reads what landed."""
        result = self.svm.send_transaction(tx)
        sig = str(tx.signatures[0])
        if hasattr(result, "err"):
            err = str(result.err())
            return TxOutcome(sig, False, err, custom_code_of(err), list(result.meta().logs()))
        self.external_log.append((sig, self.svm.get_clock().slot, tx.message))
        return TxOutcome(sig, True, logs=list(result.logs()), compute_units=result.compute_units_consumed())

    async def send_as(self, ixs: list[Instruction], payer: Keypair) -> TxOutcome:
        """An agent's own transaction, signed and paid by ``payer`` (a demo agent's deposit)."""
        self.svm.expire_blockhash()
        blockhash = self.svm.latest_blockhash()
        return self.send_external(Transaction([payer], Message.new_with_blockhash(ixs, payer.pubkey(), blockhash),
                                              blockhash))

    async def signature_status(self, signature: str, last_valid_block_height: int | None) -> str:
        found = self.svm.get_transaction(Signature.from_string(signature))
        if found is None:
            return SignatureStatus.NEVER  # in-process: a send either happened or never will
        return SignatureStatus.LANDED_FAILED if hasattr(found, "err") else SignatureStatus.LANDED_OK

    async def set_time(self, ts_ns: int) -> None:
        self.world.set_time(ts_ns // NS)

    # ------------------------------------------------------------------ reading
    async def get_raw_accounts(self, keys: list[Pubkey]):
        out = []
        for key in keys:
            acct = self.svm.get_account(key)
            out.append(None if acct is None or acct.lamports == 0 else (acct.owner, bytes(acct.data)))
        return out

    async def token_balance(self, key: Pubkey) -> int:
        acct = self.svm.get_account(key)
        return 0 if acct is None else TokenAccount.from_bytes(bytes(acct.data)).amount

    async def deposit_on_chain(self, ref: str) -> bool:
        try:
            sig = Signature.from_string(ref.split(":", 1)[0])
        except ValueError:
            return False
        return await self.signature_status(str(sig), None) == SignatureStatus.LANDED_OK

    # ------------------------------------------------------------------ dev fixtures
    def _fund(self, owner: Pubkey) -> None:
        if owner not in self._funded:
            if (self.svm.get_balance(owner) or 0) < AGENT_SOL_LAMPORTS // 10:
                self.svm.airdrop(owner, AGENT_SOL_LAMPORTS)
            self._funded.add(owner)

    async def dev_fund(self, owner: Pubkey, amount_e6: int) -> Pubkey:
        """The embedded chain's faucet: SOL for the agent's fees and rent, and ``amount_e6`` of
        test USDC minted into its associated token account. The token account."""
        self._fund(owner)
        ata = self.token_account_of(owner)
        self.svm.expire_blockhash()
        blockhash = self.svm.latest_blockhash()
        ixs = [create_idempotent_associated_token_account(self.payer.pubkey(), owner, self.mint),
               mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=self.mint, dest=ata,
                                    mint_authority=self.world.mint_authority.pubkey(), amount=amount_e6))]
        message = Message.new_with_blockhash(ixs, self.payer.pubkey(), blockhash)
        minted = self.svm.send_transaction(Transaction([self.payer, self.world.mint_authority], message, blockhash))
        if hasattr(minted, "err"):
            raise RuntimeError(f"minting test USDC to {owner} failed: {minted.err()}")
        return ata

    def token_account_of(self, owner: Pubkey) -> Pubkey:
        return get_associated_token_address(owner, self.mint)

    async def dev_deposit_landed(self, seq: int) -> bool:
        return seq in self._dev_deposits

    async def dev_deposit(self, owner: Pubkey, amount_e6: int, seq: int):
        self._fund(owner)  # the agent pays its PDA's rent, as on a cluster
        ata = self.token_account_of(owner)
        ixs = [Instruction(MEMO_PROGRAM_ID, DEV_DEPOSIT_MEMO + b"%d" % seq, []),
               create_idempotent_associated_token_account(self.payer.pubkey(), owner, self.mint),
               mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=self.mint, dest=ata,
                                    mint_authority=self.world.mint_authority.pubkey(), amount=amount_e6)),
               self.escrow.deposit(owner, ata, self.vault, amount_e6)]
        signer = self.signer_for(owner)
        return ixs, [self.world.mint_authority] + ([signer] if signer else []), [] if signer else [owner]

    async def withdraw_destination(self, owner: Pubkey, destination: str):
        """A USDC token account named by ``destination`` if it is one; otherwise the
        associated token account of ``destination`` (a wallet), or of the agent when
        ``destination`` is not an address at all."""
        try:
            dest = Pubkey.from_string(destination)
        except ValueError:
            dest = owner
        acct = self.svm.get_account(dest)
        if acct is not None and acct.owner == TOKEN_PROGRAM_ID:
            return dest, []
        return (get_associated_token_address(dest, self.mint),
                [create_idempotent_associated_token_account(self.payer.pubkey(), dest, self.mint)])

    async def post_price(self, market: int, price_e8: int, conf_e8: int, publish_ns: int) -> None:
        """Write the venue's oracle price into the market's PriceUpdateV2 account (the
        embedded chain's stand-in for the Pyth push oracle)."""
        data = self.price_account_data(market, price_e8, publish_ns, conf_e8)
        if data is None:
            return  # a market without a dev feed: its liquidations are unmirrorable
        self.svm.set_account(oracle_key(market), _account(self.svm, data, PYTH_RECEIVER_ID))
        self.posted[market] = (price_e8, publish_ns)

    async def price_account(self, market: int, price_e8: int, publish_ns: int) -> Pubkey:
        """The account the liquidation reads. It holds the last ``post_price`` of the venue's
        oracle (the price the engine liquidated at); a journal without that OracleUpdated
        (tests, older journals) gets the event's own price written, conf 0."""
        if self.posted.get(market) != (price_e8, publish_ns):
            data = self.price_account_data(market, price_e8, publish_ns)
            if data is None:
                raise Unmirrorable(f"market {market} has no dev oracle feed")
            self.svm.set_account(oracle_key(market), _account(self.svm, data, PYTH_RECEIVER_ID))
            self.oracle_rewrites += 1
        return oracle_key(market)


def _account(svm: LiteSVM, data: bytes, owner: Pubkey):
    from solders.account import Account
    return Account(svm.minimum_balance_for_rent_exemption(len(data)), data, owner, False, 0)
