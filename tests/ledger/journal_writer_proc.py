"""A writer process for the crash and follow tests.

Usage: python journal_writer_proc.py DIR SEED SEGMENT_BYTES [BATCHES] [DELAY_S]

Opens (recovers) the journal, prints `R <last_cmd_id>`, then appends batches of seeded
random sizes, printing `A <last_cmd_id>` after each append_batch returns (= durable), until
BATCHES batches (default: forever) or killed.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root
sys.path.insert(0, str(Path(__file__).resolve().parent))

from journal_testkit import Records  # noqa: E402

from ledger.journal import Journal  # noqa: E402


def main() -> None:
    directory, seed, segment_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    batches_max = int(sys.argv[4]) if len(sys.argv) > 4 else -1
    delay_s = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    rng = random.Random(seed)
    journal = Journal.open(directory, segment_size_bytes_max=segment_bytes)
    out = sys.stdout
    out.write(f"R {journal.last_cmd_id}\n")
    out.flush()
    records = Records(journal.last_cmd_id, journal.last_seq)
    batches_done = 0
    while batches_done != batches_max:
        journal.append_batch(records.batch(rng.randint(1, 100)))
        out.write(f"A {journal.last_cmd_id}\n")
        out.flush()
        batches_done += 1
        if delay_s:
            time.sleep(delay_s)
    journal.close()


if __name__ == "__main__":
    main()
