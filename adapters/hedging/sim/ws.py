"""Book tops pushed over websockets: what the Binance and OKX simulators share.

Each simulator speaks its own protocol (its subscribe messages, acknowledgements, errors and
push shapes: ``binance.py``, ``okx.py``); ``TopStreams`` keeps the rest, bounded:

- at most ``WS_CONNECTIONS_MAX`` connections per simulator (one more handshake is answered 429,
  as the exchanges refuse a connection storm), each with at most
  ``WS_SUBSCRIPTIONS_PER_CONNECTION_MAX`` topics (Binance USDⓈ-M: 200 streams per connection);
- frames in at most ``WS_FRAME_BYTES_MAX`` (aiohttp closes the connection beyond it);
- frames out through a queue of at most ``WS_SEND_QUEUE_MAX``: a reader that falls that far
  behind is disconnected (both exchanges drop slow consumers rather than buffer for them);
- a topic is ``(channel, book key)``; the simulator renders its frame.

A book's top is pushed to its subscribers whenever it moves: at once on ``poke(key)``
(``BookVenue.set_reference``/``set_depth`` call it), and by a watcher that looks every
``WS_CHECK_INTERVAL_S`` (the book's own refresh, fills). A new subscription gets the current
top at once (the real exchanges send the next change, which on these books is milliseconds
away). The watcher also enforces the faults: with ``outage`` or ``ws_down`` set every
connection is closed and new handshakes get 503. ``drop_all`` and ``inject`` are the tests'
seams: kill every connection (abruptly, like a dropped TCP link) or send a raw frame.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

WS_CONNECTIONS_MAX = 64  # per simulator
WS_SUBSCRIPTIONS_PER_CONNECTION_MAX = 200  # topics per connection (Binance USDⓈ-M's stream limit)
WS_FRAME_BYTES_MAX = 64 * 1024  # an incoming frame; OKX caps a subscribe request's args at 64 KiB
WS_SEND_QUEUE_MAX = 1_024  # frames waiting for a slow reader before it is disconnected
WS_CHECK_INTERVAL_S = 0.05  # books looked at for a move, faults enforced, this often

Topic = tuple[str, str]  # (channel, book key)


@dataclass(eq=False)
class Connection:
    request: web.Request
    ws: web.WebSocketResponse
    topics: set[Topic] = field(default_factory=set)
    outbox: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(WS_SEND_QUEUE_MAX))

    def send(self, frame: dict | str) -> bool:
        """Queue one frame (a dict is sent as JSON). A reader ``WS_SEND_QUEUE_MAX`` frames behind is
        disconnected (1008), not buffered for: False."""
        try:
            self.outbox.put_nowait(frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":")))
            return True
        except asyncio.QueueFull:
            if not self.ws.closed:
                asyncio.ensure_future(self.ws.close(code=1008, message=b"slow consumer"))
            return False


class TopStreams:
    """The websocket connections of one simulator (see the module's docstring)."""

    def __init__(self, venue, render: Callable[[str, str], dict]) -> None:
        self.venue = venue  # a BookVenue: books, faults, book(key)
        self.render = render  # (channel, key) -> the push frame of that topic's current top
        self.connections: set[Connection] = set()
        self.refused = 0  # handshakes refused (limit, faults)
        self.pushed = 0  # book-top frames sent
        self._tops: dict[str, tuple] = {}  # key -> the top last pushed (bounded by the books)
        self._watcher: asyncio.Task | None = None

    # -- serving -------------------------------------------------------------------------
    async def serve(self, request: web.Request, on_text, on_open=None) -> web.StreamResponse:
        """Upgrade ``request``, call ``on_open(connection)``, then feed its text frames to
        ``on_text(connection, text)`` (which answers through ``connection.send``)."""
        faults = self.venue.faults
        if faults.outage or faults.ws_down:
            self.refused += 1
            return web.Response(status=503, text="Service Unavailable")
        if len(self.connections) >= WS_CONNECTIONS_MAX:
            self.refused += 1
            return web.Response(status=429, text=f"too many connections (at most {WS_CONNECTIONS_MAX})")
        ws = web.WebSocketResponse(max_msg_size=WS_FRAME_BYTES_MAX, autoping=True)
        await ws.prepare(request)
        conn = Connection(request, ws)
        self.connections.add(conn)
        self._start_watcher()
        if on_open is not None:
            on_open(conn)
        sender = asyncio.create_task(self._send_loop(conn))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    on_text(conn, message.data)
                    if sender.done():
                        break
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            self.connections.discard(conn)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            if not ws.closed:
                await ws.close()
        return ws

    async def _send_loop(self, conn: Connection) -> None:
        while True:
            frame = await conn.outbox.get()
            await conn.ws.send_str(frame)

    @staticmethod
    def has_room(conn: Connection, topics) -> bool:
        """Whether ``conn`` may hold ``topics`` too (``WS_SUBSCRIPTIONS_PER_CONNECTION_MAX``): the
        simulator asks before it acknowledges, to refuse in its exchange's words."""
        return len(conn.topics | set(topics)) <= WS_SUBSCRIPTIONS_PER_CONNECTION_MAX

    def subscribe(self, conn: Connection, topic: Topic) -> None:
        """Add ``topic`` (``has_room`` asked first) to the connection and queue its current top."""
        # A move since the last push goes to the subscribers there already, before this one
        # joins them; then the newcomer gets the current top (the watcher pushes only moves).
        self.poke(topic[1])
        conn.topics.add(topic)
        self._push(conn, topic)

    def _push(self, conn: Connection, topic: Topic) -> None:
        if conn.send(self.render(*topic)):
            self.pushed += 1

    # -- pushing -------------------------------------------------------------------------
    def poke(self, key: str) -> None:
        """Push ``key``'s top to its subscribers if it moved since the last push."""
        top = self._top(key)
        if self._tops.get(key) == top:
            return
        self._tops[key] = top
        for conn in list(self.connections):
            for topic in [t for t in conn.topics if t[1] == key]:
                self._push(conn, topic)

    def _top(self, key: str) -> tuple:
        book = self.venue.book(key)  # refreshes it when due
        return (tuple(book.bids[0]) if book.bids else None, tuple(book.asks[0]) if book.asks else None)

    def _start_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while self.connections:
            faults = self.venue.faults
            if faults.outage or faults.ws_down:
                await self.drop_all(abrupt=False)
                break
            for key in {t[1] for conn in self.connections for t in conn.topics}:
                self.poke(key)
            await asyncio.sleep(WS_CHECK_INTERVAL_S)

    # -- control (tests, shutdown) -------------------------------------------------------
    async def drop_all(self, abrupt: bool = True) -> int:
        """Close every connection: ``abrupt`` aborts the TCP link (no close frame), else a
        close frame 1001 (going away). Returns how many there were."""
        dropped = list(self.connections)
        for conn in dropped:
            if abrupt and conn.request.transport is not None:
                conn.request.transport.abort()
            else:
                await conn.ws.close(code=1001, message=b"going away")
        return len(dropped)

    def inject(self, frame: str) -> int:
        """Send a raw text frame to every connection (hostile-peer tests); how many got it."""
        return sum(conn.send(frame) for conn in list(self.connections))

    async def shutdown(self, app: web.Application | None = None) -> None:
        """``app.on_shutdown``: close every websocket, or the server waits for them."""
        if self._watcher is not None:
            self._watcher.cancel()
        await self.drop_all(abrupt=False)
