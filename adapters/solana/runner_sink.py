"""The settlement projection on the projection runner (``ledger/projections``): an external
sink. ``SettlementSink`` adapts ``SettlementProjection`` (unchanged: its own idempotency —
the seq carried by every venue-signed instruction, the pending-signature record — and its
own checkpoint file) to the runner's contract, so settlement gets the runner's batching,
live tail, retry at the same seq with backoff, and lag in /health and /metrics.

The Solana backends are asyncio; the runner calls sinks from its threads, so the sink owns a
private loop (``LoopThread``) and the backend lives on it alone.
"""

from __future__ import annotations

from adapters.solana.projection import SettlementProjection
from ledger.projections.external import LoopThread
from ledger.records import JournalRecord

SETTLE_BATCH_TIMEOUT_S = 300.0  # one batch of events settled on chain, at most, before it counts as failed
# How long a part batch waits for more events (``Runner._coalesce``): each batch costs the
# venue's loop two hand-offs to the runner's thread and one to the chain's, whatever its size,
# and a chain settles in slots of ~400 ms anyway.
SETTLE_COALESCE_S = 0.02


class SettlementSink:
    def __init__(self, projection: SettlementProjection, *, name: str = "settlement") -> None:
        self.name = name
        self.projection = projection
        self.loop = LoopThread(f"{name}-sink")
        self.coalesce_s = SETTLE_COALESCE_S

    def load_checkpoint(self) -> int:
        """The checkpoint after ``start()``: voided on another chain, a pending send resolved."""
        if self.projection.checkpoint is None:
            self.loop.call(self.projection.start(), SETTLE_BATCH_TIMEOUT_S)
        return self.projection.checkpoint.seq

    def recover(self) -> None:
        self.projection.checkpoint = None  # the next call starts again from the file and the chain

    def apply(self, records: list[JournalRecord], after_seq: int) -> int:
        if self.projection.checkpoint is None:
            self.load_checkpoint()
        return self.loop.call(self._settle(records, after_seq), SETTLE_BATCH_TIMEOUT_S)

    async def _settle(self, records: list[JournalRecord], after_seq: int) -> int:
        projection = self.projection
        await projection.settle_all([event for record in records for event in record.events if event.seq > after_seq])
        projection.store.save(projection.checkpoint)  # durable after the chain has the batch
        return projection.checkpoint.seq

    def close(self) -> None:
        self.loop.close()
        self.projection.store.close()
