"""The writer process of the snapshot crash test: the venue's own sequencer and snapshot
writer over a real journal whose disk stops, on demand, before a batch reaches it.

Usage: python -m tests.recovery.snapshot_crash_writer DATA_DIR

Phase 1 journals ``DURABLE`` deposits one by one (durable; snapshots fall due among them).
Then the fault seam (``StallingOps``, the journal's ``FileOps``) is armed and ``STALLED``
deposits are offered at once: they form one batch, in which a snapshot falls due, and the
write of that batch never returns — nothing of it reaches the disk. Once the snapshot writer
is idle (whatever it was given is on disk) the process prints ``stalled`` and waits to be
SIGKILLed: the moment between a snapshot write and its batch's fsync.
"""

import asyncio
import sys
import threading
from pathlib import Path

from ledger import compiled

compiled.prepare()

from engine import commands as c  # noqa: E402
from ledger.journal import FileOps  # noqa: E402
from ledger.recovery import SNAPSHOT_DIR, recover  # noqa: E402
from ledger.snapshots import SnapshotWriter  # noqa: E402
from tests.recovery import session  # noqa: E402
from tests.support import FakeClock  # noqa: E402
from venue.sequencer import Sequencer  # noqa: E402

USDC = 1_000_000
DURABLE = 120  # cmd_ids 2..121 (cmd_id 1 is the genesis)
STALLED = 40  # cmd_ids 122..161: one batch, holding the snapshot due at cmd_id 150
SNAPSHOT_EVERY = 50


class StallingOps(FileOps):
    """Real file calls; once ``armed``, a write sets ``reached`` and never returns, before
    writing a byte (a disk that stops: the batch never reaches it)."""

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.reached = threading.Event()
        self._never = threading.Event()

    def write(self, fd, data):
        if self.armed.is_set():
            self.reached.set()
            self._never.wait()
        return super().write(fd, data)


def deposit(i: int) -> c.Deposit:
    return c.Deposit(f"agent{i % 7}", (i + 1) * USDC, f"dep-{i}")


async def main(data_dir: Path) -> None:
    ops = StallingOps()
    clock = FakeClock()
    recovered = recover(data_dir, session.CONFIG, genesis_ts_ns=clock(), ops=ops)
    writer = SnapshotWriter(data_dir / SNAPSHOT_DIR, journal_id=recovered.genesis.journal_id)
    sequencer = Sequencer(recovered.state, recovered.journal, queue_max=1_000, batch_max=1_000,
                          tick_interval_ms=3_600_000, snapshots=writer, snapshot_every_commands=SNAPSHOT_EVERY,
                          clock=clock)
    task = asyncio.create_task(sequencer.run())
    for i in range(DURABLE):
        assert (await sequencer.submit(deposit(i))).rejection is None
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, writer.wait_written)
    ops.armed.set()
    for i in range(DURABLE, DURABLE + STALLED):  # offered at once: one batch
        sequencer.submit(deposit(i))
    await loop.run_in_executor(None, ops.reached.wait)
    await loop.run_in_executor(None, writer.wait_written)  # any snapshot it was handed is on disk
    sys.stdout.write(f"stalled {recovered.journal.last_cmd_id}\n")
    sys.stdout.flush()
    await task  # never ends: the journal thread is stuck in the write; the test kills us


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
