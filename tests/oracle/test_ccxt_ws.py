"""The CCXT median by websocket: the real ccxt pro clients against the Binance and OKX
simulators' websockets on loopback. A move on the exchanges reaches the sink with no REST
request after start; a websocket the exchange kills falls back to REST (counted) and comes
back when it heals; hostile frames are dropped with a reason while the source keeps serving.
Every wait is on an event (the sink, the simulators' counters), never a sleep."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from adapters.oracle import ccxt_parse as p
from adapters.oracle.ccxt_client import CcxtSource
from tests.oracle.conftest import Collect, running
from tests.oracle.test_ccxt import both_priced, sims, source  # noqa: F401 (sims: the fixture)

KINDS = {"a": "binanceusdm", "okx": "okx"}
TICKER_PATH = {"a": "/fapi/v1/ticker/bookTicker", "okx": "/api/v5/market/tickers"}
MARKETS_PATH = {"a": "/fapi/v1/exchangeInfo", "okx": "/api/v5/public/instruments"}
BTC_BOOK = {"a": "BTCUSDT", "okx": "BTC-USDT-SWAP"}


def ws_source(sims, **kw) -> CcxtSource:  # noqa: F811
    return source(sims, names=tuple(KINDS), kinds={"okx": "okx"}, poll_interval_s=0.01, transport="ws", **kw)


def move(sims, usd: str) -> None:  # noqa: F811
    for name in KINDS:
        sims[name][0].set_reference(BTC_BOOK[name], usd)


def priced_near(sink, usd: int) -> bool:
    """BTC priced from both exchanges within 10 bps of ``usd`` (the books wander a few ticks)."""
    return any(u.market == 0 and u.source == "ccxt:a+okx" and abs(u.price_e8 - usd * 10**8) < usd * 10**5
               for u in sink.updates)


async def test_a_move_reaches_the_sink_by_websocket_alone(sims):  # noqa: F811
    src = ws_source(sims)
    sink = Collect()
    async with running(src, sink):
        await sink.until(lambda: both_priced(sink))
        rest_at_start = {n: dict(sims[n][0].requests_by_path) for n in KINDS}
        move(sims, "66000")
        await sink.until(lambda: priced_near(sink, 66_000))
        assert {n: sims[n][0].requests_by_path for n in KINDS} == rest_at_start  # nothing since start...
        assert rest_at_start == {n: {MARKETS_PATH[n]: 1} for n in KINDS}  # ...and then only the markets
        assert all(counts["ws_reconnect"] == 0 for counts in src.status().values())
        assert all(sims[n][0].ws.pushed >= 3 for n in KINDS)  # BTC and ETH at subscription, BTC's move


@pytest.mark.parametrize("name", list(KINDS))
async def test_a_killed_websocket_falls_back_to_rest_and_returns(sims, name):  # noqa: F811
    sim = sims[name][0]
    src = ws_source(sims)
    sink = Collect()
    async with running(src, sink):
        await sink.until(lambda: both_priced(sink))
        x = next(e for e in src.exchanges if e.config.name == name)
        sim.faults.ws_down = True  # redials refused (503) until it heals
        assert await sim.ws.drop_all(abrupt=True) == 1  # the TCP link cut, no close frame
        await sink.until(lambda: src.status()[name]["ws_reconnect"] == 1
                         and sim.requests_by_path.get(TICKER_PATH[name], 0) >= 1)
        move(sims, "66000")  # reaches the sink: over REST from this exchange
        await sink.until(lambda: priced_near(sink, 66_000))
        assert not x.ws_up

        sim.faults.ws_down = False
        await sink.until(lambda: x.ws_up)
        await asyncio.wait_for(x.rest_idle.wait(), 10)  # the stand-in's last request, if one was out, answered
        rest_healed = dict(sim.requests_by_path)
        move(sims, "67000")
        await sink.until(lambda: priced_near(sink, 67_000))
        assert sim.requests_by_path == rest_healed  # back on the websocket: REST stands down
        assert src.status()[name]["ws_reconnect"] == 1  # one loss, however many redials were refused
        assert len(sim.ws.connections) == 1


HOSTILE = {  # (frame, the reason it is dropped for)
    "a": [
        ('{"e":"bookTicker","s":"BTCUSDT","b":', p.MALFORMED),  # not JSON
        ('{"e":"bookTicker","s":"BTCUSDT","b":65000.1,"B":"1","a":"65000.2","A":"1","E":1}', p.MALFORMED),  # a number
        ('{"e":"bookTicker","s":"BTCUSDT","b":"1e3","B":"1","a":"65000.2","A":"1","E":1}', p.MALFORMED),  # not decimal
        ('[1, 2]', p.MALFORMED),
        ('hello', p.MALFORMED),
        ('{"e":"depthUpdate","s":"BTCUSDT"}', p.MALFORMED),  # an event not subscribed to
        ('{"e":["bookTicker"]}', p.MALFORMED),
        ('{"e":"bookTicker","s":"BTCUSDT","b":"99999999999","B":"1","a":"99999999999.5","A":"1","E":%NOW%}',
         p.OUT_OF_BOUNDS),  # absurd: above the engine's price bound
    ],
    "okx": [
        ('{"arg":{"channel":"bbo-tbt"', p.MALFORMED),
        ('{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[[1,"1","0","1"]],"bids":[],'
         '"ts":"1"}]}', p.MALFORMED),  # a number where OKX sends a string
        ('{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[],"bids":[],"ts":1}]}', p.MALFORMED),
        ('{"arg":{"channel":["tickers"]},"data":[]}', p.MALFORMED),
        ('ping', p.MALFORMED),  # only the client pings
        ('{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT-SWAP"},"data":[{"asks":[["99999999999","1","0","1"]],'
         '"bids":[["99999999998","1","0","1"]],"ts":"%NOW%"}]}', p.OUT_OF_BOUNDS),
    ],
}


async def test_a_market_load_slower_than_the_stream_timeout_keeps_the_rest_stand_in(sims):  # noqa: F811
    """ccxt shares one market load between callers: the stream's timeout must not cancel it
    under the REST stand-in, which would end the stand-in for good (found by review)."""
    slow = sims["a"][0]
    slow.faults.latency_by_path_s[MARKETS_PATH["a"]] = 0.5  # longer than stale_s
    slow.faults.ws_down = True  # and no websocket: REST must stand in
    src = ws_source(sims, stale_s=0.3)
    sink = Collect()
    async with running(src, sink):
        await sink.until(lambda: slow.requests_by_path.get(TICKER_PATH["a"], 0) >= 2)  # asked, and again
    assert src.status()["a"]["ws_reconnect"] >= 1


async def test_hostile_frames_are_dropped_and_the_source_keeps_serving(sims):  # noqa: F811
    src = ws_source(sims)
    sink = Collect()
    async with running(src, sink):
        await sink.until(lambda: both_priced(sink))
        for name, frames in HOSTILE.items():
            sim = sims[name][0]
            for frame, _ in frames:
                assert sim.ws.inject(frame.replace("%NOW%", str(sim.now_ms()))) == 1
        expected = Counter(reason for frames in HOSTILE.values() for _, reason in frames)
        await sink.until(lambda: all(Counter(r for r, _ in sink.drops)[r] >= n for r, n in expected.items()))
        details = [d for r, d in sink.drops if r == p.MALFORMED]
        assert sum(d.startswith("a ws: ") for d in details) == expected_for("a", p.MALFORMED)
        assert sum(d.startswith("okx ws: ") for d in details) == expected_for("okx", p.MALFORMED)
        move(sims, "66000")  # still serving, by websocket
        await sink.until(lambda: priced_near(sink, 66_000))
        assert all(counts["ws_reconnect"] == 0 for counts in src.status().values())
        assert all(sims[n][0].requests_by_path == {MARKETS_PATH[n]: 1} for n in KINDS)


def expected_for(name: str, reason: str) -> int:
    return sum(r == reason for _, r in HOSTILE[name])


async def test_a_silent_websocket_counts_as_lost(sims):  # noqa: F811
    """Frozen books push nothing after the first tops: after ``stale_s`` of silence the stream
    cannot give a fresh price, so REST stands in (and the stream is redialled)."""
    now_s = 1_767_250_800.0
    sims["clock"].frozen_s = now_s
    src = ws_source(sims, stale_s=0.3, clock=lambda: int(now_s * 10**9))
    sink = Collect()
    async with running(src, sink):
        await sink.until(lambda: all(src.status()[n]["ws_reconnect"] >= 1 for n in KINDS)
                         and all(sims[n][0].requests_by_path.get(TICKER_PATH[n], 0) >= 1 for n in KINDS))
        assert "ws_reconnect" in sink.notes


BOOK_TICKER = {"e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": "65000.10", "B": "1", "a": "65000.20", "A": "2",
               "T": 1, "E": 2}  # Binance USDⓈ-M's own example shape
BBO = {"arg": {"channel": "bbo-tbt", "instId": "BTC-USDT-SWAP"},
       "data": [{"asks": [["65000.2", "1.88", "0", "17"]], "bids": [["65000.1", "0.57", "0", "2"]], "ts": "1651826598363",
                 "seqId": 7}]}


@pytest.mark.parametrize("kind, message, reason", [
    ("binanceusdm", BOOK_TICKER, None),
    ("binanceusdm", {k: v for k, v in BOOK_TICKER.items() if k != "e"}, None),  # once sent without "e"
    ("binanceusdm", {"result": None, "id": 1}, None),
    ("binanceusdm", {"error": {"code": 2, "msg": "Invalid request"}, "id": 1}, None),
    ("binanceusdm", {**BOOK_TICKER, "b": 65000.1}, p.MALFORMED),
    ("binanceusdm", {**BOOK_TICKER, "a": "-1"}, p.MALFORMED),
    ("binanceusdm", {**BOOK_TICKER, "a": "1" * 21}, p.MALFORMED),  # beyond any price, even absurd ones
    ("binanceusdm", {**BOOK_TICKER, "a": "NaN"}, p.MALFORMED),
    ("binanceusdm", {**BOOK_TICKER, "s": 5}, p.MALFORMED),
    ("binanceusdm", {**BOOK_TICKER, "e": "trade"}, p.MALFORMED),
    ("binanceusdm", {"result": None, "id": "x"}, p.MALFORMED),
    ("binanceusdm", "pong", p.MALFORMED),
    ("binanceusdm", p.NotJson("{nope"), p.MALFORMED),
    ("okx", BBO, None),
    ("okx", "pong", None),
    ("okx", {"event": "subscribe", "arg": {"channel": "bbo-tbt", "instId": "BTC-USDT-SWAP"}, "connId": "a"}, None),
    ("okx", {"event": "error", "code": "60018", "msg": "doesn't exist", "connId": "a"}, None),
    ("okx", {"arg": {"channel": "tickers", "instId": "BTC-USDT-SWAP"},
             "data": [{"instId": "BTC-USDT-SWAP", "bidPx": "1.5", "askPx": "1.6", "ts": "1", "last": "1.5"}]}, None),
    ("okx", {**BBO, "data": []}, p.MALFORMED),
    ("okx", {**BBO, "data": BBO["data"] * 2}, p.MALFORMED),
    ("okx", {**BBO, "data": [{**BBO["data"][0], "ts": 1651826598363}]}, p.MALFORMED),
    ("okx", {**BBO, "data": [{**BBO["data"][0], "asks": [["1e9", "1", "0", "1"]]}]}, p.MALFORMED),
    ("okx", {**BBO, "arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}}, p.MALFORMED),
    ("okx", {"event": 5}, p.MALFORMED),
    ("okx", [BBO], p.MALFORMED),
    ("okx", "ping", p.MALFORMED),
])
def test_screen_ws(kind, message, reason):
    got = p.screen_ws(kind, message)
    assert (got.reason if got is not None else None) == reason
