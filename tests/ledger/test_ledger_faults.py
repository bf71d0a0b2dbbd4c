"""Write failures: ENOSPC / EIO on write and on fsync stop the journal (fail-stop), and
what survives on disk is exactly what append_batch returned for."""

from __future__ import annotations

import errno
import os

import pytest
from journal_testkit import Records, assert_intact

from ledger.journal import FileOps, FsyncPolicy, Journal, JournalFailed, JournalReader

SEGMENT_BYTES = 32 * 1024


class FaultyOps(FileOps):
    """Real file calls, except that an armed operation raises OSError(errno).

    `after_calls` lets that many calls of the operation succeed first; `partial_write`
    makes the failing write first write half of its buffer (as a full disk does).
    `sticky` keeps failing every later call of every operation (a dead disk).
    """

    def __init__(self) -> None:
        self.armed: dict[str, tuple[int, int]] = {}
        self.partial_write = False
        self.sticky = False
        self.tripped = False

    def arm(self, operation: str, error: int, after_calls: int = 0) -> None:
        self.armed[operation] = (error, after_calls)

    def _maybe_fail(self, operation: str) -> None:
        if self.tripped and self.sticky:
            raise OSError(errno.EIO, f"injected sticky failure in {operation}")
        if operation not in self.armed:
            return
        error, after_calls = self.armed[operation]
        if after_calls > 0:
            self.armed[operation] = (error, after_calls - 1)
            return
        del self.armed[operation]
        self.tripped = True
        raise OSError(error, f"injected {errno.errorcode[error]} in {operation}")

    def write(self, fd, data):
        if self.partial_write and "write" in self.armed and self.armed["write"][1] == 0:
            written = os.write(fd, data[: max(len(data) // 2, 1)])
            self.partial_write = False
            if written < len(data):
                return written  # the journal loops; the next call fails
        self._maybe_fail("write")
        return super().write(fd, data)

    def fsync(self, fd):
        self._maybe_fail("fsync")
        super().fsync(fd)

    def fsync_dir(self, path):
        self._maybe_fail("fsync_dir")
        super().fsync_dir(path)

    def open(self, path, flags, mode=0o644):
        self._maybe_fail("open")
        return super().open(path, flags, mode)

    def ftruncate(self, fd, size_bytes):
        self._maybe_fail("ftruncate")
        super().ftruncate(fd, size_bytes)


def run_until_failure(directory, ops, policy=FsyncPolicy.BATCH, batches=20, batch_size=25):
    """Append batches until one fails; return (journal, last acknowledged cmd_id)."""
    journal = Journal.open(directory, fsync_policy=policy, segment_size_bytes_max=SEGMENT_BYTES,
                           ops=ops)
    records = Records()
    acked = 0
    for _ in range(batches):
        batch = records.batch(batch_size)
        try:
            journal.append_batch(batch)
        except JournalFailed:
            break
        acked = journal.last_cmd_id
    else:
        pytest.fail("the injected fault never fired")
    return journal, acked


def assert_fail_stop(journal, acked):
    assert journal.failed is not None
    assert journal.last_cmd_id == acked
    with pytest.raises(JournalFailed, match="stopped"):
        journal.append_batch(Records(acked, journal.last_seq).batch(1))
    journal.close()


def reopened_records(directory):
    journal = Journal.open(directory, segment_size_bytes_max=SEGMENT_BYTES)
    last = journal.last_cmd_id
    journal.append_batch(Records(last, journal.last_seq).batch(2))  # and appending continues
    journal.close()
    records = list(JournalReader(directory).read(1))
    assert_intact(records, last + 2)
    return last


@pytest.mark.parametrize("operation", ["write", "fsync"])
@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("policy", [FsyncPolicy.BATCH, FsyncPolicy.ALWAYS])
def test_fault_stops_the_journal_and_keeps_exactly_the_acked_prefix(tmp_path, operation, error,
                                                                   policy):
    ops = FaultyOps()
    # Let some batches through (several segments' worth), then fail mid-batch.
    ops.arm(operation, error, after_calls=12 if policy is FsyncPolicy.BATCH else 310)
    ops.partial_write = operation == "write"
    journal, acked = run_until_failure(tmp_path / "j", ops, policy)
    assert acked > 0
    assert errno.errorcode[error] in str(journal.failed)
    assert_fail_stop(journal, acked)
    assert reopened_records(tmp_path / "j") == acked


def test_failure_creating_a_segment_stops_the_journal(tmp_path):
    ops = FaultyOps()
    ops.arm("fsync_dir", errno.EIO, after_calls=2)  # the third segment's directory sync
    journal, acked = run_until_failure(tmp_path / "j", ops)
    assert_fail_stop(journal, acked)
    assert reopened_records(tmp_path / "j") == acked


def test_dead_disk_still_never_loses_or_invents_acked_records(tmp_path):
    # The rollback cannot cut the failed batch either: recovery may then find some of its
    # records (never acknowledged, so harmless) but never loses an acknowledged one.
    ops = FaultyOps()
    ops.arm("fsync", errno.EIO, after_calls=5)
    ops.sticky = True
    journal, acked = run_until_failure(tmp_path / "j", ops)
    assert_fail_stop(journal, acked)
    assert reopened_records(tmp_path / "j") >= acked


def test_open_failure_is_reported_not_swallowed(tmp_path):
    ops = FaultyOps()
    ops.arm("open", errno.EACCES)
    with pytest.raises(OSError):
        Journal.open(tmp_path / "j", ops=ops)
    Journal.open(tmp_path / "j").close()  # the lock was released
