"""The OKX v5 simulator against the real ``ccxt.async_support.okx`` client: shapes, signed
headers, OKX's error codes; then the hedger's OKX dialect (``OkxForHedging``: base units,
client ids, ``expTime``, the fill read back)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import pytest

from adapters.hedging.exchanges import Credentials, make_client
from adapters.hedging.sim.okx import TIMESTAMP_SKEW_MS_MAX, OkxSim
from adapters.hedging.sim.server import start
from tests.hedging.conftest import Clock

BTC = "BTC/USDT:USDT"


@pytest.fixture
async def okx():
    clock = Clock()
    sim = OkxSim(seed=3, clock=clock)
    sim.clock_control = clock
    sim.add_account("k1", "s1", "p1")
    runner, port = await start(sim.app())
    yield sim, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def raw_client(url: str, key="k1", secret="s1", password="p1"):
    """ccxt's own okx (contracts on the wire), pointed at the simulator."""
    c = ccxt_async.okx({"apiKey": key, "secret": secret, "password": password, "enableRateLimit": False,
                        "timeout": 3_000, "options": {"fetchMarkets": {"types": ["swap"]}, "defaultType": "swap"}})
    c.has["fetchCurrencies"] = False
    c.urls["api"] = {"rest": url}
    return c


@pytest.fixture
async def raw(okx):
    c = raw_client(okx[1])
    yield c
    await c.close()


async def test_markets_tickers_books_time(raw, okx):
    markets = await raw.load_markets()
    assert set(markets) == {BTC, "ETH/USDT:USDT", "SOL/USDT:USDT"}
    m = markets[BTC]
    assert m["id"] == "BTC-USDT-SWAP" and m["contractSize"] == 0.01 and m["precision"]["amount"] == 0.01
    assert m["swap"] and m["linear"] and m["settle"] == "USDT"
    ticker = await raw.fetch_ticker(BTC)
    assert ticker["bid"] < ticker["ask"] and ticker["timestamp"] > 0
    tickers = await raw.fetch_tickers([BTC, "ETH/USDT:USDT"])
    assert set(tickers) == {BTC, "ETH/USDT:USDT"}
    book = await raw.fetch_order_book(BTC, 5)
    assert len(book["bids"]) == 5 and book["bids"][0][0] == ticker["bid"]
    okx[0].clock_control.frozen_s = 1_767_250_800.5
    assert await raw.fetch_time() == 1_767_250_800_500  # the server's clock, to the millisecond


async def test_ioc_through_batch_orders_fills_in_contracts(raw, okx):
    sim, _ = okx
    await raw.load_markets()
    ack = await raw.create_order(BTC, "limit", "buy", 3, 101_000, {"timeInForce": "IOC", "clientOrderId": "h1"})
    assert ack["id"] and ack["clientOrderId"] == "h1" and ack["filled"] is None  # OKX's ack has no fill
    order = await raw.fetch_order(ack["id"], BTC)
    assert order["status"] == "closed" and order["filled"] == 3 and order["info"]["ordType"] == "ioc"
    by_client = await raw.fetch_order(None, BTC, {"clientOrderId": "h1"})
    assert by_client["id"] == ack["id"]
    [position] = await raw.fetch_positions([BTC])
    assert position["contracts"] == 3 and position["side"] == "long" and position["contractSize"] == 0.01
    assert sim.accounts["k1"].positions["BTC-USDT-SWAP"].amount == 3 * sim.instruments["BTC-USDT-SWAP"].ct_val
    assert (await raw.fetch_balance())["USDT"]["total"] > 0


async def test_single_order_endpoint_partial_fill_and_resting_cancel(raw, okx):
    sim, _ = okx
    raw.options["createOrder"] = "privatePostTradeOrder"
    sim.set_depth("BTC-USDT-SWAP", "0.002")
    await raw.load_markets()
    ack = await raw.create_order(BTC, "limit", "sell", 100, 90_000, {"timeInForce": "IOC"})
    partial = await raw.fetch_order(ack["id"], BTC)
    assert 0 < partial["filled"] < 100 and partial["status"] == "canceled"
    resting = await raw.create_order(BTC, "limit", "buy", 1, 50_000)
    assert [o["id"] for o in await raw.fetch_open_orders(BTC)] == [resting["id"]]
    await raw.cancel_order(resting["id"], BTC)
    assert (await raw.fetch_order(resting["id"], BTC))["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await raw.cancel_order(resting["id"], BTC)  # 51401


async def test_errors_are_okx_codes_that_ccxt_maps(raw, okx):
    sim, url = okx
    await raw.load_markets()
    with pytest.raises(ccxt.OrderNotFound):
        await raw.fetch_order("42", BTC)  # 51603
    with pytest.raises(ccxt.OrderNotFound):
        await raw.cancel_order("42", BTC)  # 51400
    with pytest.raises(ccxt.InvalidOrder):
        await raw.create_order(BTC, "limit", "buy", 0.001, 100_000)  # 51020: below minSz
    sim.add_account("poor", "p", "pp", cash_usdt=10)
    poor = raw_client(url, "poor", "p", "pp")
    try:
        with pytest.raises(ccxt.InsufficientFunds):  # 51008 in data[].sCode
            await poor.create_order(BTC, "limit", "buy", 10, 101_000, {"timeInForce": "IOC"})
    finally:
        await poor.close()
    sim.add_account("dup", "d", "dd")
    dup = raw_client(url, "dup", "d", "dd")
    try:
        await dup.create_order(BTC, "limit", "buy", 1, 50_000, {"clientOrderId": "same"})
        with pytest.raises(ccxt.InvalidOrder):  # 51016 while the first is pending
            await dup.create_order(BTC, "limit", "buy", 1, 50_000, {"clientOrderId": "same"})
    finally:
        await dup.close()


@pytest.mark.parametrize("key, secret, password", [("k1", "wrong", "p1"), ("k1", "s1", "wrong"), ("nobody", "s", "p")])
async def test_bad_credentials_are_authentication_errors_at_once(okx, key, secret, password):
    sim, url = okx
    bad = raw_client(url, key, secret, password)
    try:
        await bad.load_markets()  # public
        before = sim.requests
        with pytest.raises(ccxt.AuthenticationError):
            await bad.fetch_positions([BTC])
        assert sim.requests == before + 1
    finally:
        await bad.close()


async def test_the_signature_is_okx_v5s(okx):
    """Signed by hand: base64(HMAC-SHA256(secret, ts + METHOD + path?query + body))."""
    sim, url = okx
    ts = "2020-12-08T09:08:57.715Z"
    sim.clock_control.frozen_s = 1607418537.715  # the server's clock at ts
    path = "/api/v5/account/positions?instType=SWAP"
    sign = base64.b64encode(hmac.new(b"s1", (ts + "GET" + path).encode(), hashlib.sha256).digest()).decode()
    headers = {"OK-ACCESS-KEY": "k1", "OK-ACCESS-PASSPHRASE": "p1", "OK-ACCESS-TIMESTAMP": ts, "OK-ACCESS-SIGN": sign}
    async with aiohttp.ClientSession() as session:
        async with session.get(url + path, headers=headers) as response:
            assert (await response.json()) == {"code": "0", "msg": "", "data": []}
        async with session.get(url + path + "&x=1", headers=headers) as response:
            assert response.status == 401 and (await response.json())["code"] == "50113"


async def test_stale_timestamp_and_passed_exptime_are_invalid_nonce(raw, okx):
    """50102 at its bounds, exactly: the server's clock frozen and ccxt's nonce pinned (ccxt's
    documented override, ``exchange.nonce = ...``), so no clock read races the request."""
    sim, url = okx
    await raw.load_markets()
    now_ms = 1_767_250_800_000
    sim.clock_control.frozen_s = now_ms / 1_000
    for skew_ms in (-TIMESTAMP_SKEW_MS_MAX, TIMESTAMP_SKEW_MS_MAX):
        raw.nonce = lambda skew_ms=skew_ms: now_ms + skew_ms
        await raw.fetch_balance()  # at the bound: taken
        raw.nonce = lambda skew_ms=skew_ms: now_ms + skew_ms + (1 if skew_ms > 0 else -1)
        with pytest.raises(ccxt.InvalidNonce):  # 50102
            await raw.fetch_balance()
    late = make_client("okx", url, Credentials("k1", "s1", "p1"), recv_window_ms=1_000)
    try:
        await late.load_markets()
        late.nonce = lambda: now_ms
        with pytest.raises(ccxt.InvalidNonce):  # expTime = timestamp + recvWindow = now - 1 ms: passed
            await late.create_order(BTC, "limit", "buy", 0.01, 101_000,
                                    {"timeInForce": "IOC", "timestamp": now_ms - 1_001})
        assert sim.orders_placed == 0
        order = await late.create_order(BTC, "limit", "buy", 0.01, 101_000,  # expTime = now: still taken
                                        {"timeInForce": "IOC", "timestamp": now_ms - 1_000})
        assert order["filled"] == 0.01 and sim.orders_placed == 1
    finally:
        await late.close()


async def test_rate_limit_is_429_50011(raw, okx):
    sim, _ = okx
    sim.limits_per_2s["/api/v5/market/ticker"] = 2
    await raw.load_markets()
    await raw.fetch_ticker(BTC)
    await raw.fetch_ticker(BTC)
    with pytest.raises(ccxt.RateLimitExceeded):
        await raw.fetch_ticker(BTC)
    c = make_client("okx", okx[1], None)
    try:
        await c.load_markets()
        with pytest.raises(ccxt.DDoSProtection):  # as Binance's 429: the hedger's budget backs off on it
            await c.fetch_ticker(BTC)
    finally:
        await c.close()


async def test_the_hedgers_dialect_base_units_client_ids_and_fills(okx):
    sim, url = okx
    c = make_client("okx", url, Credentials("k1", "s1", "p1"))
    try:
        markets = await c.load_markets()
        assert markets[BTC]["precision"]["amount"] == 0.0001 and markets[BTC]["limits"]["amount"]["min"] == 0.0001
        order = await c.create_order(BTC, "limit", "buy", 0.0123, 101_000,
                                     {"timeInForce": "IOC", "newClientOrderId": "ap0123456789abcdef01234567-3",
                                      "timestamp": c.milliseconds()})
        assert order["filled"] == 0.0123 and order["status"] == "closed"  # read back: the ack had no fill
        assert order["clientOrderId"] == "ap0123456789abcdef01234567-3"
        wire = sim.accounts["k1"].orders[order["id"]]
        assert wire.sz == Decimal("1.23") and wire.cl_ord_id == "ap0123456789abcdef01234567x3"  # of 0.01 BTC
        again = await c.fetch_order(None, BTC, {"origClientOrderId": "ap0123456789abcdef01234567-3"})
        assert again["id"] == order["id"]
        [position] = await c.fetch_positions([BTC])
        assert position["contracts"] == 0.0123 and position["side"] == "long"
        book = await c.fetch_order_book(BTC, 5)
        assert book["bids"][0][1] == float(sim.books["BTC-USDT-SWAP"].bids[0][1])  # base units
    finally:
        await c.close()


async def test_positions_of_several_instruments_sign_the_encoded_query(raw):
    """ccxt asks ``instId=BTC-USDT-SWAP%2CETH-USDT-SWAP``; the signature covers the bytes sent."""
    await raw.load_markets()
    assert await raw.fetch_positions([BTC, "ETH/USDT:USDT"]) == []
