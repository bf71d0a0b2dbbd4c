"""What can go wrong when opening or reading a journal, as exceptions the CLI turns into one
clear line and a non-zero exit (a divergence found by ``verify`` is a result, not an error)."""

from __future__ import annotations

from pathlib import Path


class ReplayError(Exception):
    """Base of the replay toolkit's errors."""


class NotAJournal(ReplayError):
    """The path is neither a journal directory nor a data directory holding ``journal/``."""

    def __init__(self, path: Path | str, why: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path} is not an agentperp journal: {why}")


class JournalDamaged(ReplayError):
    """The journal's bytes are damaged (``ledger.journal.JournalCorrupt``) or a record's crc
    checks out but its body does not decode. Carries the segment ``path`` and ``offset``
    when the ledger knows them, else the record's ``cmd_id``."""

    def __init__(self, message: str, path: Path | str | None = None, offset: int | None = None,
                 cmd_id: int | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.offset = offset
        self.cmd_id = cmd_id
        super().__init__(message)


class JournalTooNew(ReplayError):
    """A record uses a tag this version does not know: the journal was written by a newer
    agentperp. ``tag`` names it; ``cmd_id`` and ``path`` say where."""

    def __init__(self, tag: str, where: str, cmd_id: int, path: Path | None) -> None:
        self.tag = tag
        self.cmd_id = cmd_id
        self.path = path
        super().__init__(f"record cmd_id {cmd_id} ({path.name if path else '?'}) has {where} tag {tag!r}, "
                         f"unknown to this version: the journal was written by a newer agentperp; "
                         f"upgrade to read it")


class BadOverride(ReplayError):
    """A ``--set KEY=VALUE`` that names no parameter or gives an invalid value."""


class ConfigMismatch(ReplayError):
    """A configuration was given for a journal that carries its own (its genesis record)
    and they differ; the message lists every difference (``ledger.genesis.ConfigChanged``)."""
