"""The oracle feed's Prometheus series, registered in the venue's registry (``/metrics``)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily


class OracleMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.registry = r = registry
        self.received = Counter("agentperp_oracle_received", "Prices a source translated", ["source"], registry=r)
        self.dropped = Counter("agentperp_oracle_dropped", "Prices or payloads dropped before the sequencer",
                               ["source", "reason"], registry=r)
        self.submitted = Counter("agentperp_oracle_submitted", "OracleUpdate commands made durable",
                                 ["source"], registry=r)
        self.rejected = Counter("agentperp_oracle_rejected", "OracleUpdate commands the engine rejected",
                                ["source", "code"], registry=r)
        self.source_events = Counter("agentperp_oracle_source_events", "Reconnects, 429s and error events",
                                     ["source", "event"], registry=r)
        self.failovers = Counter("agentperp_oracle_failovers", "Switches of a market's price source",
                                 ["market", "from_source", "to_source", "reason"], registry=r)
        self.in_use = Gauge("agentperp_oracle_source_in_use", "1 for the source each market is priced from",
                            ["market", "source"], registry=r)

    def count_sources(self, source_counts: Callable[[], dict[str, dict[str, dict[str, int]]]]) -> None:
        """Also serve what sources count themselves (``OracleFeed.source_counts``: the CCXT
        median's per exchange), read at each scrape."""
        self.registry.register(_SourceCounts(source_counts))


class _SourceCounts:
    """``agentperp_oracle_exchange_events_total{source, exchange, event}``: a source's own
    counts per exchange (rounds failed, skipped for budget, left out as diverged or stale)."""

    def __init__(self, source_counts: Callable[[], dict[str, dict[str, dict[str, int]]]]) -> None:
        self.source_counts = source_counts

    def collect(self):
        family = CounterMetricFamily("agentperp_oracle_exchange_events",
                                     "Per exchange of a source: rounds failed, skipped, left out",
                                     labels=["source", "exchange", "event"])
        for source, exchanges in self.source_counts().items():
            for exchange, counts in exchanges.items():
                for event, count in counts.items():
                    family.add_metric([source, exchange, event], count)
        yield family
