"""The running venue: recovery, the sequencer, the hub, the gateways and the oracle, wired
together on one asyncio loop (DESIGN §1).

``Venue`` is what the gateways, the dev helpers and the tests hold: ``execute(command)``
submits through the sequencer and resolves once the command is durable; ``state`` is read
only through ``engine.views``; ``hub`` serves event streams.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

from adapters.gateway.edge import Edge
from adapters.gateway.streams import PositionParties
from engine import events as ev
from engine import views
from engine.state import State
from engine.markets import EngineConfig
from ledger.gc_policy import tune_gc
from ledger.genesis import read_genesis
from ledger.journal import JournalReader, list_segments
from ledger.records import decode_record
from ledger.recovery import JOURNAL_DIR, SNAPSHOT_DIR, recover
from ledger.snapshots import SnapshotWriter
from venue.config import Config
from venue.hedging import VenueHedging
from adapters.gateway.hub import Hub
from venue.metrics import Metrics
from venue.projections import VenueProjections
from venue.sequencer import Outcome, Sequencer

log = logging.getLogger("agentperp.venue")

# The journal thread must get the GIL back as soon as its fsync returns, or every ack of the
# batch waits for the loop thread's time slice (CPython's default: 5 ms).
GIL_SWITCH_INTERVAL_S = 0.0002


class Venue:
    def __init__(self, config: Config, *, clock=time.time_ns):
        self.config = config
        self.engine_config = config.engine_config()
        self.clock = clock
        self.metrics = Metrics()
        self.edge = Edge(self)  # the edge rules every gateway shares (rate limits per agent across them)
        self.symbols = [m.symbol for m in self.engine_config.markets]
        self.position_agents = PositionParties()  # open positions' agents, for the account stream
        # market -> (price_e8, conf_e8, publish_ns) of its last durable OracleUpdated (the Welcome)
        self.last_prices: dict[int, tuple[int, int, int]] = {}
        self.tcp_port = 0
        self.http_port = 0
        self.recovered_records = 0
        self.oracle_feed = None  # adapters.oracle.feed.OracleFeed, unless [oracle] source = none
        self.sequencer_task: asyncio.Task | None = None
        self._tasks: list[asyncio.Task] = []  # everything else stop() cancels
        self._servers: list = []
        self.projections = VenueProjections(self)  # the runner and the SQL read models (venue/projections.py)
        self.hedger = VenueHedging(self)  # [hedging]: a projection on that runner, simulators (venue/hedging.py)

    # -- what gateways use ------------------------------------------------------------------

    async def execute(self, command) -> Outcome:
        """Submit ``command``; its outcome once durable (or an unjournaled refusal)."""
        return await self.sequencer.submit(command)

    @property
    def state(self) -> State:
        return self.sequencer.state

    def market_id(self, symbol: str) -> int | None:
        return self.symbols.index(symbol) if symbol in self.symbols else None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self, *, serve: bool = True) -> None:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        data_dir = Path(self.config.venue.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        journal_config = await asyncio.to_thread(_journal_config, data_dir / JOURNAL_DIR)
        self.engine_config = self.config.engine_config(journal_config)  # an unset setting follows the journal
        recovered = await asyncio.to_thread(recover, data_dir, self.engine_config, fsync_policy=self.config.venue.fsync,
                                            genesis_ts_ns=self.clock())
        self.recovered_records = recovered.records_replayed
        state = recovered.state
        v = self.config.venue
        journal_id = recovered.genesis.journal_id if recovered.genesis is not None else ""
        self.snapshots = (SnapshotWriter(data_dir / SNAPSHOT_DIR, journal_id=journal_id)
                          if v.snapshot_every_commands else None)
        self.hub = Hub(data_dir / JOURNAL_DIR, state.last_seq)
        self.sequencer = Sequencer(
            state, recovered.journal, queue_max=v.queue_max, batch_max=v.batch_max,
            tick_interval_ms=v.tick_interval_ms, snapshots=self.snapshots,
            snapshot_every_commands=v.snapshot_every_commands, clock=self.clock,
            last_ts_ns=_last_ts_ns(data_dir / JOURNAL_DIR, recovered.journal.last_seq),
            on_durable=self._durable)
        for p in views.positions(state):
            self.position_agents.add(p.position_id, p.long_agent, p.short_agent)
        o = state.oracle  # all durable now: recovery replayed only what is on disk
        self.last_prices = {market: (o.price_e8[market], o.conf_e8[market], o.publish_ns[market])
                            for market in range(len(o.price_e8)) if o.publish_ns[market]}
        await self.hedger.start()  # before the runner: it registers the hedger's projection
        await self.projections.start()
        tune_gc()  # off the ack path: what recovery built is frozen, young collections rare
        self.sequencer_task = asyncio.create_task(self.sequencer.run(), name="sequencer")
        if serve:
            await self._serve()
        from venue.oracle import build_feed

        self.oracle_feed = build_feed(self.config, self.symbols, submit_with=self.sequencer.submit_with,
                                      clock=self.clock, last_publish_ns=list(state.oracle.publish_ns),
                                      registry=self.metrics.registry)
        if self.oracle_feed is not None:
            self._tasks.append(asyncio.create_task(self.oracle_feed.run(), name="oracle"))

    async def _serve(self) -> None:
        from adapters.gateway import http, tcp

        tcp_server = await tcp.serve(self)
        self.tcp_port = tcp_server.sockets[0].getsockname()[1]
        self._servers.append(tcp_server)
        http_runner, self.http_port = await http.serve(self)
        self._servers.append(http_runner)

    def _durable(self, executed: list) -> None:
        self.metrics.observe_batch(executed, self.sequencer.last_write_s)
        ended: list[int] = []
        for _, outcome in executed:
            if outcome.events:
                ended += self.position_agents.opened(outcome.events)
            for event in outcome.events:
                if type(event) is ev.OracleUpdated:
                    self.last_prices[event.market] = (event.price_e8, event.conf_e8, event.publish_ns)
        recent = self.projections.recent
        if recent is not None:  # before the hub moves the projections' tail: the window holds it first
            recent.append([outcome.record for _, outcome in executed if outcome.events])
        self.hub.publish(executed)
        self.position_agents.prune(ended)  # after publishing: the batch's own events still find their agents

    def add_task(self, task: asyncio.Task) -> None:
        """A task that ``stop`` cancels (demo agents, status line)."""
        self._tasks.append(task)

    async def stop(self) -> None:
        """Close the doors, drain the sequencer, close the journal."""
        for server in self._servers:
            if hasattr(server, "cleanup"):
                await server.cleanup()
            else:
                server.close()
                await server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.sequencer_task is not None:
            self.sequencer.stop()
            await asyncio.gather(self.sequencer_task, return_exceptions=True)
        await self.projections.stop()  # after the last durable batch: they catch up to it first
        await self.hedger.stop()  # after the runner: the simulators serve its last batch
        if self.sequencer_task is not None:
            self.sequencer.journal.close()
        if self.snapshots:
            self.snapshots.close()


def _journal_config(journal_dir: Path) -> EngineConfig | None:
    """The configuration the journal in ``journal_dir`` was written with; None for a new
    journal (or one from before genesis records, which recovery reports)."""
    if not journal_dir.is_dir() or not list_segments(journal_dir):
        return None
    genesis = read_genesis(journal_dir)
    return None if genesis is None else genesis.config


def _last_ts_ns(journal_dir: Path, last_seq: int) -> int:
    """The newest journaled ts_ns, so a restarted venue never stamps time backwards."""
    last = 0
    # from_seq 0 when no event was journaled yet: the genesis record (seqs 1..0) counts too.
    for _, payload in JournalReader(journal_dir).read(from_seq=last_seq):
        last = max(last, decode_record(payload).ts_ns)
    return last
