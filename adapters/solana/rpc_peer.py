"""A LiteSVM served as a Solana JSON-RPC node (aiohttp), so ``RpcBackend``, the RPC deposit
watcher and solana-py's ``AsyncClient`` can be run against a real peer on loopback (no
validator can be installed here).

It speaks the cluster's wire format (JSON-RPC 2.0 over HTTP POST, ``{"context": {"slot"},
"value"}`` envelopes, base64/base58 account data, transaction errors as the runtime's JSON),
written through solders' own response types where solders has them — the types solana-py
parses. Methods: see ``RpcPeer.METHODS``. Conventions of this dev node (README "RPC peer"):

- Every landed transaction is its own block: the slot (= block height) advances by one.
  Everything is ``finalized`` at once. The blockhash does not age: LiteSVM accepts only its
  latest one, and ``lastValidBlockHeight`` is the current height + ``BLOCKHASH_VALID_BLOCKS``.
- ``sendTransaction`` with preflight simulates first: a failure is the ``-32002`` error
  and nothing lands. With ``skipPreflight`` a failing transaction lands failed (fee paid)
  and its status carries the error, as on a cluster.
- Signature verification is LiteSVM's setting (the CLI's node verifies);
  ``simulateTransaction``'s ``sigVerify`` and ``replaceRecentBlockhash`` are not honoured.
- The history (``getTransaction``, ``getSignaturesForAddress``) covers what was sent
  through this server, the last ``HISTORY_TX_MAX`` transactions; airdrops have a status but
  no transaction.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import deque
from dataclasses import dataclass, field

import based58
from aiohttp import web
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.rpc.responses import (GetLatestBlockhashResp, RpcBlockhash, RpcResponseContext,
                                   RpcSimulateTransactionResult)
from solders.signature import Signature
from solders.token.state import Mint, TokenAccount
from solders.transaction import Transaction

log = logging.getLogger("agentperp.rpc_peer")

REQUEST_BYTES_MAX = 1 << 20  # one HTTP body; a transaction is ≤ 1 232 bytes
BATCH_REQUESTS_MAX = 100  # requests in one JSON-RPC batch
ACCOUNTS_PER_REQUEST_MAX = 100  # getMultipleAccounts, as a cluster
SIGNATURES_PER_STATUS_MAX = 256  # getSignatureStatuses, as a cluster
SIGNATURES_PAGE_MAX = 1_000  # getSignaturesForAddress limit, as a cluster
HISTORY_TX_MAX = 100_000  # transactions kept for getTransaction / getSignaturesForAddress
AIRDROP_LAMPORTS_MAX = 1_000 * 10**9  # one requestAirdrop, at most
BLOCKHASH_VALID_BLOCKS = 150  # lastValidBlockHeight = height + this, as a cluster
BASE58_DATA_BYTES_MAX = 128  # account data a cluster still encodes in base58
TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
LAMPORTS_PER_SIGNATURE = 5_000

# JSON-RPC 2.0 and Solana's own error codes
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003


class RpcError(Exception):
    """A JSON-RPC error object (code, message, optional data) to answer with."""

    def __init__(self, code: int, message: str, data=None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def to_json(self) -> dict:
        out = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def invalid_params(detail: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"Invalid params: {detail}")


@dataclass
class Landed:
    """A transaction this node executed (or an airdrop: ``tx`` None)."""

    signature: str
    slot: int
    block_time: int
    tx: Transaction | None
    err: object | None  # solders TransactionErrorType
    logs: list[str] = field(default_factory=list)
    compute_units: int = 0
    fee: int = 0
    pre_balances: list[int] = field(default_factory=list)
    post_balances: list[int] = field(default_factory=list)
    inner: list = field(default_factory=list)  # [(index, [InnerInstruction])]


def err_json(err) -> object:
    """A TransactionError as the wire has it (``"AlreadyProcessed"``,
    ``{"InstructionError": [0, {"Custom": 1}]}``), through solders' serializer."""
    return json.loads(RpcSimulateTransactionResult(err=err).to_json())["err"]


class RpcPeer:
    """The node's state and its methods; ``app()`` serves them."""

    METHODS = ("getHealth", "getVersion", "getGenesisHash", "getSlot", "getBlockHeight", "getLatestBlockhash",
               "isBlockhashValid", "sendTransaction", "simulateTransaction", "getSignatureStatuses",
               "getAccountInfo", "getMultipleAccounts", "getBalance", "getTokenAccountBalance",
               "getMinimumBalanceForRentExemption", "requestAirdrop", "getSignaturesForAddress", "getTransaction",
               "getFeeForMessage", "dev_warpClock")

    def __init__(self, svm: LiteSVM, *, genesis_hash: Hash | None = None):
        self.svm = svm
        self.genesis_hash = str(genesis_hash or Hash.new_unique())  # a fresh chain: a new identity
        self.history: dict[str, Landed] = {}
        self.order: deque[str] = deque()
        self.by_address: dict[str, list[str]] = {}  # address -> signatures, oldest first
        self.requests = 0
        self.errors = 0

    # ------------------------------------------------------------------ JSON-RPC envelope
    def handle_body(self, body: bytes) -> object:
        """The response (dict, or list for a batch) to one HTTP body; never raises."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            return self._error(None, RpcError(PARSE_ERROR, f"Parse error: {error}"))
        if isinstance(request, list):
            if not request:
                return self._error(None, RpcError(INVALID_REQUEST, "Invalid request: empty batch"))
            if len(request) > BATCH_REQUESTS_MAX:
                return self._error(None, RpcError(INVALID_REQUEST,
                                                  f"Invalid request: batch of {len(request)} > {BATCH_REQUESTS_MAX}"))
            return [self.handle(r) for r in request]
        return self.handle(request)

    def handle(self, request) -> dict:
        self.requests += 1
        rid = request.get("id") if isinstance(request, dict) else None
        if not isinstance(rid, (str, int, type(None))) or isinstance(rid, bool):
            rid = None
        try:
            if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or \
                    not isinstance(request.get("method"), str):
                raise RpcError(INVALID_REQUEST, "Invalid request: want {\"jsonrpc\": \"2.0\", \"method\": str, "
                                                "\"params\": [...], \"id\": int|str}")
            params = request.get("params", [])
            if not isinstance(params, list):
                raise RpcError(INVALID_REQUEST, "Invalid request: params must be an array")
            method = request["method"]
            if method not in self.METHODS:
                raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method[:64]}")
            try:
                result = getattr(self, "_" + method)(*params)
            except TypeError as error:  # wrong number of params
                raise invalid_params(str(error).split(") ", 1)[-1]) from None
            except (ValueError, KeyError, IndexError, OverflowError) as error:
                raise invalid_params(f"{type(error).__name__}: {error}") from None
            return {"jsonrpc": "2.0", "result": result, "id": rid}
        except RpcError as error:
            return self._error(rid, error)
        except Exception as error:  # noqa: BLE001 - a bug here must not take the node down; logged
            log.exception("rpc peer: %s", request)
            return self._error(rid, RpcError(INTERNAL_ERROR, f"Internal error: {type(error).__name__}: {error}"))

    def _error(self, rid, error: RpcError) -> dict:
        self.errors += 1
        return {"jsonrpc": "2.0", "error": error.to_json(), "id": rid}

    def app(self) -> web.Application:
        async def post(request: web.Request) -> web.Response:
            body = await request.read()
            return web.json_response(self.handle_body(body))

        app = web.Application(client_max_size=REQUEST_BYTES_MAX)
        app.router.add_post("/", post)
        return app

    # ------------------------------------------------------------------ helpers
    @property
    def slot(self) -> int:
        return self.svm.get_clock().slot

    def _context(self, value) -> dict:
        return {"context": {"slot": self.slot, "apiVersion": "2.1.0"}, "value": value}

    def _account(self, key: Pubkey):
        acct = self.svm.get_account(key)
        return None if acct is None or acct.lamports == 0 else acct

    def _encode_account(self, acct, encoding: str) -> dict | None:
        if acct is None:
            return None
        data = bytes(acct.data)
        if encoding == "base64":
            encoded = [base64.b64encode(data).decode(), "base64"]
        elif encoding in ("base58", "binary"):
            if len(data) > BASE58_DATA_BYTES_MAX:
                raise invalid_params(f"base58 encoding is for data of ≤ {BASE58_DATA_BYTES_MAX} bytes; ask base64")
            text = based58.b58encode(data).decode()
            encoded = text if encoding == "binary" else [text, "base58"]
        else:
            raise invalid_params(f"encoding {encoding!r}: this node serves base64, base58")
        return {"data": encoded, "executable": acct.executable, "lamports": acct.lamports, "owner": str(acct.owner),
                "rentEpoch": acct.rent_epoch, "space": len(data)}

    @staticmethod
    def _decode_tx(encoded: str, config: dict | None) -> Transaction:
        encoding = (config or {}).get("encoding", "base58")
        if encoding == "base64":
            raw = base64.b64decode(encoded, validate=True)
        elif encoding == "base58":
            raw = based58.b58decode(encoded.encode())
        else:
            raise invalid_params(f"encoding {encoding!r}: want base64 or base58")
        try:
            return Transaction.from_bytes(raw)
        except Exception as error:  # noqa: BLE001 - solders raises its own error types on bad bytes
            raise invalid_params(f"failed to deserialize the transaction: {error}") from None

    def _record(self, landed: Landed, keys) -> None:
        self.history[landed.signature] = landed
        self.order.append(landed.signature)
        for key in {str(k) for k in keys}:
            self.by_address.setdefault(key, []).append(landed.signature)
        while len(self.order) > HISTORY_TX_MAX:  # forget the oldest (its address entries lazily, below)
            del self.history[self.order.popleft()]
        self.svm.warp_to_slot(landed.slot + 1)  # one block per transaction

    def _execute(self, tx: Transaction) -> Landed:
        keys = list(tx.message.account_keys)
        pre = [self.svm.get_balance(k) or 0 for k in keys]
        slot, block_time = self.slot, self.svm.get_clock().unix_timestamp
        result = self.svm.send_transaction(tx)
        failed = hasattr(result, "err")
        meta = result.meta() if failed else result
        landed = Landed(str(tx.signatures[0]), slot, block_time, tx, result.err() if failed else None,
                        list(meta.logs()), meta.compute_units_consumed(),
                        LAMPORTS_PER_SIGNATURE * tx.message.header.num_required_signatures, pre,
                        [self.svm.get_balance(k) or 0 for k in keys],
                        [(i, [(ii.instruction(), ii.stack_height()) for ii in ixs])
                         for i, ixs in enumerate(meta.inner_instructions()) if ixs])
        return landed

    # ------------------------------------------------------------------ methods
    def _getHealth(self, *_):
        return "ok"

    def _dev_warpClock(self, unix_timestamp: int):
        """Dev chain only (no cluster has it): move the Clock sysvar's ``unix_timestamp``
        forward to ``unix_timestamp`` — e.g. past the escrow's escape delay in a demo or a
        test. A clock never goes back: an earlier time is an invalid param."""
        from solders.clock import Clock

        now = self.svm.get_clock()
        if not isinstance(unix_timestamp, int) or isinstance(unix_timestamp, bool) or \
                not now.unix_timestamp <= unix_timestamp < 2**62:
            raise invalid_params(f"unix_timestamp: an integer from the chain's time {now.unix_timestamp} on")
        self.svm.set_clock(Clock(now.slot, now.epoch_start_timestamp, now.epoch, now.leader_schedule_epoch,
                                 unix_timestamp))
        return {"slot": now.slot, "unixTimestamp": unix_timestamp}

    def _getVersion(self, *_):
        return {"solana-core": "2.1.0-agentperp-litesvm", "feature-set": 0}

    def _getGenesisHash(self, *_):
        return self.genesis_hash

    def _getSlot(self, config=None):
        return self.slot

    def _getBlockHeight(self, config=None):
        return self.slot

    def _getLatestBlockhash(self, config=None):
        resp = GetLatestBlockhashResp(RpcBlockhash(self.svm.latest_blockhash(), self.slot + BLOCKHASH_VALID_BLOCKS),
                                      RpcResponseContext(self.slot))
        return json.loads(resp.to_json())["result"]

    def _isBlockhashValid(self, blockhash: str, config=None):
        return self._context(Hash.from_string(blockhash) == self.svm.latest_blockhash())

    def _getFeeForMessage(self, message: str, config=None):
        from solders.message import Message
        msg = Message.from_bytes(base64.b64decode(message, validate=True))
        return self._context(LAMPORTS_PER_SIGNATURE * msg.header.num_required_signatures)

    def _sendTransaction(self, encoded: str, config: dict | None = None):
        tx = self._decode_tx(encoded, config)
        if not (config or {}).get("skipPreflight", False):
            sim = self.svm.simulate_transaction(tx)
            if hasattr(sim, "err"):
                err, meta = sim.err(), sim.meta()
                data = json.loads(RpcSimulateTransactionResult(
                    err=err, logs=list(meta.logs()), units_consumed=meta.compute_units_consumed()).to_json())
                if "SignatureFailure" in str(err):
                    raise RpcError(TRANSACTION_SIGNATURE_VERIFICATION_FAILURE,
                                   "Transaction signature verification failure")
                first = next((line for line in reversed(meta.logs()) if "failed" in line), str(err))
                raise RpcError(SEND_TRANSACTION_PREFLIGHT_FAILURE, f"Transaction simulation failed: {first}", data)
        landed = self._execute(tx)
        text = str(landed.err) if landed.err is not None else ""
        if "AlreadyProcessed" in text or "BlockhashNotFound" in text or "SignatureFailure" in text:
            # refused before execution: nothing landed (a cluster answers these the same way)
            raise RpcError(SEND_TRANSACTION_PREFLIGHT_FAILURE, f"Transaction simulation failed: {text}",
                           {"err": err_json(landed.err), "logs": [], "accounts": None, "unitsConsumed": 0,
                            "returnData": None, "innerInstructions": None, "replacementBlockhash": None})
        self._record(landed, tx.message.account_keys)
        return landed.signature

    def _simulateTransaction(self, encoded: str, config: dict | None = None):
        tx = self._decode_tx(encoded, {"encoding": "base58", **(config or {})})
        sim = self.svm.simulate_transaction(tx)
        failed = hasattr(sim, "err")
        meta = sim.meta()
        result = RpcSimulateTransactionResult(err=sim.err() if failed else None, logs=list(meta.logs()),
                                              units_consumed=meta.compute_units_consumed())
        return self._context(json.loads(result.to_json()))

    def _getSignatureStatuses(self, signatures: list, config=None):
        if len(signatures) > SIGNATURES_PER_STATUS_MAX:
            raise invalid_params(f"{len(signatures)} signatures > {SIGNATURES_PER_STATUS_MAX}")
        out = []
        for sig in signatures:
            Signature.from_string(sig)  # a malformed one is an invalid param
            landed = self.history.get(sig)
            if landed is None:
                out.append(None)
                continue
            err = None if landed.err is None else err_json(landed.err)
            out.append({"slot": landed.slot, "confirmations": None, "err": err,
                        "status": {"Ok": None} if err is None else {"Err": err}, "confirmationStatus": "finalized"})
        return self._context(out)

    def _getAccountInfo(self, key: str, config=None):
        encoding = (config or {}).get("encoding", "binary")
        return self._context(self._encode_account(self._account(Pubkey.from_string(key)), encoding))

    def _getMultipleAccounts(self, keys: list, config=None):
        if len(keys) > ACCOUNTS_PER_REQUEST_MAX:
            raise invalid_params(f"{len(keys)} accounts > {ACCOUNTS_PER_REQUEST_MAX}")
        encoding = (config or {}).get("encoding", "base64")
        return self._context([self._encode_account(self._account(Pubkey.from_string(k)), encoding) for k in keys])

    def _getBalance(self, key: str, config=None):
        return self._context(self.svm.get_balance(Pubkey.from_string(key)) or 0)

    def _getTokenAccountBalance(self, key: str, config=None):
        acct = self._account(Pubkey.from_string(key))
        if acct is None or acct.owner != TOKEN_PROGRAM_ID:
            raise invalid_params("not a Token account")
        state = TokenAccount.from_bytes(bytes(acct.data))
        mint = self._account(state.mint)
        decimals = Mint.from_bytes(bytes(mint.data)).decimals if mint is not None else 0
        ui = state.amount / 10**decimals
        return self._context({"amount": str(state.amount), "decimals": decimals, "uiAmount": ui,
                              "uiAmountString": f"{state.amount / 10**decimals:.{decimals}f}".rstrip("0").rstrip(".")})

    def _getMinimumBalanceForRentExemption(self, size: int, config=None):
        if not isinstance(size, int) or size < 0 or size > 10 * 1024 * 1024:
            raise invalid_params("data length: an integer in 0..10 MiB")
        return self.svm.minimum_balance_for_rent_exemption(size)

    def _requestAirdrop(self, key: str, lamports: int, config=None):
        if not isinstance(lamports, int) or not 0 < lamports <= AIRDROP_LAMPORTS_MAX:
            raise invalid_params(f"lamports: an integer in 1..{AIRDROP_LAMPORTS_MAX}")
        owner = Pubkey.from_string(key)
        slot, block_time = self.slot, self.svm.get_clock().unix_timestamp
        result = self.svm.airdrop(owner, lamports)
        if hasattr(result, "err"):
            raise RpcError(INTERNAL_ERROR, f"airdrop failed: {result.err()}")
        self._record(Landed(str(result.signature()), slot, block_time, None, None), [owner])
        return str(result.signature())

    def _getSignaturesForAddress(self, key: str, config=None):
        config = config or {}
        limit = config.get("limit") or SIGNATURES_PAGE_MAX
        if not isinstance(limit, int) or not 0 < limit <= SIGNATURES_PAGE_MAX:
            raise invalid_params(f"limit: 1..{SIGNATURES_PAGE_MAX}")
        sigs = [s for s in reversed(self.by_address.get(str(Pubkey.from_string(key)), [])) if s in self.history]
        before, until = config.get("before"), config.get("until")
        if before is not None:
            sigs = sigs[sigs.index(before) + 1:] if before in sigs else []
        if until is not None and until in sigs:
            sigs = sigs[:sigs.index(until)]
        out = []
        for s in sigs[:limit]:
            landed = self.history[s]
            out.append({"signature": s, "slot": landed.slot, "err": None if landed.err is None else err_json(landed.err),
                        "memo": None, "blockTime": landed.block_time, "confirmationStatus": "finalized"})
        return out

    def _getTransaction(self, sig: str, config=None):
        config = config if isinstance(config, dict) else {"encoding": config or "json"}
        Signature.from_string(sig)
        landed = self.history.get(sig)
        if landed is None or landed.tx is None:
            return None
        encoding = config.get("encoding", "json")
        tx, msg = landed.tx, landed.tx.message
        err = None if landed.err is None else err_json(landed.err)
        inner = [{"index": i, "instructions": [
            {"programIdIndex": ix.program_id_index, "accounts": list(ix.accounts),
             "data": based58.b58encode(bytes(ix.data)).decode(), "stackHeight": height}
            for ix, height in ixs]} for i, ixs in landed.inner]
        meta = {"err": err, "status": {"Ok": None} if err is None else {"Err": err}, "fee": landed.fee,
                "preBalances": landed.pre_balances, "postBalances": landed.post_balances,
                "innerInstructions": inner, "logMessages": landed.logs, "preTokenBalances": [],
                "postTokenBalances": [], "rewards": [], "loadedAddresses": {"writable": [], "readonly": []},
                "computeUnitsConsumed": landed.compute_units}
        if encoding == "json":
            h = msg.header
            transaction = {"signatures": [str(s) for s in tx.signatures], "message": {
                "accountKeys": [str(k) for k in msg.account_keys],
                "header": {"numRequiredSignatures": h.num_required_signatures,
                           "numReadonlySignedAccounts": h.num_readonly_signed_accounts,
                           "numReadonlyUnsignedAccounts": h.num_readonly_unsigned_accounts},
                "recentBlockhash": str(msg.recent_blockhash),
                "instructions": [{"programIdIndex": ix.program_id_index, "accounts": list(ix.accounts),
                                  "data": based58.b58encode(bytes(ix.data)).decode(), "stackHeight": None}
                                 for ix in msg.instructions]}}
        elif encoding == "base64":
            transaction = [base64.b64encode(bytes(tx)).decode(), "base64"]
        else:
            raise invalid_params(f"encoding {encoding!r}: this node serves json, base64")
        out = {"slot": landed.slot, "blockTime": landed.block_time, "meta": meta, "transaction": transaction}
        if config.get("maxSupportedTransactionVersion") is not None:
            out["version"] = "legacy"
        return out


async def serve(peer: RpcPeer, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start serving ``peer``; (runner to ``cleanup()``, its URL). ``port`` 0: any free port."""
    runner = web.AppRunner(peer.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # the port the OS chose when 0
    return runner, f"http://{host}:{bound}"


def main(argv: list[str] | None, *, make_world, program_id) -> int:  # pragma: no cover - a server until Ctrl-C
    """``agentperp escrow rpc-peer``: serve a fresh dev chain (the program deployed, its
    config initialized: ``make_world()``, given by the CLI since adapters never import
    ``programs``) and write the ``[settlement]`` settings and authority keypair that
    ``agentperp run --settlement rpc`` needs into ``--out``."""
    import argparse
    import asyncio
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="agentperp escrow rpc-peer",
                                     description="LiteSVM with the escrow program, served as a Solana JSON-RPC node")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899, help="0: any free port (default 8899, a validator's)")
    parser.add_argument("--out", type=Path, default=Path("build/rpc-peer"),
                        help="where settlement.toml and authority.json are written")
    args = parser.parse_args(argv)
    world = make_world()

    async def run() -> None:
        runner, url = await serve(RpcPeer(world.svm), args.host, args.port)
        args.out.mkdir(parents=True, exist_ok=True)
        authority = args.out / "authority.json"
        authority.write_text(json.dumps(list(bytes(world.authority))))
        settings = args.out / "settlement.toml"
        settings.write_text(
            f'[settlement]\nbackend = "rpc"\nrpc_url = "{url}"\nprogram_id = "{program_id}"\n'
            f'vault = "{world.vault}"\nusdc_mint = "{world.mint}"\nauthority_keypair = "{authority.resolve()}"\n')
        print(f"serving {url}  program {program_id}  vault {world.vault}  mint {world.mint}\n"
              f"settings: {settings} (agentperp run --config {settings}); Ctrl-C stops", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0
