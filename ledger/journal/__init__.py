"""The durable journal: segment files of frames, group commit, recovery, readers.

A package by responsibility: `segments` (names, listing), `index` (the sparse index and its
side files), `reader` (`JournalReader`: the one frame-reading path), `writer` (`Journal`,
`FileOps`, `FsyncPolicy`), `errors`. Every name is importable from `ledger.journal`.

Layout of a journal directory:

    {first_cmd_id:020d}-{first_seq:020d}.seg   frames (see ledger.codec), in cmd_id order
    {segment}.idx                               sparse index of a closed segment (optional,
                                                rebuildable, one codec frame of msgpack)
    .lock                                       flock'ed by the one writer

A segment is named after its first record's cmd_id and first_seq, so a reader finds the
segment holding a seq from the names alone, and an empty last segment (the writer rolled,
then stopped) still says where the journal ends.

The writer (`Journal`) is single-threaded and single-process (flock). `append_batch` is the
group commit: every frame of the batch is written, then synced according to `FsyncPolicy`;
only when it returns is the batch durable. Any OSError stops the journal for good
(`JournalFailed`). Opening a `Journal` is the recovery of the storage: a torn tail of the
last segment is truncated with a warning, any other damage raises `JournalCorrupt`.

Readers (`JournalReader`) may live in other threads or processes: `read(from_seq)` iterates
what is there, `follow(from_seq)` keeps yielding as the writer appends. Neither ever yields a
frame that is incomplete or fails its crc.

Speed: batches of >= KERNEL_BATCH_RECORDS_MIN records are framed, and read chunks of >=
codec.KERNEL_SCAN_BYTES_MIN bytes are walked, by numba kernels in ledger.codec; the
pure-Python path (msgspec + the crc32c package) is the reference and handles everything the
kernels hand back, and all of it under NUMBA_DISABLE_JIT=1.

The payload contract (owned by the engine's record schema): a msgpack array starting with
`[cmd_id, first_seq, last_seq]`, cmd_id gap-free from 1, seqs gap-free from 1 across records,
`last_seq == first_seq - 1` for a record without events. The writer refuses a batch that
breaks it; readers and recovery treat a break on disk as corruption.
"""

from ledger.journal.errors import JournalCorrupt, JournalError, JournalFailed, JournalLocked
from ledger.journal.index import (INDEX_STRIDE_BYTES_DEFAULT, SparseIndex, index_path, load_index_file,
                                  write_index_file)
from ledger.journal.reader import (FOLLOW_POLL_INTERVAL_S_DEFAULT, INDEXES_CACHED_MAX, READ_CHUNK_BYTES_DEFAULT,
                                   JournalReader, SegmentEnd)
from ledger.journal.segments import (INDEX_SUFFIX, LOCK_NAME, SEGMENT_SIZE_BYTES_DEFAULT, SEGMENT_SIZE_BYTES_MAX,
                                     SEGMENT_SIZE_BYTES_MIN, SEGMENT_SUFFIX, Segment, list_segments, segment_name)
from ledger.journal.writer import KERNEL_BATCH_RECORDS_MIN, FileOps, FsyncPolicy, Journal, RecoveryReport

__all__ = [
    "FOLLOW_POLL_INTERVAL_S_DEFAULT", "INDEXES_CACHED_MAX", "INDEX_STRIDE_BYTES_DEFAULT", "INDEX_SUFFIX", "KERNEL_BATCH_RECORDS_MIN",
    "LOCK_NAME", "READ_CHUNK_BYTES_DEFAULT", "SEGMENT_SIZE_BYTES_DEFAULT", "SEGMENT_SIZE_BYTES_MAX",
    "SEGMENT_SIZE_BYTES_MIN", "SEGMENT_SUFFIX", "FileOps", "FsyncPolicy", "Journal", "JournalCorrupt",
    "JournalError", "JournalFailed", "JournalLocked", "JournalReader", "RecoveryReport", "Segment", "SegmentEnd",
    "SparseIndex", "index_path", "list_segments", "load_index_file", "segment_name", "write_index_file",
]
