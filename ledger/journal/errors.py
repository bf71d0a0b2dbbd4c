"""The journal's errors: corruption (refuse to guess), a failed writer (fail-stop), a held lock."""

from __future__ import annotations

from pathlib import Path


class JournalError(Exception):
    """Base of the journal's errors."""


class JournalCorrupt(JournalError):
    """Damage that no crash explains: the journal refuses to guess.

    Carries the segment `path`, the byte `offset` of the bad frame and a `hint` for ops.
    """

    def __init__(self, path: Path | str, offset: int, reason: str, hint: str = "") -> None:
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        self.hint = hint or (
            "restore this segment from a replica or backup; do not delete records by hand"
        )
        super().__init__(f"journal corrupt: {self.path} at offset {offset}: {reason} ({self.hint})")


class JournalFailed(JournalError):
    """The writer hit an I/O error and stopped (fail-stop). Restart to recover from disk."""


class JournalLocked(JournalError):
    """Another writer holds the journal directory."""
