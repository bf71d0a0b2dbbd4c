"""Pyth Hermes client: the latest endpoint and the Server-Sent Events stream (I/O only;
translation is ``pyth_parse``).

``PythSource`` is the venue's Pyth price source. In ``stream`` mode it asks ``latest`` once
(a price at once), then follows ``/v2/updates/price/stream``; in ``poll`` mode it asks
``latest`` every ``poll_interval_s``. Whatever goes wrong — a refused connection, a dropped
one, a stream that sends only keep-alives for ``stream_stale_s``, an oversized event — it
reconnects after a capped exponential backoff with jitter (``limits.Backoff``); a 429 waits
``Retry-After`` (capped) or ``rate_limited_s`` (Hermes' public penalty: 60 s). Every request
first fits in the request budget (30 per 10 s by default). An ``event: error`` is counted
and logged; the stream goes on (Hermes sends it for a lagging broadcast and keeps streaming).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from adapters.oracle import pyth_parse as parse
from adapters.oracle.limits import Backoff, RequestBudget
from adapters.oracle.source import Sink
from adapters.oracle.sse import EventTooLarge, SseParser
from engine.commands import OracleUpdate

log = logging.getLogger("agentperp.oracle.pyth")

LATEST_PATH = "/v2/updates/price/latest"
STREAM_PATH = "/v2/updates/price/stream"
BODY_BYTES_MAX = 1 << 20  # one latest answer
LINE_BYTES_MAX = 1 << 20  # one SSE line (aiohttp's read buffer)
SOURCE = "pyth"

# Notes to the sink (labels of agentperp_oracle_source_events)
RECONNECT = "reconnect"
RATE_LIMITED = "rate_limited"
ERROR_EVENT = "error_event"


class RateLimited(Exception):
    def __init__(self, retry_after_s: float | None):
        super().__init__(f"HTTP 429 (Retry-After: {retry_after_s})")
        self.retry_after_s = retry_after_s


class HermesError(Exception):
    """A non-200 answer, a body too large, a stream with nothing new for too long."""


@dataclass(frozen=True)
class PythSettings:
    base_url: str
    feed_ids: dict[int, str]  # market -> feed id (64 hex digits)
    api_key: str = ""
    api_key_header: str = "x-api-key"
    mode: str = "stream"  # stream | poll
    poll_interval_s: float = 1.0
    stream_stale_s: float = 20.0  # no price event (keep-alives do not count) for this long: reconnect
    request_timeout_s: float = 10.0  # connect + headers; a latest answer's body
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    rate_limited_s: float = 60.0  # after a 429 without Retry-After
    retry_after_s_max: float = 300.0
    budget_requests: int = 30
    budget_window_s: float = 10.0


class HermesClient:
    """Requests to one Hermes endpoint for a fixed set of feed ids."""

    def __init__(self, session: aiohttp.ClientSession, settings: PythSettings):
        self.session = session
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.headers = {settings.api_key_header: settings.api_key} if settings.api_key else {}
        self.ids = [("ids[]", feed_id) for feed_id in settings.feed_ids.values()]

    async def latest(self) -> bytes:
        """The body of ``GET /v2/updates/price/latest?ids[]=...&parsed=true``."""
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        async with self.session.get(self.base_url + LATEST_PATH, params=self.ids + [("parsed", "true")],
                                    headers=self.headers, timeout=timeout) as response:
            await _check(response)
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > BODY_BYTES_MAX:
                    raise HermesError(f"a latest answer above {BODY_BYTES_MAX} bytes")
            return bytes(body)

    def stream(self):
        """``GET /v2/updates/price/stream?ids[]=...&parsed=true`` (a response to read lines from)."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.request_timeout_s)
        return self.session.get(self.base_url + STREAM_PATH, params=self.ids + [("parsed", "true")],
                                headers={**self.headers, "Accept": "text/event-stream"}, timeout=timeout)


async def _check(response: aiohttp.ClientResponse) -> None:
    if response.status == 200:
        return
    if response.status == 429:
        raise RateLimited(_retry_after_s(response.headers.get("Retry-After")))
    text = (await response.content.read(400)).decode("utf-8", errors="replace")
    raise HermesError(f"HTTP {response.status}: {text[:200]}")


def _retry_after_s(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None  # the HTTP-date form is not used by Hermes' limiter
    return float(value.strip())


class PythSource:
    """The Pyth price source (see the module's docstring)."""

    name = SOURCE

    def __init__(self, settings: PythSettings, *, rng: random.Random | None = None):
        assert settings.mode in ("stream", "poll"), "pyth mode: stream | poll"
        assert settings.feed_ids, "pyth: at least one market needs a feed id"
        self.settings = settings
        self.markets_by_feed = {feed_id: market for market, feed_id in settings.feed_ids.items()}
        self.backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s, rng=rng)
        self.budget = RequestBudget(settings.budget_requests, settings.budget_window_s)
        self.events_parsed = 0  # SSE data events and latest answers translated (the benchmark's baseline)

    async def run(self, sink: Sink) -> None:
        connector = aiohttp.TCPConnector(limit=2)
        async with aiohttp.ClientSession(connector=connector, read_bufsize=LINE_BYTES_MAX) as session:
            client = HermesClient(session, self.settings)
            if self.settings.mode == "poll":
                await self._poll(client, sink)
            else:
                await self._stream(client, sink)

    async def _request_slot(self) -> None:
        delay_s = self.budget.wait_s()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        self.budget.take()

    async def _poll(self, client: HermesClient, sink: Sink) -> None:
        while True:
            await self._guarded(sink, self._latest_once(client, sink), "latest")
            await asyncio.sleep(self.settings.poll_interval_s)

    async def _stream(self, client: HermesClient, sink: Sink) -> None:
        await self._guarded(sink, self._latest_once(client, sink), "latest", reconnect=False)
        while True:
            await self._guarded(sink, self._stream_once(client, sink), "stream")

    async def _guarded(self, sink: Sink, attempt, what: str, reconnect: bool = True) -> None:
        """Run one request; on failure wait as the failure asks (never raise but cancellation)."""
        try:
            await attempt
            if what == "stream":  # the server ended the stream (Hermes does after 24 h)
                raise HermesError("the server closed the stream")
            return
        except RateLimited as limited:
            s = self.settings
            delay_s = min(limited.retry_after_s, s.retry_after_s_max) if limited.retry_after_s is not None \
                else s.rate_limited_s
            sink.note(RATE_LIMITED, f"{what}: HTTP 429, waiting {delay_s:g} s")
            log.warning("hermes %s: rate limited (429); waiting %.3g s", what, delay_s)
            await asyncio.sleep(delay_s)
            return
        except (aiohttp.ClientError, asyncio.TimeoutError, HermesError, EventTooLarge, ValueError) as error:
            delay_s = self.backoff.next_s()
            if reconnect:
                sink.note(RECONNECT, f"{what}: {error!r}"[:300])
            log.warning("hermes %s failed (%r); retrying in %.3g s", what, error, delay_s)
            await asyncio.sleep(delay_s)

    async def _latest_once(self, client: HermesClient, sink: Sink) -> None:
        await self._request_slot()
        self._translate(await client.latest(), sink)
        self.backoff.reset()

    async def _stream_once(self, client: HermesClient, sink: Sink) -> None:
        await self._request_slot()
        loop = asyncio.get_running_loop()
        stale_s = self.settings.stream_stale_s
        parser = SseParser()
        async with client.stream() as response:
            await _check(response)
            deadline = loop.time() + stale_s
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        line = await response.content.readline()
                except TimeoutError:
                    raise HermesError(f"no price event for {stale_s:g} s (keep-alives only)") from None
                if not line:
                    return  # end of stream
                event = parser.feed_line(line)
                if event is None:
                    continue
                if event.event == "error":
                    sink.note(ERROR_EVENT, event.data[:200])
                    log.warning("hermes stream: event: error: %s", event.data[:200])
                    continue
                if self._translate(event.data, sink):
                    deadline = loop.time() + stale_s
                    self.backoff.reset()

    def _translate(self, body: bytes | str, sink: Sink) -> int:
        """Hand the prices of one payload to the sink; how many there were."""
        self.events_parsed += 1
        prices, drops = parse.parse_update(body, self.markets_by_feed)
        for drop in drops:
            sink.drop(drop.reason, f"{drop.feed_id[:12]} {drop.detail}".strip())
        for p in prices:
            sink.update(OracleUpdate(p.market, p.price_e8, p.conf_e8, p.publish_ns, parse.source_of(p.feed_id),
                                     feed_id=p.feed_id, ema_price_e8=p.ema_price_e8 or 0))
        return len(prices)


def feed_ids_by_market(symbols: Sequence[str], feed_ids: dict[str, str]) -> dict[int, str]:
    """The venue's ``symbol -> feed id`` configuration as ``market -> normalized feed id``
    (markets without one are not priced by Pyth); a malformed id raises ValueError."""
    found = {}
    for market, symbol in enumerate(symbols):
        text = feed_ids.get(symbol)
        if text is None:
            continue
        feed_id = parse.normalize_feed_id(text)
        if feed_id is None:
            raise ValueError(f"pyth feed id of {symbol}: {text!r} is not 64 hex digits")
        found[market] = feed_id
    return found
