"""The compute market of docs/examples/compute.toml: GPU-H100-PERP, USD per GPU-hour.

Its rules at the engine (exact money on a ~2.40 USD price), and a venue started from the
example file with the shipped recorded index, where two agents trade it over REST."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from adapters.gateway import http
from engine.events import OracleUpdated
from protocol import signing
from tests.scenarios import dsl
from tests.support import agent_of, keypair
from venue.app import Venue
from venue.config import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "compute.toml"
INDEX = ROOT / "docs" / "examples" / "gpu-h100-index.jsonl"
TRADER, MAKER = keypair(41), keypair(42)


def test_the_example_configures_a_compute_market_beside_the_defaults():
    config = load(EXAMPLE, env={})
    engine = config.engine_config()
    assert [m.symbol for m in engine.markets] == ["BTC-PERP", "ETH-PERP", "SOL-PERP", "GPU-H100-PERP"]
    gpu = engine.markets[3]
    assert (gpu.leverage_max, gpu.size_e6_max, gpu.oracle_volatility_bps_max) == (5, 100_000 * 10**6, 5_000)
    assert engine.markets[0] == load(env={}).engine_config().markets[0]  # BTC untouched
    assert config.oracle.start_prices["GPU-H100-PERP"] == 2.40
    lines = [json.loads(line) for line in INDEX.read_text().splitlines()]
    assert len(lines) == 288 and {line["market"] for line in lines} == {"GPU-H100-PERP"}
    assert all(line["conf_e8"] * 10_000 <= line["price_e8"] * gpu.oracle_conf_bps_max for line in lines)
    assert all(b["publish_ns"] > a["publish_ns"] for a, b in zip(lines, lines[1:]))


def test_compute_price_risk_trades_like_btc():
    """A 5x long of 100 USDC at 2.40 USD per GPU-hour (41.67 GPU-hours): 10% down is -10 USDC."""
    config = load(EXAMPLE, env={}).engine_config()
    dsl.run("""
@00:00:00 deposit agent=alice amount=1000 ref=a1 => deposited
@00:00:00 deposit agent=bob amount=1000 ref=b1 => deposited
@00:00:00 oracle market=GPU-H100 price=2.40 conf=0.01 => oracle_updated
@00:00:00 request trader=alice market=GPU-H100 side=long size=100 leverage=6 max_rate=1% => rejected OUT_OF_RANGE
@00:00:00 request trader=alice market=GPU-H100 side=long size=100 leverage=5 max_rate=1% => rfq_opened{margin_e6=20 fee_e6=0.1}
@00:00:00 quote maker=bob rfq=1 rate=0.2% collateral=19.99 => rejected INSUFFICIENT_COLLATERAL
@00:00:00 quote maker=bob rfq=1 rate=0% collateral=40 => quote_submitted
@00:00:00 accept trader=alice rfq=1 => position_opened{entry_price_e8=2.40 margin_long_e6=20 margin_short_e6=40}
# 2.16 is 10% down: equity 10 >= maintenance 10% x 90 = 9
@00:00:01 oracle market=GPU-H100 price=2.16 publish=00:00:01 => oracle_updated
@00:00:01 liquidate keeper=carol position=1 => rejected NOT_LIQUIDATABLE
# 2.1 (-12.5%): equity 7.5 < 8.75
@00:00:02 oracle market=GPU-H100 price=2.1 publish=00:00:02 => oracle_updated, liquidation_watch{flagged=[1]}
@00:00:02 liquidate keeper=carol position=1 => position_liquidated{side=long pnl_long_e6=-12.5 reward_e6=0.375 oracle_validity=valid}
# 1.5 against a TWAP near 2.40 is a 1.6x move: TooVolatile on this market (1.5x), not on BTC (2x)
@00:00:03 oracle market=GPU-H100 price=1.5 publish=00:00:03 => oracle_updated
@00:00:03 request trader=alice market=GPU-H100 side=long size=100 leverage=5 max_rate=1% => rfq_opened{rfq_id=2}
@00:00:03 quote maker=bob rfq=2 rate=0.2% collateral=40 => quote_submitted
@00:00:03 accept trader=alice rfq=2 => rejected ORACLE_VOLATILE
""", config, "compute")


def _signed(key, method: str, path: str, body: bytes) -> dict[str, str]:
    timestamp = str(time.time_ns() // 1_000_000)
    signature = key.sign_message(signing.http_message(timestamp, method, path, body))
    return {"X-Agent": agent_of(key), "X-Timestamp": timestamp, "X-Signature": str(signature),
            "Content-Type": "application/json"}


async def test_a_venue_runs_the_example_with_the_recorded_index_and_trades(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # recorded_path is relative to the repository root
    config = load(EXAMPLE, env={}, overrides={
        "venue": {"data_dir": str(tmp_path), "demo": False, "dev": True, "fsync": "none"},
        "gateway": {"tcp_port": 0, "http_port": 0},
        "oracle": {"source": "recorded", "recorded_speed": 3_000.0, "recorded_loop": True}})
    venue = Venue(config)
    await venue.start(serve=False)
    runner, port = await http.serve(venue)
    session = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}")

    async def post(path: str, body: dict, key=None) -> dict:
        raw = json.dumps(body).encode()
        headers = _signed(key, "POST", path, raw) if key else {"Content-Type": "application/json"}
        async with session.post(path, data=raw, headers=headers) as response:
            answer = await response.json()
            assert response.status == 200, (path, answer)
            return answer

    try:
        priced = asyncio.Event()  # the recorded index's first durable price
        venue.hub.listen(lambda events: any(type(e) is OracleUpdated and e.market == 3 for e in events)
                         and priced.set())
        if venue.state.oracle.price_e8[3] == 0:
            async with asyncio.timeout(20):
                await priced.wait()
        async with session.get("/markets") as response:
            gpu = (await response.json())[3]
        assert gpu["market"] == "GPU-H100-PERP" and gpu["oracle_source"] == "recorded:index:gpu-h100"
        assert 2 < float(gpu["price"]) < 3 and gpu["leverage_max"] == 5
        for key in (TRADER, MAKER):
            await post("/dev/faucet", {"agent_id": agent_of(key), "amount_usdc": 1_000})
        request = await post("/trade/request", {
            "agent_id": agent_of(TRADER), "market": "GPU-H100-PERP", "side": "long", "size_usdc": 240,
            "leverage": 5, "max_funding_rate": 0.01, "duration": "perpetual", "expires_in": 30}, TRADER)
        rfq_id = request["request_id"]
        await post("/trade/quote", {"request_id": rfq_id, "agent_id": agent_of(MAKER), "funding_rate": 0.001,
                                    "collateral_usdc": 60, "valid_for": 10}, MAKER)
        signature = str(TRADER.sign_message(f"accept:{rfq_id}:best".encode()))
        accepted = await post("/trade/accept", {"request_id": rfq_id, "quote_id": "best", "signature": signature},
                              TRADER)
        opened = next(e for e in accepted["events"] if e["type"] == "position_opened.v1")
        assert opened["market"] == "GPU-H100-PERP" and 2 < float(opened["entry_price"]) < 3
        closed = await post("/trade/close", {"position_id": accepted["position_id"], "size_percent": 100}, TRADER)
        assert any(e["type"] == "position_closed.v1" for e in closed["events"])
    finally:
        await session.close()
        await runner.cleanup()
        await venue.stop()
