"""What every price source (Pyth, recorded, synthetic) hands its prices to.

A source is an object with a ``name`` and ``async run(sink)`` that runs until cancelled,
reconnecting by itself; it calls ``sink.update`` with each ``OracleUpdate`` it has
translated, ``sink.drop`` with what it refused and why, and ``sink.note`` with what
happened to its connection (``reconnect``, ``rate_limited``, ``error_event``). The feed
(``adapters/oracle/feed.py``) is the sink: it screens, chooses and submits. A source may
also have ``status() -> dict`` (JSON-able, bounded): the feed's status shows it in ``/health``
under ``oracle.sources.<name>`` (the CCXT median's per-exchange counts).
"""

from __future__ import annotations

from typing import Protocol

from engine.commands import OracleUpdate


class Sink(Protocol):
    def update(self, update: OracleUpdate) -> None: ...

    def drop(self, reason: str, detail: str) -> None: ...

    def note(self, what: str, detail: str = "") -> None: ...


class Source(Protocol):
    name: str

    async def run(self, sink: Sink) -> None: ...
