"""The audit trail: every decision, request and response as one JSON line, secrets redacted.

Lines are appended and flushed as they come (``fsync`` on ``close`` and every
``FSYNC_EVERY_LINES``); a line is at most ``LINE_BYTES_MAX`` (longer payloads are cut, and
say so). Redaction: any key named like a secret (``secret``, ``signature``, ``apiKey``,
``password``, ``passphrase``, ``X-MBX-APIKEY``, ``OK-ACCESS-*``) has its value replaced, and
``signature=...`` inside URLs or bodies is masked, whatever the nesting.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

LINE_BYTES_MAX = 16 * 1024
FSYNC_EVERY_LINES = 256
SECRET_KEYS = re.compile(r"(secret|signature|apikey|api_key|password|passphrase|x-mbx-apikey|ok-access)", re.I)
SECRET_IN_TEXT = re.compile(r"((?:signature|apiKey|secret)=)[^&\s\"']+", re.I)
REDACTED = "<redacted>"


def redact(value):
    """A copy of ``value`` with secrets masked (dicts, lists, strings, nested)."""
    if isinstance(value, dict):
        return {k: (REDACTED if SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return SECRET_IN_TEXT.sub(r"\1" + REDACTED, value)
    return value


class AuditLog:
    def __init__(self, path: Path | str | None, clock=time.time) -> None:
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self._file = None
        self._lines = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")

    def write(self, kind: str, **fields) -> None:
        if self._file is None:
            return
        record = redact({"ts": round(self.clock(), 6), "kind": kind, **fields})
        line = json.dumps(record, default=str, separators=(",", ":"))
        if len(line) > LINE_BYTES_MAX:
            line = json.dumps({"ts": record["ts"], "kind": kind, "truncated": True,
                               "head": line[: LINE_BYTES_MAX // 2]})
        self._file.write(line + "\n")
        self._file.flush()
        self._lines += 1
        if self._lines % FSYNC_EVERY_LINES == 0:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
