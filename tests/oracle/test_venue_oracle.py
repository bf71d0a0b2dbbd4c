"""The oracle end to end through a running venue: Pyth on a loopback Hermes as primary, the
synthetic walk as check; failover and failback journaled (an OracleSourceSwitched before the
first OracleUpdated from the new source; the journal replays and verifies), /markets, /health and /metrics; hostile answers dropped while the venue runs; a
recorded feed replayed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from adapters.gateway import http
from adapters.oracle import feed as f
from adapters.oracle.recorded import Recorder, encode_line, RecordedUpdate
from adapters.oracle.synthetic import SyntheticOracle
from engine import events as ev
from ledger.records import decode_record
from replay.export import export
from replay.source import ReplayJournal
from replay.verify import verify
from tests.oracle.conftest import BTC, ETH
from venue.app import Venue
from venue.config import load


class Durable:
    """The venue's durable OracleUpdated events, awaited (hub listener: no polling, no sleep)."""

    def __init__(self, venue: Venue, *, since_start: bool = False):
        """``since_start``: also what became durable before this listener (the feed starts with
        the venue), read from the journal up to the hub's last delivered seq; the listener
        delivers every later one. Otherwise only what becomes durable from now on."""
        from ledger.journal import JournalReader
        from ledger.recovery import JOURNAL_DIR

        delivered = venue.hub.last_seq if since_start else 0
        self.events: list[ev.OracleUpdated] = [
            e for _, payload in JournalReader(Path(venue.config.venue.data_dir) / JOURNAL_DIR).read(from_seq=1)
            for e in decode_record(payload).events if type(e) is ev.OracleUpdated and e.seq <= delivered]
        self._changed = asyncio.Event()
        venue.hub.listen(self._on)

    def _on(self, events):
        found = [e for e in events if type(e) is ev.OracleUpdated]
        if found:
            self.events += found
            self._changed.set()

    async def until(self, predicate, timeout_s: float = 10.0) -> ev.OracleUpdated:
        async with asyncio.timeout(timeout_s):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()


async def start_venue(tmp_path, oracle: dict):
    config = load(env={}, overrides={
        "venue": {"data_dir": str(tmp_path / "data"), "demo": False, "fsync": "none"},
        "gateway": {"tcp_port": 0, "http_port": 0},
        "oracle": {"step_bps": 0.01, "jump_probability": 0.0, "interval_ms": 50, "watch_interval_ms": 50,
                   "pyth_backoff_base_ms": 10, "pyth_backoff_max_ms": 50, **oracle}})
    venue = Venue(config)
    await venue.start(serve=False)
    runner, port = await http.serve(venue)
    session = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}")
    return venue, runner, session


@pytest.fixture
async def stack(tmp_path, hermes):
    opened = []

    async def open_(oracle: dict):
        venue, runner, session = await start_venue(tmp_path, {"pyth_base_url": hermes.url, **oracle})
        opened.append((venue, runner, session))
        return venue, session

    yield open_
    for venue, runner, session in opened:
        await session.close()
        await runner.cleanup()
        await venue.stop()


async def get(session, path):
    async with session.get(path) as response:
        return await (response.json() if path != "/metrics" else response.text())


def switched(feed, market: int, to: str) -> asyncio.Event:
    done = asyncio.Event()
    if feed.active[market].name == to:  # already (a loaded machine may get there first)
        done.set()
    feed.on_switch.append(lambda m, old, new, reason: done.set() if (m, new) == (market, to) else None)
    return done


async def test_stale_primary_fails_over_to_the_check_and_back(stack, hermes, tmp_path):
    venue, session = await stack({"source": "pyth,synthetic", "stale_ms": 1_500, "failback_ms": 100})
    durable = Durable(venue)
    latest = await durable.until(lambda e: e.market == 0 and e.source == f"pyth:{BTC}")  # the latest answer
    assert (latest.feed_id, latest.ema_price_e8, latest.sources) == (BTC, latest.price_e8, [])  # sim EMA = price
    markets = await get(session, "/markets")
    assert markets[0]["oracle_source"] == f"pyth:{BTC}" and markets[0]["price"] == "65000"

    to_check = switched(venue.oracle_feed, 0, "synthetic")
    async with asyncio.timeout(10):
        await to_check.wait()  # Hermes publishes nothing: stale after 1.5 s
    await durable.until(lambda e: e.market == 0 and e.source == "synthetic")
    health = await get(session, "/health")
    assert health["oracle"]["markets"]["BTC-PERP"]["source"] == "synthetic"
    assert health["oracle"]["last_switches"][0]["reason"] == f.STALE
    assert 'agentperp_oracle_failovers_total{from_source="pyth",market="BTC-PERP",reason="stale",' \
           'to_source="synthetic"} 1.0' in await get(session, "/metrics")

    back = switched(venue.oracle_feed, 0, "pyth")
    hermes.publish()
    async with asyncio.timeout(10):
        await back.wait()
    hermes.publish(publish_time=int(time.time()) + 2)  # after the synthetic prices the engine has
    seen = len(durable.events)
    await durable.until(lambda e: e.market == 0 and e.source == f"pyth:{BTC}" and durable.events.index(e) >= seen)
    assert (await get(session, "/health"))["oracle"]["markets"]["BTC-PERP"]["source"] == "pyth"
    assert venue.oracle_feed.rejected == {}  # the engine never saw an older price

    # The journal says so: each switch of BTC as an event, before the new source's first price.
    btc = [e for e in ReplayJournal(tmp_path / "data").events()
           if type(e) in (ev.OracleSourceSwitched, ev.OracleUpdated) and e.market == 0]
    switches = [(i, e) for i, e in enumerate(btc) if type(e) is ev.OracleSourceSwitched]
    assert [(e.from_source, e.to_source, e.reason) for _, e in switches] == [
        ("pyth", "synthetic", f.STALE), ("synthetic", "pyth", f.RECOVERED)]
    for i, switch in switches:  # the last price before it is the old source's, the first after it the new's
        source = [e.source.split(":")[0] for e in btc if type(e) is ev.OracleUpdated]
        before = [e for e in btc[:i] if type(e) is ev.OracleUpdated]
        assert source[len(before) - 1] == switch.from_source and source[len(before)] == switch.to_source
    result = verify(tmp_path / "data")
    assert result.ok, result.divergence
    exported = export(tmp_path / "data", tmp_path / "out", "csv")
    assert exported.rows["oracle_switches"] == sum(type(e) is ev.OracleSourceSwitched
                                                   for e in ReplayJournal(tmp_path / "data").events()) >= 2


async def test_diverging_primary_is_dropped_for_that_market_only(stack, hermes):
    # Hermes publishes only when told: a stale bound beyond the test's length, so a loaded machine
    # never turns the divergence it waits for into staleness.
    venue, session = await stack({"source": "pyth,synthetic", "divergence_bps_max": 100, "stale_ms": 3_600_000})
    durable = Durable(venue)
    await durable.until(lambda e: e.market == 1 and e.source == f"pyth:{ETH}")  # the first answer (polled)
    await hermes.wait_for(lambda: hermes.stream_count == 1)  # a publish before the stream is open reaches no one
    diverged = switched(venue.oracle_feed, 0, "synthetic")
    hermes.set_price(BTC, 7_150_000_000_000)  # +10%
    hermes.publish(publish_time=int(time.time()) + 1)  # not the first answer's second (a repeat is dropped)
    async with asyncio.timeout(10):
        await diverged.wait()
    await durable.until(lambda e: e.market == 0 and e.source == "synthetic")
    sources = {symbol: m["source"] for symbol, m in (await get(session, "/health"))["oracle"]["markets"].items()}
    assert sources == {"BTC-PERP": "synthetic", "ETH-PERP": "pyth", "SOL-PERP": "pyth"}
    assert venue.oracle_feed.switches[-1]["reason"] == f.DIVERGED


async def test_hostile_answers_are_dropped_and_counted_while_the_venue_runs(stack, hermes):
    venue, session = await stack({"source": "pyth"})
    durable = Durable(venue)
    await durable.until(lambda e: e.market == 0)
    await hermes.wait_for(lambda: hermes.stream_count == 1)
    hermes.send_raw('{"binary": {"encoding": "hex", "data": []}, "parsed": [{"id": 1, "price": []}]}')
    hermes.skew_s = 3_600  # a publisher clock an hour ahead
    hermes.publish([BTC])
    hermes.skew_s = 0
    hermes.publish([ETH], publish_time=1_000_000)  # far backwards
    hermes.set_price(ETH, -1)
    hermes.publish([ETH], publish_time=int(time.time()) + 1)
    hermes.set_price(ETH, 330_000_000_000)
    hermes.publish([ETH], publish_time=int(time.time()) + 2)
    await durable.until(lambda e: e.market == 1 and e.price_e8 == 330_000_000_000)
    dropped = (await get(session, "/health"))["oracle"]["dropped"]["pyth"]
    assert dropped == {"malformed": 1, "future": 1, "backwards": 1, "non_positive": 1}
    assert 'agentperp_oracle_dropped_total{reason="future",source="pyth"} 1.0' in await get(session, "/metrics")
    assert [e.price_e8 for e in durable.events if e.market == 0] == [6_500_000_000_000]


async def test_recorded_feed_replays_into_the_venue(stack, tmp_path):
    path = tmp_path / "feed.jsonl"
    walk = SyntheticOracle(["BTC-PERP", "ETH-PERP"], seed=3, step_bps=8, jump_probability=0, jump_bps=0,
                           conf_bps=5, start_prices={"BTC-PERP": 65_000.0, "ETH-PERP": 3_200.0})
    t0 = time.time_ns() - 10**9
    with path.open("wb") as file:
        recorder = Recorder(file, ["BTC-PERP", "ETH-PERP"])
        for step in range(20):
            for update in walk.step_updates(t0 + step * 100_000_000):
                recorder.update(update)
        # provenance is kept through a recording (and a line written before it existed still reads)
        file.write(encode_line(RecordedUpdate("ETH-PERP", 320_000_000_000, 0, t0 + 3 * 10**9, "ccxt",
                                              feed_id="ETH/USDT", sources=["binance", "okx"], spread_bps=2)))
        file.write(b'{"market":"ETH-PERP","price_e8":320100000000,"conf_e8":0,"publish_ns":%d,"source":"old"}\n'
                   % (t0 + 4 * 10**9))
        file.write(b"{broken\n")
        file.write(encode_line(RecordedUpdate("DOGE-PERP", 1, 0, t0 + 3 * 10**9, "synthetic")))
    venue, session = await stack({"source": "recorded", "recorded_path": str(path), "recorded_speed": 20.0,
                                  "recorded_loop": False})
    durable = Durable(venue, since_start=True)  # the feed may have delivered its first lines already
    last = await durable.until(lambda e: e.market == 1 and e.price_e8 == recorder_last(path, "ETH-PERP"))
    assert last.source == "recorded:old" and (last.feed_id, last.sources) == ("", [])
    ccxt = next(e for e in durable.events if e.source == "recorded:ccxt")
    assert (ccxt.feed_id, ccxt.sources, ccxt.spread_bps) == ("ETH/USDT", ["binance", "okx"], 2)
    assert all(e.source == "recorded:synthetic" for e in durable.events if e.market == 0)
    assert len([e for e in durable.events if e.market == 0]) == 20
    assert venue.oracle_feed.dropped == {("recorded", "malformed"): 1, ("recorded", "unknown_market"): 1}


def recorder_last(path, symbol) -> int:
    import json

    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{\"")]
    return [line["price_e8"] for line in lines if line["market"] == symbol][-1]
