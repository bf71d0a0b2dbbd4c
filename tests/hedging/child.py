"""A hedger process for the kill -9 tests: ``python -m tests.hedging.child JOURNAL STATE_DIR URL``.

Starts (reconciling with the exchange), hedges the whole journal from its checkpoint, exits 0.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from adapters.hedging.hedger import Hedger
from tests.hedging import support as s


async def main(journal: Path, state_dir: Path, url: str) -> int:
    hedger = Hedger(s.config(state_dir, {"a": url}))
    await hedger.start()
    try:
        for batch in s.batches(journal, hedger.position + 1):
            await hedger.handle(batch)
    finally:
        await hedger.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])))
