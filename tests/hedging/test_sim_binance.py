"""The Binance simulator against the real ccxt client: shapes, signatures, errors, limits, fills."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from adapters.hedging.exchanges import Credentials, make_client
from adapters.hedging.sim.binance import AHEAD_MS_MAX

BTC = "BTC/USDT:USDT"


async def test_markets_book_ticker_positions_balance(client, binance):
    markets = await client.load_markets()
    assert {BTC, "ETH/USDT:USDT", "SOL/USDT:USDT"} <= set(markets)
    assert markets[BTC]["precision"]["amount"] == 0.001 and markets[BTC]["limits"]["cost"]["min"] == 100
    book = await client.fetch_order_book(BTC, 10)
    assert book["bids"][0][0] < book["asks"][0][0]
    raw = await client.fapiPublicGetTickerBookTicker({"symbol": "BTCUSDT"})
    assert float(raw["bidPrice"]) == book["bids"][0][0]
    assert (await client.fetch_positions([BTC])) == []
    assert (await client.fetch_balance())["free"]["USDT"] == 1_000_000
    assert (await client.fetch_funding_rate(BTC))["markPrice"] > 0


async def test_ioc_fills_and_position(client):
    await client.load_markets()
    order = await client.create_order(BTC, "limit", "buy", 0.01, 101_000, {"timeInForce": "IOC",
                                                                            "newClientOrderId": "h-1"})
    assert order["status"] == "closed" and order["filled"] == 0.01 and order["clientOrderId"] == "h-1"
    again = await client.fetch_order(None, BTC, {"origClientOrderId": "h-1"})
    assert again["id"] == order["id"] and again["filled"] == 0.01
    [position] = await client.fetch_positions([BTC])
    assert position["contracts"] == 0.01 and position["side"] == "long"


async def test_short_depth_fills_partially_and_expires_the_rest(client, binance):
    sim, _ = binance
    sim.set_depth("BTCUSDT", "0.002")  # about 0.04 BTC over 20 levels
    await client.load_markets()
    order = await client.create_order(BTC, "limit", "sell", 1.0, 90_000, {"timeInForce": "IOC"})
    assert 0 < order["filled"] < 1.0
    assert order["info"]["status"] == "EXPIRED" and order["status"] == "expired"


async def test_price_bound_leaves_an_ioc_unfilled(client, binance):
    await client.load_markets()
    order = await client.create_order(BTC, "limit", "buy", 0.01, 99_000, {"timeInForce": "IOC"})
    assert order["filled"] == 0 and order["info"]["status"] == "EXPIRED"


async def test_unknown_order_is_order_not_found(client):
    await client.load_markets()
    with pytest.raises(ccxt.OrderNotFound):
        await client.fetch_order(None, BTC, {"origClientOrderId": "never-sent"})
    with pytest.raises(ccxt.OrderNotFound):
        await client.cancel_order("123", BTC)


async def test_wrong_secret_is_an_authentication_error_at_once(binance):
    sim, url = binance
    bad = make_client("binanceusdm", url, Credentials("k1", "wrong"))
    try:
        await bad.load_markets()
        before = sim.requests
        with pytest.raises(ccxt.AuthenticationError):
            await bad.fetch_positions([BTC])
        assert sim.requests == before + 1  # one refused request: ccxt does not retry it
        unknown = make_client("binanceusdm", url, Credentials("nobody", "x"))
        with pytest.raises(ccxt.AuthenticationError):
            await unknown.fetch_balance()
        await unknown.close()
    finally:
        await bad.close()


async def test_stale_timestamp_is_invalid_nonce(client, binance):
    """-1021 at its bounds, exactly: the server's clock frozen, the request's timestamp pinned.

    (It once set the server 10 s ahead with ccxt's own nonce; ccxt's recvWindow is 10 000 ms, so
    the outcome hung on whether a millisecond passed between ccxt's signing and the server's
    clock read: refused most runs, accepted some.)
    """
    sim, _ = binance
    await client.load_markets()
    now_ms = 1_767_250_800_000
    sim.clock_control.frozen_s = now_ms / 1_000
    window = 5_000

    async def balance_at(timestamp_ms: int):
        return await client.fetch_balance({"timestamp": timestamp_ms, "recvWindow": window})

    await balance_at(now_ms - window)  # the oldest timestamp the window takes
    with pytest.raises(ccxt.InvalidNonce):
        await balance_at(now_ms - window - 1)
    await balance_at(now_ms + AHEAD_MS_MAX)  # the furthest ahead the server takes
    with pytest.raises(ccxt.InvalidNonce):
        await balance_at(now_ms + AHEAD_MS_MAX + 1)


async def test_a_server_clock_an_hour_off_refuses_ccxts_own_nonce(client, binance):
    """ccxt's own timestamp against a server an hour ahead, then an hour behind: no bound is near."""
    sim, _ = binance
    await client.load_markets()
    sim.clock_control.offset_s = 3_600.0
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()
    sim.clock_control.offset_s = -3_600.0
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()


async def test_margin_is_insufficient(binance):
    sim, url = binance
    sim.add_account("poor", "p", wallet_usdt=10)
    poor = make_client("binanceusdm", url, Credentials("poor", "p"))
    try:
        await poor.load_markets()
        with pytest.raises(ccxt.InsufficientFunds):
            await poor.create_order(BTC, "limit", "buy", 0.01, 101_000, {"timeInForce": "IOC"})
    finally:
        await poor.close()


async def test_weight_limit_answers_429_then_418_to_who_does_not_back_off(client, binance):
    sim, _ = binance
    sim.limits.weight_per_window = 10
    await client.load_markets()  # weight 1
    client.enableRateLimit = False
    statuses = []
    for _ in range(20):
        try:
            await client.fetch_order_book(BTC, 5)  # weight 2
            statuses.append(200)
        except ccxt.DDoSProtection as error:
            statuses.append(418 if " 418 " in str(error) else 429)
            assert client.last_response_headers.get("Retry-After")
    assert statuses[:4] == [200] * 4 and statuses[4] == 429
    assert 418 in statuses  # it kept sending inside Retry-After
    assert sim.limits.counts[418] > 0


async def test_outage_and_latency(client, binance):
    sim, _ = binance
    await client.load_markets()
    sim.faults.outage = True
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await client.fetch_order_book(BTC, 5)
    sim.faults.outage = False
    sim.faults.latency_s = 0.3
    client.timeout = 100
    with pytest.raises(ccxt.RequestTimeout):
        await client.fetch_order_book(BTC, 5)


async def test_duplicate_client_id_refused_while_open(client, binance):
    await client.load_markets()
    await client.create_order(BTC, "limit", "buy", 0.01, 90_000, {"newClientOrderId": "rest-1"})  # GTC, rests
    with pytest.raises(ccxt.BaseError) as error:
        await client.create_order(BTC, "limit", "buy", 0.01, 90_000, {"newClientOrderId": "rest-1"})
    assert "-4116" in str(error.value)
    [open_order] = await client.fetch_open_orders(BTC)
    assert open_order["clientOrderId"] == "rest-1"
    cancelled = await client.cancel_order(open_order["id"], BTC)
    assert cancelled["status"] == "canceled"
