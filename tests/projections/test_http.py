"""The history reads over HTTP, from the SQL read models of a running venue: stats,
leaderboard, paginated positions; lag in /health and /metrics; the routes in the OpenAPI."""

from __future__ import annotations

import pytest

from tests.http.conftest import start_rig, stop_rig
from tests.support import agent_of, keypair


@pytest.fixture
async def rig(tmp_path):
    rig = await start_rig(tmp_path)
    try:
        yield rig
    finally:
        await stop_rig(rig)


async def _caught_up(rig) -> None:
    await rig.venue.projections.wait_for_seq("sql", rig.venue.hub.last_seq)


async def _trade(rig, trader, maker, close: bool) -> str:
    request = await rig.ok("/trade/request", {"market": "BTC-PERP", "side": "long", "size_usdc": 100,
                                              "leverage": 10, "max_funding_rate": 0.01}, trader)
    quote = await rig.ok("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.005,
                                          "collateral_usdc": 100}, maker)
    message = f"accept:{request['request_id']}:{quote['quote_id']}".encode()
    opened = await rig.ok("/trade/accept", {"request_id": request["request_id"], "quote_id": quote["quote_id"],
                                            "signature": str(trader.sign_message(message))}, trader)
    if close:
        await rig.ok("/trade/close", {"position_id": opened["position_id"], "size_percent": 100}, trader)
    return opened["position_id"]


async def test_stats_leaderboard_and_history(rig):
    alice, bob = keypair(1), keypair(2)
    await rig.faucet(alice, 1000)
    await rig.faucet(bob, 1000)
    await rig.oracle("BTC-PERP", 100_000)
    first = await _trade(rig, alice, bob, close=False)
    await rig.oracle("BTC-PERP", 102_000)
    await rig.ok("/trade/close", {"position_id": first, "size_percent": 100}, alice)
    for _ in range(3):
        await _trade(rig, alice, bob, close=True)
    still_open = await _trade(rig, alice, bob, close=False)
    await _caught_up(rig)

    stats = (await rig.get(f"/agents/{agent_of(alice)}/stats")).body
    assert stats["as_of_seq"] == rig.venue.hub.last_seq
    assert stats["realized_pnl_usdc"] == "2" and stats["fees_paid_usdc"] == "0.25"  # 5 fills x 0.05
    assert stats["net_pnl_usdc"] == "1.75" and stats["volume_usdc"] == "900"  # 5 opens + 4 closes of 100
    assert stats["positions_ended"] == 4 and stats["positions_won"] == 1 and stats["open_positions"] == 1
    bob_stats = (await rig.get(f"/agents/{agent_of(bob)}/stats")).body
    assert bob_stats["quotes_submitted"] == 5 and bob_stats["fill_ratio_bps"] == 10_000
    assert (await rig.get("/agents/nobody/stats")).status == 404

    board = (await rig.get("/leaderboard?by=pnl")).body
    assert [row["agent"] for row in board["agents"]] == [agent_of(alice), agent_of(bob)]
    assert board["agents"][0]["rank"] == 1
    assert (await rig.get("/leaderboard?by=reliability")).body["agents"][0]["agent"] == agent_of(bob)
    assert (await rig.get("/leaderboard?by=luck")).status == 400
    assert (await rig.get("/leaderboard?limit=100000")).status == 400

    pages, before = [], None
    while True:  # two at a time, newest first, until the last page
        query = f"/history/positions?agent={agent_of(alice)}&status=closed&limit=2"
        page = (await rig.get(query + (f"&before_id={before}" if before else ""))).body
        pages.append([p["position_id"] for p in page["positions"]])
        before = page["next_before_id"]
        if before is None:
            break
    assert pages == [["4", "3"], ["2", "1"]]
    opened = (await rig.get("/history/positions?status=open")).body["positions"]
    assert [p["position_id"] for p in opened] == [still_open]
    assert opened[0]["entry_price"] == "102000" and opened[0]["margin_long_usdc"] == "10"
    assert (await rig.get("/history/positions?limit=1001")).status == 400
    assert (await rig.get("/history/positions?status=won")).status == 400


async def test_lag_in_health_and_metrics_and_routes_in_openapi(rig):
    await rig.faucet(keypair(3), 10)
    await _caught_up(rig)
    health = (await rig.get("/health")).body
    [sql] = health["projections"]
    assert (sql["name"], sql["state"], sql["lag_seq"], sql["seq"]) == ("sql", "live", 0, health["last_seq"])
    metrics = (await rig.get("/metrics")).body["text"]
    assert 'agentperp_projection_lag_seq{projection="sql"} 0.0' in metrics
    assert f'agentperp_projection_seq{{projection="sql"}} {float(health["last_seq"])}' in metrics
    paths = (await rig.get("/openapi.json")).body["paths"]
    assert {"/agents/{agent}/stats", "/leaderboard", "/history/positions"} <= set(paths)


async def test_without_the_read_models_the_history_reads_say_so(tmp_path):
    """A venue with projections.sql off answers 503 UNAVAILABLE and lists no projection."""
    import aiohttp

    from adapters.gateway import http
    from tests.support import FakeClock
    from venue.app import Venue
    from venue.config import load

    config = load(env={}, overrides={"venue": {"data_dir": str(tmp_path / "off"), "demo": False, "dev": True},
                                     "gateway": {"tcp_port": 0, "http_port": 0}, "oracle": {"source": "none"},
                                     "projections": {"sql": False}, "settlement": {"backend": "none"}})
    venue = Venue(config, clock=FakeClock())
    await venue.start(serve=False)
    runner, port = await http.serve(venue)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/leaderboard") as response:
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "UNAVAILABLE"
            async with session.get(f"http://127.0.0.1:{port}/health") as response:
                assert (await response.json())["projections"] == []
    finally:
        await runner.cleanup()
        await venue.stop()
