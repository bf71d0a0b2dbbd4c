"""The audit trail: every decision, request and response as one JSON line, secrets redacted.

The JSONL file is the durable record; the SQL read model (``audit_sql.py``) is its projection.
Each line is one ``write`` system call (no user-space buffer), so a line is in the file — and
readable by the SQL importer — as soon as ``write`` returns, and a kill -9 leaves whole lines
(a torn tail, possible only on power loss or a full disk, is ended with a newline at the next
open and skipped by readers). ``fsync`` on ``close`` and every ``FSYNC_EVERY_LINES``. A line is
at most ``LINE_BYTES_MAX`` (longer payloads are cut, and say so).

A new file begins with a ``log_opened`` line carrying a random ``log_id``: with the byte offset
of each line it is the key of that line in SQL, so a replaced file never collides with the old
one's rows. ``listener(end_offset)``, when set, is told after every line.

Redaction: any key named like a secret (``secret``, ``signature``, ``apiKey``, ``password``,
``passphrase``, ``X-MBX-APIKEY``, ``OK-ACCESS-*``) has its value replaced, and ``signature=...``
inside URLs or bodies is masked, whatever the nesting.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

LINE_BYTES_MAX = 16 * 1024
FSYNC_EVERY_LINES = 256
SECRET_KEYS = re.compile(r"(secret|signature|apikey|api_key|password|passphrase|x-mbx-apikey|ok-access)", re.I)
SECRET_IN_TEXT = re.compile(r"((?:signature|apiKey|secret)=)[^&\s\"']+", re.I)
REDACTED = "<redacted>"
LOG_OPENED = "log_opened"
LEGACY_LOG_ID = "-"  # a file written before lines had a log id (no log_opened first line)


def redact(value):
    """A copy of ``value`` with secrets masked (dicts, lists, strings, nested)."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return SECRET_IN_TEXT.sub(r"\1" + REDACTED, value)
    return value


def log_id_of(first_line: bytes) -> str:
    """The log id a file's first line declares, or ``LEGACY_LOG_ID``."""
    try:
        record = json.loads(first_line)
    except ValueError:
        return LEGACY_LOG_ID
    if isinstance(record, dict) and record.get("kind") == LOG_OPENED and isinstance(record.get("log_id"), str):
        return record["log_id"]
    return LEGACY_LOG_ID


class AuditLog:
    def __init__(self, path: Path | str | None, clock=time.time) -> None:
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self.listener = None  # called with the end offset of every line written (the SQL importer)
        self.log_id = LEGACY_LOG_ID
        self.offset = 0  # bytes in the file: every line before it is whole
        self._fd: int | None = None
        self._lines = 0
        if self.path is not None:
            self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.offset = os.fstat(self._fd).st_size
        if self.offset == 0:
            self.log_id = secrets.token_hex(8)
            self.write(LOG_OPENED, log_id=self.log_id)
            return
        with open(self.path, "rb") as f:
            self.log_id = log_id_of(f.readline(LINE_BYTES_MAX * 2))
            f.seek(self.offset - 1)
            torn = f.read(1) != b"\n"
        if torn:
            self._append(b"\n")

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # os.write may write less than asked
            view = view[os.write(self._fd, view):]
        self.offset += len(data)

    def write(self, kind: str, **fields) -> None:
        if self._fd is None:
            return
        record = redact({"ts": round(self.clock(), 6), "kind": kind, **fields})
        line = json.dumps(record, default=str, separators=(",", ":"))
        if len(line) > LINE_BYTES_MAX:
            line = json.dumps({"ts": record["ts"], "kind": kind, "truncated": True,
                               "head": line[: LINE_BYTES_MAX // 2]})
        self._append((line + "\n").encode())
        self._lines += 1
        if self._lines % FSYNC_EVERY_LINES == 0:
            os.fsync(self._fd)
        if self.listener is not None:
            self.listener(self.offset)

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
