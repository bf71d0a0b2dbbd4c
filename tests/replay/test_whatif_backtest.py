"""whatif reproduces the journal unchanged and matches a hand-computed case; backtest is
deterministic; the generator is seeded."""

from __future__ import annotations

import json

import pytest

from benchmarks.sessions import write_session
from engine import commands as cmd
from engine import events as ev
from engine.markets import default_config
from replay import cli
from replay import generate as gen
from replay.backtest import backtest
from replay.errors import BadOverride
from replay.source import ReplayJournal
from replay.strategies import SpreadMaker
from protocol.strategy import Strategy
from replay.whatif import apply_overrides, whatif

T0 = 1_767_229_200 * 10**9  # 2026-01-01T01:00Z: no funding boundary within the case
USDC = 1_000_000


def test_unchanged_parameters_reproduce_every_event(session_journal):
    s = session_journal
    result = whatif(s.data_dir, [], s.config)
    assert result.identical and result.commands_differing == 0 and result.skipped == 0
    assert result.commands == s.live.records - 1 and result.whatif.events == s.live.events  # genesis: no command
    assert result.liquidations_added == result.liquidations_avoided == [] and result.agents == {}
    assert result.journal.liquidations == s.live.liquidations


@pytest.fixture(scope="module")
def readme_liquidation(tmp_path_factory):
    """The README's example: Alice 10x long 100 USDC at 100 000, Bob's quote (at 0%, so no funding accrues) with
    100 USDC collateral; the price falls to 94 700 and the engine liquidates after 2 s."""
    mix = [
        (cmd.Deposit("alice", 1_000 * USDC, "d-alice"), T0),
        (cmd.Deposit("bob", 1_000 * USDC, "d-bob"), T0),
        (cmd.OracleUpdate(0, 100_000 * 10**8, 10**8, T0, "test"), T0),
        (cmd.RequestQuote("alice", 0, "long", 100 * USDC, 10, 10_000_000), T0),
        (cmd.SubmitQuote("bob", 1, 0, 100 * USDC), T0),  # rate 0: no funding accrues
        (cmd.AcceptQuote("alice", 1, cmd.BEST_QUOTE), T0),
        (cmd.OracleUpdate(0, 94_700 * 10**8, 10**8, T0 + 10**9, "test"), T0 + 10**9),
        (cmd.Tick(), T0 + 4 * 10**9),
    ]
    data_dir = tmp_path_factory.mktemp("readme")
    write_session(data_dir, mix, default_config(), batch_size=3)
    liquidated = [e for e in ReplayJournal(data_dir).events() if type(e) is ev.PositionLiquidated]
    assert len(liquidated) == 1 and liquidated[0].reward_e6 == 235_000 and liquidated[0].keeper == ""
    return data_dir


def test_lower_maintenance_avoids_the_hand_computed_liquidation(readme_liquidation):
    # Maintenance 40% of initial: Alice's requirement is 10% x 40% x 0.001 BTC x 94 700 =
    # 3.788 USDC; her equity 10 - 5.3 = 4.7 stays above it, so nothing is liquidated.
    result = whatif(readme_liquidation, ["markets.BTC-PERP.maintenance_of_initial_bps=4000"])
    assert not result.identical
    assert result.liquidations_avoided == [1] and result.liquidations_added == []
    assert (result.journal.insurance_e6, result.whatif.insurance_e6) == (235_000, 0)
    assert result.journal.bad_debt_e6 == result.whatif.bad_debt_e6 == 0
    alice, bob = result.agents["alice"], result.agents["bob"]
    # Journal: Alice realised -5.3 and paid the 0.235 reward: 1 000 - 0.05 fee - 5.3 - 0.235.
    assert alice["journal"]["equity_e6"] == 994_415_000 and alice["journal"]["realized_pnl_e6"] == -5_300_000
    assert alice["journal"]["liquidation_cost_e6"] == 235_000 and alice["journal"]["liquidated"] == 1
    # What-if: the position stays open, -5.3 unrealised, no reward paid.
    assert alice["whatif"]["equity_e6"] == 994_650_000 and alice["whatif"]["realized_pnl_e6"] == 0
    assert alice["delta"]["equity_e6"] == 235_000
    assert bob["delta"]["equity_e6"] == 0 and bob["delta"]["realized_pnl_e6"] == -5_300_000
    assert result.whatif.open_positions == 1


def test_higher_reward_and_longer_grace(readme_liquidation):
    more = whatif(readme_liquidation, {"markets.*.liquidation_reward_bps": 1_000})
    assert more.whatif.insurance_e6 == 470_000 and more.agents["alice"]["delta"]["equity_e6"] == -235_000
    later = whatif(readme_liquidation, ["auto_liquidate_after_ms=5000"])  # the tick is 3 s after the flag
    assert later.liquidations_avoided == [1]


def test_bad_overrides_are_refused():
    config = default_config()
    for setting, message in (("nope=1", "unknown key"), ("markets.XRP-PERP.taker_fee_bps=1", "no market"),
                             ("markets.*.colour=1", "unknown market field"), ("auto_liquidate_after_ms=x", "integer"),
                             ("markets.*.maintenance_of_initial_bps=0", "invalid")):
        with pytest.raises(BadOverride, match=message):
            apply_overrides(config, [setting])
    assert apply_overrides(config, ["markets.1.leverage_max=10"]).markets[1].leverage_max == 10


def test_whatif_cli_json(readme_liquidation, tmp_path, capsys):
    out_file = tmp_path / "w.json"
    assert cli.main(["whatif", str(readme_liquidation), "--set", "markets.BTC-PERP.maintenance_of_initial_bps=4000",
                     "--json-out", str(out_file), "--quiet"]) == 0
    assert "liquidations avoided (1)" in capsys.readouterr().out
    assert json.loads(out_file.read_text())["liquidations_avoided"] == [1]
    assert cli.main(["whatif", str(readme_liquidation), "--set", "bogus=1", "--quiet"]) == 2


def test_backtest_is_deterministic(session_journal, tmp_path):
    s = session_journal
    assert isinstance(SpreadMaker(seed=1), Strategy)
    first = backtest(s.data_dir, "replay.strategies:SpreadMaker", s.config, seed=3, figure=tmp_path / "eq.png")
    again = backtest(s.data_dir, "replay.strategies:SpreadMaker", s.config, seed=3)
    assert first.fills > 0 and first.quotes_submitted >= first.fills
    assert first.to_dict(curve=True) | {"seconds": 0, "figure": None} == again.to_dict(curve=True) | {
        "seconds": 0, "figure": None}
    assert (tmp_path / "eq.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.max_drawdown_e6 >= 0 and len(first.equity_e6) > 10
    other = backtest(s.data_dir, "replay.strategies:SpreadMaker", s.config, seed=4)
    assert other.equity_e6 != first.equity_e6  # the seed matters


def test_backtest_cli(session_journal, tmp_path, capsys):
    png = tmp_path / "curve.png"
    assert cli.main(["backtest", str(session_journal.data_dir), "--checkpoint-every", "500", "--strategy",
                     "replay.strategies:SpreadMaker", "--seed", "1", "--png", str(png), "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fills"] > 0 and out["figure"] == str(png) and png.exists()
    assert cli.main(["backtest", str(session_journal.data_dir), "--strategy", "nowhere:Nothing", "--quiet"]) == 2


def test_generate_is_seeded_and_refuses_a_used_dir(tmp_path, capsys):
    a = gen.generate(tmp_path / "a", 1_500, seed=5, progress=False)
    b = gen.generate(tmp_path / "b", 1_500, seed=5, progress=False)
    assert a.state_hash == b.state_hash and a.events >= 1_500
    assert gen.main(["--events", "100", str(tmp_path / "a"), "--quiet"]) == 1
    assert gen.main(["--events", "1000", str(tmp_path / "c"), "--quiet", "--seed", "5"]) == 0
    assert "events" in capsys.readouterr().out
