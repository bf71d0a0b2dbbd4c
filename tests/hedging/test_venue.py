"""The hedger wired into the running venue (venue/hedging.py): a venue with hedged makers and
exchange simulators — embedded (started by the venue) or outliving it (started here) — trades
over HTTP; the hedging projection is waited on through the runner (never a sleep); then the
simulators' positions equal the targets within a lot, /health, /metrics and the status line
show the hedge, and a restarted venue sends no order again and stays at target."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adapters.hedging import keys
from adapters.hedging.exchanges import Credentials
from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.okx import OkxSim
from adapters.hedging.sim.server import start
from tests.hedging import support as s
from tests.http.conftest import Rig, start_rig_with as start_venue, stop_rig as stop_venue
from tests.support import agent_of, keypair
from venue import hedging as vh
from venue.app import Venue
from venue.config import load
from venue.run import Activity, status_line

MAKERS = (keypair(31), keypair(32))
TRADERS = (keypair(41), keypair(42))
PRICES = {"BTC-PERP": 100_000, "ETH-PERP": 4_000, "SOL-PERP": 200}
# (trader, maker, market, side, size_usdc): the makers end with mixed net exposures, one netted.
TRADES = [(0, 0, "BTC-PERP", "long", 5_000), (1, 0, "BTC-PERP", "long", 3_000), (0, 1, "ETH-PERP", "short", 6_000),
          (1, 1, "BTC-PERP", "long", 2_500), (0, 0, "SOL-PERP", "short", 4_000), (1, 1, "ETH-PERP", "long", 2_000)]
MORE_TRADES = [(0, 1, "BTC-PERP", "short", 4_000), (1, 0, "ETH-PERP", "long", 5_000)]


def config(tmp_path, exchanges=None, **hedging):
    overrides = {
        "venue": {"data_dir": str(tmp_path / "venue"), "demo": False, "dev": True},
        "gateway": {"tcp_port": 0, "http_port": 0},
        "oracle": {"source": "none"},
        "projections": {"sql": False},
        "settlement": {"backend": "none"},  # only the hedger on the runner
        "hedging": {"enabled": "on", "makers": [agent_of(k) for k in MAKERS], **hedging},
    }
    if exchanges is not None:
        overrides["hedging"]["exchanges"] = exchanges
    return load(env={}, overrides=overrides)


async def trade(rig: Rig, trader_i, maker_i, market, side, size_usdc) -> None:
    trader, maker = TRADERS[trader_i], MAKERS[maker_i]
    request = await rig.ok("/trade/request", {"market": market, "side": side, "size_usdc": size_usdc,
                                              "leverage": 10, "max_funding_rate": 0.01}, trader)
    quote = await rig.ok("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.001,
                                          "collateral_usdc": size_usdc // 5}, maker)
    message = f"accept:{request['request_id']}:{quote['quote_id']}".encode()
    await rig.ok("/trade/accept", {"request_id": request["request_id"], "quote_id": quote["quote_id"],
                                   "signature": str(trader.sign_message(message))}, trader)


async def fund_and_price(rig: Rig) -> None:
    for key in (*MAKERS, *TRADERS):
        await rig.faucet(key, 100_000)
    for market, price in PRICES.items():
        await rig.oracle(market, price)


async def hedged_through(rig: Rig) -> None:
    """Wait until the hedging projection applied (and hedged) every durable seq."""
    await rig.venue.projections.runner.wait_for_seq(vh.NAME, rig.venue.hub.last_seq)


def sim_positions(sims: dict, accounts: dict[str, str]) -> dict[str, Decimal]:
    """Base quantity per ccxt symbol over every simulator, for one maker (exchange → api key)."""
    out = {symbol: Decimal(0) for symbol in s.MARKETS.values()}
    for name, sim in sims.items():
        account = sim.accounts[accounts[name]]
        for symbol in out:
            position = account.positions.get(vh.sim_symbol(sim, symbol))
            if position is not None:
                out[symbol] += position.amount
    return out


def assert_at_target(rig: Rig, sims: dict, accounts_of) -> None:
    hedger = rig.venue.hedger.sink.hedger
    binance = next(sim for sim in sims.values() if isinstance(sim, BinanceSim))
    hedged = 0
    for key in MAKERS:
        maker = agent_of(key)
        actual = sim_positions(sims, accounts_of(maker))
        for market, symbol in s.MARKETS.items():
            target = hedger.target((maker, market))
            assert abs(actual[symbol] - target) <= s.tolerance(binance, symbol), (maker, symbol, actual, target)
            hedged += target != 0
    assert hedged >= 3  # the trades left real targets to reach, not zeros


def client_ids(sims: dict) -> list[str]:
    ids = []
    for sim in sims.values():
        for account in sim.accounts.values():
            ids += [getattr(o, "client_order_id", None) or getattr(o, "cl_ord_id") for o in account.orders.values()]
    return ids


async def test_embedded_simulators_hedge_the_makers(tmp_path):
    rig = await start_venue(config(tmp_path))
    try:
        hedging = rig.venue.hedger
        assert set(hedging.sims) == {"binance", "okx"} and len(hedging.credentials) == 2
        await fund_and_price(rig)
        for t in TRADES:
            await trade(rig, *t)
        await hedged_through(rig)
        # The simulators' books sit where the venue's oracle put them.
        assert hedging.sims["binance"].books["BTCUSDT"].reference == Decimal(100_000)
        assert hedging.sims["okx"].books["ETH-USDT-SWAP"].reference == Decimal(4_000)
        accounts = lambda maker: {n: c.api_key for n, c in hedging.credentials[maker].items()}  # noqa: E731
        assert_at_target(rig, hedging.sims, accounts)
        ids = client_ids(hedging.sims)
        assert ids and len(ids) == len(set(ids))

        health = (await rig.get("/health")).body
        assert {p["name"] for p in health["projections"]} == {vh.NAME}
        h = health["hedging"]
        assert h["lag_seq"] == 0 and set(h["exchanges"]) == {"binance", "okx"}
        assert all(e["state"] == "connected" for e in h["exchanges"].values())
        assert Decimal(h["hedged_usdc"]) > 0 and h["makers"] == 2
        metrics = (await rig.get("/metrics")).body["text"]
        assert 'agentperp_hedge_exchange_state{exchange="okx",state="connected"} 1.0' in metrics
        assert "agentperp_hedge_spread_bps{" in metrics and "agentperp_hedge_cost_bps{" in metrics
        assert 'agentperp_projection_lag_seq{projection="hedging"} 0.0' in metrics
        line = status_line(rig.venue, Activity(), 0.0)
        assert "hedging lag 0" in line and "hedged " in line and "residual " in line
        secrets = [c.secret for creds in hedging.credentials.values() for c in creds.values()]
        audit = (tmp_path / "venue" / "hedging" / "audit.jsonl").read_text()
        assert not any(secret in audit or secret in line or secret in metrics for secret in secrets)
    finally:
        await stop_venue(rig)


@pytest.fixture
async def exchanges(tmp_path, monkeypatch):
    """A Binance and an OKX simulator that outlive the venue, with each maker's keys in a keyfile."""
    monkeypatch.setenv(keys.PASSPHRASE_ENV, "test passphrase")
    sims = {"binance": BinanceSim(seed=3), "okx": OkxSim(seed=4)}
    keyfile = tmp_path / "keys.json"
    entries = []
    for key in MAKERS:
        maker = agent_of(key)
        b = s.key_of(maker[:8], "binance")
        o = Credentials(f"{maker[:8]}-okx-key", f"{maker[:8]}-okx-secret", f"{maker[:8]}-pass")
        sims["binance"].add_account(b.api_key, b.secret, wallet_usdt=100_000_000)
        sims["okx"].add_account(o.api_key, o.secret, o.password, cash_usdt=100_000_000)
        entries += [{"maker": maker, "exchange": "binance", "api_key": b.api_key, "secret": b.secret, "password": ""},
                    {"maker": maker, "exchange": "okx", "api_key": o.api_key, "secret": o.secret,
                     "password": o.password}]
    keys.save(keyfile, "test passphrase", entries)
    servers, table = [], []
    for name, sim in sims.items():
        runner, port = await start(sim.app())
        servers.append(runner)
        table.append({"name": name, "kind": "okx" if name == "okx" else "binanceusdm",
                      "base_url": f"http://127.0.0.1:{port}", "recv_window_ms": 1_000})
    yield sims, table, str(keyfile)
    for runner in servers:
        await runner.cleanup()


async def test_a_restarted_venue_sends_no_order_twice(tmp_path, exchanges):
    sims, table, keyfile = exchanges
    cfg = config(tmp_path, table, keyfile=keyfile)

    def accounts(maker):
        return {"binance": s.key_of(maker[:8], "binance").api_key, "okx": f"{maker[:8]}-okx-key"}

    rig = await start_venue(cfg)
    try:
        assert not rig.venue.hedger.sims  # nothing embedded: the exchanges are at their URLs
        await fund_and_price(rig)
        for market, price in PRICES.items():  # no embedded books to feed: set these exchanges' prices
            sims["binance"].set_reference(f"{market[:3]}USDT", price)
            sims["okx"].set_reference(f"{market[:3]}-USDT-SWAP", price)
        for t in TRADES:
            await trade(rig, *t)
        await hedged_through(rig)
        assert_at_target(rig, sims, accounts)
        orders_before = sum(sim.orders_placed for sim in sims.values())
        assert orders_before > 0
    finally:
        await stop_venue(rig)

    rig = await start_venue(cfg)  # same data dir, same exchanges
    try:
        await hedged_through(rig)  # started: state loaded, reconciled with both exchanges
        assert sum(sim.orders_placed for sim in sims.values()) == orders_before  # nothing sent again
        assert_at_target(rig, sims, accounts)
        for t in MORE_TRADES:
            await trade(rig, *t)
        await hedged_through(rig)
        assert_at_target(rig, sims, accounts)
        ids = client_ids(sims)
        assert len(ids) > orders_before and len(ids) == len(set(ids))  # new hedges, never a reused id
    finally:
        await stop_venue(rig)


def test_the_demo_makers_are_hedged_by_default_and_only_in_the_demo(tmp_path):
    from agents import demo, sdk
    from venue.config import DEMO_MAKER_ROLES

    assert DEMO_MAKER_ROLES == tuple(name for name, _ in demo.MAKERS)
    cfg = load(env={}, overrides={"venue": {"data_dir": str(tmp_path)}})
    assert cfg.hedging.enabled == "auto" and [e.base_url for e in cfg.hedging.exchanges] == ["embedded", "embedded"]
    assert vh._agent_id("maker-swarm", cfg.demo.seed) == str(sdk.demo_keypair(cfg.demo.seed, "maker-swarm", 0).pubkey())
    assert vh._agent_id("SomeAgentId", 1) == "SomeAgentId"
    assert vh.VenueHedging(Venue(cfg)).enabled
    no_demo = load(env={}, overrides={"venue": {"data_dir": str(tmp_path), "demo": False}})
    assert not vh.VenueHedging(Venue(no_demo)).enabled
    forced = load(env={"AGENTPERP_HEDGING_ENABLED": "on"}, overrides={"venue": {"demo": False}})
    assert vh.VenueHedging(Venue(forced)).enabled


async def test_catching_up_a_journal_hedges_each_maker_once_at_its_end(tmp_path, exchanges, monkeypatch):
    """Trades journaled while hedging was off, then a venue with hedging on catches up in small
    batches: it applies every batch but sends orders only from the one reaching the journal's
    end — one exposure seq per hedged (maker, market), none for an exposure that netted out."""
    sims, table, keyfile = exchanges
    rig = await start_venue(config(tmp_path, table, keyfile=keyfile, enabled="off"))
    try:
        await fund_and_price(rig)
        for t in TRADES + MORE_TRADES:
            await trade(rig, *t)
    finally:
        await stop_venue(rig)
    for market, price in PRICES.items():
        sims["binance"].set_reference(f"{market[:3]}USDT", price)
        sims["okx"].set_reference(f"{market[:3]}-USDT-SWAP", price)
    monkeypatch.setattr(vh, "CATCH_UP_BEHIND_SEQ_MIN", 1)  # every batch short of the end defers
    monkeypatch.setattr(vh, "HEDGE_DEFER_S_MAX", 1e9)  # however slow this machine is
    cfg = config(tmp_path, table, keyfile=keyfile)
    cfg.projections.batch_events = 5  # the catch-up runs in many batches

    rig = await start_venue(cfg)
    try:
        await hedged_through(rig)
        assert_at_target(rig, sims, lambda maker: {"binance": s.key_of(maker[:8], "binance").api_key,
                                                   "okx": f"{maker[:8]}-okx-key"})
        hedger = rig.venue.hedger.sink.hedger
        targets = [(agent_of(k), m) for k in MAKERS for m in s.MARKETS if hedger.target((agent_of(k), m)) != 0]
        exposure_seqs = {cid.rsplit("-", 1)[0] for cid in client_ids(sims)}  # an id is (maker, market, seq) + attempt
        assert len(exposure_seqs) == len(targets)
        assert rig.venue.hedger.status()["batches_deferred"] > 0
    finally:
        await stop_venue(rig)


def test_a_catch_up_defers_hedging_only_far_behind_the_end_and_never_for_long():
    now = [100.0]
    tail = [50_000]
    sink = vh.HedgerSink(None, tail_seq=lambda: tail[0], clock=lambda: now[0])
    try:
        behind = tail[0] - vh.CATCH_UP_BEHIND_SEQ_MIN
        assert not sink._hedges_after(behind)  # far behind: apply only
        assert sink._hedges_after(behind + 1)  # near the end: hedge
        now[0] += vh.HEDGE_DEFER_S_MAX / 2
        assert not sink._hedges_after(behind)
        now[0] += vh.HEDGE_DEFER_S_MAX  # deferred this long since the last hedge: hedge even so
        assert sink._hedges_after(behind)
        assert sink._hedges_after(behind)  # that hedge failed (the runner retries the seq): again, not deferred
        sink._hedged_s = now[0]  # as apply() stamps a hedging batch that reached its targets
        assert not sink._hedges_after(behind)  # ... and the clock starts again
        assert sink.batches_deferred == 3
        sink.tail_seq = None  # no tail known: every batch hedges
        assert sink._hedges_after(0)
    finally:
        sink.loop.close()
