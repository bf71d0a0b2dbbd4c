"""`agentperp exchange-sim --exchange binanceusdm|okx`: the simulator it builds answers the real
ccxt client with the accounts given (or the demo one); a malformed account stops it."""

from __future__ import annotations

import pytest

from adapters.hedging.cli import build_sim, exchange_sim
from adapters.hedging.exchanges import Credentials, make_client
from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.okx import OkxSim
from adapters.hedging.sim.server import start


@pytest.mark.parametrize("exchange, accounts, credentials, kind", [
    ("binanceusdm", [], Credentials("demo", "demo-secret"), BinanceSim),
    ("okx", [], Credentials("demo", "demo-secret", "demo-passphrase"), OkxSim),
    ("okx", ["k1:s1:p:with:colons"], Credentials("k1", "s1", "p:with:colons"), OkxSim),
])
async def test_the_simulator_built_answers_ccxt(exchange, accounts, credentials, kind):
    sim = build_sim(exchange, 0, accounts)
    assert type(sim) is kind
    runner, port = await start(sim.app())
    client = make_client(exchange, f"http://127.0.0.1:{port}", credentials)
    try:
        assert (await client.fetch_balance())["free"]["USDT"] > 0  # signed: the account is there
    finally:
        await client.close()
        await runner.cleanup()


@pytest.mark.parametrize("argv", [
    ["--exchange", "kraken"],
    ["--exchange", "okx", "--account", "k1:s1"],  # OKX needs the passphrase
    ["--account", "k1"],
    ["--account", "k1:"],
])
def test_what_cannot_be_served_is_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        exchange_sim(argv + ["--duration", "0"])
    assert exit_.value.code == 2 and "agentperp exchange-sim" in capsys.readouterr().err


def test_serves_for_the_duration_and_stops(capsys):
    assert exchange_sim(["--exchange", "okx", "--port", "0", "--duration", "0"]) == 0
    assert "exchange simulator (OKX v5 USDT swaps) on http://127.0.0.1:" in capsys.readouterr().out
