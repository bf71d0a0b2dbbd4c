"""WebSocket streams: DESIGN's stream names, each message with its seq, resumable with
from_seq with no gap and no duplicate; the private account stream needs a signed upgrade."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from adapters.gateway.websocket import DEFAULT_STREAMS, WS_STREAMS
from tests.support import agent_of, keypair
from tests.http.test_lifecycle import accept_signature

ALICE, BOB, CAROL = keypair(1), keypair(2), keypair(3)
STREAM_OF_TYPE: dict[str, list[str]] = {}
for _name, _types in WS_STREAMS.items():
    for _type in _types:
        STREAM_OF_TYPE.setdefault(_type.__struct_config__.tag, []).append(_name)


async def receive_until(ws, last_seq: int) -> list[dict]:
    """Stream messages until one at ``last_seq`` or beyond (and the rest of that seq)."""
    found = []
    while True:
        message = await asyncio.wait_for(ws.receive(), 20)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        if data["type"] in ("subscribed", "pong"):
            continue
        found.append(data)
        if data["seq"] >= last_seq:
            # Any other streams' copies of this last event arrive right behind it.
            try:
                while True:
                    more = json.loads((await asyncio.wait_for(ws.receive(), 0.2)).data)
                    if more["type"] not in ("subscribed", "pong"):
                        found.append(more)
            except TimeoutError:
                return found


async def trade(rig, size=100):
    request = await rig.ok("/trade/request", {"agent_id": agent_of(ALICE), "market": "BTC-PERP", "side": "long",
                                              "size_usdc": size, "leverage": 10, "max_funding_rate": 0.01,
                                              "duration": "perpetual", "expires_in": 30}, ALICE)
    for key, rate in ((BOB, 0.004), (CAROL, 0.003)):
        await rig.ok("/trade/quote", {"request_id": request["request_id"], "agent_id": agent_of(key),
                                      "funding_rate": rate, "collateral_usdc": 100, "valid_for": 10}, key)
    rid = request["request_id"]
    return await rig.ok("/trade/accept", {"request_id": rid, "quote_id": "best",
                                          "signature": accept_signature(ALICE, rid, "best")}, ALICE)


def expected(events: list[dict], streams) -> list[tuple[str, int]]:
    return sorted((stream, e["seq"]) for e in events for stream in STREAM_OF_TYPE.get(e["type"], ())
                  if stream in streams)


async def test_streams_resume_without_gap_or_duplicate(rig):
    for key in (ALICE, BOB, CAROL):
        await rig.faucet(key, 10_000)
    await rig.oracle("BTC-PERP", 100_000)
    streams = (*DEFAULT_STREAMS, "oracle", "margin")
    url = f"/ws?streams={','.join(streams)}&from_seq=1"
    async with rig.session.ws_connect(url) as ws:
        hello = json.loads((await ws.receive()).data)
        assert hello["type"] == "subscribed" and hello["from_seq"] == 1 and set(hello["streams"]) == set(streams)
        accepted = await trade(rig)  # live events after the backfill of the faucet and oracle
        first = await receive_until(ws, accepted["seq"])
    last_seen = max(m["seq"] for m in first)

    # While disconnected: more trading, a close.
    await trade(rig, size=200)
    closed = await rig.ok("/trade/close", {"position_id": accepted["position_id"], "size_percent": 100}, ALICE)
    async with rig.session.ws_connect(f"/ws?streams={','.join(streams)}&from_seq={last_seen + 1}") as ws:
        await ws.send_str(json.dumps({"op": "ping"}))
        second = await receive_until(ws, closed["seq"])

    got = sorted((m["stream"], m["seq"]) for m in first + second)
    assert got == expected(await rig.events(), streams)  # every one, exactly once
    assert len(got) == len(set(got))
    kinds = {m["stream"] for m in first + second}
    assert {"trade_request", "quote", "quote_accepted", "position_opened", "position_closed", "oracle"} <= kinds
    accepted_msg = next(m for m in first if m["stream"] == "quote_accepted")
    assert (accepted_msg["trader"], accepted_msg["maker"]) == (agent_of(ALICE), agent_of(CAROL))
    assert accepted_msg["funding_rate"] == "0.003" and accepted_msg["position_id"] == accepted["position_id"]
    opened = next(m for m in first if m["stream"] == "position_opened")
    assert opened["type"] == "position_opened.v1" and opened["size_usdc"] == "100"
    assert opened["seq"] == accepted_msg["seq"]


async def test_account_stream_needs_a_signed_upgrade(rig):
    unsigned = await rig.get("/ws?streams=account")
    assert (unsigned.status, unsigned.code) == (401, "NOT_AUTHENTICATED")
    unknown = await rig.get("/ws?streams=everything")
    assert (unknown.status, unknown.code) == (400, "UNKNOWN_STREAM")
    path = "/ws?streams=account&from_seq=1"
    headers = rig.signed_headers(ALICE, "GET", path, b"")
    await rig.faucet(BOB, 5)  # not alice's
    await rig.faucet(ALICE, 7)
    async with rig.session.ws_connect(path, headers=headers) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "subscribed"
        message = json.loads((await asyncio.wait_for(ws.receive(), 20)).data)
        assert (message["stream"], message["type"], message["agent"]) == ("account", "deposited.v1",
                                                                           agent_of(ALICE))
        assert message["amount_usdc"] == "7"


async def test_slow_consumer_is_told_and_closed(rig):
    rig.venue.config.gateway.outbound_queue_max = 3
    async with rig.session.ws_connect("/ws?streams=oracle") as ws:
        assert json.loads((await ws.receive()).data)["type"] == "subscribed"
        # One batch of 20 events: more than the connection may have waiting.
        futures = [rig.venue.sequencer.submit(_oracle(rig, i)) for i in range(20)]
        await asyncio.gather(*futures)
        messages = []
        while True:
            message = await asyncio.wait_for(ws.receive(), 20)
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            messages.append(json.loads(message.data))
    assert messages[-1]["type"] == "error" and messages[-1]["code"] == "SLOW_CONSUMER"
    assert (await rig.get("/health")).body["status"] == "ok"


def _oracle(rig, i: int):
    from engine import commands as c

    return c.OracleUpdate(0, 100_000 * 10**8 + i, 10**8, rig.clock() + i, "test")


async def test_stopping_the_venue_closes_websockets(tmp_path):
    from tests.http.conftest import start_rig

    rig = await start_rig(tmp_path)
    ws = await rig.session.ws_connect("/ws")
    assert json.loads((await ws.receive()).data)["type"] == "subscribed"
    await rig.runner.cleanup()
    closing = await asyncio.wait_for(ws.receive(), 20)
    assert closing.type == aiohttp.WSMsgType.CLOSE
    await rig.session.close()
    await rig.venue.stop()


async def test_websocket_connections_are_bounded_and_a_plain_get_is_told_to_upgrade(rig):
    from adapters.gateway import http, websocket

    assert websocket.WEBSOCKETS_MAX == 10_000
    gateway = rig.runner.app[http.GATEWAY]
    assert gateway.websockets_max == websocket.WEBSOCKETS_MAX
    plain = await rig.get("/ws")
    assert (plain.status, plain.code) == (426, "UPGRADE_REQUIRED")
    gateway.websockets_max = 1
    async with rig.session.ws_connect("/ws?streams=oracle") as ws:
        assert (await ws.receive_json())["type"] == "subscribed"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await rig.session.ws_connect("/ws?streams=oracle")
        assert refused.value.status == 429
    await eventually_closed(gateway)
    async with rig.session.ws_connect("/ws?streams=oracle") as ws:  # room again once the first closed
        assert (await ws.receive_json())["type"] == "subscribed"


async def eventually_closed(gateway) -> None:
    """Wait for the server side of every WebSocket to end (its handler's ``finally``)."""
    async with asyncio.timeout(10):
        while gateway.websockets:
            gateway.websocket_ended.clear()  # no await since the check: no end can slip between
            await gateway.websocket_ended.wait()
