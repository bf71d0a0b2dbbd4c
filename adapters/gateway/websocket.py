"""WebSocket ``/ws``: the event streams of DESIGN §8, resumable from any seq.

``GET /ws?streams=trade_request,quote&from_seq=1`` (both optional). Each message is one JSON
text frame: ``{"stream", "seq", "type", "ts_ns", "cmd_id", ...}`` with the event in human
units (``render.render_event``). Within a connection messages come in seq order, from
``from_seq`` (default: live only) with no gap and no duplicate across the switch from the
journal backfill to live events; to resume after a disconnect, reconnect with
``from_seq = last seq seen + 1``. One event that belongs to several of the chosen streams is
sent once per stream (e.g. ``quote_accepted`` and ``position_opened`` share a seq).

Streams (DESIGN's names, onto the engine's events):

| stream | engine events |
|---|---|
| ``trade_request`` | ``rfq_opened.v1``, ``rfq_closed.v1`` (cancelled / expired unfilled) |
| ``quote`` | ``quote_submitted.v1``, ``quote_released.v1`` |
| ``quote_accepted`` | ``position_opened.v1`` — only the acceptance fields |
| ``position_opened`` | ``position_opened.v1`` |
| ``funding`` | ``funding_settled.v1`` |
| ``position_closed`` | ``position_closed.v1`` (closes by a party and fixed-duration ends) |
| ``liquidation`` | ``position_liquidated.v1`` |
| ``liquidation_watch`` | ``liquidation_watch.v1`` (not in the default set) |
| ``margin`` | ``margin_changed.v1`` (not in the default set) |
| ``oracle`` | ``oracle_updated.v1``, ``oracle_source_switched.v1`` (not in the default set) |
| ``checkpoints`` | ``checkpoint.v1`` (not in the default set) |
| ``account`` | every event naming the signer (signed connections only; not in the default set) |

A signed connection (``X-Agent``, ``X-Timestamp``, ``X-Signature`` on the upgrade request,
signing ``GET`` and the path with its query, empty body) may add ``account``.

Control messages from the venue: ``{"type": "subscribed", "streams", "from_seq",
"last_seq"}`` first; ``{"type": "error", "code": "SLOW_CONSUMER", ...}`` before the venue
closes a connection that fell more than ``gateway.outbound_queue_max`` events behind.
A client may send ``{"op": "ping"}`` (answered ``{"type": "pong", "last_seq"}``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from adapters.gateway import render
from adapters.gateway import streams as stream_rules
from engine import events as ev
from adapters.gateway.edge import status_of
from adapters.gateway.hub import SubscriptionOverflow
from protocol import codes

WS_STREAMS: dict[str, tuple[type, ...]] = {
    "trade_request": (ev.RfqOpened, ev.RfqClosed),
    "quote": (ev.QuoteSubmitted, ev.QuoteReleased),
    "quote_accepted": (ev.PositionOpened,),
    "position_opened": (ev.PositionOpened,),
    "funding": (ev.FundingSettled,),
    "position_closed": (ev.PositionClosed,),
    "liquidation": (ev.PositionLiquidated,),
    "liquidation_watch": (ev.LiquidationWatch,),
    "margin": (ev.MarginChanged,),
    "oracle": (ev.OracleUpdated, ev.OracleSourceSwitched),
    "checkpoints": (ev.Checkpoint,),
}
ACCOUNT = stream_rules.ACCOUNT_STREAM
ALL_STREAMS = (*WS_STREAMS, ACCOUNT)
DEFAULT_STREAMS = ("trade_request", "quote", "quote_accepted", "position_opened", "funding", "position_closed",
                   "liquidation")
HEARTBEAT_S = 30.0  # aiohttp pings; a peer that does not answer is closed
WEBSOCKETS_MAX = 10_000  # open /ws connections at once; one more: 429 TOO_MANY_CONNECTIONS before the upgrade

_encoder = msgspec.json.Encoder()


def quote_accepted(event: ev.PositionOpened, symbols: list[str]) -> dict[str, Any]:
    """The acceptance view of a fill: who took which quote on which RFQ, at what rate."""
    taker_long = event.taker_side == "long"
    return {"type": render.event_type(event), "seq": event.seq, "ts_ns": event.ts_ns, "cmd_id": event.cmd_id,
            "request_id": str(event.rfq_id), "quote_id": str(event.quote_id), "position_id": str(event.position_id),
            "market": symbols[event.market], "trader": event.long_agent if taker_long else event.short_agent,
            "maker": event.short_agent if taker_long else event.long_agent,
            "funding_rate": render.h.rate(event.funding_rate_e9), "signature": event.signature,
            "auto_accepted": event.auto_accepted,
            "released_quote_ids": [str(q) for q in event.released_quote_ids]}


def messages(event, chosen: tuple[str, ...], account_match, symbols: list[str]) -> list[bytes]:
    """The frames ``event`` produces for a connection subscribed to ``chosen``."""
    out = []
    rendered: dict[str, Any] | None = None
    for stream in chosen:
        if stream == ACCOUNT:
            if not account_match(event):
                continue
        elif type(event) not in WS_STREAMS[stream]:
            continue
        if stream == "quote_accepted":
            body = quote_accepted(event, symbols)
        else:
            rendered = rendered or render.render_event(event, symbols)
            body = rendered
        out.append(_encoder.encode({"stream": stream, **body}))
    return out


def parse_streams(text: str | None) -> tuple[str, ...]:
    """``streams=a,b`` -> the streams in a fixed order; raises ``ValueError`` naming the unknown."""
    if text is None or text == "":
        return DEFAULT_STREAMS
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_STREAMS]
    if unknown or not names:
        raise ValueError(", ".join(n[:40] for n in unknown[:5]) or "(none)")
    return tuple(name for name in ALL_STREAMS if name in names)


async def handle(gateway, request: web.Request) -> web.StreamResponse:
    """The ``/ws`` route: validate the query (and signature, for ``account``), then stream."""
    venue = gateway.venue
    try:
        chosen = parse_streams(request.query.get("streams"))
    except ValueError as error:
        raise gateway.error(codes.UNKNOWN_STREAM, f"unknown stream(s): {error}",
                            field="streams", allowed=list(ALL_STREAMS))
    from_seq = gateway.query_int(request, "from_seq", venue.hub.last_seq + 1, 1, 2**62)
    agent = None
    if ACCOUNT in chosen or request.headers.get("X-Agent"):
        agent = await gateway.authenticate(request, b"")

    if len(gateway.websockets) >= gateway.websockets_max:
        raise gateway.error(codes.TOO_MANY_CONNECTIONS, f"at most {gateway.websockets_max} WebSocket connections "
                            "at once; retry later", max=gateway.websockets_max)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=venue.config.gateway.max_frame_bytes)
    if not ws.can_prepare(request).ok:
        body = {"error": {"code": codes.UPGRADE_REQUIRED, "message": "GET /ws is a WebSocket upgrade request",
                          "detail": {"upgrade": "websocket"}}}
        return web.Response(body=_encoder.encode(body), status=status_of(codes.UPGRADE_REQUIRED),
                            content_type="application/json", headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    await ws.prepare(request)
    symbols = venue.symbols
    public = {t for name in chosen if name in WS_STREAMS for t in WS_STREAMS[name]}

    def account_match(event) -> bool:
        return agent is not None and stream_rules.names_agent(event, agent, venue.position_agents)

    def wanted(event) -> bool:
        return type(event) in public or (ACCOUNT in chosen and account_match(event))

    async def send(value) -> None:
        await ws.send_str(_encoder.encode(value).decode())

    subscription = venue.hub.subscribe(from_seq, wanted, venue.config.gateway.outbound_queue_max)

    async def pump() -> None:
        try:
            async for batch in subscription.batches():
                for event in batch:
                    for frame in messages(event, chosen, account_match, symbols):
                        await ws.send_str(frame.decode())
        except SubscriptionOverflow as overflow:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await send({"type": "error", "code": codes.SLOW_CONSUMER, "message": str(overflow),
                            "detail": {"queue_max": subscription.queue_max}})
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"slow consumer")
        except (ConnectionError, RuntimeError):
            pass  # the peer went away while we were sending

    gateway.websockets.add(ws)
    venue.metrics.connections.inc()
    sender: asyncio.Task | None = None
    try:
        await send({"type": "subscribed", "streams": list(chosen), "from_seq": from_seq,
                    "last_seq": subscription.live_after_seq})
        sender = asyncio.create_task(pump(), name="ws-pump")
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                op = msgspec.json.decode(message.data)
            except msgspec.DecodeError:
                op = None
            if isinstance(op, dict) and op.get("op") == "ping":
                await send({"type": "pong", "last_seq": venue.hub.last_seq})
            else:
                await send({"type": "error", "code": codes.MALFORMED,
                            "message": 'the only message a client sends is {"op": "ping"}', "detail": {}})
    except (ConnectionError, RuntimeError):
        pass
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        subscription.close()
        gateway.websockets.discard(ws)
        gateway.websocket_ended.set()
        venue.metrics.connections.dec()
    return ws
