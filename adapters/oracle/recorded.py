"""The recorded feed: a file of prices replayed at their recorded pace (demos, backtests,
incident replays), and the recorder that writes one from any source.

Format: JSON Lines, one price per line, in publish order per market::

    {"market": "BTC-PERP", "price_e8": 6500012345678, "conf_e8": 1234567, "publish_ns": 1767250800000000000,
     "source": "pyth:e62df6c8..."}

``market`` is the symbol (ids depend on a venue's configuration); ``source`` is the
recorded provenance. Replay keeps the recorded gaps between lines divided by ``speed``
and, by default, publishes each line at the time it is replayed (``rebase``): the first at
the replay's start, each next one its recorded gap / ``speed`` later — so the engine's
staleness guards see a live feed; without ``rebase`` the recorded publish times are kept. The replayed source is ``recorded:<recorded source>``. A line
that does not parse or names a market this venue does not have is dropped with its line
number (one that goes back in time, by the feed's screen); the replay goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO

import msgspec

from adapters.oracle.source import Sink
from engine.commands import OracleUpdate
from engine.units import FEED_ID_LEN_MAX, NS_PER_S, SOURCE_NAME_LEN_MAX, SOURCES_MAX

log = logging.getLogger("agentperp.oracle.recorded")

SOURCE = "recorded"
LINE_BYTES_MAX = 4_096
SOURCE_LEN_MAX = 128
MALFORMED = "malformed"
UNKNOWN_MARKET = "unknown_market"


class RecordedUpdate(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True, omit_defaults=True):
    market: str
    price_e8: int
    conf_e8: int
    publish_ns: int
    source: str
    # Provenance (OracleUpdate's appended fields), written only when set: a line without
    # them reads as before, and files written before them still read.
    feed_id: str = ""
    sources: list[str] = []
    spread_bps: int = 0
    ema_price_e8: int = 0


_DECODER = msgspec.json.Decoder(RecordedUpdate)
_ENCODER = msgspec.json.Encoder()


def encode_line(update: RecordedUpdate) -> bytes:
    return _ENCODER.encode(update) + b"\n"


def read_lines(file: IO[bytes]) -> Iterator[tuple[int, RecordedUpdate | str]]:
    """(line number, the update or why the line is not one)."""
    for number, raw in enumerate(file, start=1):
        if not raw.strip():
            continue
        if len(raw) > LINE_BYTES_MAX:
            yield number, f"line above {LINE_BYTES_MAX} bytes"
            continue
        try:
            line = _DECODER.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            yield number, str(error)[:200]
            continue
        if len(line.source) > SOURCE_LEN_MAX or line.publish_ns <= 0:
            yield number, "source too long or publish_ns not positive"
            continue
        if len(line.feed_id) > FEED_ID_LEN_MAX or len(line.sources) > SOURCES_MAX or \
                any(not 1 <= len(name) <= SOURCE_NAME_LEN_MAX for name in line.sources):
            yield number, "feed_id or sources beyond the engine's bounds"
            continue
        yield number, line


class RecordedSource:
    """Replay ``path`` (see the module's docstring); ``loop``: start over at the end."""

    name = SOURCE

    def __init__(self, path: str | Path, symbols: list[str], *, speed: float = 1.0, rebase: bool = True,
                 loop: bool = False, clock: Callable[[], int] = time.time_ns,
                 sleep: Callable[[float], Awaitable] = asyncio.sleep):
        assert speed > 0, "recorded: speed is a positive factor"
        assert rebase or not loop, "recorded: a loop replays at new times (rebase)"
        self.path = Path(path)
        self.markets = {symbol: market for market, symbol in enumerate(symbols)}
        self.speed = speed
        self.rebase = rebase
        self.loop = loop
        self.clock = clock
        self.sleep = sleep
        self.replayed = 0
        self.done = asyncio.Event()  # set at the end of the file (without loop)

    async def run(self, sink: Sink) -> None:
        while True:
            await self._replay_once(sink)
            if not self.loop:
                self.done.set()
                return

    async def _replay_once(self, sink: Sink) -> None:
        first_ns = None
        start_ns = self.clock()
        with self.path.open("rb") as file:
            for number, line in read_lines(file):
                if isinstance(line, str):
                    sink.drop(MALFORMED, f"{self.path.name}:{number}: {line}")
                    continue
                market = self.markets.get(line.market)
                if market is None:
                    sink.drop(UNKNOWN_MARKET, f"{self.path.name}:{number}: {line.market[:40]!r}")
                    continue
                if first_ns is None:
                    first_ns = line.publish_ns
                due_ns = start_ns + int(max(0, line.publish_ns - first_ns) / self.speed)
                wait_ns = due_ns - self.clock()
                if wait_ns > 0:
                    await self.sleep(wait_ns / NS_PER_S)
                self.replayed += 1
                sink.update(OracleUpdate(market, line.price_e8, line.conf_e8,
                                         due_ns if self.rebase else line.publish_ns, f"{SOURCE}:{line.source}",
                                         line.feed_id, line.sources, line.spread_bps, line.ema_price_e8))


class Recorder:
    """A ``Sink`` that writes every update it is given as a line of ``file``."""

    def __init__(self, file: IO[bytes], symbols: list[str]):
        self.file = file
        self.symbols = symbols
        self.lines = 0
        self.dropped: dict[str, int] = {}

    def update(self, update: OracleUpdate) -> None:
        line = RecordedUpdate(self.symbols[update.market], update.price_e8, update.conf_e8, update.publish_ns,
                              update.source, update.feed_id, update.sources, update.spread_bps, update.ema_price_e8)
        self.file.write(encode_line(line))
        self.lines += 1

    def drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        log.warning("record: dropped (%s): %s", reason, detail)

    def note(self, what: str, detail: str = "") -> None:
        log.warning("record: %s %s", what, detail)


async def record(source, path: str | Path, symbols: list[str], duration_s: float | None) -> Recorder:
    """Write ``source``'s prices to ``path`` for ``duration_s`` (None: until cancelled)."""
    with open(path, "wb") as file:
        recorder = Recorder(file, symbols)
        task = asyncio.create_task(source.run(recorder))
        try:
            await asyncio.wait_for(asyncio.shield(task), duration_s)
        except TimeoutError:
            pass
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return recorder
