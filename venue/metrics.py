"""The venue's Prometheus metrics (served at ``/metrics``): its own registry, so tests and
several venues in one process never share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter("agentperp_commands", "Commands sequenced and durable", registry=r)
        self.rejections = Counter("agentperp_rejections", "Commands the engine rejected", ["code"], registry=r)
        self.events = Counter("agentperp_events", "Events journaled", registry=r)
        self.batch_size = Histogram("agentperp_batch_size_commands", "Commands per group commit", registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096))
        self.write_seconds = Histogram("agentperp_journal_write_seconds", "Write + fsync of one batch", registry=r,
                                       buckets=(1e-4, 2.5e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1.0))
        self.queue_depth = Gauge("agentperp_queue_depth_commands", "Commands waiting for the sequencer", registry=r)
        self.open_interest = Gauge("agentperp_open_interest_usdc", "Sum of the open size of every position",
                                   registry=r)
        self.open_positions = Gauge("agentperp_open_positions", "Open positions", registry=r)
        self.connections = Gauge("agentperp_connections", "Open agent connections (TCP and WebSocket)", registry=r)
        self.commands_per_s = Gauge("agentperp_commands_per_second", "Commands per second, last interval",
                                    registry=r)

    def observe_batch(self, executed: list, write_s: float) -> None:
        self.commands.inc(len(executed))
        self.batch_size.observe(len(executed))
        self.write_seconds.observe(write_s)
        rejected: dict[str, int] = {}
        events = 0
        for _, outcome in executed:  # counted per batch: a labelled inc costs microseconds
            if outcome.rejection is not None:
                code = outcome.rejection.code
                rejected[code] = rejected.get(code, 0) + 1
            else:
                events += len(outcome.events)
        self.events.inc(events)
        for code, count in rejected.items():
            self.rejections.labels(code).inc(count)
