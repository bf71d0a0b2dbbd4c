"""`agentperp bench hedging`: journal event → exchange ack latency, hedge orders/s, and the
simulator's own requests/s as the baseline of the same run.

Seeded: a ``replay.generate`` session (20 makers; ``MAKERS`` of them hedged) is written to a
temporary journal; one Binance simulator on loopback with an account per hedged maker, its
books deep enough that every IOC fills. Figures:

- ``hedging.event_to_ack_ms`` p50/p99: each record fed alone to ``Hedger.handle``; for every
  record that led to orders, the time from the call to the last order's ack (durable intent,
  order-book fetch, cost choice, signed POST, state write included).
- ``hedging.orders_per_s``: all records in batches of ``BATCH_RECORDS``, orders acked / s.
- ``sim.orders_per_s`` (baseline): ``CONCURRENCY`` bare ccxt clients sending IOC orders in a loop
  — the ceiling the simulator and ccxt allow on this machine; ``sim.ping_per_s``: bare aiohttp.
- ``hedging.vs_sim_orders``: the ratio (what the hedger's own work costs).
- ``hedging.state_writes``: fsynced writes of the hedger's state file in the throughput part
  (group commit: fewer than orders); ``hedging.audit_sql_rows``: audit lines imported into SQL.

The hedger runs as ``agentperp run`` has it: its audit file imported into a SQLite read model.

Warm-up before each timed part; GC off while timing.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.report import emit, percentiles

SEED = 20261127
MAKERS = tuple(f"maker{i:02d}" for i in range(8))
BATCH_RECORDS = 500
CONCURRENCY = 8


async def _bench(tmp: Path, events: int, baseline_s: float) -> dict:
    from adapters.hedging.exchanges import Credentials, make_client
    from adapters.hedging.hedger import ExchangeConfig, Hedger, HedgerConfig
    from adapters.hedging.sim.binance import BinanceSim
    from adapters.hedging.sim.limits import RateLimits
    from adapters.hedging.sim.server import start
    from ledger.journal import JournalReader
    from ledger.records import decode_record
    from replay.generate import generate

    generate(tmp / "venue", events, seed=SEED, progress=False)
    records = [decode_record(p) for _, p in JournalReader(tmp / "venue" / "journal").read(1)]
    unlimited = RateLimits(weight_per_window=10**9, orders_per_window=10**9)
    sim = BinanceSim(seed=SEED, limits=unlimited, depth={"BTCUSDT": "1000", "ETHUSDT": "20000", "SOLUSDT": "500000"})
    for m in MAKERS:
        sim.add_account(f"{m}-key", f"{m}-secret", wallet_usdt=10**12)
    sim.add_account("bench", "bench-secret", wallet_usdt=10**12)
    runner, port = await start(sim.app())
    url = f"http://127.0.0.1:{port}"
    figures: dict = {}
    try:
        def hedger(state: str) -> Hedger:
            return Hedger(HedgerConfig(
                makers={m: {"sim": Credentials(f"{m}-key", f"{m}-secret")} for m in MAKERS},
                exchanges=(ExchangeConfig("sim", "binanceusdm", url, weight_per_window=10**9, rate_limit_ms=0.001),),
                markets={0: "BTC/USDT:USDT", 1: "ETH/USDT:USDT", 2: "SOL/USDT:USDT"},
                state_path=tmp / state / "hedger.json", audit_path=tmp / state / "audit.jsonl",
                audit_sql_url=f"sqlite:///{tmp / state / 'read_model.sqlite'}"))  # as `agentperp run` has it

        # Latency: one record at a time.
        h = hedger("latency")
        await h.start()
        latencies = []
        gc.disable()
        for record in records:
            sent = h.orders_sent
            started = time.perf_counter_ns()
            await h.handle([record])
            if h.orders_sent > sent:
                latencies.append((h.acked_ns[-1] - started) / 1e6)
        gc.enable()
        await h.close()
        # Throughput: batches, a fresh hedger and fresh accounts' state.
        h = hedger("throughput")
        await h.start()
        sent_before = h.orders_sent
        gc.disable()
        started = time.perf_counter()
        for i in range(0, len(records), BATCH_RECORDS):
            await h.handle(records[i:i + BATCH_RECORDS])
        elapsed = time.perf_counter() - started
        gc.enable()
        orders = h.orders_sent - sent_before
        state_writes = h.state_writes
        await h.close()  # the audit's SQL import catches up before it returns
        audit_rows = h.audit_sql.lines
        # Baseline: bare ccxt IOC orders against the same simulator.
        clients = [make_client("binanceusdm", url, Credentials("bench", "bench-secret"), rate_limit_ms=0.001)
                   for _ in range(CONCURRENCY)]
        await asyncio.gather(*(c.load_markets() for c in clients))
        count = 0

        async def loop(c, until):
            nonlocal count
            side = "buy"
            while time.perf_counter() < until:
                await c.create_order("BTC/USDT:USDT", "limit", side, 0.002, 101_000 if side == "buy" else 99_000,
                                     {"timeInForce": "IOC"})
                side = "sell" if side == "buy" else "buy"
                count += 1

        await asyncio.gather(*(loop(c, time.perf_counter() + 0.5) for c in clients))  # warm-up
        count = 0
        gc.disable()
        t0 = time.perf_counter()
        await asyncio.gather(*(loop(c, t0 + baseline_s) for c in clients))
        sim_orders_per_s = count / (time.perf_counter() - t0)
        gc.enable()
        for c in clients:
            await c.close()
        async with aiohttp.ClientSession() as session:
            pings = 0

            async def ping(until):
                nonlocal pings
                while time.perf_counter() < until:
                    async with session.get(f"{url}/fapi/v1/ping") as r:
                        await r.read()
                    pings += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(ping(t0 + baseline_s) for _ in range(CONCURRENCY)))
            ping_per_s = pings / (time.perf_counter() - t0)
        lat = percentiles(latencies)
        figures = {
            "hedging.events": len(records), "hedging.hedged_makers": len(MAKERS),
            "hedging.event_to_ack_ms": {"p50": lat["p50"], "p99": lat["p99"], "max": lat["max"]},
            "hedging.latency_samples": len(latencies),
            "hedging.orders": orders, "hedging.orders_per_s": round(orders / elapsed, 1),
            "hedging.state_writes": state_writes, "hedging.audit_sql_rows": audit_rows,
            "sim.orders_per_s": round(sim_orders_per_s, 1), "sim.ping_per_s": round(ping_per_s, 1),
            "hedging.vs_sim_orders": round(orders / elapsed / sim_orders_per_s, 3),
        }
    finally:
        await runner.cleanup()
    return figures


def main(json_path: str | None = None, quick: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="agentperp-bench-hedging-") as tmp:
        figures = asyncio.run(_bench(Path(tmp), 3_000 if quick else 20_000, 1.0 if quick else 3.0))
    return emit(figures, {}, json_path)


if __name__ == "__main__":
    import sys

    sys.exit(main(quick="--quick" in sys.argv))
