"""The oracle feed's Prometheus series, registered in the venue's registry (``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class OracleMetrics:
    def __init__(self, registry: CollectorRegistry):
        r = registry
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
