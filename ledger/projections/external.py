"""External sinks (the chain, exchanges): a durable checkpoint and idempotency keys.

An external system cannot join our transaction, so exactly-once becomes *at-least-once
delivery + idempotent actions*: every action carries a key derived from the journal seq
(``idempotency_key``), the outside deduplicates by it (a client order id, a memo, a
``Nats-Msg-Id``), and the checkpoint is written durably after the outside acknowledged the
batch. After a crash the batch since the checkpoint is sent again with the same keys.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from ledger.files import replace_durably

FORMAT_VERSION = 1
# The projections' files in a venue's data directory.
SQLITE_FILE = "read_model.sqlite"  # the SQL read models' embedded default
JETSTREAM_CHECKPOINT_FILE = "jetstream.checkpoint"  # the JetStream publisher's checkpoint
LOOP_CALL_TIMEOUT_S = 30.0  # one call onto a sink's private loop, at most


def idempotency_key(projection: str, seq: int, index: int = 0) -> str:
    """The key of action ``index`` caused by event ``seq`` in ``projection`` (stable across
    restarts and rebuilds)."""
    return f"{projection}:{seq}:{index}"


class FileCheckpoint:
    """The last seq a sink made durable outside, in one small JSON file replaced atomically
    (temp file, fsync, rename, fsync of the directory): a crash leaves the old or the new."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> int:
        if not self.path.exists():
            return 0
        data = json.loads(self.path.read_text())
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"{self.path}: checkpoint format {data.get('version')}, expected {FORMAT_VERSION}")
        return int(data["seq"])

    def save(self, seq: int) -> None:
        replace_durably(self.path, json.dumps({"version": FORMAT_VERSION, "seq": seq}).encode())


class LoopThread:
    """A private asyncio loop in a daemon thread, for sinks whose client is asyncio (nats-py,
    the Solana backends) while the runner calls them from its worker threads."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coroutine, timeout_s: float | None = LOOP_CALL_TIMEOUT_S):
        """Run ``coroutine`` on the loop and return its result (or raise its error)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(LOOP_CALL_TIMEOUT_S)
        self.loop.close()
