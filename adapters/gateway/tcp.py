"""The TCP gateway (DESIGN §8): agents over length-prefixed msgpack or JSON frames.

One ``asyncio.Protocol`` per connection, no task per request: a frame is decoded, checked
(session state, then the edge service ``venue.edge``: rate limit, authorization) and submitted to the sequencer, which calls
back with the outcome once it is durable; the Ack or Rejected is appended to the connection's
outbound buffer and the buffer is written once per loop iteration. Nothing on the
sequencer's path ever waits for a client: a connection whose socket does not drain
accumulates frames in its own buffer, and beyond ``outbound_queue_max`` frames (or when its
subscriptions fall that many events behind) it is closed with ``SLOW_CONSUMER``.

The session, step by step (its transition table: ``session.py``; docs/protocol.md has the
messages with examples):

    client Hello(version, encoding, agent)   server Challenge(nonce)      (agent given)
    client Login(signature, ...)             server Welcome(session, ...)
    client Hello(version, encoding, None)    server Welcome(session, ...)  (an observer)

then ``Request``/``Subscribe``/``Unsubscribe``/``Ping`` in any order, each answered by req_id.

Limits (``[gateway]`` of the config; each enforced here, each has its code):
``max_frame_bytes`` (FRAME_TOO_LARGE, closed), ``requests_per_s``/``request_burst`` — one
token bucket per agent across its connections (Rejected RATE_LIMITED with
``retry_after_ms``, the connection stays), ``connections_per_agent`` (TOO_MANY_CONNECTIONS,
closed), ``outbound_queue_max`` (SLOW_CONSUMER, closed), ``login_timeout_s`` (LOGIN_TIMEOUT,
closed), ``idle_timeout_s`` (IDLE_TIMEOUT, closed), ``wire.SUBSCRIPTIONS_MAX`` per connection.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from functools import partial

import msgspec

from adapters.gateway import streams
from adapters.gateway.edge import Result
from adapters.gateway.hub import SubscriptionOverflow
from adapters.gateway.limits import TokenBucket
from adapters.gateway.session import Session, Step, after, allows
from engine import commands as cmd
from protocol import codes, signing, wire
from protocol.wire import (
    Ack, Challenge, Error, Events, Hello, Login, Ping, Pong, Rejected, Request, Subscribe, Unsubscribe, Welcome,
)

log = logging.getLogger("agentperp.gateway.tcp")

# The transport pauses us above this many unsent bytes; frames then wait in our own buffer
# (counted against outbound_queue_max) instead of the kernel's.
WRITE_BUFFER_HIGH_BYTES = 1024 * 1024
# After an Error frame the peer gets this long to read it before the socket is aborted.
CLOSE_GRACE_S = 2.0

_MALFORMED_HINT = ("each frame is [u32 big-endian length][one msgpack or JSON map with a 'type' tag]; "
                   "see docs/protocol.md")


class TcpGateway:
    """The listening server and what its connections share (sessions by agent, buckets).

    Quacks like ``asyncio.Server`` for the venue (``sockets``, ``close``, ``wait_closed``);
    ``close`` also ends every open session (Error SHUTTING_DOWN), submitting the makers'
    quote cancellations while the sequencer still runs.
    """

    def __init__(self, venue):
        self.venue = venue
        self.edge = venue.edge
        self.limits = venue.config.gateway
        self.server: asyncio.Server | None = None
        self.connections: set[Connection] = set()
        self.by_agent: dict[str, set[Connection]] = {}
        self.closing = False
        self.markets = [wire.WireMarket(*msgspec.structs.astuple(m)) for m in venue.engine_config.markets]

    @property
    def sockets(self):
        return self.server.sockets if self.server is not None else ()

    @property
    def port(self) -> int:
        return self.sockets[0].getsockname()[1]

    def close(self) -> None:
        self.closing = True
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            connection.fail(codes.SHUTTING_DOWN, "the venue is stopping; reconnect later")

    async def wait_closed(self) -> None:
        if self.server is not None:
            await self.server.wait_closed()

    def session_ended(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self.venue.metrics.connections.dec()
        agent = connection.agent
        if agent is None:
            return
        sessions = self.by_agent.get(agent)
        if sessions is None or connection not in sessions:
            return
        sessions.discard(connection)
        if sessions:
            return
        del self.by_agent[agent]
        if connection.cancel_quotes_on_disconnect:
            # The agent's last session ended: its live quotes must not stay firm without it.
            self.venue.sequencer.submit_with(cmd.CancelAgentQuotes(agent), None)


async def serve(venue) -> TcpGateway:
    """Listen on ``venue.config.gateway.host``/``tcp_port`` (0: any free port)."""
    gateway = TcpGateway(venue)
    loop = asyncio.get_running_loop()
    g = venue.config.gateway
    gateway.server = await loop.create_server(lambda: Connection(gateway), g.host, g.tcp_port)
    return gateway


class Connection(asyncio.Protocol):
    """One client session; all of its work happens in callbacks on the venue's loop."""

    def __init__(self, gateway: TcpGateway):
        self.gateway = gateway
        self.venue = gateway.venue
        self.edge = gateway.edge
        self.limits = gateway.limits
        self.loop = asyncio.get_running_loop()
        self.reader = wire.FrameReader(self.limits.max_frame_bytes)
        self.codec: wire.Codec | None = None
        self.state = Session.HELLO
        self.agent: str | None = None  # once logged in
        self.claimed_agent: str | None = None  # from Hello, until Login proves it
        self.nonce = b""
        self.cancel_quotes_on_disconnect = True
        self.bucket: TokenBucket | None = None
        self.session = ""
        self.transport: asyncio.Transport | None = None
        self.out = bytearray()
        self.out_frames = 0
        self.flush_scheduled = False
        self.paused = False
        self.resumed = asyncio.Event()
        self.resumed.set()
        self.subscriptions: dict[int, asyncio.Task] = {}
        self.last_received_s = time.monotonic()
        self.timer: asyncio.TimerHandle | None = None
        self.submit_with = self.venue.sequencer.submit_with

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH_BYTES)
        self.gateway.connections.add(self)
        self.venue.metrics.connections.inc()
        if self.gateway.closing:
            self.fail(codes.SHUTTING_DOWN, "the venue is stopping; reconnect later")
            return
        self.timer = self.loop.call_later(self.limits.login_timeout_s, self._login_deadline)

    def data_received(self, data: bytes) -> None:
        if self.state == Session.CLOSED:
            return
        self.last_received_s = time.monotonic()
        try:
            frames = self.reader.feed(data)
        except wire.FrameTooLarge as error:
            self.fail(codes.FRAME_TOO_LARGE, str(error), size_bytes=error.size, max_bytes=error.max_bytes)
            return
        for payload in frames:
            if self.state == Session.CLOSED:
                return
            self._frame(payload)

    def connection_lost(self, exc) -> None:
        self._end()

    def pause_writing(self) -> None:
        self.paused = True
        self.resumed.clear()

    def resume_writing(self) -> None:
        self.paused = False
        self.resumed.set()
        self._flush()

    # -- frames ----------------------------------------------------------------------------------

    def _frame(self, payload: bytes) -> None:
        codec = self.codec
        if codec is None:  # the first frame: its encoding by its first byte
            codec = self.codec = wire.CODECS["json" if wire.is_json(payload) else "msgpack"]
        try:
            message = codec.client_decoder.decode(payload)
        except msgspec.DecodeError as error:  # ValidationError included
            self.fail(codes.MALFORMED, f"malformed frame: {error}", hint=_MALFORMED_HINT)
            return
        kind = type(message)
        if kind is Request:
            self._request(message)
        elif kind is Ping:
            if self.state == Session.HELLO:
                self.fail(codes.PROTOCOL_ERROR, "the first frame must be a Hello", hint="send hello first")
            else:
                self.send(Pong(message.nonce, self.venue.clock()))
        elif kind is Subscribe:
            self._subscribe(message)
        elif kind is Unsubscribe:
            self._unsubscribe(message)
        elif kind is Hello:
            self._hello(message)
        elif kind is Login:
            self._login(message)

    def _hello(self, hello: Hello) -> None:
        if not allows(self.state, Step.HELLO_AGENT if hello.agent else Step.HELLO_OBSERVER):
            self.fail(codes.PROTOCOL_ERROR, "Hello is only the first frame")
            return
        if hello.version != wire.PROTOCOL_VERSION:
            self.fail(codes.UNSUPPORTED_VERSION, f"protocol version {hello.version} is not supported",
                      supported=[wire.PROTOCOL_VERSION])
            return
        self.codec = wire.CODECS[hello.encoding]
        if hello.agent is None:
            self.bucket = self.edge.bucket_for(None)
            self._welcome(Step.HELLO_OBSERVER)
            return
        if signing.parse_agent(hello.agent) is None:
            self.fail(codes.BAD_AGENT, "agent must be a base58 Solana public key", agent=hello.agent[:64])
            return
        self.claimed_agent = hello.agent
        self.nonce = secrets.token_bytes(32)
        self.state = after(self.state, Step.HELLO_AGENT)
        self.send(Challenge(self.nonce))

    def _login(self, login: Login) -> None:
        if not allows(self.state, Step.LOGIN):
            self.fail(codes.PROTOCOL_ERROR, "Login answers a Challenge (send Hello with your agent key first)")
            return
        agent = self.claimed_agent
        if not signing.verify(agent, signing.login_message(self.nonce, agent), login.signature):
            self.fail(codes.BAD_SIGNATURE, "signature must be the agent's base58 Ed25519 signature over "
                      "b'agentperp-login:' + nonce + b':' + agent")
            return
        sessions = self.gateway.by_agent.setdefault(agent, set())
        if len(sessions) >= self.limits.connections_per_agent:
            if not sessions:
                del self.gateway.by_agent[agent]
            self.fail(codes.TOO_MANY_CONNECTIONS, f"at most {self.limits.connections_per_agent} connections "
                      "per agent", max=self.limits.connections_per_agent)
            return
        sessions.add(self)
        self.agent = agent
        self.cancel_quotes_on_disconnect = login.cancel_quotes_on_disconnect
        self.bucket = self.edge.bucket_for(agent)
        self._welcome(Step.LOGIN)

    def _welcome(self, step: Step) -> None:
        self.state = after(self.state, step)
        self.session = secrets.token_hex(8)
        g = self.limits
        self.send(Welcome(self.session, self.venue.clock(), self.venue.hub.last_seq, self.agent, {
            "max_frame_bytes": g.max_frame_bytes, "requests_per_s": g.requests_per_s,
            "request_burst": g.request_burst, "connections_per_agent": g.connections_per_agent,
            "outbound_queue_max": g.outbound_queue_max, "idle_timeout_s": g.idle_timeout_s,
            "subscriptions_max": wire.SUBSCRIPTIONS_MAX}, self.gateway.markets,
            [wire.Price(market, *last) for market, last in sorted(self.venue.last_prices.items())]))
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(self.limits.idle_timeout_s, self._idle_check)

    # -- requests --------------------------------------------------------------------------------

    def _request(self, request: Request) -> None:
        req_id = request.req_id
        if self.state != Session.OPEN:
            self.send(Rejected(req_id, codes.NOT_AUTHENTICATED, "log in before sending commands",
                               {"hint": "Hello with your agent key, then Login with the signed challenge"}))
            return
        refusal = self.edge.rate_limit(self.bucket)
        if refusal is None:
            command = wire.command_from_wire(request.command)
            refusal = self.edge.authorize(command, self.agent)
        if refusal is not None:
            self.send(Rejected(req_id, refusal.code, refusal.message, refusal.detail))
            return
        self.submit_with(command, partial(self._outcome, req_id))

    def _outcome(self, req_id: int, outcome) -> None:
        if self.state == Session.CLOSED:
            return
        rejection = outcome.rejection
        if rejection is None:  # the hot path: answered in this callback, no task
            self.send(Ack(req_id, outcome.seq, [wire.event_to_wire(e) for e in outcome.events]))
        elif self.edge.first_seq(rejection) is not None:
            asyncio.ensure_future(self._duplicate(req_id, rejection))
        else:
            self.send(Rejected(req_id, rejection.code, rejection.message, rejection.detail))

    async def _duplicate(self, req_id: int, rejection) -> None:
        """A repeated client_id: answer with the first execution's events (DESIGN §5)."""
        answer = await self.edge.original(rejection)
        if self.state == Session.CLOSED:
            return
        self._answer(req_id, answer)

    def _answer(self, req_id: int, answer) -> None:
        if type(answer) is Result:
            self.send(Ack(req_id, answer.seq, [wire.event_to_wire(e) for e in answer.events], answer.duplicate))
        else:
            self.send(Rejected(req_id, answer.code, answer.message, answer.detail))

    # -- subscriptions ---------------------------------------------------------------------------

    def _subscribe(self, message: Subscribe) -> None:
        req_id = message.req_id
        if self.state != Session.OPEN:
            self.send(Rejected(req_id, codes.NOT_AUTHENTICATED, "subscribe after the Welcome"))
            return
        refusal = self.edge.rate_limit(self.bucket)
        if refusal is not None:
            self._answer(req_id, refusal)
            return
        unknown = [name for name in message.streams if name not in streams.STREAMS]
        if unknown or not message.streams:
            self.send(Rejected(req_id, codes.UNKNOWN_STREAM, f"unknown streams: {unknown}" if unknown
                               else "name at least one stream", {"streams": list(streams.STREAMS)}))
            return
        if streams.ACCOUNT_STREAM in message.streams and self.agent is None:
            self.send(Rejected(req_id, codes.NOT_AUTHENTICATED, "the account stream needs a logged-in agent"))
            return
        if req_id in self.subscriptions:
            self.send(Rejected(req_id, codes.PROTOCOL_ERROR, "a subscription with this req_id is open",
                               {"sub": req_id}))
            return
        if len(self.subscriptions) >= wire.SUBSCRIPTIONS_MAX:
            self.send(Rejected(req_id, codes.TOO_MANY_SUBSCRIPTIONS,
                               f"at most {wire.SUBSCRIPTIONS_MAX} subscriptions per connection",
                               {"max": wire.SUBSCRIPTIONS_MAX, "open": sorted(self.subscriptions)}))
            return
        hub = self.venue.hub
        from_seq = message.from_seq or hub.last_seq + 1
        predicate = streams.predicate(message.streams, self.agent, self.venue.position_agents)
        subscription = hub.subscribe(from_seq, predicate, self.limits.outbound_queue_max)
        self.send(Ack(req_id, hub.last_seq, []))
        self.subscriptions[req_id] = asyncio.ensure_future(self._pump(req_id, subscription))

    def _unsubscribe(self, message: Unsubscribe) -> None:
        task = self.subscriptions.pop(message.sub, None)
        if task is None:
            self.send(Rejected(message.req_id, codes.UNKNOWN_SUBSCRIPTION, "no open subscription with this id",
                               {"open": sorted(self.subscriptions)}))
            return
        task.cancel()
        self.send(Ack(message.req_id, self.venue.hub.last_seq, []))

    async def _pump(self, sub: int, subscription) -> None:
        try:
            async for batch in subscription.batches():
                if self.paused:
                    await self.resumed.wait()  # backfill at the client's pace; live events wait in the hub
                if self.state == Session.CLOSED:
                    return
                self._send_events(sub, batch)
        except SubscriptionOverflow as error:
            self.fail(codes.SLOW_CONSUMER, f"subscription {sub} fell behind: {error}",
                      outbound_queue_max=self.limits.outbound_queue_max)
        finally:
            subscription.close()

    def _send_events(self, sub: int, events: list) -> None:
        """One Events frame, split in halves until each fits max_frame_bytes (a single
        event larger than that goes alone)."""
        out = self.out
        start = len(out)
        size = self.codec.frame_into(Events(sub, [wire.event_to_wire(e) for e in events]), out)
        if size > self.limits.max_frame_bytes and len(events) > 1:
            del out[start:]
            half = len(events) // 2
            self._send_events(sub, events[:half])
            self._send_events(sub, events[half:])
            return
        self._queued()

    # -- output ----------------------------------------------------------------------------------

    def send(self, message) -> None:
        """Queue ``message``; written with everything else queued in this loop iteration."""
        if self.state == Session.CLOSED:
            return
        self.codec.frame_into(message, self.out)
        self._queued()

    def _queued(self) -> None:
        self.out_frames += 1
        if self.out_frames > self.limits.outbound_queue_max:
            self.fail(codes.SLOW_CONSUMER, "the client does not read fast enough; its outbound queue overflowed",
                      outbound_queue_max=self.limits.outbound_queue_max)
            return
        if not self.flush_scheduled and not self.paused:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.paused or not self.out or self.transport is None or self.transport.is_closing():
            return
        data = bytes(self.out)
        self.out.clear()
        self.out_frames = 0
        self.transport.write(data)

    # -- ending ----------------------------------------------------------------------------------

    def fail(self, code: str, message: str, **detail) -> None:
        """Send Error(code) and close the connection (the peer gets CLOSE_GRACE_S to read it)."""
        if self.state == Session.CLOSED or self.transport is None:
            return
        if code != codes.SLOW_CONSUMER:
            log.info("closing a connection: %s %s", code, message)
        codec = self.codec or wire.CODECS["msgpack"]
        self.out.clear()  # a slow consumer's backlog is dropped; the Error goes first
        self.out_frames = 0
        frame = codec.frame(Error(code, message, detail))
        transport = self.transport
        self._end()
        transport.write(frame)
        transport.close()
        self.loop.call_later(CLOSE_GRACE_S, transport.abort)

    def _end(self) -> None:
        if self.state == Session.CLOSED:
            return
        self.state = after(self.state, Step.END)
        if self.timer is not None:
            self.timer.cancel()
        for task in self.subscriptions.values():
            task.cancel()
        self.subscriptions.clear()
        self.resumed.set()
        self.gateway.session_ended(self)

    def _login_deadline(self) -> None:
        if self.state in (Session.HELLO, Session.LOGIN):
            self.fail(codes.LOGIN_TIMEOUT, f"no Login within {self.limits.login_timeout_s:g} s",
                      login_timeout_s=self.limits.login_timeout_s)

    def _idle_check(self) -> None:
        if self.state != Session.OPEN:
            return
        idle_s = time.monotonic() - self.last_received_s
        if idle_s >= self.limits.idle_timeout_s:
            self.fail(codes.IDLE_TIMEOUT, f"nothing received for {self.limits.idle_timeout_s:g} s; send Ping "
                      "to keep an idle session open", idle_timeout_s=self.limits.idle_timeout_s)
        else:
            self.timer = self.loop.call_later(self.limits.idle_timeout_s - idle_s, self._idle_check)
