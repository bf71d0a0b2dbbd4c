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
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

from adapters.oracle import pyth_parse
from adapters.oracle.hermes_sim import HermesSim
from benchmarks.report import emit, percentiles
from engine import events as ev
from venue.app import Venue
from venue.config import PYTH_FEED_IDS, load

FEEDS = {PYTH_FEED_IDS["BTC-PERP"]: (6_500_000_000_000, 2_000_000_000, -8),
         PYTH_FEED_IDS["ETH-PERP"]: (320_000_000_000, 100_000_000, -8),
         PYTH_FEED_IDS["SOL-PERP"]: (15_000_000_000, 5_000_000, -8)}
OFFERED_EVENTS_PER_S = 200
BTC = PYTH_FEED_IDS["BTC-PERP"]


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


def main(json_path: str | None = None, quick: bool = False) -> int:
    events, burst = (400, 1_000) if quick else (4_000, 10_000)
    with tempfile.TemporaryDirectory(prefix="agentperp-bench-oracle-") as tmp:
        figures = asyncio.run(_bench(Path(tmp) / "data", events, burst))
    return emit(figures, {}, json_path)  # no targets yet: the first figures are in docs/oracle.md


if __name__ == "__main__":
    raise SystemExit(main(quick=True))
