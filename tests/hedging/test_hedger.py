"""The hedger against Binance simulators through the real ccxt client."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from adapters.hedging.hedger import Hedger, HedgeIncomplete
from adapters.hedging.sim.binance import BinanceSim
from adapters.hedging.sim.server import start
from tests.hedging import support as s
from venue import hedging as vh


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    return s.make_journal(tmp_path_factory.mktemp("venue"), 3_000)


@pytest.fixture
async def sims():
    """Two simulated Binance exchanges, ``a`` and ``b``, with accounts for the makers."""
    out, runners, urls = {}, [], {}
    for name, seed in (("a", 1), ("b", 2)):
        sim = BinanceSim(seed=seed)
        s.add_accounts(sim, name)
        runner, port = await start(sim.app())
        out[name], urls[name] = sim, f"http://127.0.0.1:{port}"
        runners.append(runner)
    yield out, urls
    for runner in runners:
        await runner.cleanup()


def assert_hedged(hedger: Hedger, sims: dict) -> None:
    for maker in s.MAKERS:
        actual = s.exchange_positions(sims, maker)
        for market, symbol in s.MARKETS.items():
            target = hedger.target((maker, market))
            assert abs(actual[symbol] - target) <= s.tolerance(sims["a"], symbol), (maker, symbol, actual, target)


async def run_all(hedger: Hedger, journal) -> None:
    for batch in s.batches(journal, hedger.position + 1):
        await hedger.handle(batch)


async def test_exchange_positions_equal_the_target_within_a_lot(journal, sims, tmp_path):
    sims, urls = sims
    hedger = Hedger(s.config(tmp_path, {"a": urls["a"]}))
    await hedger.start()
    try:
        await run_all(hedger, journal)
        assert_hedged(hedger, sims)
        assert hedger.orders_sent > 0 and any(hedger.exposure.net_e9.values())
        status = hedger.status()
        assert status["exchanges"]["a"]["state"] == "connected" and status["positions"]
    finally:
        await hedger.close()
    ids = [o.client_order_id for acct in sims["a"].accounts.values() for o in acct.orders.values()]
    assert len(ids) == len(set(ids))
    audit = (tmp_path / "audit.jsonl").read_text()
    assert "secret" not in audit.replace("<redacted>", "") and "maker00-a-secret" not in audit


async def test_partial_fills_hedge_the_residual(journal, sims, tmp_path):
    sims, urls = sims
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):  # about a fifth of a typical hedge per book
        sims["a"].set_depth(symbol, {"BTCUSDT": "0.002", "ETHUSDT": "0.05", "SOLUSDT": "1"}[symbol])
    sims["a"].books["BTCUSDT"].refresh_s = 0.0  # the book refills at every look: the next IOC finds depth again
    sims["a"].books["ETHUSDT"].refresh_s = 0.0
    sims["a"].books["SOLUSDT"].refresh_s = 0.0
    hedger = Hedger(s.config(tmp_path, {"a": urls["a"]}, attempts_per_seq_max=64))
    await hedger.start()
    try:
        await run_all(hedger, journal)
        assert_hedged(hedger, sims)
    finally:
        await hedger.close()
    expired_partly = [o for acct in sims["a"].accounts.values() for o in acct.orders.values()
                      if o.status == "EXPIRED" and 0 < o.executed_qty < o.orig_qty]
    assert expired_partly  # partial fills happened, and the residual was hedged after them


async def test_one_exchange_down_fails_over_and_recovers(journal, sims, tmp_path):
    sims, urls = sims
    sims["a"].faults.outage = True
    hedger = Hedger(s.config(tmp_path, urls))
    await hedger.start()
    try:
        await run_all(hedger, journal)
        assert_hedged(hedger, sims)
        assert hedger.health["a"].state == "down" and hedger.health["b"].state == "connected"
        assert sims["b"].orders_placed > 0 and sims["a"].orders_placed == 0
        sims["a"].faults.outage = False
        hedger.health["a"].open_until_s = 0.0  # the cooldown has passed (time is an argument)
        ok = await hedger._choose("maker00", "BTC/USDT:USDT", "buy", Decimal("0.001"))
        assert ok is not None and hedger.health["a"].state == "connected"
    finally:
        await hedger.close()


async def test_wrong_secret_is_down_for_auth_and_never_retried(journal, sims, tmp_path):
    sims, urls = sims
    config = s.config(tmp_path, {"a": urls["a"]}, makers=("maker00",))
    config.makers["maker00"]["a"] = s.Credentials("maker00-a-key", "not-the-secret")
    hedger = Hedger(config)
    await hedger.start()
    try:
        before = sims["a"].requests
        with pytest.raises(HedgeIncomplete):
            await run_all(hedger, journal)
        assert hedger.health["a"].state == "down" and hedger.health["a"].reason == "auth"
        after = sims["a"].requests
        with pytest.raises(HedgeIncomplete):
            await hedger.hedge_dirty()  # the runner's retry: nothing goes out with a refused key
        assert sims["a"].requests == after and after - before <= 3
    finally:
        await hedger.close()


async def test_order_timeout_is_resolved_by_fetching(journal, sims, tmp_path):
    sims, urls = sims
    sims["a"].faults.latency_by_path_s["/fapi/v1/order"] = 0.5  # POST and GET: executed, answered late
    hedger = Hedger(s.config(tmp_path, {"a": urls["a"]}, exchange={"timeout_ms": 200}))
    await hedger.start()
    try:
        batches = list(s.batches(journal))
        done = 0
        with pytest.raises(HedgeIncomplete):  # an order times out; so does the fetch that looks for it
            for batch in batches:
                await hedger.handle(batch)
                done += 1
        assert hedger.state.intents  # an order whose fate is unknown, kept durably
        sims["a"].faults.latency_by_path_s.clear()
        hedger.health["a"].open_until_s = 0.0
        await hedger.hedge_dirty()  # resolves every unanswered order by its client id first
        assert not hedger.state.intents
        for batch in batches[done + 1:]:
            await hedger.handle(batch)
        assert_hedged(hedger, sims)
        assert not hedger.state.intents
    finally:
        await hedger.close()
    audit = (tmp_path / "audit.jsonl").read_text()
    assert '"outcome":"found"' in audit and '"RequestTimeout"' in audit
    ids = [o.client_order_id for acct in sims["a"].accounts.values() for o in acct.orders.values()]
    assert len(ids) == len(set(ids))


async def test_429_storm_backs_off_and_is_never_banned(journal, sims, tmp_path):
    sims, urls = sims
    limits = sims["a"].limits
    limits.weight_per_window, limits.window_s, limits.ban_after_violations = 12, 0.5, 2
    # Our budget believes in ten times more than the exchange allows: only 429s teach it.
    hedger = Hedger(s.config(tmp_path, {"a": urls["a"]}, exchange={"weight_per_window": 1_000, "window_s": 0.5}))
    await hedger.start()
    try:
        for batch in s.batches(journal):
            while True:
                try:
                    await hedger.handle(batch)
                    break
                except HedgeIncomplete:
                    continue  # the runner's retry at the same seq
        assert_hedged(hedger, sims)
    finally:
        await hedger.close()
    assert limits.counts[429] > 0 and hedger.budgets["a"].backoffs > 0
    assert limits.counts[418] == 0


async def test_a_hedging_batch_restarts_the_catch_up_deferral(journal, sims, tmp_path):
    """The venue's sink (``venue.hedging.HedgerSink``) catching up far behind the journal's
    end: batches apply without hedging until ``HEDGE_DEFER_S_MAX`` has passed since the last
    hedging batch; one hedges then, and its end starts that clock again (``apply`` stamps it),
    so the batch after it defers once more."""
    sims, urls = sims
    now = [100.0]
    batches = list(s.batches(journal, 1, size=100))[:4]
    tail_seq = batches[-1][-1].last_seq + vh.CATCH_UP_BEHIND_SEQ_MIN  # each batch far behind it
    sink = vh.HedgerSink(Hedger(s.config(tmp_path, {"a": urls["a"]})), tail_seq=lambda: tail_seq,
                         clock=lambda: now[0])

    async def apply(batch) -> None:
        assert await asyncio.to_thread(sink.apply, batch, batch[0].first_seq - 1) == batch[-1].last_seq

    try:
        await apply(batches[0])
        assert sink.batches_deferred == 1
        now[0] += vh.HEDGE_DEFER_S_MAX  # deferred this long since the sink began: this batch hedges
        await apply(batches[1])
        assert sink.batches_deferred == 1
        now[0] += vh.HEDGE_DEFER_S_MAX / 2  # half as long since that hedge ended
        await apply(batches[2])
        await apply(batches[3])
        assert sink.batches_deferred == 3
        assert sink.hedger.position == batches[3][-1].last_seq  # deferred batches are applied all the same
    finally:
        await asyncio.to_thread(sink.close)
