"""The venue's projections: the runner on the venue's loop, fed by the hub's durable batches,
with the SQL read models on by default (``[projections]`` in docs/config.md).

``VenueProjections`` is what the rest of the venue holds: ``start``/``stop``, ``summary()``
for ``/health``, a Prometheus collector for ``/metrics``, ``status_text()`` for the status
line, and ``read(fn, ...)`` to run a read-model query off the loop (the HTTP history reads).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ledger.projections.external import JETSTREAM_CHECKPOINT_FILE, SQLITE_FILE
from ledger.projections.process import ProjectionProcess
from ledger.projections.runner import HubTail, RetryPolicy, Runner, StatusBoard
from ledger.projections.source import JournalSource, RecentRecords, RecentSource
from ledger.recovery import JOURNAL_DIR

SQL_NAME = "sql"
# ``sql_process = "auto"`` runs the SQL read models in their own process from this many cores
# up: with a second core the child runs beside the venue instead of between its acks
# (docs/projections.md: 2 quiet cores, own process 1.13-1.27x the throughput, 1.3-1.9x
# better ack p99; on one core it could only take turns with the venue).
SQL_PROCESS_CORES_MIN = 2
STOP_CATCH_UP_S_MAX = 5.0  # at stop, projections get this long to reach the last durable seq


def sql_url(config) -> str:
    """The read models' database: ``projections.sql_url``, or the SQLite file in the data dir."""
    url = config.projections.sql_url
    if url:
        return url
    return f"sqlite:///{(Path(config.venue.data_dir) / SQLITE_FILE).resolve()}"


def sql_in_own_process(setting: str, cores: int | None = None) -> bool:
    """``[projections] sql_process``: "on", "off", or "auto" (by the machine's cores)."""
    if setting == "auto":
        return (cores or os.cpu_count() or 1) >= SQL_PROCESS_CORES_MIN
    return setting == "on"


class VenueProjections:
    def __init__(self, venue) -> None:
        self.venue = venue
        self.config = venue.config.projections
        self.sql = None  # the SqlProjection (its engine also serves the reads)
        # The SQL read models' own process (projections.sql_process): the venue's SqlProjection
        # then only migrates and serves reads; the child writes.
        self.sql_process: ProjectionProcess | None = None
        self.publisher = None  # the JetStream publisher, when projections.nats_url is set
        self.runner: Runner | None = None
        # The newest durable records, fed by the venue after each group commit: what the live
        # projections read instead of the journal they were just written to (None: no runner).
        self.recent: RecentRecords | None = None
        self.settlement = None  # venue.settlement.VenueSettlement, unless [settlement] backend = none
        self.settlement_backend_cls = None  # tests: a LiteSVM backend with faults

    @property
    def enabled(self) -> bool:
        return self.runner is not None or self.sql_process is not None

    def _retry(self) -> RetryPolicy:
        return RetryPolicy(backoff_s_min=self.config.retry_backoff_s_min, backoff_s_max=self.config.retry_backoff_s_max)

    async def start(self) -> None:
        projections = []
        if self.config.sql:
            from ledger.projections.sql.model import SqlProjection

            url = sql_url(self.venue.config)
            # Opening migrates the schema to the newest revision (alembic): off the loop.
            self.sql = await asyncio.to_thread(SqlProjection, url, symbols=self.venue.symbols, name=SQL_NAME,
                                               coalesce_s=self.config.sql_coalesce_ms / 1000)
            if sql_in_own_process(self.config.sql_process):
                await self._start_sql_process(url)
            else:
                projections.append(self.sql)
        if self.config.nats_url:
            from adapters.stream.jetstream import JetStreamPublisher

            data_dir = Path(self.venue.config.venue.data_dir)
            self.publisher = JetStreamPublisher(self.config.nats_url, data_dir / JETSTREAM_CHECKPOINT_FILE,
                                                data_dir / JOURNAL_DIR)
            projections.append(self.publisher)
        if self.venue.config.settlement.backend != "none":  # issue 13: the escrow live, first in the list
            from venue.settlement import VenueSettlement

            self.settlement = VenueSettlement(self.venue)
            if self.settlement_backend_cls is not None:
                self.settlement.backend_cls = self.settlement_backend_cls
            projections.insert(0, await self.settlement.start())
        hedging = getattr(self.venue, "hedger", None)  # [hedging] (venue/hedging.py)
        if hedging is not None and hedging.sink is not None:
            projections.append(hedging.sink)
        if not projections and self.sql_process is None:
            return
        self.venue.metrics.registry.register(_LagCollector(self))
        if self.settlement is not None:
            self.venue.metrics.registry.register(_SettlementCollector(self.settlement))
        if not projections:
            return
        journal_dir = Path(self.venue.config.venue.data_dir) / JOURNAL_DIR
        self.recent = recent = RecentRecords()
        self.runner = Runner(journal_dir, projections,
                             tail=HubTail(self.venue.hub, self.venue.sequencer.last_ts_ns),
                             batch_events=self.config.batch_events, retry=self._retry(),
                             source=lambda: RecentSource(recent, JournalSource(journal_dir)))
        await self.runner.start()

    async def _start_sql_process(self, url: str) -> None:
        spec = {"kind": "sql", "name": SQL_NAME, "url": url, "symbols": list(self.venue.symbols),
                "journal_dir": str(Path(self.venue.config.venue.data_dir) / JOURNAL_DIR),
                "batch_events": self.config.batch_events, "coalesce_s": self.config.sql_coalesce_ms / 1000,
                "retry": asdict(self._retry())}
        self.sql_process = ProjectionProcess(spec, self.venue.hub, self.venue.sequencer.last_ts_ns)
        await self.sql_process.start()

    def board(self, name: str) -> StatusBoard:
        """Where projection ``name``'s status lives: its process, or the venue's runner."""
        if self.sql_process is not None and name == self.sql_process.name:
            return self.sql_process
        return self.runner

    async def wait_for_seq(self, name: str, seq: int) -> None:
        """Return once projection ``name`` applied every event up to ``seq`` (tests, tools)."""
        await self.board(name).wait_for_seq(name, seq)

    async def stop(self) -> None:
        """Let every projection reach the last durable seq (bounded), then stop them."""
        if self.sql_process is not None:
            await self.sql_process.stop(self.venue.hub.last_seq, STOP_CATCH_UP_S_MAX)
        if self.runner is not None:
            runner, last_seq = self.runner, self.venue.hub.last_seq
            healthy = all(status.retry_attempt == 0 for status in runner.status.values())
            if healthy:
                try:
                    await asyncio.wait_for(runner.until(
                        lambda: all(status.seq >= last_seq for status in runner.status.values())),
                        STOP_CATCH_UP_S_MAX)
                except TimeoutError:
                    pass  # they resume from their checkpoints at the next start
            await runner.stop()
        if self.sql is not None:
            self.sql.close()
        if self.publisher is not None:
            self.publisher.close()
        if self.settlement is not None:
            await self.settlement.stop()

    def summary(self) -> list[dict]:
        items = self.sql_process.summary() if self.sql_process is not None else []
        for item in self.runner.summary() if self.runner is not None else []:
            items.append(item)
            source = self.runner.sources[item["name"]]  # a RecentSource: where its batches came from
            item["batches_from_memory"], item["batches_from_journal"] = (source.batches_from_memory,
                                                                         source.batches_from_journal)
            if self.settlement is not None and item["name"] == self.settlement.sink.name:
                item.update(self.settlement.figures())
        return items

    def status_text(self) -> str:
        """``sql lag 0`` (seqs behind) for the status line; ``RETRYING`` when a batch fails;
        the chain's settlement first, as its own field."""
        if not self.enabled:
            return ""
        chain, parts = "", []
        for item in self.summary():
            text = f"{item['name']} lag {item['lag_seq']:,}"
            settlement = self.settlement is not None and item["name"] == self.settlement.sink.name
            if settlement:
                text += f" ({item['lag_s']:.1f} s, {self.settlement.figures()['settled_events']:,} settled)"
            if item["state"] == "retrying":
                text += f" RETRYING@{item['failing_seq']}"
                if settlement:
                    text += f": {item['last_error'][:120]}"
            elif item["state"] == "ahead_of_journal":
                text = f"{item['name']} STOPPED: ahead of the journal (rebuild it)"
            if settlement:
                chain = text
            else:
                parts.append(text)
        return " | ".join(part for part in (chain, ", ".join(parts)) if part)

    async def read(self, fn, *args, **kwargs):
        """``fn(connection, *args, **kwargs)`` on the read models, in a worker thread."""
        def run():
            with self.sql.engine.connect() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(run)


class _LagCollector:
    """Per-projection figures for /metrics, read from the venue's projections at scrape time."""

    def __init__(self, projections: VenueProjections) -> None:
        self.projections = projections

    def collect(self):
        seq = GaugeMetricFamily("agentperp_projection_seq", "Last seq a projection applied (its checkpoint)",
                                labels=["projection"])
        lag_seq = GaugeMetricFamily("agentperp_projection_lag_seq", "Seqs a projection is behind the durable journal",
                                    labels=["projection"])
        lag_s = GaugeMetricFamily("agentperp_projection_lag_seconds",
                                  "Journal time between a projection's checkpoint and the durable tail",
                                  labels=["projection"])
        failures = CounterMetricFamily("agentperp_projection_failures", "Failed batch attempts (each retried)",
                                       labels=["projection"])
        for item in self.projections.summary():
            name = [item["name"]]
            seq.add_metric(name, item["seq"])
            lag_seq.add_metric(name, item["lag_seq"])
            lag_s.add_metric(name, item["lag_s"])
            failures.add_metric(name, item["failures"])
        yield from (seq, lag_seq, lag_s, failures)


class _SettlementCollector:
    """The settlement's own counts for /metrics (its lag is the runner's, above)."""

    def __init__(self, settlement) -> None:
        self.settlement = settlement

    def collect(self):
        figures = self.settlement.figures()
        for key, help_text in (("settled_events", "Journal events settled on chain (with at least one transaction)"),
                               ("transactions", "Settlement transactions sent"),
                               ("unmirrored", "Events the chain cannot express (recorded, see reconcile)"),
                               ("deposits_seen", "On-chain deposits the watcher turned into Deposit commands")):
            family = CounterMetricFamily(f"agentperp_settlement_{key}", help_text)
            family.add_metric([], figures[key])
            yield family
