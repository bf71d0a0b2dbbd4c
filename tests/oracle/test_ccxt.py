"""The CCXT median source: exact conversion and the median's rules on tables; then the real
ccxt clients against Binance and OKX simulators on loopback (a diverging exchange left out,
fewer than K fresh → no price, one down → still K); then end to end through a running venue
(``/markets`` shows the provenance; ``pyth,ccxt`` fails over to the median)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.okx import OkxSim
from adapters.hedging.sim.server import start
from adapters.oracle import ccxt_parse as p
from adapters.oracle.ccxt_client import CcxtExchange, CcxtSettings, CcxtSource
from tests.hedging.conftest import Clock
from tests.oracle.conftest import Collect

NOW = 1_700_000_000_000_000_000
SEC = 10**9


# -- conversion and the median (pure) --------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (65000.3, 6_500_030_000_000), (0.00000001, 1), (3200.12345678, 320_012_345_678), (1, 100_000_000),
    (0.000000015, p.INEXACT), (1e-9, p.INEXACT), (0.0, p.NON_POSITIVE), (-5.0, p.NON_POSITIVE),
    (float("nan"), p.MALFORMED), (float("inf"), p.MALFORMED), (True, p.MALFORMED), ("65000", p.MALFORMED),
    (1e8, p.OUT_OF_BOUNDS),
])
def test_price_to_e8_is_exact_or_dropped(value, expected):
    got = p.price_to_e8(value)
    assert (got.reason if isinstance(got, p.Drop) else got) == expected


def test_parse_quote_shapes():
    ok = p.parse_quote("a", {"symbol": "BTC/USDT:USDT", "bid": 100.5, "ask": 100.7, "timestamp": 1_000}, NOW)
    assert ok == p.Quote("a", 10_050_000_000, 10_070_000_000, 1_000 * 10**6)
    no_ts = p.parse_quote("a", {"symbol": "X", "bid": 1.0, "ask": 1.0, "timestamp": None}, NOW)
    assert no_ts.ts_ns == NOW
    assert p.parse_quote("a", {"symbol": "X", "bid": None, "ask": 1.0}, NOW).reason == p.MALFORMED
    assert p.parse_quote("a", {"symbol": "X", "bid": "1", "ask": 1.0}, NOW).reason == p.MALFORMED
    assert p.parse_quote("a", {"symbol": "X", "bid": 2.0, "ask": 1.0}, NOW).reason == p.CROSSED
    assert p.parse_quote("a", {"symbol": "X", "bid": 1.000000001, "ask": 2.0}, NOW).reason == p.INEXACT


def q(name, bid, ask, age_s=0.0):
    return p.Quote(name, bid, ask, NOW - int(age_s * SEC))


def agg(quotes, k=2, bps=50, stale_s=5, order=("a", "b", "c")):
    return p.aggregate(quotes, now_ns=NOW, stale_ns=stale_s * SEC, divergence_bps_max=bps, sources_min=k,
                       order=order)


def test_median_keeps_the_agreeing_and_drops_the_diverging():
    m = agg([q("c", 10_000, 10_002), q("a", 10_000, 10_004), q("b", 11_000, 11_002)])  # b is +10%
    assert isinstance(m, p.Median)
    assert m.kept == ("a", "c") and m.diverged == ("b",) and m.source == "ccxt:a+c"
    assert m.price_e8 == 10_002  # median of mids 10_002 and 10_001 = 10_001.5 → half-even → 10_002
    assert m.conf_e8 == 2  # max(range of mids 1, widest half book (10_004 - 10_000) / 2 = 2)
    assert m.spread_bps == 1  # range of the kept mids 1 / 10_002, 0.9998 bps, rounded up
    assert m.publish_ns == NOW


def test_confidence_is_the_spread_of_the_kept():
    m = agg([q("a", 10_000, 10_000), q("b", 10_040, 10_040), q("c", 10_020, 10_020)])
    assert m.price_e8 == 10_020 and m.conf_e8 == 40 and m.kept == ("a", "b", "c")
    assert m.spread_bps == 40  # 40 / 10_020 = 39.92 bps, rounded up
    tiny = agg([q("a", 10**9, 10**9), q("b", 10**9, 10**9 + 2)])  # mids 1 unit apart in 10^9
    assert tiny.spread_bps == 1  # 0.00001 bps: rounded up, a spread is never shown as none
    wide = agg([q("a", 100, 100), q("b", 100, 100), q("c", 400, 400)], bps=30_000)  # c kept: 300 % away
    assert wide.kept == ("a", "b", "c") and wide.spread_bps == 10_000  # 30 000 bps, at the engine's bound
    assert agg([q("a", 100, 100), q("b", 100, 100)]).spread_bps == 0


def test_fewer_than_k_fresh_is_no_price():
    d = agg([q("a", 100, 100), q("b", 100, 100, age_s=6)])
    assert d.reason == p.TOO_FEW_SOURCES and "stale: b" in d.detail
    d = agg([q("a", 100, 100), q("b", 200, 200)])  # two fresh, but they disagree: neither is within 50 bps
    assert d.reason == p.TOO_FEW_SOURCES
    assert agg([q("a", 100, 100)], k=1).price_e8 == 100


def test_publish_time_is_the_oldest_kept_and_stale_ones_are_named():
    m = agg([q("a", 100, 100, age_s=1), q("b", 100, 100, age_s=2), q("c", 100, 100, age_s=9)])
    assert m.publish_ns == NOW - 2 * SEC and m.stale == ("c",) and m.kept == ("a", "b")


# -- the real ccxt clients against simulators -----------------------------------------------

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
async def sims():
    """Three Binance simulators and one OKX simulator around the same prices."""
    made, runners = {"clock": Clock()}, []  # one clock for all: real time unless a test freezes it
    for name in ("a", "b", "c"):
        sim = BinanceSim(seed=ord(name), clock=made["clock"])
        sim.set_reference("BTCUSDT", "65000")
        sim.set_reference("ETHUSDT", "3200")
        runner, port = await start(sim.app())
        made[name] = (sim, f"http://127.0.0.1:{port}")
        runners.append(runner)
    okx = OkxSim(seed=5, clock=made["clock"])
    okx.set_reference("BTC-USDT-SWAP", "65000")
    okx.set_reference("ETH-USDT-SWAP", "3200")
    runner, port = await start(okx.app())
    made["okx"] = (okx, f"http://127.0.0.1:{port}")
    runners.append(runner)
    yield made
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(params=["rest", "ws"])
def transport(request) -> str:
    """The median's rules hold whichever way the tops of book arrive."""
    return request.param


def source(sims, names=("a", "b", "c"), kinds=None, clock=time.time_ns, **kw) -> CcxtSource:
    kinds = kinds or {}
    exchanges = tuple(CcxtExchange(n, kinds.get(n, "binanceusdm"), sims[n][1]) for n in names)
    settings = CcxtSettings(exchanges=exchanges, symbols={0: BTC, 1: ETH}, timeout_ms=1_000,
                            backoff_base_s=0.01, backoff_max_s=0.02, ws_price_interval_s=0.01, **kw)
    return CcxtSource(settings, clock)


def both_priced(sink) -> bool:
    return {u.market for u in sink.updates} == {0, 1}


async def polled(src: CcxtSource, rounds: int = 1, until=None) -> Collect:
    """Run the source until ``until(sink)`` (default: ``rounds`` rounds, each priced or dropped),
    then stop it and close its clients."""
    sink = Collect()
    done = until or (lambda sink: src.rounds >= rounds and (sink.updates or sink.drops))
    task = asyncio.create_task(src.run(sink))
    try:
        await sink.until(lambda: done(sink), timeout_s=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return sink


async def test_three_exchanges_agree(sims, transport):
    now_ns = 1_767_250_800_000 * 10**6
    sims["clock"].frozen_s = now_ns / SEC  # the exchanges' clock, frozen; the venue's 7 ms later
    sink = await polled(source(sims, poll_interval_s=0.01, clock=lambda: now_ns + 7 * 10**6, transport=transport),
                        until=lambda sink: any(u.market == 0 for u in sink.updates))
    btc = [u for u in sink.updates if u.market == 0][0]
    assert btc.source == "ccxt:a+b+c" and btc.sources == ["a", "b", "c"] and 0 <= btc.spread_bps <= 1
    assert abs(btc.price_e8 - 6_500_000_000_000) < 6_500_000_000_000 // 10_000  # within 1 bp of the reference
    assert 0 < btc.conf_e8 < 6_500_000_000_000 // 10_000
    assert btc.publish_ns == now_ns  # the exchanges' timestamp, not the time of arrival


async def test_an_exchange_moved_away_is_left_out(sims, transport):
    sims["b"][0].set_reference("BTCUSDT", "66300")  # +2%
    sink = await polled(source(sims, poll_interval_s=0.01, transport=transport), until=both_priced)
    by_market = {u.market: u for u in sink.updates}
    assert by_market[0].source == "ccxt:a+c" and by_market[1].source == "ccxt:a+b+c"
    assert abs(by_market[0].price_e8 - 6_500_000_000_000) < 6_500_000_000_000 // 10_000
    assert "diverged" in sink.notes


async def test_fewer_than_k_fresh_sources_is_no_update_and_counted(sims, transport):
    sims["b"][0].faults.outage = True  # REST answers 503, websocket handshakes too
    sims["c"][0].faults.outage = True
    src = source(sims, sources_min=2, poll_interval_s=0.01, transport=transport)
    sink = await polled(src, until=lambda sink: src.rounds >= 2 and len(sink.drops) >= 2
                        and src.status()["b"]["exchange_error"] >= 1)
    assert sink.updates == []
    assert [r for r, _ in sink.drops] == [p.TOO_FEW_SOURCES] * len(sink.drops) and len(sink.drops) >= 2
    assert src.status()["b"]["exchange_error"] >= 1


async def test_one_down_still_k(sims, transport):
    sims["c"][0].faults.outage = True
    sink = await polled(source(sims, sources_min=2, poll_interval_s=0.01, transport=transport),
                        until=lambda sink: sink.updates and "exchange_error" in sink.notes)
    assert {u.source for u in sink.updates} == {"ccxt:a+b"}
    assert "exchange_error" in sink.notes


async def test_binance_and_okx(sims, transport):
    src = source(sims, names=("a", "okx"), kinds={"okx": "okx"}, poll_interval_s=0.01, transport=transport)
    sink = await polled(src, until=both_priced)
    assert {u.source for u in sink.updates} == {"ccxt:a+okx"}
    okx_sim = sims["okx"][0]
    if transport == "rest":
        assert okx_sim.requests_by_path["/api/v5/market/tickers"] >= 1  # after the instruments
    else:  # the instruments over REST, then the tops of book by websocket only
        assert okx_sim.requests_by_path == {"/api/v5/public/instruments": 1}
        assert sims["a"][0].requests_by_path == {"/fapi/v1/exchangeInfo": 1}


async def test_request_budget_bounds_the_rounds(sims):
    src = source(sims, names=("a", "b"), requests_per_10s=3, poll_interval_s=0.0, transport="rest")
    sink = Collect()
    task = asyncio.create_task(src.run(sink))
    try:
        await sink.until(lambda: "budget" in sink.notes, timeout_s=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sims["a"][0].requests <= 3 and sims["b"][0].requests <= 3  # markets + 2 rounds, then skipped
    assert len(sink.updates) == 2 * 2  # two rounds, two markets


# -- end to end through a running venue -----------------------------------------------------

async def venue_with(tmp_path, hermes_url, oracle: dict):
    from tests.oracle.test_venue_oracle import start_venue

    return await start_venue(tmp_path, {"pyth_base_url": hermes_url, **oracle})


def ccxt_oracle(sims, names=("a", "b", "okx")) -> dict:
    return {"ccxt_exchanges": {n: ("okx" if n == "okx" else "binanceusdm") for n in names},
            "ccxt_base_urls": {n: sims[n][1] for n in names},
            "ccxt_symbols": {"BTC-PERP": BTC, "ETH-PERP": ETH}, "ccxt_poll_interval_ms": 50,
            "ccxt_timeout_ms": 1_000, "ccxt_requests_per_10s": 1_000}


async def test_venue_priced_by_the_median_shows_its_provenance(tmp_path, hermes, sims):
    from tests.oracle.test_venue_oracle import Durable, get

    venue, runner, session = await venue_with(tmp_path, hermes.url, {"source": "ccxt", **ccxt_oracle(sims)})
    try:
        durable = Durable(venue)
        first = await durable.until(lambda e: e.market == 0 and e.source == "ccxt:a+b+okx")
        assert first.sources == ["a", "b", "okx"] and first.feed_id == "" and first.ema_price_e8 == 0
        assert 0 <= first.spread_bps <= 5  # the simulators' books sit a few ticks around 65 000
        sims["b"][0].set_reference("BTCUSDT", "70000")  # b wanders off: left out of BTC, kept for ETH
        left_out = await durable.until(lambda e: e.market == 0 and e.source == "ccxt:a+okx")
        assert left_out.sources == ["a", "okx"]  # the journaled OracleUpdated names the exchanges kept
        markets = {m["market"]: m for m in await get(session, "/markets")}
        assert markets["BTC-PERP"]["oracle_source"] == "ccxt:a+okx"
        assert markets["ETH-PERP"]["oracle_source"] == "ccxt:a+b+okx"
        assert abs(float(markets["BTC-PERP"]["price"]) - 65_000) < 10
        exchanges = (await get(session, "/health"))["oracle"]["sources"]["ccxt"]  # CcxtSource.status()
        assert list(exchanges) == ["a", "b", "okx"] and exchanges["b"]["diverged"] >= 1
        assert set(exchanges["a"]) == {"exchange_error", "budget", "diverged", "stale", "ws_reconnect"}  # 0 or not
        # on defaults the tops of book came by websocket: REST loaded the markets, nothing more
        assert all(sims[n][0].requests_by_path == {path: 1} for n, path in
                   (("a", "/fapi/v1/exchangeInfo"), ("b", "/fapi/v1/exchangeInfo"), ("okx", "/api/v5/public/instruments")))
        assert all(exchanges[n]["ws_reconnect"] == 0 for n in exchanges)
        metrics = await get(session, "/metrics")
        assert 'agentperp_oracle_source_events_total{event="diverged",source="ccxt"}' in metrics
        exchanges = (await get(session, "/health"))["oracle"]["sources"]["ccxt"]  # read after the metrics: >= them
        served = {(m["exchange"], m["event"]): float(m["value"]) for m in re.finditer(
            r'agentperp_oracle_exchange_events_total\{event="(?P<event>\w+)",exchange="(?P<exchange>\w+)",'
            r'source="ccxt"\} (?P<value>[0-9.]+)', metrics)}
        assert set(served) == {(x, e) for x in exchanges for e in exchanges[x]}  # every exchange, every count
        assert 1 <= served[("b", "diverged")] <= exchanges["b"]["diverged"]
        assert all(served[k] <= exchanges[k[0]][k[1]] for k in served)
    finally:
        await session.close()
        await runner.cleanup()
        await venue.stop()


async def test_pyth_primary_fails_over_to_the_ccxt_median(tmp_path, hermes, sims):
    from tests.oracle.conftest import BTC as BTC_FEED
    from tests.oracle.test_venue_oracle import Durable, get, switched

    venue, runner, session = await venue_with(tmp_path, hermes.url, {
        "source": "pyth,ccxt", "stale_ms": 1_500, "failback_ms": 100, **ccxt_oracle(sims, ("a", "b"))})
    try:
        durable = Durable(venue)
        await durable.until(lambda e: e.market == 0 and e.source == f"pyth:{BTC_FEED}")
        to_check = switched(venue.oracle_feed, 0, "ccxt")
        async with asyncio.timeout(15):
            await to_check.wait()  # Hermes publishes nothing more: pyth is stale after 1.5 s
        await durable.until(lambda e: e.market == 0 and e.source == "ccxt:a+b")
        health = await get(session, "/health")
        assert health["oracle"]["markets"]["BTC-PERP"]["source"] == "ccxt"
        assert {m["market"]: m["oracle_source"] for m in await get(session, "/markets")}["BTC-PERP"] == "ccxt:a+b"
        assert venue.oracle_feed.rejected == {}
    finally:
        await session.close()
        await runner.cleanup()
        await venue.stop()
