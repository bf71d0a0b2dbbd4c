"""Small files written so that a crash leaves either the old or the new contents: checkpoints,
snapshots, state and key files of every projection and edge (one definition, used by all)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically and durably: a temporary file beside it, fsynced,
    renamed over it, then the directory fsynced (the rename itself survives a crash)."""
    _replace(path, data, mode, durable=True)


def replace_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically, not durably: a reader (or a crashed process)
    sees the old contents or the new, but after a power loss either may be there. For files
    whose loss costs nothing (two fsyncs saved: they queue behind the journal's on one disk)."""
    _replace(path, data, mode, durable=False)


def _replace(path: Path, data: bytes, mode: int, *, durable: bool) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
