"""The agent SDK: an asyncio client of the venue's TCP protocol (docs/protocol.md).

    keypair = Keypair.from_seed(seed32)
    client = await connect("127.0.0.1", 7400, keypair)              # Hello, Challenge, Login, Welcome
    ack = await client.request_quote(0, "long", 100 * USDC, 10, 5_000_000)
    rfq_id = ack.first(ev.RfqOpened).rfq_id
    async for event in await client.subscribe(["quotes", "fills"]):  # engine.events structs
        ...

Results. Every command method returns an ``Ack`` (the command's events as ``engine.events``
structs, and ``seq``) or raises ``Rejection`` (``code``, ``message``, ``detail`` — the
engine's codes and the edge's, see ``engine.rejections`` and ``protocol.codes``).
``send(command)`` is the non-raising form: a future of ``Ack | Rejection``.

Reconnects. When the connection drops (or goes silent for ``3 × ping_interval_s``) the client
reconnects with backoff, logs in again, resumes every subscription from the seq after the
last event it delivered (no gap, no duplicate), and resends every request still waiting for
its answer. Each command gets a ``client_id`` if it has none, so a resent command that had
already executed is not executed twice: the venue answers with the first result
(``Ack.duplicate``). After ``reconnect_for_s`` of failed attempts, or on an error that a
retry cannot fix (bad signature, malformed frame, ...), everything waiting fails with
``ConnectionClosed``.

Keypairs are ``solders.keypair.Keypair``; ``demo_keypair(seed, role, index)`` derives the
demo agents' keys deterministically.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import secrets
import time
from collections import deque
from typing import Any

import msgspec
from solders.keypair import Keypair

from engine import commands as cmd
from engine.markets import EngineConfig, Market
from protocol import codes, signing, wire

log = logging.getLogger("agentperp.sdk")

HANDSHAKE_TIMEOUT_S = 10.0
# Requests (commands, subscribes, unsubscribes) waiting for their answer at once; one more
# raises TooManyInFlight at once. Below the venue's default outbound_queue_max (10 000 frames),
# so the answers to what one client has in flight never overflow its own queue at the venue.
IN_FLIGHT_MAX = 4_096
# Events one subscription holds for a reader that does not keep up; one more ends it with
# SLOW_CONSUMER (the events held stay readable; resubscribe from ``last_seq + 1``).
SUBSCRIPTION_QUEUE_MAX = 100_000
RECONNECT_BACKOFF_S = (0.05, 2.0)  # first wait, max wait (doubling)
# Errors after which reconnecting would only fail again the same way.
FATAL_CODES = frozenset({codes.BAD_SIGNATURE, codes.BAD_AGENT, codes.UNSUPPORTED_VERSION, codes.MALFORMED,
                         codes.FRAME_TOO_LARGE, codes.PROTOCOL_ERROR})


class AgentError(Exception):
    """Base of the SDK's errors."""


class Rejection(AgentError):
    """The venue refused a request (nothing was executed); ``code`` is stable."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None, req_id: int = 0):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail or {}
        self.req_id = req_id


class TooManyInFlight(AgentError):
    """``in_flight_max`` requests already wait for their answer; await some first."""

    def __init__(self, in_flight_max: int):
        super().__init__(f"{in_flight_max} requests are already waiting for their answer (in_flight_max)")
        self.in_flight_max = in_flight_max


class ConnectionClosed(AgentError):
    """The session ended for good (``code``: the server's Error code, or CLOSED)."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail or {}


class Ack(msgspec.Struct, frozen=True):
    """A command's result: its events (``engine.events``) and the last seq they reached."""

    req_id: int
    seq: int
    events: list
    duplicate: bool = False  # a repeat of an executed client_id: the first execution's events

    def first(self, kind: type):
        """The first event of type ``kind`` (None if there is none)."""
        for event in self.events:
            if type(event) is kind:
                return event
        return None


def demo_keypair(seed: int, role: str, index: int = 0) -> Keypair:
    """A deterministic keypair for demo agent ``role`` #``index`` of ``seed``."""
    return Keypair.from_seed(hashlib.sha256(f"agentperp-demo:{seed}:{role}:{index}".encode()).digest())


sign = signing.sign  # base58 Ed25519 signature of a message (kept as sdk.sign for agents)


class _Link(asyncio.Protocol):
    """One TCP connection of a Client: frames in, coalesced writes out."""

    def __init__(self, client: Client):
        self.client = client
        self.reader = wire.FrameReader(wire.SERVER_FRAME_BYTES_MAX)
        self.transport: asyncio.Transport | None = None
        self.handshake: asyncio.Queue = asyncio.Queue()
        self.welcomed = False
        self.out = bytearray()
        self.flush_scheduled = False
        self.error: wire.Error | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.last_received_s = time.monotonic()
        try:
            frames = self.reader.feed(data)
        except wire.FrameTooLarge:
            self.transport.abort()
            return
        decode = self.client.codec.server_decoder.decode
        for payload in frames:
            try:
                message = decode(payload)
            except msgspec.DecodeError as error:
                log.error("undecodable frame from the venue: %s", error)
                self.transport.abort()
                return
            if type(message) is wire.Error:
                self.error = message
            if self.welcomed:
                self.client._on_message(self, message)
            else:
                self.handshake.put_nowait(message)

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        self.handshake.put_nowait(None)
        self.client._on_lost(self)

    def send(self, message) -> None:
        self.client.codec.frame_into(message, self.out)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.out and self.transport is not None and not self.transport.is_closing():
            data = bytes(self.out)
            self.out.clear()
            self.transport.write(data)


class Subscription:
    """Events of some streams, in seq order, without gap or duplicate across reconnects.

    Iterate it (``async for event in sub``) or ``await sub.get()``. At most ``queue_max``
    events wait until read; beyond it the subscription ends (``ConnectionClosed`` with
    SLOW_CONSUMER once the held events are read) and ``last_seq`` is the last event it holds,
    so ``client.subscribe(streams, sub.last_seq + 1)`` resumes without a gap.
    """

    def __init__(self, client: Client, streams: list[str], from_seq: int,
                 queue_max: int = SUBSCRIPTION_QUEUE_MAX):
        self.client = client
        self.streams = list(streams)
        self.from_seq = from_seq
        self.last_seq = max(0, from_seq - 1)
        self.sub_id = 0  # the req_id of its current Subscribe
        self.acked = False
        self.ready = asyncio.get_running_loop().create_future()  # the first Ack or Rejection
        self.queue_max = queue_max
        self._queue: deque = deque()
        self._ready = asyncio.Event()
        self._ended: BaseException | None = None

    def _subscribed(self, future: asyncio.Future) -> None:
        """A Subscribe of this subscription was answered (the first, or one after a reconnect)."""
        if future.cancelled():
            return
        error = future.exception()
        result = error if error is not None else future.result()
        if type(result) is Ack:
            if not self.acked and not self.from_seq:
                self.last_seq = max(self.last_seq, result.seq)  # live only: resume after what existed then
            self.acked = True
        else:
            self.client._subscriptions.pop(self.sub_id, None)
            self._end(result)
        if not self.ready.done():
            self.ready.set_result(result)

    def _deliver(self, wire_events: list) -> None:
        if self._ended is not None:
            return
        last = self.last_seq
        queue = self._queue
        for item in wire_events:
            if item.seq <= last:
                continue  # already delivered before a reconnect
            if len(queue) >= self.queue_max:
                self.last_seq = last
                self._overflow()
                return
            last = item.seq
            queue.append(wire.event_from_wire(item))
        self.last_seq = last
        self._ready.set()

    def _overflow(self) -> None:
        """The reader fell ``queue_max`` events behind: end, and stop the venue sending."""
        client = self.client
        client._subscriptions.pop(self.sub_id, None)
        self._end(ConnectionClosed(codes.SLOW_CONSUMER, f"more than {self.queue_max} events wait unread; "
                                   "resubscribe from last_seq + 1", {"queue_max": self.queue_max,
                                                                     "last_seq": self.last_seq}))
        if client._closed is None and len(client._pending) < client.in_flight_max:
            sub_id = self.sub_id
            client._call(lambda req_id: wire.Unsubscribe(req_id, sub_id))

    def _end(self, error: BaseException) -> None:
        self._ended = error
        self._ready.set()

    @property
    def ended(self) -> BaseException | None:
        """Why the subscription ended (None while it runs); raised by ``get`` once the held events are read."""
        return self._ended

    async def get(self):
        """The next event; raises ``ConnectionClosed`` once the client has closed."""
        while not self._queue:
            if self._ended is not None:
                raise self._ended
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def get_nowait(self):
        """The next event if one is waiting, else None."""
        return self._queue.popleft() if self._queue else None

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.get()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        """Stop this subscription (the venue stops sending it)."""
        self.client._subscriptions.pop(self.sub_id, None)
        self._end(ConnectionClosed("UNSUBSCRIBED", "the subscription was closed"))
        if self.client._closed is None:
            sub_id = self.sub_id
            try:
                await self.client._call(lambda req_id: wire.Unsubscribe(req_id, sub_id))
            except AgentError:
                pass


class Client:
    """A session with the venue as ``keypair``'s agent (or an observer when None).

    Build it with ``connect``. Command methods are coroutines returning an ``Ack``; they may
    be called concurrently (each waits for its own answer; answers come in any order).
    At most ``in_flight_max`` (``IN_FLIGHT_MAX``) requests wait for their answer at once; one
    more raises ``TooManyInFlight`` at once.
    """

    def __init__(self, host: str, port: int, keypair: Keypair | None = None, encoding: wire.Encoding = "msgpack",
                 *, cancel_quotes_on_disconnect: bool = True, reconnect: bool = True, ping_interval_s: float = 10.0,
                 reconnect_for_s: float = 30.0, in_flight_max: int = IN_FLIGHT_MAX):
        self.host = host
        self.port = port
        self.keypair = keypair
        self.agent: str | None = str(keypair.pubkey()) if keypair is not None else None
        self.encoding = encoding
        self.codec = wire.CODECS[encoding]
        self.cancel_quotes_on_disconnect = cancel_quotes_on_disconnect
        self.reconnect = reconnect
        self.ping_interval_s = ping_interval_s
        self.reconnect_for_s = reconnect_for_s
        self.in_flight_max = in_flight_max
        self.welcome: wire.Welcome | None = None
        self.engine_config: EngineConfig | None = None  # the venue's markets, from the Welcome
        self.reconnects = 0
        self.last_received_s = time.monotonic()
        self._link: _Link | None = None
        self._req_ids = itertools.count(1)
        self._client_ids = itertools.count(1)
        self._client_prefix = secrets.token_hex(6) + "-"
        self._pending: dict[int, tuple[asyncio.Future, Any]] = {}  # req_id -> (future, message)
        self._subscriptions: dict[int, Subscription] = {}  # sub_id -> subscription
        self._closed: ConnectionClosed | None = None
        self._reconnecting: asyncio.Task | None = None
        self._pinger: asyncio.Task | None = None

    # -- session ----------------------------------------------------------------------------------

    async def _open(self) -> None:
        """Connect and complete the handshake; raise ConnectionClosed/OSError on failure."""
        loop = asyncio.get_running_loop()
        _, link = await loop.create_connection(lambda: _Link(self), self.host, self.port)
        try:
            link.send(wire.Hello(wire.PROTOCOL_VERSION, self.encoding, self.agent))
            message = await asyncio.wait_for(link.handshake.get(), HANDSHAKE_TIMEOUT_S)
            if type(message) is wire.Challenge:
                signature = sign(self.keypair, signing.login_message(message.nonce, self.agent))
                link.send(wire.Login(signature, self.cancel_quotes_on_disconnect))
                message = await asyncio.wait_for(link.handshake.get(), HANDSHAKE_TIMEOUT_S)
            if type(message) is not wire.Welcome:
                error = link.error
                if error is not None:
                    raise ConnectionClosed(error.code, error.message, error.detail)
                raise ConnectionClosed("CLOSED", f"the venue ended the handshake ({message!r})")
        except BaseException:
            link.transport.abort()
            raise
        self.welcome = message
        self.engine_config = EngineConfig(markets=tuple(Market(**msgspec.structs.asdict(m)) for m in message.markets))
        link.welcomed = True
        self._link = link
        self.last_received_s = time.monotonic()
        # Resume: every subscription from after its last event, every unanswered request.
        pending = list(self._pending.items())
        subscriptions = list(dict.fromkeys(self._subscriptions.values()))
        self._subscriptions.clear()
        for req_id, (_, message) in pending:
            if type(message) is wire.Subscribe:
                del self._pending[req_id]  # redone below, from where its subscription stands
        for subscription in subscriptions:
            self._send_subscribe(subscription)
        for _, (future, message) in pending:
            if type(message) is not wire.Subscribe and not future.done():
                link.send(message)

    def _send_subscribe(self, subscription: Subscription) -> None:
        req_id = next(self._req_ids)
        subscription.sub_id = req_id
        self._subscriptions[req_id] = subscription
        if subscription.acked or subscription.from_seq:
            from_seq = subscription.last_seq + 1
        else:
            from_seq = 0  # live only, and never acknowledged yet
        message = wire.Subscribe(req_id, subscription.streams, from_seq)
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(subscription._subscribed)
        self._pending[req_id] = (future, message)
        if self._link is not None:
            self._link.send(message)

    def _on_message(self, link: _Link, message) -> None:
        if link is not self._link:
            return
        kind = type(message)
        if kind is wire.Ack:
            entry = self._pending.pop(message.req_id, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(Ack(message.req_id, message.seq,
                                        [wire.event_from_wire(e) for e in message.events], message.duplicate))
        elif kind is wire.Events:
            subscription = self._subscriptions.get(message.sub)
            if subscription is not None:
                subscription._deliver(message.events)
        elif kind is wire.Rejected:
            entry = self._pending.pop(message.req_id, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(Rejection(message.code, message.message, message.detail, message.req_id))

    def _on_lost(self, link: _Link) -> None:
        if link is not self._link:
            return
        self._link = None
        if self._closed is not None:
            return
        error = link.error
        if error is not None and error.code in FATAL_CODES:
            self._fail(ConnectionClosed(error.code, error.message, error.detail))
        elif not self.reconnect:
            self._fail(ConnectionClosed(error.code if error else "CLOSED",
                                        error.message if error else "the connection was lost"))
        else:
            log.info("connection lost (%s); reconnecting", error.code if error else "closed")
            self._reconnecting = asyncio.ensure_future(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        wait_s, wait_max_s = RECONNECT_BACKOFF_S
        give_up_s = time.monotonic() + self.reconnect_for_s
        last_error: BaseException | None = None
        while self._closed is None:
            try:
                await self._open()
                self.reconnects += 1
                return
            except ConnectionClosed as error:
                last_error = error
                if error.code in FATAL_CODES:
                    break
            except (OSError, asyncio.TimeoutError) as error:
                last_error = error
            if time.monotonic() >= give_up_s:
                break
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, wait_max_s)
        if self._closed is None:
            if isinstance(last_error, ConnectionClosed):
                self._fail(last_error)
            else:
                self._fail(ConnectionClosed("CLOSED", f"could not reconnect within {self.reconnect_for_s:g} s: "
                                            f"{last_error!r}"))

    async def _ping_loop(self) -> None:
        while self._closed is None:
            await asyncio.sleep(self.ping_interval_s)
            link = self._link
            if link is None:
                continue
            if time.monotonic() - self.last_received_s > 3 * self.ping_interval_s:
                log.info("no answer from the venue for %.1f s; reconnecting", 3 * self.ping_interval_s)
                link.transport.abort()
                continue
            link.send(wire.Ping(0))

    def _fail(self, error: ConnectionClosed) -> None:
        self._closed = error
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        for subscription in self._subscriptions.values():
            subscription._end(error)
        self._subscriptions.clear()
        if self._pinger is not None:
            self._pinger.cancel()

    async def disconnect(self) -> None:
        """End the session (the venue cancels a maker's quotes unless it opted out)."""
        if self._closed is None:
            self._fail(ConnectionClosed("CLOSED", "the client closed the session"))
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        link, self._link = self._link, None
        if link is not None and link.transport is not None:
            link._flush()
            link.transport.close()
            await asyncio.wait([link.lost], timeout=1.0)

    @property
    def connected(self) -> bool:
        return self._link is not None and self._closed is None

    def drop_connection(self) -> None:
        """Abort the TCP connection now (the client reconnects by itself) — for tests."""
        if self._link is not None:
            self._link.transport.abort()

    # -- requests -----------------------------------------------------------------------------------

    def _call(self, build) -> asyncio.Future:
        """Send ``build(req_id)``; a future of ``Ack | Rejection``."""
        if self._closed is not None:
            raise self._closed
        if len(self._pending) >= self.in_flight_max:
            raise TooManyInFlight(self.in_flight_max)
        req_id = next(self._req_ids)
        message = build(req_id)
        future = asyncio.get_running_loop().create_future()
        self._pending[req_id] = (future, message)
        if self._link is not None:
            self._link.send(message)
        return future  # sent on reconnect otherwise

    def send(self, command) -> asyncio.Future:
        """Submit an engine command; a future of ``Ack | Rejection`` (never raises a Rejection).

        A command without a ``client_id`` gets one, so a resend after a reconnect is safe.
        """
        if getattr(command, "client_id", None) == "":
            command = msgspec.structs.replace(command, client_id=f"{self._client_prefix}{next(self._client_ids)}")
        wire_command = wire.command_to_wire(command)
        return self._call(lambda req_id: wire.Request(req_id, wire_command))

    async def execute(self, command) -> Ack:
        """Submit an engine command; its Ack, or raise its ``Rejection``."""
        result = await self.send(command)
        if type(result) is Rejection:
            raise result
        return result

    async def subscribe(self, streams: list[str], from_seq: int = 0,
                        queue_max: int = SUBSCRIPTION_QUEUE_MAX) -> Subscription:
        """Subscribe to ``streams`` (``adapters.gateway.streams``); ``from_seq`` 0: live from now,
        n: everything from seq n (backfill from the journal), then live. Raises ``Rejection``
        (UNKNOWN_STREAM, NOT_AUTHENTICATED for ``account`` as an observer, ...). At most
        ``queue_max`` events wait unread (``Subscription``)."""
        if self._closed is not None:
            raise self._closed
        subscription = Subscription(self, streams, from_seq, queue_max)
        self._send_subscribe(subscription)
        result = await subscription.ready
        if type(result) is Rejection:
            raise result
        return subscription

    async def ping(self) -> None:
        """One Ping (the client also pings by itself every ``ping_interval_s``)."""
        if self._link is not None:
            self._link.send(wire.Ping(0))

    # -- typed commands (engine units: _e6 USDC, _e9 rate per 8h, _ms) -------------------------------

    def _me(self) -> str:
        if self.agent is None:
            raise AgentError("an observer session cannot send commands; connect with a keypair")
        return self.agent

    async def request_quote(self, market: int, side: cmd.Side, size_e6: int, leverage: int,
                            max_funding_rate_e9: int, *, duration: cmd.Duration = "perpetual", expires_in_ms: int = 0,
                            auto_accept: bool = False, target_rate_e9: int | None = None,
                            client_id: str = "") -> Ack:
        """Open an RFQ; the Ack holds ``RfqOpened`` (its ``rfq_id``)."""
        return await self.execute(cmd.RequestQuote(self._me(), market, side, size_e6, leverage, max_funding_rate_e9,
                                                   duration, expires_in_ms, client_id, auto_accept, target_rate_e9))

    async def submit_quote(self, rfq_id: int, funding_rate_e9: int, collateral_e6: int, valid_for_ms: int = 0,
                           client_id: str = "") -> Ack:
        """Quote an RFQ (firm: the collateral is held at once); the Ack holds ``QuoteSubmitted``."""
        return await self.execute(cmd.SubmitQuote(self._me(), rfq_id, funding_rate_e9, collateral_e6, valid_for_ms,
                                                  client_id))

    async def cancel_quote(self, quote_id: int, client_id: str = "") -> Ack:
        return await self.execute(cmd.CancelQuote(self._me(), quote_id, client_id))

    async def cancel_rfq(self, rfq_id: int, client_id: str = "") -> Ack:
        return await self.execute(cmd.CancelRfq(self._me(), rfq_id, client_id))

    async def accept(self, rfq_id: int, quote_id: int = cmd.BEST_QUOTE, client_id: str = "") -> Ack:
        """Accept a quote (``BEST_QUOTE``: the best live one), signing ``accept:{rfq}:{quote|best}``;
        the Ack holds ``PositionOpened``."""
        label = "best" if quote_id == cmd.BEST_QUOTE else quote_id
        signature = sign(self.keypair, signing.accept_message(rfq_id, label))
        return await self.execute(cmd.AcceptQuote(self._me(), rfq_id, quote_id, signature, client_id))

    async def close(self, position_id: int, fraction_bps: int = 10_000, client_id: str = "") -> Ack:
        """Close ``fraction_bps`` of a position (either party may); the Ack holds ``PositionClosed``.
        (``disconnect`` ends the session.)"""
        return await self.execute(cmd.ClosePosition(self._me(), position_id, fraction_bps, client_id))

    async def liquidate(self, position_id: int, client_id: str = "") -> Ack:
        return await self.execute(cmd.Liquidate(self._me(), position_id, client_id))

    async def add_margin(self, position_id: int, amount_e6: int, client_id: str = "") -> Ack:
        return await self.execute(cmd.AddMargin(self._me(), position_id, amount_e6, client_id))

    async def remove_margin(self, position_id: int, amount_e6: int, client_id: str = "") -> Ack:
        return await self.execute(cmd.RemoveMargin(self._me(), position_id, amount_e6, client_id))

    async def withdraw(self, amount_e6: int, destination: str, client_id: str = "") -> Ack:
        return await self.execute(cmd.Withdraw(self._me(), amount_e6, destination, client_id))


async def connect(host: str, port: int, keypair: Keypair | None = None, encoding: wire.Encoding = "msgpack",
                  **options) -> Client:
    """Open a session (observer when ``keypair`` is None); see ``Client`` for the options."""
    client = Client(host, port, keypair, encoding, **options)
    await client._open()
    client._pinger = asyncio.ensure_future(client._ping_loop())
    return client
