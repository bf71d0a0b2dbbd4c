"""Point numba's on-disk cache at a folder named after the kernels' sources.

numba invalidates a cached kernel only when the kernel's own file changes, not when a
function it inlines (``engine/risk/formulas.py``) does: a stale cache would silently run
old money rules. Keying the cache folder on a hash of every source the kernels compile
makes any change start a fresh cache. Call ``configure()`` before ``numba`` is imported.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
KERNEL_SOURCES = ("risk/formulas.py", "units.py", "state.py", "kernels/*.py")  # what kernels compile in


def sources_digest() -> str:
    digest = hashlib.blake2b(digest_size=8)
    for pattern in KERNEL_SOURCES:
        for path in sorted(ENGINE.glob(pattern)):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def configure() -> None:
    """Set NUMBA_CACHE_DIR (unless the user chose one) to a folder per kernel-source hash."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentperp" / "numba"
        os.environ["NUMBA_CACHE_DIR"] = str(base / sources_digest())
