"""The hedger across two venues — a Binance simulator and an OKX simulator — through the real
ccxt clients: one down → every hedge goes to the other; positions read back from OKX in base
units at a restart (OKX counts contracts of 0.01 BTC: a unit slip would be 100×)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.hedging.exchanges import Credentials
from adapters.hedging.hedger import ExchangeConfig, Hedger, HedgerConfig
from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.okx import OkxSim
from adapters.hedging.sim.server import start
from tests.hedging import support as s

OKX_IDS = {"BTC/USDT:USDT": "BTC-USDT-SWAP", "ETH/USDT:USDT": "ETH-USDT-SWAP", "SOL/USDT:USDT": "SOL-USDT-SWAP"}


def okx_key(maker: str) -> Credentials:
    return Credentials(f"{maker}-okx-key", f"{maker}-okx-secret", f"{maker}-okx-passphrase")


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    return s.make_journal(tmp_path_factory.mktemp("venue"), 3_000)


@pytest.fixture
async def venues():
    binance = BinanceSim(seed=1)
    s.add_accounts(binance, "binance")
    okx = OkxSim(seed=2)
    for maker in s.MAKERS:
        c = okx_key(maker)
        okx.add_account(c.api_key, c.secret, c.password, cash_usdt=100_000_000)
    runners, urls = [], {}
    for name, sim in (("binance", binance), ("okx", okx)):
        runner, port = await start(sim.app())
        runners.append(runner)
        urls[name] = f"http://127.0.0.1:{port}"
    yield {"binance": binance, "okx": okx}, urls
    for runner in runners:
        await runner.cleanup()


def config(tmp_path, urls) -> HedgerConfig:
    settings = {"recv_window_ms": 1_000, "timeout_ms": 3_000, "rate_limit_ms": 1}
    return HedgerConfig(
        makers={m: {"binance": s.key_of(m, "binance"), "okx": okx_key(m)} for m in s.MAKERS},
        exchanges=(ExchangeConfig("binance", "binanceusdm", urls["binance"], **settings),
                   ExchangeConfig("okx", "okx", urls["okx"], **settings)),
        markets=dict(s.MARKETS), state_path=tmp_path / "hedger.json", audit_path=tmp_path / "audit.jsonl",
        clock_margin_ms=100)


def positions(sims, maker: str) -> dict[str, Decimal]:
    """Base quantity per ccxt symbol over both venues (OKX keeps base units inside)."""
    out = s.exchange_positions({"binance": sims["binance"]}, maker)
    account = sims["okx"].accounts[okx_key(maker).api_key]
    for symbol, inst_id in OKX_IDS.items():
        position = account.positions.get(inst_id)
        if position is not None:
            out[symbol] += position.amount
    return out


def assert_hedged(hedger, sims) -> None:
    for maker in s.MAKERS:
        actual = positions(sims, maker)
        for market, symbol in s.MARKETS.items():
            target = hedger.target((maker, market))
            assert abs(actual[symbol] - target) <= s.tolerance(sims["binance"], symbol), (maker, symbol, actual, target)


async def run_all(hedger, journal) -> None:
    for batch in s.batches(journal, hedger.position + 1):
        await hedger.handle(batch)


async def test_binance_down_fails_over_to_okx_and_a_restart_reads_okx_in_base_units(journal, venues, tmp_path):
    sims, urls = venues
    sims["binance"].faults.outage = True
    hedger = Hedger(config(tmp_path, urls))
    await hedger.start()
    try:
        await run_all(hedger, journal)
        assert_hedged(hedger, sims)
        assert hedger.health["binance"].state == "down" and hedger.health["okx"].state == "connected"
        assert sims["okx"].orders_placed > 0 and sims["binance"].orders_placed == 0
        targets = {(m, k): hedger.target((m, k)) for m in s.MAKERS for k in s.MARKETS}
    finally:
        await hedger.close()
    ids = [o.cl_ord_id for acct in sims["okx"].accounts.values() for o in acct.orders.values()]
    assert len(ids) == len(set(ids)) and all(i.startswith("ap") for i in ids)

    # A restart: reconcile takes the exchanges' positions as the hedge (OKX's in base units —
    # 100× off if contracts were read as BTC), and finds nothing left to send.
    sims["binance"].faults.outage = False
    placed = sims["okx"].orders_placed + sims["binance"].orders_placed
    again = Hedger(config(tmp_path, urls))
    await again.start()
    try:
        for (maker, market), target in targets.items():
            assert abs(again.hedge((maker, market)) - target) <= s.tolerance(sims["binance"], s.MARKETS[market])
        await again.hedge_dirty()
        assert sims["okx"].orders_placed + sims["binance"].orders_placed == placed
    finally:
        await again.close()


async def test_okx_down_fails_over_to_binance_and_okx_comes_back(journal, venues, tmp_path):
    sims, urls = venues
    sims["okx"].faults.outage = True
    hedger = Hedger(config(tmp_path, urls))
    await hedger.start()
    try:
        await run_all(hedger, journal)
        assert_hedged(hedger, sims)
        assert hedger.health["okx"].state == "down" and sims["okx"].orders_placed == 0
        sims["okx"].faults.outage = False
        hedger.health["okx"].open_until_s = 0.0  # the cooldown has passed (time is an argument)
        ok = await hedger._choose("maker00", "BTC/USDT:USDT", "buy", Decimal("0.001"))
        assert ok is not None and hedger.health["okx"].state == "connected"
    finally:
        await hedger.close()
