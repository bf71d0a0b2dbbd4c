"""The escrow program's files, handed to the settlement adapter (DESIGN §2: ``adapters``
never import ``programs``; ``venue`` wires everything).

``programs/escrow`` owns the program: its IDL (checked in), its build (the ``.so``) and the
LiteSVM world that loads it. ``adapters/solana`` is given them as data: an ``EscrowProgram``
(program id + IDL), a world, and the dev oracle's account bytes.
"""

from __future__ import annotations

from pathlib import Path

from anchorpy import Idl
from solders.keypair import Keypair
from solders.litesvm import LiteSVM

from adapters.solana.backend_litesvm import LiteSvmBackend
from adapters.solana.escrow import EscrowProgram, load_idl
from programs.escrow import localnet


def escrow_idl() -> Idl:
    """The escrow program's IDL (``programs/escrow/idl.json``)."""
    return load_idl(localnet.IDL_PATH)


def escrow_program(program_id=localnet.PROGRAM_ID) -> EscrowProgram:
    """Instruction builders for the escrow program deployed at ``program_id``."""
    return EscrowProgram(program_id, escrow_idl())


def dev_price_account(market: int, price_e8: int, publish_ns: int, conf_e8: int = 0) -> bytes | None:
    """The embedded chain's PriceUpdateV2 account of ``market`` (None: no dev feed for it)."""
    if market >= len(localnet.FEEDS):
        return None
    return localnet.price_update_bytes(localnet.FEEDS[market], price_e8, conf_e8, -8, publish_ns // 1_000_000_000)


def litesvm_backend(program_path: Path | None = None, *, keyring: dict[str, Keypair] | None = None,
                    sigverify: bool = False, cls: type[LiteSvmBackend] = LiteSvmBackend) -> LiteSvmBackend:
    """A fresh embedded chain with the built program (``program_path``; built now when None)
    loaded and its config initialized."""
    if program_path is None:
        from programs.escrow.build import build
        program_path = build()
    world = localnet.World(program_path, svm=LiteSVM().with_sigverify(sigverify))
    return cls(world, escrow_program(), dev_price_account, keyring)


# ---------------------------------------------------------------------------------------------
# The escrow live in the running venue (issue 13): ``VenueProjections`` starts a
# ``VenueSettlement`` and runs its sink on the projection runner like the SQL read models.
# ---------------------------------------------------------------------------------------------

SETTLEMENT_NAME = "settlement"
CHECKPOINT_FILE = "settlement.checkpoint.json"  # in the data dir (a LiteSVM's is void at the next start)
DEPOSIT_CALL_TIMEOUT_S = 30.0  # one demo deposit sent on chain, at most
RECONCILE_TIMEOUT_S = 120.0  # one live reconcile, at most


class SettlementUnavailable(RuntimeError):
    """The venue cannot start its settlement (the program cannot be built, rpc settings missing)."""


def program_path() -> Path:
    """The built program, built now if a source is newer (``agentperp escrow build``)."""
    from programs.escrow.build import build
    try:
        return build()
    except Exception as error:  # no BPF compiler here, a broken source
        raise SettlementUnavailable(
            f"the escrow program could not be built ({type(error).__name__}: {error}); run `agentperp escrow build` "
            f"to see why, or start with --settlement none") from error


class ReplicaSink:
    """``SettlementSink`` plus the engine's state at the settlement checkpoint (a replica
    fed the same events, after each batch is on chain), so ``reconcile`` compares the chain
    and the engine at the same seq while both move on; a lock keeps a batch and a reconcile
    apart."""

    def __init__(self, sink, journal_dir: Path):
        import threading

        from engine.state import State
        from ledger.genesis import journal_config

        self.sink = sink
        self.name = sink.name
        self.journal_dir = journal_dir
        self.replica = State(journal_config(journal_dir).config)
        self.lock = threading.Lock()

    @property
    def projection(self):
        return self.sink.projection

    @property
    def loop(self):
        return self.sink.loop

    def load_checkpoint(self) -> int:
        with self.lock:
            seq = self.sink.load_checkpoint()
            if seq < self.replica.last_seq:  # a voided checkpoint (a fresh chain): from the start again
                from engine.state import State
                self.replica = State(self.replica.config)
            self._replay_to(seq)
            return seq

    def _replay_to(self, seq: int) -> None:
        from engine.apply import apply
        from ledger.journal import JournalReader
        from ledger.records import decode_record

        if self.replica.last_seq >= seq:
            return
        for header, payload in JournalReader(self.journal_dir).read(from_seq=self.replica.last_seq + 1):
            if header.last_seq <= self.replica.last_seq:
                continue
            for event in decode_record(payload).events:
                if self.replica.last_seq < event.seq <= seq:
                    apply(self.replica, event)
            if header.last_seq >= seq:
                return

    def recover(self) -> None:
        self.sink.recover()

    def apply(self, records, after_seq: int) -> int:
        from engine.apply import apply

        with self.lock:
            seq = self.sink.apply(records, after_seq)
            for record in records:
                for event in record.events:
                    if event.seq > self.replica.last_seq:
                        apply(self.replica, event)
            return seq

    def close(self) -> None:
        self.sink.close()


class VenueSettlement:
    """The venue's settlement: the backend (``[settlement] backend``), its sink on the
    projection runner, the deposit watcher, demo deposits on chain, and live reconcile."""

    def __init__(self, venue) -> None:
        self.venue = venue
        self.config = venue.config.settlement
        self.backend = None
        self.sink: ReplicaSink | None = None
        self.backend_cls = LiteSvmBackend  # a seam: tests give a chain with faults
        self.watcher = None
        self.deposits_seen = 0
        self._watch_task = None
        self.started_s = 0.0  # how long the start took (program build + chain)

    @property
    def enabled(self) -> bool:
        return self.sink is not None

    @property
    def on_chain_deposits(self) -> bool:
        """Demo agents deposit through the program (embedded chain only)."""
        return self.enabled and self.config.backend == "litesvm" and self.config.demo_deposits

    async def start(self) -> ReplicaSink | None:
        import asyncio
        import time

        from adapters.solana.checkpoint import CheckpointStore
        from adapters.solana.projection import SettlementProjection
        from adapters.solana.runner_sink import SettlementSink
        from ledger.recovery import JOURNAL_DIR

        if self.config.backend == "none":
            return None
        t0 = time.perf_counter()
        data_dir = Path(self.venue.config.venue.data_dir)
        if self.config.backend == "litesvm":
            path = await asyncio.to_thread(program_path)
            self.backend = await asyncio.to_thread(litesvm_backend, path, cls=self.backend_cls)
        else:
            self.backend = self._rpc_backend()
        projection = SettlementProjection(self.backend, CheckpointStore(data_dir / CHECKPOINT_FILE),
                                          on_unmirrorable="record", on_program_error="halt")
        self.sink = ReplicaSink(SettlementSink(projection, name=SETTLEMENT_NAME), data_dir / JOURNAL_DIR)
        if self.config.backend == "litesvm":
            from adapters.solana.watcher import LiteSvmDepositWatcher
            self.watcher = LiteSvmDepositWatcher(self.backend)
            self._watch_task = asyncio.create_task(self._watch(), name="deposit-watcher")
        self.started_s = time.perf_counter() - t0
        return self.sink

    def _rpc_backend(self):
        import json

        from solana.rpc.async_api import AsyncClient
        from solders.pubkey import Pubkey

        from adapters.solana.backend_rpc import RpcBackend

        c = self.config
        missing = [k for k in ("rpc_url", "program_id", "vault", "authority_keypair") if not getattr(c, k)]
        if missing:
            raise SettlementUnavailable(f"--settlement rpc needs [settlement] {', '.join(missing)}")
        authority = Keypair.from_bytes(bytes(json.loads(Path(c.authority_keypair).read_text())))
        symbols = self.venue.symbols
        oracles = {symbols.index(m): Pubkey.from_string(a) for m, a in c.oracle_accounts.items() if m in symbols}
        return RpcBackend(AsyncClient(c.rpc_url), escrow_program(Pubkey.from_string(c.program_id)),
                          Pubkey.from_string(c.vault), authority, authority,
                          usdc_mint=Pubkey.from_string(c.usdc_mint) if c.usdc_mint else None, oracle_accounts=oracles)

    async def stop(self) -> None:
        import asyncio

        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        if self.sink is not None:
            if hasattr(self.backend, "close"):
                try:
                    self.sink.loop.call(self.backend.close(), 5.0)
                except Exception:  # noqa: BLE001 - closing an HTTP client on the way out
                    pass
            self.sink.close()

    async def _on_chain(self, coroutine, timeout_s: float):
        """Run ``coroutine`` on the backend's own loop (the backend lives there alone)."""
        import asyncio
        return await asyncio.wait_for(
            asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.sink.loop.loop)), timeout_s)

    # -- deposits -------------------------------------------------------------------------

    async def deposit(self, keypair: Keypair, amount_e6: int) -> str:
        """The agent deposits ``amount_e6`` of (test) USDC into the escrow on the embedded chain:
        the USDC is minted to its token account, the agent signs ``deposit``; the watcher turns
        it into a ``Deposit`` (ref = the signature), which this waits for. The signature."""
        outcome = await self._on_chain(self._send_deposit(keypair, amount_e6), DEPOSIT_CALL_TIMEOUT_S)
        if not outcome.ok:
            raise RuntimeError(f"the deposit of {keypair.pubkey()} was refused on chain: {outcome.error}")
        await self.watch_once()
        return outcome.signature

    async def _send_deposit(self, keypair: Keypair, amount_e6: int):
        from solders.message import Message
        from solders.transaction import Transaction
        from spl.token.instructions import MintToParams, create_idempotent_associated_token_account, mint_to

        from adapters.solana.escrow import TOKEN_PROGRAM_ID

        b = self.backend
        owner = keypair.pubkey()
        b._fund(owner)  # the agent pays its fees and its agent account's rent
        ata = b.token_account_of(owner)
        # The faucet of test USDC (the mint is the dev chain's): into the agent's own token account.
        b.svm.expire_blockhash()
        mint = Transaction([b.payer, b.world.mint_authority], Message.new_with_blockhash(
            [create_idempotent_associated_token_account(b.payer.pubkey(), owner, b.mint),
             mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=b.mint, dest=ata,
                                  mint_authority=b.world.mint_authority.pubkey(), amount=amount_e6))],
            b.payer.pubkey(), b.svm.latest_blockhash()), b.svm.latest_blockhash())
        minted = b.svm.send_transaction(mint)
        if hasattr(minted, "err"):
            raise RuntimeError(f"minting test USDC to {owner} failed: {minted.err()}")
        # The agent's own transaction: the program's deposit, signed and paid by the agent.
        b.svm.expire_blockhash()
        tx = Transaction([keypair], Message.new_with_blockhash(
            [b.escrow.deposit(owner, ata, b.vault, amount_e6)], owner, b.svm.latest_blockhash()),
            b.svm.latest_blockhash())
        return b.send_external(tx)

    async def watch_once(self) -> int:
        """Turn the deposits that landed since the last poll into ``Deposit`` commands."""
        from adapters.solana.watcher import to_command

        seen = await self._on_chain(self.watcher.poll(), DEPOSIT_CALL_TIMEOUT_S)
        for deposit in seen:
            outcome = await self.venue.execute(to_command(deposit))
            if outcome.rejection is None:
                self.deposits_seen += 1
        return len(seen)

    async def _watch(self) -> None:
        import asyncio
        import logging

        while True:
            await asyncio.sleep(self.config.watch_interval_ms / 1_000)
            try:
                await self.watch_once()
            except Exception as error:  # noqa: BLE001 - the next poll tries again
                logging.getLogger("agentperp.settlement").error("deposit watcher: %s", error)

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self) -> dict:
        """Compare the live chain with the engine at the settlement checkpoint: every agent and
        position balance, the config's books, the vault. JSON-ready."""
        import asyncio

        from adapters.solana.reconcile import reconcile_async

        def run():
            with self.sink.lock:
                report = self.sink.loop.call(reconcile_async(self.sink.replica, self.backend), RECONCILE_TIMEOUT_S)
                return report, self.sink.replica.last_seq, list(self.sink.projection.checkpoint.unmirrored
                                                                if self.sink.projection.checkpoint else [])

        report, seq, unmirrored = await asyncio.to_thread(run)
        from adapters.solana.reconcile import Difference
        for item in unmirrored:  # as `agentperp escrow reconcile --data-dir` counts them: a difference each
            report.differences.append(Difference("journal", str(item["seq"]), item["event"], "mirrored",
                                                 f"not mirrored: {item['reason']}"))
        out = report.to_json()
        out.update(backend=self.config.backend, seq=seq, engine_seq=self.venue.hub.last_seq,
                   lag_seq=max(0, self.venue.hub.last_seq - seq), unmirrored=unmirrored,
                   vault=str(self.backend.vault))
        return out

    # -- status -----------------------------------------------------------------------------

    def describe(self) -> str:
        """One line for ``agentperp run``'s banner."""
        if self.config.backend == "litesvm":
            return (f"LiteSVM in-process, program {self.backend.escrow.program_id}, vault {self.backend.vault}; "
                    f"the chain is rebuilt from the journal at each start"
                    + ("; demo agents deposit on chain" if self.on_chain_deposits else ""))
        return f"RPC {self.config.rpc_url}, program {self.backend.escrow.program_id}, vault {self.backend.vault}"

    def figures(self) -> dict:
        """What /health adds to the settlement projection's entry."""
        stats = self.sink.projection.stats
        return {"backend": self.config.backend, "settled_events": stats.events_settled,
                "transactions": stats.transactions, "already_applied": stats.already_applied,
                "unmirrored": stats.unmirrored, "deposits_seen": self.deposits_seen,
                "oracle_rewrites": getattr(self.backend, "oracle_rewrites", 0)}
