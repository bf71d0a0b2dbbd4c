"""`agentperp bench oracle`: from a Hermes SSE event to the durable ``OracleUpdated``.

A Hermes server on loopback (``adapters/oracle/hermes_sim.py``) streams updates of three
feeds (BTC, ETH, SOL) to the venue's real Pyth client; the venue (journal fsync ``batch``,
no gateways, no agents) runs in the same process and loop. Figures:

- ``oracle.p50_ms / p99_ms``: latency from the server's ``publish()`` (the event is queued
  for the stream) to the hub seeing the BTC ``OracleUpdated`` durable, at a fixed offered
  rate (open loop) of ``OFFERED_EVENTS_PER_S`` events (x3 prices);
- ``oracle.absorbed_updates_per_s``: prices made durable per second when a burst of events
  is offered at once (all markets);
- baseline, in the same run: ``oracle.parse_us_per_event`` — the client's own translation
  of one event (``pyth_parse.parse_update``), what no venue work can go below.

Each event carries a new publish second per feed (Hermes' own granularity would allow one
accepted price per market per second), so the run sets ``future_skew_ms_max`` far out.

The CCXT median, by transport (``_ccxt_run``): a Binance USDⓈ-M and an OKX simulator on
loopback, the real ccxt clients; the books' reference moves on both (open loop, every
``CCXT_MOVE_INTERVAL_S``) and each move's latency is timed to the first median the source
hands its sink that reflects it. The websocket source (pricing at most every
``CCXT_INTERVAL_S``) and, as its baseline, the REST source polling every ``CCXT_INTERVAL_S``
— which ccxt's own throttle (``enableRateLimit``: the exchange's published request rate)
spaces further, as it would against the real exchange — run in alternation (``PAIRS_MIN`` pairs, a fresh source and simulators each run):
``oracle.ccxt_ws_p50_ratio_to_rest`` (lower is better), and the REST requests the
websocket run made after loading its markets (``oracle.ccxt_ws_rest_requests``: 0 while both
websockets are up).
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.okx import OkxSim
from adapters.hedging.sim.server import start as serve_sim
from adapters.oracle import pyth_parse
from adapters.oracle.ccxt_client import CcxtExchange, CcxtSettings, CcxtSource
from adapters.oracle.hermes_sim import HermesSim
from benchmarks.interleave import LOWER, PAIRS_MIN, ratio_summary
from benchmarks.report import emit, percentiles
from engine import events as ev
from venue.app import Venue
from venue.config import PYTH_FEED_IDS, load

FEEDS = {PYTH_FEED_IDS["BTC-PERP"]: (6_500_000_000_000, 2_000_000_000, -8),
         PYTH_FEED_IDS["ETH-PERP"]: (320_000_000_000, 100_000_000, -8),
         PYTH_FEED_IDS["SOL-PERP"]: (15_000_000_000, 5_000_000, -8)}
OFFERED_EVENTS_PER_S = 200
BTC = PYTH_FEED_IDS["BTC-PERP"]
CCXT_INTERVAL_S = 0.01  # ws: pricing at most this often; rest: a round this often
CCXT_MOVE_INTERVAL_S = 0.05  # a move of the books' reference this often (open loop)
CCXT_PRICES_USD = ("65000", "65100")  # the reference alternates: 15 bps, within the median's 50
CCXT_BOOKS = {"binance": "BTCUSDT", "okx": "BTC-USDT-SWAP"}
CCXT_WAIT_S_MAX = 10.0  # a move not priced by then fails the run


async def _bench(data_dir: Path, events: int, burst: int) -> dict:
    sim = HermesSim(FEEDS, keepalive_s=15.0)
    await sim.start()
    config = load(env={}, overrides={
        "venue": {"data_dir": str(data_dir), "demo": False, "fsync": "batch", "snapshot_every_commands": 0},
        "oracle": {"source": "pyth", "pyth_base_url": sim.url, "future_skew_ms_max": 10**12}})
    venue = Venue(config)
    await venue.start(serve=False)
    sent: dict[int, int] = {}  # BTC publish_ns -> perf_counter_ns at publish()
    latencies_ns: list[int] = []
    durable = [0]
    arrived = asyncio.Event()
    target = [0]

    def on_events(batch):
        now = time.perf_counter_ns()
        for event in batch:
            if type(event) is ev.OracleUpdated:
                durable[0] += 1
                t = sent.pop(event.publish_ns, None) if event.market == 0 else None
                if t is not None:
                    latencies_ns.append(now - t)
        if durable[0] >= target[0]:
            arrived.set()

    venue.hub.listen(on_events)
    try:
        await sim.wait_for(lambda: sim.stream_count == 1)
        stamp = int(time.time())

        async def offer(n: int, interval_s: float) -> None:
            nonlocal stamp
            next_t = time.perf_counter()
            for _ in range(n):
                stamp += 1
                sent[stamp * 1_000_000_000] = time.perf_counter_ns()
                sim.publish(publish_time=stamp)
                if interval_s:
                    next_t += interval_s
                    await asyncio.sleep(max(0.0, next_t - time.perf_counter()))

        async def until(count: int) -> None:
            target[0] = count
            arrived.clear()
            if durable[0] < count:
                try:
                    await asyncio.wait_for(arrived.wait(), 20)
                except TimeoutError:
                    raise RuntimeError(f"durable {durable[0]} of {count}; feed {venue.oracle_feed.status()}") from None

        start = durable[0]
        await offer(200, 1 / OFFERED_EVENTS_PER_S)  # warm-up
        await until(start + 3 * 200)
        latencies_ns.clear()
        gc.disable()
        start = durable[0]
        await offer(events, 1 / OFFERED_EVENTS_PER_S)
        await until(start + 3 * events)
        steady = list(latencies_ns)
        start, t0 = durable[0], time.perf_counter()
        await offer(burst, 0)
        await until(start + 3 * burst)
        absorbed_per_s = 3 * burst / (time.perf_counter() - t0)
        gc.enable()
        parsed_events = venue.oracle_feed.primary.source.events_parsed
    finally:
        gc.enable()
        await venue.stop()
        await sim.stop()
    body = sim.body(list(FEEDS))
    markets = {feed_id: market for market, feed_id in enumerate(FEEDS)}
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        pyth_parse.parse_update(body, markets)
    parse_us = (time.perf_counter() - t0) / n * 1e6
    lat = percentiles([x / 1e6 for x in steady])
    return {
        "oracle.p50_ms": round(lat["p50"], 3), "oracle.p99_ms": round(lat["p99"], 3),
        "oracle.max_ms": round(lat["max"], 3), "oracle.latency_events": len(steady),
        "oracle.offered_events_per_s": OFFERED_EVENTS_PER_S,
        "oracle.absorbed_updates_per_s": round(absorbed_per_s),
        "oracle.parse_us_per_event": round(parse_us, 2),
        "oracle.parse_events_per_s": round(1e6 / parse_us),
        "oracle.client_events_parsed": parsed_events,
        "machine.cores": os.cpu_count(),
    }


class _MoveSink:
    """The CCXT source's sink: wakes a waiter when market 0's median passes ``threshold_e8``
    in ``direction`` (+1 up, -1 down)."""

    def __init__(self) -> None:
        self.moved = asyncio.Event()
        self.threshold_e8, self.direction = 0, 0

    def expect(self, threshold_e8: int, direction: int) -> None:
        self.threshold_e8, self.direction = threshold_e8, direction
        self.moved.clear()

    def update(self, update) -> None:
        if update.market == 0 and self.direction and (update.price_e8 - self.threshold_e8) * self.direction > 0:
            self.moved.set()

    def drop(self, reason: str, detail: str) -> None:
        pass  # a median not made is a move not yet priced: the wait covers it

    def note(self, what: str, detail: str = "") -> None:
        pass


async def _ccxt_run(transport: str, moves: int) -> tuple[list[float], int]:
    """Latencies (ms) of ``moves`` moves through a fresh source of ``transport``, and the
    REST requests made after the markets loaded."""
    sims = {"binance": BinanceSim(seed=1), "okx": OkxSim(seed=2)}
    runners, urls = [], {}
    for name, sim in sims.items():
        sim.set_reference(CCXT_BOOKS[name], CCXT_PRICES_USD[0])
        runner, port = await serve_sim(sim.app())
        runners.append(runner)
        urls[name] = f"http://127.0.0.1:{port}"
    settings = CcxtSettings(
        exchanges=(CcxtExchange("binance", "binanceusdm", urls["binance"]), CcxtExchange("okx", "okx", urls["okx"])),
        symbols={0: "BTC/USDT:USDT"}, transport=transport, poll_interval_s=CCXT_INTERVAL_S,
        ws_price_interval_s=CCXT_INTERVAL_S, requests_per_10s=10_000)
    sink = _MoveSink()
    task = asyncio.create_task(CcxtSource(settings, time.time_ns).run(sink))
    latencies_ms: list[float] = []
    low, high = (int(p) * 10**8 for p in CCXT_PRICES_USD)
    try:
        sink.expect((low + high) // 2, -1)  # started: priced near the first reference
        await asyncio.wait_for(sink.moved.wait(), CCXT_WAIT_S_MAX)
        requests_after_load = sum(sum(sim.requests_by_path.values()) for sim in sims.values())
        next_t = time.perf_counter()
        for i in range(moves):
            to = CCXT_PRICES_USD[(i + 1) % 2]
            sink.expect((low + high) // 2, 1 if to == CCXT_PRICES_USD[1] else -1)
            moved_at = time.perf_counter()
            for name, sim in sims.items():
                sim.set_reference(CCXT_BOOKS[name], to)
            await asyncio.wait_for(sink.moved.wait(), CCXT_WAIT_S_MAX)
            latencies_ms.append((time.perf_counter() - moved_at) * 1e3)
            next_t += CCXT_MOVE_INTERVAL_S
            await asyncio.sleep(max(0.0, next_t - time.perf_counter()))  # open loop: the next move's time
        rest_requests = sum(sum(sim.requests_by_path.values()) for sim in sims.values()) - requests_after_load
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for runner in runners:
            await runner.cleanup()
    return latencies_ms, rest_requests


async def _ccxt_bench(moves: int) -> dict:
    p50_ms: dict[str, list[float]] = {"ws": [], "rest": []}
    everything: dict[str, list[float]] = {"ws": [], "rest": []}
    ws_rest_requests = []
    for _ in range(PAIRS_MIN):
        for transport in ("ws", "rest"):  # the figure, then its baseline
            latencies_ms, rest_requests = await _ccxt_run(transport, moves)
            p50_ms[transport].append(percentiles(latencies_ms)["p50"])
            everything[transport] += latencies_ms
            if transport == "ws":
                ws_rest_requests.append(rest_requests)
    ws, rest = percentiles(everything["ws"]), percentiles(everything["rest"])
    return {
        "oracle.ccxt_ws_p50_ratio_to_rest": ratio_summary(p50_ms["ws"], p50_ms["rest"], figure="oracle.ccxt_ws_p50_ms",
                                                          baseline="oracle.ccxt_rest_p50_ms", better=LOWER),
        "oracle.ccxt_ws_p50_ms": round(ws["p50"], 2), "oracle.ccxt_ws_p99_ms": round(ws["p99"], 2),
        "oracle.ccxt_rest_p50_ms": round(rest["p50"], 2), "oracle.ccxt_rest_p99_ms": round(rest["p99"], 2),
        "oracle.ccxt_interval_ms": CCXT_INTERVAL_S * 1e3, "oracle.ccxt_moves_per_run": moves,
        "oracle.ccxt_ws_rest_requests": max(ws_rest_requests),
    }


def main(json_path: str | None = None, quick: bool = False) -> int:
    events, burst, moves = (400, 1_000, 20) if quick else (4_000, 10_000, 100)
    with tempfile.TemporaryDirectory(prefix="agentperp-bench-oracle-") as tmp:
        figures = asyncio.run(_bench(Path(tmp) / "data", events, burst))
    figures.update(asyncio.run(_ccxt_bench(moves)))
    return emit(figures, {}, json_path)  # no targets yet: the first figures are in docs/oracle.md


if __name__ == "__main__":
    raise SystemExit(main(quick=True))
