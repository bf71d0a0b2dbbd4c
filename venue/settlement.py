"""The escrow program's files, handed to the settlement adapter (DESIGN §2: ``adapters``
never import ``programs``; ``venue`` wires everything).

``programs/escrow`` owns the program: its IDL (checked in), its build (the ``.so``) and the
LiteSVM world that loads it. ``adapters/solana`` is given them as data: an ``EscrowProgram``
(program id + IDL), a world, and the dev oracle's account bytes.
"""

from __future__ import annotations

import json
import logging
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
    """The dev oracle's PriceUpdateV2 account of ``market`` (embedded chain, or an RPC dev chain
    whose config has the same feed ids); None: no dev feed for it."""
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
DEPOSIT_CURSOR_FILE = "settlement.deposits.json"  # rpc: the deposit watcher's cursor, in the data dir
DEPOSIT_CALL_TIMEOUT_S = 30.0  # one demo deposit sent on chain, at most
RECONCILE_TIMEOUT_S = 120.0  # one live reconcile, at most


class SettlementUnavailable(RuntimeError):
    """The venue cannot start its settlement (the program cannot be built, rpc settings missing)."""


def _keypair(path: str) -> Keypair:
    """A keypair file in solana-keygen's JSON format (64 bytes as a list of numbers)."""
    try:
        return Keypair.from_bytes(bytes(json.loads(Path(path).read_text())))
    except (OSError, ValueError) as error:
        raise SettlementUnavailable(f"keypair file {path}: {error}") from error


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
    """``SettlementSink`` plus the engine's state at the settlement checkpoint (a replica),
    so ``reconcile`` compares the chain and the engine at the same seq while both move on; a
    lock keeps a batch and a reconcile apart.

    The replica is brought to the checkpoint when a reconcile asks for it (``catch_up``), not
    fed every settled batch: that applied every event a second time on the venue's process,
    ~1.5 µs of its GIL per command, for a report ops ask for now and then. A reconcile starts
    from the newest venue snapshot between the replica and the checkpoint, if there is one,
    and applies the journal from there: at most ``snapshot_every_commands`` commands
    (100 000 by default) of replay, with settlement paused meanwhile."""

    def __init__(self, sink, journal_dir: Path, snapshot_dir: Path):
        import threading

        from engine.state import State
        from ledger.genesis import journal_config

        self.sink = sink
        self.name = sink.name
        self.journal_dir = journal_dir
        self.snapshot_dir = snapshot_dir
        self.journal = journal_config(journal_dir)
        self.replica = State(self.journal.config)
        self.lock = threading.Lock()

    @property
    def projection(self):
        return self.sink.projection

    @property
    def loop(self):
        return self.sink.loop

    @property
    def coalesce_s(self) -> float:
        return self.sink.coalesce_s  # the runner batches the settlement as the sink asks

    def load_checkpoint(self) -> int:
        with self.lock:
            return self.sink.load_checkpoint()

    def catch_up(self) -> None:
        """Apply the journal's events up to the settlement checkpoint to the replica (call
        with ``lock`` held, so the checkpoint stays put)."""
        from engine.state import State
        from ledger.recovery import replay_into, snapshot_within

        seq = self.sink.load_checkpoint()
        if seq < self.replica.last_seq:  # a voided checkpoint (a fresh chain): from the start again
            self.replica = State(self.journal.config)
        if self.replica.last_seq >= seq:
            return
        self.replica = snapshot_within(self.snapshot_dir, self.journal.config, self.journal_dir,
                                       self.journal.genesis, self.replica.last_seq, seq) or self.replica
        replay_into(self.replica, self.journal_dir, to_seq=seq)

    def recover(self) -> None:
        self.sink.recover()

    def apply(self, records, after_seq: int) -> int:
        with self.lock:
            return self.sink.apply(records, after_seq)

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
        self.cursor_store = None  # rpc: the watcher's durable cursor (adapters.solana.watcher.CursorStore)
        self._cursor_chain = ""  # rpc: the chain the cursor belongs to, once loaded
        self.deposits_seen = 0
        self._watch_task = None
        self._watch_lock = None  # one poll at a time (the loop's and a demo deposit's)
        self._stopping = False
        self.started_s = 0.0  # how long the start took (program build + chain)

    @property
    def enabled(self) -> bool:
        return self.sink is not None

    @property
    def on_chain_deposits(self) -> bool:
        """Demo agents deposit through the program (the embedded chain, or a dev chain by RPC)."""
        return self.enabled and self.config.demo_deposits and (self.config.backend == "litesvm"
                                                               or self.config.dev_chain)

    async def start(self) -> ReplicaSink | None:
        import asyncio
        import time

        from adapters.solana.checkpoint import CheckpointStore
        from adapters.solana.projection import SettlementProjection
        from adapters.solana.runner_sink import SettlementSink
        from ledger.recovery import JOURNAL_DIR, SNAPSHOT_DIR

        if self.config.backend == "none":
            return None
        t0 = time.perf_counter()
        data_dir = Path(self.venue.config.venue.data_dir)
        if self.config.backend == "litesvm":
            path = await asyncio.to_thread(program_path)
            self.backend = await asyncio.to_thread(litesvm_backend, path, cls=self.backend_cls)
        else:
            self.backend = self._rpc_backend()
        # An in-process LiteSVM's checkpoint is void at the next start: kept in memory.
        store = CheckpointStore(data_dir / CHECKPOINT_FILE, durable=self.config.backend != "litesvm")
        projection = SettlementProjection(self.backend, store, on_unmirrorable="record", on_program_error="halt")
        self.sink = ReplicaSink(SettlementSink(projection, name=SETTLEMENT_NAME), data_dir / JOURNAL_DIR,
                                data_dir / SNAPSHOT_DIR)
        if self.config.backend == "litesvm":
            from adapters.solana.watcher import LiteSvmDepositWatcher
            self.watcher = LiteSvmDepositWatcher(self.backend)
        else:
            from adapters.solana.watcher import CursorStore, RpcDepositWatcher
            # The vault, not the program: every deposit moves USDC into it, and the venue's own
            # settlement transactions (most of the program's) are not fetched again.
            self.watcher = RpcDepositWatcher(self.backend.client, self.backend.escrow.program_id,
                                             address=self.backend.vault)
            self.cursor_store = CursorStore(data_dir / DEPOSIT_CURSOR_FILE)
        self._watch_lock = asyncio.Lock()
        self._watch_task = asyncio.create_task(self._watch(), name="deposit-watcher")
        self.started_s = time.perf_counter() - t0
        return self.sink

    def _rpc_backend(self):
        from solana.rpc.async_api import AsyncClient
        from solders.pubkey import Pubkey

        from adapters.solana.backend_rpc import DevChain, RpcBackend

        c = self.config
        missing = [k for k in ("rpc_url", "program_id", "vault", "authority_keypair") if not getattr(c, k)]
        if self.venue.config.venue.demo and c.demo_deposits:
            if not c.dev_chain:
                raise SettlementUnavailable(
                    "--settlement rpc with demo agents needs a dev chain: the demo agents fund themselves there "
                    "(SOL by airdrop, test USDC minted); set [settlement] dev_chain = true (the file "
                    "`agentperp escrow rpc-peer` writes does), or run with --no-demo")
            missing += [k for k in ("usdc_mint", "usdc_mint_authority_keypair") if not getattr(c, k)]
        if missing:
            raise SettlementUnavailable(f"--settlement rpc needs [settlement] {', '.join(missing)} "
                                        f"(`agentperp escrow rpc-peer` writes them for its dev chain)")
        symbols = self.venue.symbols
        oracles = {symbols.index(m): Pubkey.from_string(a) for m, a in c.oracle_accounts.items() if m in symbols}
        return RpcBackend(AsyncClient(c.rpc_url), escrow_program(Pubkey.from_string(c.program_id)),
                          Pubkey.from_string(c.vault), _keypair(c.authority_keypair), _keypair(c.authority_keypair),
                          usdc_mint=Pubkey.from_string(c.usdc_mint) if c.usdc_mint else None, oracle_accounts=oracles,
                          dev_chain=DevChain(c.rpc_url) if c.dev_chain else None, price_account_data=dev_price_account,
                          mint_authority=_keypair(c.usdc_mint_authority_keypair) if c.usdc_mint_authority_keypair
                          else None)

    async def stop(self) -> None:
        import asyncio

        if self._watch_task is not None:
            self._stopping = True  # the loop ends by itself even if a cancellation were lost
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
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
        # arrives as the call completes (fixed in 3.12), and the watcher loop would never stop.
        async with asyncio.timeout(timeout_s):
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.sink.loop.loop))

    # -- deposits -------------------------------------------------------------------------

    async def deposit(self, keypair: Keypair, amount_e6: int) -> str:
        """The agent deposits ``amount_e6`` of (test) USDC into the escrow on the dev chain
        (embedded, or by RPC): SOL and test USDC from the chain's faucet, then the agent signs
        and pays ``deposit``; the watcher turns
        it into a ``Deposit`` (ref = the signature), which this waits for. The signature."""
        outcome = await self._on_chain(self._send_deposit(keypair, amount_e6), DEPOSIT_CALL_TIMEOUT_S)
        if not outcome.ok:
            raise RuntimeError(f"the deposit of {keypair.pubkey()} was refused on chain: {outcome.error}")
        await self.watch_once()
        return outcome.signature

    async def _send_deposit(self, keypair: Keypair, amount_e6: int):
        b = self.backend
        owner = keypair.pubkey()
        ata = await b.dev_fund(owner, amount_e6)  # the dev chain's faucet: SOL and test USDC
        # The agent's own transaction: the program's deposit, signed and paid by the agent.
        return await b.send_as([b.escrow.deposit(owner, ata, b.vault, amount_e6)], keypair)

    async def watch_once(self) -> int:
        """Turn the deposits that landed since the last poll into ``Deposit`` commands. With a
        durable cursor (rpc) it is stored only after the commands are accepted: a crash in
        between delivers them again, and the engine answers a repeated ref as a no-op."""
        from adapters.solana.watcher import to_command
        from engine import rejections as rj

        async with self._watch_lock:
            if self.cursor_store is not None and not self._cursor_chain:
                self._cursor_chain = await self._on_chain(self.backend.chain_id(), DEPOSIT_CALL_TIMEOUT_S)
                self.watcher.cursor = self.cursor_store.load(self._cursor_chain)
            seen, cursor = await self._on_chain(self.watcher.fetch(), DEPOSIT_CALL_TIMEOUT_S)
            for deposit in seen:
                outcome = await self.venue.execute(to_command(deposit))
                if outcome.rejection is None:
                    self.deposits_seen += 1
                elif outcome.rejection.code != rj.DUPLICATE:  # refused for good: reconcile will show it
                    logging.getLogger("agentperp.settlement").error(
                        "deposit %s of %s refused: %s", deposit.signature, deposit.owner, outcome.rejection)
            if self.cursor_store is not None and cursor != self.watcher.cursor:
                self.cursor_store.save(self._cursor_chain, cursor)
            self.watcher.cursor = cursor
            return len(seen)

    async def _watch(self) -> None:
        import asyncio

        log = logging.getLogger("agentperp.settlement")
        failing = ""  # the error logged last: a chain that stays down is said once, not every poll
        while True:
            await asyncio.sleep(self.config.watch_interval_ms / 1_000)
            if self._stopping:
                return
            try:
                await self.watch_once()
            except Exception as error:  # noqa: BLE001 - the next poll tries again
                if (text := f"{type(error).__name__}: {error}") != failing:
                    failing = text
                    log.error("deposit watcher (retrying every %d ms): %s", self.config.watch_interval_ms, text)
                continue
            if failing:
                log.warning("deposit watcher: polling the chain again")
                failing = ""

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self) -> dict:
        """Compare the live chain with the engine at the settlement checkpoint: every agent and
        position balance, the config's books, the vault. JSON-ready."""
        import asyncio

        from adapters.solana.reconcile import reconcile_async

        def run():
            with self.sink.lock:
                self.sink.catch_up()
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
        return (f"RPC {self.config.rpc_url}, program {self.backend.escrow.program_id}, vault {self.backend.vault}"
                + ("; a dev chain: the venue writes its oracle accounts" if self.config.dev_chain else "")
                + ("; demo agents deposit on chain" if self.on_chain_deposits else ""))

    def figures(self) -> dict:
        """What /health adds to the settlement projection's entry."""
        stats = self.sink.projection.stats
        return {"backend": self.config.backend, "settled_events": stats.events_settled,
                "transactions": stats.transactions, "already_applied": stats.already_applied,
                "unmirrored": stats.unmirrored, "deposits_seen": self.deposits_seen,
                "oracle_rewrites": getattr(self.backend, "oracle_rewrites", 0)}
