"""The simulators' websockets as a raw client sees them: Binance USDⓈ-M market streams and OKX
v5 public channels (requests, acknowledgements, errors, pushes on a book move), and their
bounds: connections per simulator, subscriptions per connection, faults closing them."""

from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import aiohttp
import pytest

from adapters.hedging.sim import ws as sim_ws
from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.book import SymbolSpec
from adapters.hedging.sim.okx import Instrument, OkxSim
from adapters.hedging.sim.server import start
from tests.hedging.conftest import Clock

RECEIVE_TIMEOUT_S = 10  # a bound on a wait for a frame, never a pause


@pytest.fixture
async def served():
    """``serve(sim) -> ws base URL``; everything closed after the test."""
    runners, session = [], aiohttp.ClientSession()

    async def serve(sim) -> str:
        runner, port = await start(sim.app())
        runners.append(runner)
        return f"ws://127.0.0.1:{port}"

    serve.session = session
    yield serve
    await session.close()
    for runner in runners:
        await runner.cleanup()


async def frame(ws):
    message = await ws.receive(timeout=RECEIVE_TIMEOUT_S)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return message.data if message.data == "pong" else json.loads(message.data)


def frozen_clock() -> Clock:
    """Books that never wander on their own: the frames a test reads are the ones it caused."""
    clock = Clock()
    clock.frozen_s = 1_000.0
    return clock


async def test_binance_book_ticker_stream(served):
    sim = BinanceSim(clock=frozen_clock())
    url = await served(sim)
    async with served.session.ws_connect(f"{url}/public/ws/0") as ws:  # where ccxt pro dials
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@bookTicker", "nope@x"], "id": 1}))
        assert await frame(ws) == {"result": None, "id": 1}
        first = await frame(ws)
        assert first["e"] == "bookTicker" and first["s"] == "BTCUSDT" and set(first) == set("eusbBaAET")
        assert Decimal(first["b"]) < Decimal(first["a"])
        sim.set_reference("BTCUSDT", "70000")  # the book moves: pushed at once
        moved = await frame(ws)
        assert abs(Decimal(moved["b"]) - 70000) < 1 and moved["u"] > first["u"]
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert await frame(ws) == {"result": ["btcusdt@bookTicker"], "id": 2}
        await ws.send_str("{not json")
        assert (await frame(ws))["error"]["code"] == 3
        await ws.send_str(json.dumps({"method": "TRADE", "id": 3}))
        assert await frame(ws) == {"error": {"code": 2, "msg": "Invalid request: unknown variant, expected one of "
                                             "SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS"}, "id": 3}
    assert sim.requests == 0 and sim.requests_by_path == {}  # websockets are not REST requests


async def test_binance_stream_named_in_the_url(served):
    sim = BinanceSim(clock=frozen_clock())
    url = await served(sim)
    async with served.session.ws_connect(f"{url}/ws/ethusdt@bookTicker") as ws:
        assert (await frame(ws))["s"] == "ETHUSDT"


async def test_a_new_subscriber_never_swallows_a_move_the_others_have_not_seen():
    """A subscription reads the book (refreshing it when due): a move found so goes to the
    subscribers already there, then the newcomer gets the current top (found by review: the
    move was recorded as pushed and sent to the newcomer only)."""
    clock = frozen_clock()
    sim = BinanceSim(seed=1, clock=clock)
    sim.set_reference("BTCUSDT", "65000")
    old, new = (sim_ws.Connection(None, SimpleNamespace(closed=False)) for _ in range(2))
    sim.ws.connections.update({old, new})  # as the websocket handler registers them
    sim.ws.subscribe(old, ("bookTicker", "BTCUSDT"))
    first = json.loads(old.outbox.get_nowait())
    clock.frozen_s += 3_600  # the book wanders when next read
    sim.ws.subscribe(new, ("bookTicker", "BTCUSDT"))
    now = json.loads(new.outbox.get_nowait())
    assert (now["b"], now["a"]) != (first["b"], first["a"])  # it moved
    assert json.loads(old.outbox.get_nowait()) == now  # and the old subscriber saw the same top
    sim.ws.poke("BTCUSDT")  # the watcher's next look: nothing new to anyone
    assert old.outbox.empty() and new.outbox.empty()


async def test_okx_public_channels(served):
    sim = OkxSim(clock=frozen_clock())
    url = await served(sim)
    async with served.session.ws_connect(f"{url}/ws/v5/public") as ws:
        await ws.send_str("ping")
        assert await frame(ws) == "pong"
        arg = {"channel": "bbo-tbt", "instId": "BTC-USDT-SWAP"}
        await ws.send_str(json.dumps({"op": "subscribe", "args": [arg, {"channel": "tickers", "instId": "ETH-USDT-SWAP"}]}))
        assert (await frame(ws))["event"] == "subscribe"
        bbo = await frame(ws)
        assert bbo["arg"] == arg and len(bbo["data"]) == 1 and len(bbo["data"][0]["asks"]) == 1
        assert (await frame(ws))["event"] == "subscribe"
        ticker = await frame(ws)
        assert ticker["arg"]["channel"] == "tickers" and ticker["data"][0]["instId"] == "ETH-USDT-SWAP"
        sim.set_reference("BTC-USDT-SWAP", "70000")
        moved = await frame(ws)
        assert moved["arg"] == arg and abs(Decimal(moved["data"][0]["bids"][0][0]) - 70000) < 1
        await ws.send_str(json.dumps({"op": "subscribe", "args": [{"channel": "bbo-tbt", "instId": "DOGE-USDT-SWAP"}]}))
        assert (await frame(ws))["code"] == "60018"
        await ws.send_str(json.dumps({"op": "login", "args": []}))
        assert (await frame(ws))["code"] == "60012"


@pytest.mark.parametrize("make, path", [(lambda: BinanceSim(clock=Clock()), "/ws"),
                                        (lambda: OkxSim(clock=Clock()), "/ws/v5/public")])
async def test_connections_are_bounded_and_faults_close_them(served, make, path):
    sim = make()
    url = await served(sim)
    opened = [await served.session.ws_connect(url + path) for _ in range(sim_ws.WS_CONNECTIONS_MAX)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await served.session.ws_connect(url + path)
    assert refused.value.status == 429 and sim.ws.refused == 1
    await opened.pop().close()
    sim.faults.ws_down = True  # the watcher closes the rest (going away); handshakes get 503
    for ws in opened:
        assert (await ws.receive(timeout=RECEIVE_TIMEOUT_S)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError) as down:
        await served.session.ws_connect(url + path)
    assert down.value.status == 503


def many_binance(n: int) -> BinanceSim:
    specs = {f"C{i}USDT": SymbolSpec(f"C{i}USDT", f"C{i}", Decimal("0.01"), Decimal("1"), Decimal("1"),
                                     Decimal("1000"), Decimal("5"), 2, 0) for i in range(n)}
    return BinanceSim(clock=Clock(), specs=specs, references={s: Decimal(100) for s in specs},
                      depth={s: Decimal(10) for s in specs})


def many_okx(n: int) -> OkxSim:
    instruments = {f"C{i}-USDT-SWAP": Instrument(f"C{i}-USDT-SWAP", f"C{i}", Decimal(1), Decimal("0.01"),
                                                 Decimal("0.01"), Decimal("0.01")) for i in range(n)}
    return OkxSim(clock=Clock(), instruments=instruments, references={i: Decimal(100) for i in instruments},
                  depth={i: Decimal(10) for i in instruments})


async def test_binance_subscriptions_per_connection_are_bounded(served):
    limit = sim_ws.WS_SUBSCRIPTIONS_PER_CONNECTION_MAX
    url = await served(many_binance(limit + 1))
    async with served.session.ws_connect(f"{url}/ws") as ws:
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": [f"c{i}usdt@bookTicker" for i in range(limit)],
                                      "id": 1}))
        assert await frame(ws) == {"result": None, "id": 1}
        for _ in range(limit):
            assert (await frame(ws))["e"] == "bookTicker"
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": [f"c{limit}usdt@bookTicker"], "id": 2}))
        refused = await frame(ws)
        assert refused["id"] == 2 and refused["error"]["code"] == 2 and str(limit) in refused["error"]["msg"]


async def test_okx_subscriptions_per_connection_are_bounded(served):
    limit = sim_ws.WS_SUBSCRIPTIONS_PER_CONNECTION_MAX
    url = await served(many_okx(limit + 1))
    async with served.session.ws_connect(f"{url}/ws/v5/public") as ws:
        args = [{"channel": "bbo-tbt", "instId": f"C{i}-USDT-SWAP"} for i in range(limit + 1)]
        await ws.send_str(json.dumps({"op": "subscribe", "args": args}))
        for _ in range(limit):
            assert (await frame(ws))["event"] == "subscribe"
            assert "data" in await frame(ws)
        refused = await frame(ws)
        assert refused["event"] == "error" and refused["code"] == "60012" and str(limit) in refused["msg"]


async def test_a_reader_too_far_behind_is_disconnected(served):
    sim = BinanceSim(clock=Clock())
    url = await served(sim)
    async with served.session.ws_connect(f"{url}/ws") as ws:
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        assert await frame(ws) == {"result": [], "id": 1}  # the connection is served
        # queued at once, before the sender can drain any: the one past the bound is refused
        assert sum(sim.ws.inject("{}") for _ in range(sim_ws.WS_SEND_QUEUE_MAX + 1)) == sim_ws.WS_SEND_QUEUE_MAX
        while (message := await ws.receive(timeout=RECEIVE_TIMEOUT_S)).type == aiohttp.WSMsgType.TEXT:
            pass
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1008
