"""Per-agent KPIs against figures computed by hand from the README's worked example."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger.projections.runner import Runner
from ledger.projections.sql import queries
from ledger.projections.sql import schema as t
from ledger.projections.sql.model import SqlProjection, sharpe_of_days
from tests.projections.support import ALICE, BOB, CAROL, DAVE, KEEPER, SYMBOLS, E6, readme_example


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("readme")
    writer = readme_example(data_dir)
    assert not any(hasattr(o, "code") for o in writer.outcomes), [o for o in writer.outcomes if hasattr(o, "code")]
    projection = SqlProjection(f"sqlite:///{data_dir / 'read.db'}", symbols=SYMBOLS)
    Runner(data_dir / "journal", [projection], batch_events=3).catch_up()
    with projection.engine.connect() as conn:
        kpis = {row["agent"]: dict(row) for row in conn.execute(select(t.agent_kpis)).mappings()}
        agents = {row["agent"]: dict(row) for row in conn.execute(select(t.agents)).mappings()}
        positions = {row["position_id"]: dict(row) for row in conn.execute(select(t.positions)).mappings()}
        funding = [dict(row) for row in conn.execute(select(t.funding_payments)).mappings()]
        stats = queries.agent_stats(conn, ALICE)
        board = queries.leaderboard(conn, "pnl", 10)
    projection.close()
    return kpis, agents, positions, funding, stats, board


def test_alice_and_bob_close(example):
    kpis, agents, positions, funding, _, _ = example
    # Funding: 100 x 0.5% per 8h, one hour of it at the 08:00 boundary = 0.0625 alice -> bob.
    assert [(f["payer"], f["receiver"], f["amount_e6"], f["source"]) for f in funding] == \
        [(ALICE, BOB, 62_500, "boundary")]
    alice, bob = kpis[ALICE], kpis[BOB]
    assert (alice["realized_pnl_e6"], bob["realized_pnl_e6"]) == (2 * E6, -2 * E6)  # 0.001 BTC x 2 000
    assert (alice["fees_paid_e6"], bob["fees_paid_e6"]) == (50_000, 0)  # taker 5 bps of 100; maker 0
    assert (alice["funding_paid_e6"], alice["funding_received_e6"]) == (62_500, 0)
    assert (bob["funding_paid_e6"], bob["funding_received_e6"]) == (0, 62_500)
    assert alice["net_pnl_e6"] == 2 * E6 - 50_000 - 62_500 == 1_887_500
    assert bob["net_pnl_e6"] == -2 * E6 + 62_500 == -1_937_500
    # Free after the close: 1 000 - 10.05 + (10 - 0.0625 + 2) = 1 001.8875; bob 1 000 + 0.0625 - 2.
    assert agents[ALICE]["free_e6"] == 1_000 * E6 + alice["net_pnl_e6"] == 1_001_887_500
    assert agents[BOB]["free_e6"] == 998_062_500
    assert (alice["volume_e6"], bob["volume_e6"]) == (200 * E6, 200 * E6)  # opened 100, closed 100
    # Alice's curve: -0.05 (fee), -0.0625 (funding), +2: the deepest fall from the peak (0) is 0.1125.
    assert alice["max_drawdown_e6"] == 112_500 and alice["net_pnl_peak_e6"] == 1_887_500
    # Bob's: +0.0625 then -2: from the peak 0.0625 down to -1.9375.
    assert bob["max_drawdown_e6"] == 2 * E6 and bob["net_pnl_peak_e6"] == 62_500
    assert (alice["positions_won"], alice["positions_ended"], alice["win_rate_bps"]) == (1, 1, 10_000)
    assert (bob["positions_won"], bob["positions_ended"], bob["win_rate_bps"]) == (0, 1, 0)
    # Bob quoted once and was filled: fill ratio and reliability 100%.
    assert (bob["quotes_submitted"], bob["quotes_filled"], bob["fill_ratio_bps"], bob["reliability_bps"]) == \
        (1, 1, 10_000, 10_000)
    assert alice["quotes_submitted"] == 0 and alice["fill_ratio_bps"] is None and alice["reliability_bps"] is None
    p1 = positions[1]
    assert (p1["status"], p1["pnl_long_e6"], p1["funding_long_to_short_e6"], p1["exit_price_e8"]) == \
        ("closed", 2 * E6, 62_500, 102_000 * 10**8)
    assert (p1["margin_long_e6"], p1["margin_short_e6"], p1["open_size_e6"]) == (0, 0, 0)


def test_carol_liquidated_by_the_keeper(example):
    kpis, agents, positions, _, _, _ = example
    carol, dave, keeper = kpis[CAROL], kpis[DAVE], kpis[KEEPER]
    # At 94 700: PnL -5.3; carol keeps 4.7 of her margin, 5% of it (0.235) to the keeper.
    assert (carol["realized_pnl_e6"], dave["realized_pnl_e6"]) == (-5_300_000, 5_300_000)
    assert carol["liquidation_penalty_e6"] == 235_000 and keeper["keeper_rewards_e6"] == 235_000
    assert carol["net_pnl_e6"] == -50_000 - 5_300_000 - 235_000
    assert agents[CAROL]["free_e6"] == 994_415_000  # the README's 994.415
    assert agents[DAVE]["free_e6"] == 1_005_300_000  # and 1 005.3
    assert agents[KEEPER]["free_e6"] == 235_000
    assert carol["max_drawdown_e6"] == 5_585_000 and carol["win_rate_bps"] == 0
    assert dave["win_rate_bps"] == 10_000 and dave["volume_e6"] == 200 * E6
    p2 = positions[2]
    assert (p2["status"], p2["pnl_long_e6"], p2["reward_e6"]) == ("liquidated", -5_300_000, 235_000)


def test_stats_and_leaderboard(example):
    kpis, _, _, _, stats, board = example
    assert stats["net_pnl_e6"] == 1_887_500 and stats["free_e6"] == 1_001_887_500 and stats["open_positions"] == 0
    assert [row["agent"] for row in board] == [DAVE, ALICE, KEEPER, BOB, CAROL]
    # One UTC day of activity: no Sharpe yet (it needs two days).
    assert kpis[ALICE]["days"] == 1 and kpis[ALICE]["sharpe_daily"] is None


def test_sharpe_of_daily_pnl():
    # Days 0..3 with PnL 1, 3, (quiet), 2 USDC: mean 1.5, sample std sqrt(5/3) ≈ 1.29099.
    days, sharpe = sharpe_of_days({10: 1 * E6, 11: 3 * E6, 13: 2 * E6})
    assert days == 4
    assert sharpe == pytest.approx(1.5 / (5 / 3) ** 0.5 * 365 ** 0.5, rel=1e-12)
    assert sharpe_of_days({10: E6, 11: E6})[1] is None  # no variance
    assert sharpe_of_days({}) == (0, None)
