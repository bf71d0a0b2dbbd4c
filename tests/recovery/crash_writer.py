"""The writer process of the crash test: runs a seeded session into DATA_DIR and prints
the last cmd_id of every durable batch (what the venue would have acknowledged)."""

import sys
from pathlib import Path

from ledger import compiled

compiled.prepare()

from tests.recovery import session  # noqa: E402


def main() -> None:
    data_dir, rounds = Path(sys.argv[1]), int(sys.argv[2])
    mix = session.commands(rounds)

    def acknowledge(cmd_id: int) -> None:
        sys.stdout.write(f"{cmd_id}\n")
        sys.stdout.flush()

    session.write(data_dir, mix, batch_size=20, snapshot_every=250, on_durable=acknowledge)
    sys.stdout.write("done\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
