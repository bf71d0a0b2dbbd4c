"""A tournament on Dask equals the same tournament in-process, figure for figure; each strategy
runs in ``replay backtest`` and is deterministic per seed there."""

from __future__ import annotations

import json

import pytest

from engine.markets import default_config
from ledger.compiled import compiled_modules, stale_modules
from replay import cli
from replay import tournament as t
from replay.backtest import backtest
from replay.generate import generate

CONFIG = default_config(checkpoint_every_events=500)


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tournament")
    generate(data_dir, 1_500, seed=5, config=CONFIG, progress=False, jump_probability=0.05)
    return str(data_dir)


@pytest.mark.parametrize("name", ["swarm", "dynamic", "arbitrage"])
def test_each_strategy_backtests_deterministically(journal, name):
    first = backtest(journal, t.STRATEGIES[name], CONFIG, seed=3).to_dict(curve=True)
    again = backtest(journal, t.STRATEGIES[name], CONFIG, seed=3).to_dict(curve=True)
    first.pop("seconds"), again.pop("seconds")
    assert first == again and first["quotes_submitted"] > 0


def test_grid_plan():
    specs = t.plan(["j"], ["swarm", "spread"], t.parse_grid(["swarm.threshold=0.5,0.7", "seed_unused=x"]))
    assert [(s.name, s.params) for s in specs] == [
        ("swarm", {"seed_unused": "x", "threshold": 0.5}), ("swarm", {"seed_unused": "x", "threshold": 0.7}),
        ("spread", {"seed_unused": "x"})]
    assert t.parse_value("1_000") == 1000 and t.parse_value("0.5") == 0.5 and t.parse_value("true") is True


def test_dask_equals_in_process_figure_for_figure(journal, tmp_path):
    args = dict(grid={"swarm.threshold": [0.55, 0.8]}, config=CONFIG, seed=1)
    here = t.tournament([journal], ["swarm", "dynamic", "arbitrage"], in_process=True, **args)
    dask = t.tournament([journal], ["swarm", "dynamic", "arbitrage"], workers=2, out=tmp_path, **args)
    assert dask.executor.startswith("LocalCluster") and here.executor == "in-process"
    assert [t.figures(r) for r in dask.runs] == [t.figures(r) for r in here.runs]
    assert [r["equity_e6"] for r in dask.runs] == [r["equity_e6"] for r in here.runs]
    assert [r["explain"] for r in dask.runs] == [r["explain"] for r in here.runs]
    assert len(dask.runs) == 4 and all((tmp_path / f).stat().st_size > 0 for f in ("equity.png", "pnl.png"))
    saved = json.loads((tmp_path / "tournament.json").read_text())
    assert [r["pnl_e6"] for r in saved["runs"]] == [r["pnl_e6"] for r in here.runs]


def test_tournament_cli(journal, capsys):
    assert cli.main(["tournament", journal, "--strategies", "spread,conservative", "--in-process", "--quiet",
                     "--checkpoint-every", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in out["runs"]] == ["spread", "conservative"]
    assert {"pnl_e6", "funding_e6", "fees_e6", "sharpe", "max_drawdown_e6", "fill_ratio"} <= set(out["runs"][0])
    assert cli.main(["tournament", journal, "--strategies", "nowhere", "--in-process", "--quiet"]) == 2
    assert cli.main(["tournament", journal, "--strategies", "spread", "--grid", "bogus=1", "--in-process",
                     "--quiet"]) == 2


def _engine_preparation() -> tuple[bool, str | None]:
    """Run on a worker: whether it ran ``ledger.compiled.prepare()``, and its engine choice."""
    import os

    from ledger import compiled

    return compiled.prepared, os.environ.get(compiled.ENGINE_ENV)


def test_every_dask_worker_prepares_the_engine_before_a_task(monkeypatch):
    """A worker imports ``engine`` when it unpickles a task: it must have chosen the engine
    (compiled only when fresh, ``ledger.compiled.prepare``) before, as the entry points do."""
    from replay.workers import PrepareEngine

    monkeypatch.delenv("AGENTPERP_ENGINE", raising=False)  # the workers inherit this process's environment
    client, cluster, where = t.connect(None, workers=1)
    try:
        assert where.startswith("LocalCluster")
        stale = bool(compiled_modules()) and bool(stale_modules())  # then prepare() falls back to python
        assert list(client.run(_engine_preparation).values()) == [(True, "python" if stale else None)]
        # A worker that has imported the engine cannot switch engines: asking now fails its
        # setup (a stale engine never runs) — where there is a compiled engine to switch from.
        if compiled_modules() and not stale_modules():  # the workers run the compiled engine
            with pytest.raises(RuntimeError, match="before anything imports engine"):
                client.register_plugin(PrepareEngine("python"))
    finally:
        client.close()
        cluster.close()
