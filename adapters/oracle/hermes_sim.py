"""A Pyth Hermes server on loopback (aiohttp), speaking Hermes' v2 JSON and SSE formats,
with faults on demand — what the oracle tests and the benchmark drive the real client
against (never a mock of our own code).

Routes: ``GET /v2/updates/price/latest?ids[]=..&parsed=true`` and
``GET /v2/updates/price/stream?ids[]=..`` (one ``data:`` event per ``publish()``, a ``:``
keep-alive comment every ``keepalive_s``), an unknown id answers 404 ``Price ids not
found: ...`` like Hermes. Faults: ``rate_limit(n)`` (the next n requests get 429),
``send_raw(text)`` (a malformed payload on every stream), ``send_error(text)`` (an ``event:
error``), ``drop_streams()`` (close every stream connection), ``skew_s`` (publish times
ahead of the clock), ``frozen`` (publish() repeats the last publish time: a stale stream),
``require_key`` (401 without the API key header).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiohttp import web

from adapters.oracle.pyth_schemas import ENCODER, BinaryUpdate, ParsedPriceUpdate, PriceUpdate, RpcPrice
from adapters.oracle.pyth_schemas import RpcPriceFeedMetadata

STREAM_QUEUE_MAX = 1_000  # events waiting for one slow stream reader; beyond: that stream is closed


class HermesSim:
    def __init__(self, prices: dict[str, tuple[int, int, int]], *, clock: Callable[[], float] = time.time,
                 keepalive_s: float = 15.0, require_key: tuple[str, str] | None = None):
        """``prices``: feed id -> (price mantissa, conf mantissa, expo)."""
        self.prices = dict(prices)
        self.clock = clock
        self.keepalive_s = keepalive_s
        self.require_key = require_key  # (header, value)
        self.skew_s = 0
        self.frozen = False
        self.slot = 1_000
        self.publish_time: dict[str, int] = {}
        self.prev_publish_time: dict[str, int] = {}
        self._rate_limited = 0
        self._streams: dict[asyncio.Queue, web.StreamResponse] = {}
        self.requests: dict[str, int] = {"latest": 0, "stream": 0, "429": 0}
        self.headers_seen: list[dict[str, str]] = []
        self.changed = asyncio.Condition()  # notified on each request and each stream (dis)connect
        self.port = 0
        self._runner: web.AppRunner | None = None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        app = web.Application()
        app.router.add_get("/v2/updates/price/latest", self._latest)
        app.router.add_get("/v2/updates/price/stream", self._stream)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests do ----------------------------------------------------------------------

    def set_price(self, feed_id: str, price: int, conf: int | None = None, expo: int | None = None) -> None:
        _, old_conf, old_expo = self.prices[feed_id]
        self.prices[feed_id] = (price, old_conf if conf is None else conf, old_expo if expo is None else expo)

    def publish(self, feed_ids: list[str] | None = None, publish_time: int | None = None) -> None:
        """One update of ``feed_ids`` (default all) to every stream, published now (+ skew)."""
        self.slot += 1
        now_s = int(self.clock()) + self.skew_s
        for feed_id in feed_ids or list(self.prices):
            last = self.publish_time.get(feed_id, 0)
            if publish_time is not None:
                stamp = publish_time
            elif self.frozen and last:
                stamp = last
            else:
                stamp = max(now_s, last + 1)  # one publish second per update: every publish is new
            self.prev_publish_time[feed_id] = last or stamp
            self.publish_time[feed_id] = stamp
        # each stream sends the feeds it asked for, as they are now
        self._broadcast(tuple(self._parsed(feed_id) for feed_id in feed_ids or self.prices))

    def send_raw(self, data: str) -> None:
        self._broadcast(f"data: {data}\n\n".encode())

    def send_error(self, text: str) -> None:
        self._broadcast(f"event: error\ndata: {text}\n\n".encode())

    def rate_limit(self, requests: int) -> None:
        self._rate_limited = requests

    def drop_streams(self) -> None:
        """Close every stream connection (the client sees a dropped connection)."""
        for queue, response in list(self._streams.items()):
            self._close(queue, response)

    def _close(self, queue: asyncio.Queue, response: web.StreamResponse) -> None:
        self._streams.pop(queue, None)
        transport = response._req.transport if response._req is not None else None
        if transport is not None:
            transport.close()

    @property
    def stream_count(self) -> int:
        return len(self._streams)

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            async with self.changed:
                await self.changed.wait_for(predicate)

    # -- the wire ---------------------------------------------------------------------------

    def body(self, feed_ids: list[str]) -> bytes:
        return self._encode([self._parsed(feed_id) for feed_id in feed_ids])

    def _parsed(self, feed_id: str) -> ParsedPriceUpdate:
        price, conf, expo = self.prices[feed_id]
        stamp = self.publish_time.get(feed_id) or int(self.clock()) + self.skew_s
        self.publish_time.setdefault(feed_id, stamp)
        rpc = RpcPrice(str(price), str(conf), expo, stamp)
        return ParsedPriceUpdate(feed_id, rpc, rpc, RpcPriceFeedMetadata(
            slot=self.slot, proof_available_time=stamp + 1,
            prev_publish_time=self.prev_publish_time.get(feed_id, stamp)))

    @staticmethod
    def _encode(parsed: list[ParsedPriceUpdate]) -> bytes:
        vaa = "504e41550100000003b801" + "00" * 64  # the shape of an accumulator update, not a valid one
        return ENCODER.encode(PriceUpdate(BinaryUpdate("hex", [vaa]), parsed))

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _gate(self, request: web.Request, kind: str) -> list[str]:
        self.requests[kind] += 1
        self.headers_seen.append(dict(request.headers))
        await self._notify()
        if self._rate_limited > 0:
            self._rate_limited -= 1
            self.requests["429"] += 1
            raise web.HTTPTooManyRequests(text="Too Many Requests")
        if self.require_key and request.headers.get(self.require_key[0]) != self.require_key[1]:
            raise web.HTTPUnauthorized(text="missing or wrong API key")
        ids = [i.lower().removeprefix("0x") for i in request.query.getall("ids[]", [])]
        if not ids:
            raise web.HTTPBadRequest(text="Missing ids[] parameter")
        unknown = [i for i in ids if i not in self.prices]
        if unknown:
            raise web.HTTPNotFound(text=f"Price ids not found: {', '.join(unknown)}")
        return ids

    async def _latest(self, request: web.Request) -> web.Response:
        ids = await self._gate(request, "latest")
        return web.Response(body=self.body(ids), content_type="application/json")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        ids = set(await self._gate(request, "stream"))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue = asyncio.Queue(STREAM_QUEUE_MAX)
        self._streams[queue] = response
        await self._notify()
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(queue.get(), self.keepalive_s)
                except TimeoutError:
                    chunk = b":\n\n"  # axum's KeepAlive default: an empty comment
                if isinstance(chunk, tuple):
                    wanted = [parsed for parsed in chunk if parsed.id in ids]
                    if not wanted:
                        continue
                    chunk = b"data: " + self._encode(wanted) + b"\n\n"
                await response.write(chunk)
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self._streams.pop(queue, None)
            await self._notify()
        return response

    def _broadcast(self, chunk: bytes | tuple) -> None:
        for queue, response in list(self._streams.items()):
            try:
                queue.put_nowait(chunk)
            except asyncio.QueueFull:  # a stuck reader: close it, as a server would
                self._close(queue, response)
