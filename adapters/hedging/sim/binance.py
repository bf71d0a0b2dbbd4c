"""Binance USDⓈ-M futures REST (``/fapi/...``), as ``ccxt.binanceusdm`` calls it.

Public: ``/fapi/v1/ping``, ``time``, ``exchangeInfo``, ``depth``, ``ticker/24hr``,
``ticker/bookTicker``, ``premiumIndex``. Signed (HMAC-SHA256 of the query string or form
body, key in ``X-MBX-APIKEY``, ``timestamp`` within ``recvWindow``): ``POST/GET/DELETE
/fapi/v1/order``, ``GET /fapi/v1/openOrders``, ``/fapi/v1/leverageBracket``,
``/fapi/v3/positionRisk``, ``/fapi/v3/account``, ``/fapi/v2/balance``.

Errors are Binance's JSON ``{"code": -NNNN, "msg": "..."}`` with its HTTP statuses: -1021
(timestamp outside recvWindow), -1022 (bad signature), -2014/-2015 (bad key), -2013 (order
does not exist), -2011 (cancel of an unknown order), -2019 (margin is insufficient), -4116
(client order id duplicated among open orders), -1003 (429, 418); an outage answers a bare 503.

Websocket market streams (``/ws``, ``/ws/<stream>``, ``/public/ws``, ``/market/ws`` and the same
with a trailing ``/<stream>``: ccxt pro dials ``/public/ws/<n>``): JSON requests ``{"method":
"SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS", "params": [...], "id": N}`` answered ``{"result":
null, "id": N}`` or ``{"error": {"code", "msg"}, "id": N}`` with Binance's codes (2: invalid
request, 3: invalid JSON); one stream is simulated, ``<symbol>@bookTicker``, pushed as the exchange
does (``{"e": "bookTicker", "u", "E", "T", "s", "b", "B", "a", "A"}``) whenever the book's top
moves; other streams are acknowledged and stay silent. Bounds in ``sim/ws.py``.

Faults are injected through ``Faults`` (latency per path, an outage) and the optional
``on_order`` hook (an awaitable called with the parsed order before and after it is
executed; tests park or kill there). One account per API key, one-way position mode.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from aiohttp import web

from adapters.hedging.sim.book import Book, BookVenue, Faults, Position, SymbolSpec
from adapters.hedging.sim.limits import RateLimits
from adapters.hedging.sim.ws import WS_SUBSCRIPTIONS_PER_CONNECTION_MAX, Connection, TopStreams

RECV_WINDOW_MS_DEFAULT = 5_000
RECV_WINDOW_MS_MAX = 60_000
AHEAD_MS_MAX = 1_000  # a timestamp this far in the server's future is refused (-1021)
ORDERS_PER_ACCOUNT_MAX = 100_000  # orders kept queryable per account; the oldest closed go first
OPEN_ORDERS_PER_SYMBOL_MAX = 200  # MAX_NUM_ORDERS filter
LEVERAGE_DEFAULT = 20
WS_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS")
BOOK_TICKER = "bookTicker"

D = Decimal


def default_specs() -> dict[str, SymbolSpec]:
    """BTC, ETH and SOL perpetuals with Binance's filters (tick, step, min notional)."""
    return {
        "BTCUSDT": SymbolSpec("BTCUSDT", "BTC", D("0.10"), D("0.001"), D("0.001"), D("1000"), D("100"), 2, 3),
        "ETHUSDT": SymbolSpec("ETHUSDT", "ETH", D("0.01"), D("0.001"), D("0.001"), D("10000"), D("20"), 2, 3),
        "SOLUSDT": SymbolSpec("SOLUSDT", "SOL", D("0.010"), D("1"), D("1"), D("1000000"), D("5"), 3, 0),
    }


DEFAULT_REFERENCES = {"BTCUSDT": D("100000"), "ETHUSDT": D("4000"), "SOLUSDT": D("200")}
DEFAULT_DEPTH = {"BTCUSDT": D("2"), "ETHUSDT": D("40"), "SOLUSDT": D("800")}

# Request weights of the real exchange (IP limit) per (method, path).
WEIGHTS = {
    ("GET", "/fapi/v1/ping"): 1, ("GET", "/fapi/v1/time"): 1, ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/ticker/24hr"): 1, ("GET", "/fapi/v1/ticker/bookTicker"): 2,
    ("GET", "/fapi/v1/premiumIndex"): 1, ("POST", "/fapi/v1/order"): 0, ("GET", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/order"): 1, ("GET", "/fapi/v1/openOrders"): 1, ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v3/positionRisk"): 5, ("GET", "/fapi/v3/account"): 5, ("GET", "/fapi/v2/balance"): 5,
}


def depth_weight(limit: int) -> int:
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str, headers: dict | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


@dataclass
class Order:
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    orig_qty: Decimal
    price: Decimal
    reduce_only: bool
    time_ms: int
    executed_qty: Decimal = D(0)
    cum_quote: Decimal = D(0)
    status: str = "NEW"
    update_ms: int = 0

    def wire(self) -> dict:
        avg = self.cum_quote / self.executed_qty if self.executed_qty else D(0)
        return {
            "orderId": self.order_id, "symbol": self.symbol, "status": self.status,
            "clientOrderId": self.client_order_id, "price": str(self.price), "avgPrice": f"{avg:.8f}",
            "origQty": str(self.orig_qty), "executedQty": str(self.executed_qty), "cumQty": str(self.executed_qty),
            "cumQuote": f"{self.cum_quote:.8f}", "timeInForce": self.time_in_force, "type": self.type,
            "reduceOnly": self.reduce_only, "closePosition": False, "side": self.side, "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": self.type,
            "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
            "time": self.time_ms, "updateTime": self.update_ms or self.time_ms,
        }


@dataclass
class Account:
    api_key: str
    secret: str
    wallet_usdt: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # insertion order = age
    by_client_id: dict[str, int] = field(default_factory=dict)


class BinanceSim(BookVenue):
    """The exchange: accounts, books, limits and faults. ``app()`` serves it."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time,
                 limits: RateLimits | None = None, specs: dict[str, SymbolSpec] | None = None,
                 references: dict[str, Decimal] | None = None, depth: dict[str, Decimal] | None = None,
                 refresh_s: float = 1.0) -> None:
        self.clock = clock
        self.limits = limits or RateLimits()
        self.faults = Faults()
        self.specs = specs or default_specs()
        refs = {**DEFAULT_REFERENCES, **(references or {})}
        depths = {**DEFAULT_DEPTH, **(depth or {})}
        self.books = {s: Book(spec, D(str(refs[s])), D(str(depths[s])), seed=seed, refresh_s=refresh_s) for s, spec in self.specs.items()}
        self.accounts: dict[str, Account] = {}
        self.on_order: Callable[[str, dict], Awaitable[None]] | None = None
        self._order_ids = itertools.count(1_000_001)
        self.requests = 0  # answered, any status
        self.requests_by_path: dict[str, int] = {}  # keys: the routes' paths (bounded by the route table)
        self.orders_placed = 0
        self.ws = TopStreams(self, self._ws_frame)
        self._stream_ids = {f"{s.lower()}@{BOOK_TICKER}": s for s in self.specs}  # stream name -> symbol

    # -- control -------------------------------------------------------------------------
    def add_account(self, api_key: str, secret: str, wallet_usdt: Decimal | int | str = 1_000_000) -> Account:
        account = Account(api_key, secret, D(str(wallet_usdt)))
        self.accounts[api_key] = account
        return account

    # -- HTTP ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/fapi/v1/ping", self._ping)
        r.add_get("/fapi/v1/time", self._time)
        r.add_get("/fapi/v1/exchangeInfo", self._exchange_info)
        r.add_get("/fapi/v1/depth", self._depth)
        r.add_get("/fapi/v1/ticker/24hr", self._ticker_24hr)
        r.add_get("/fapi/v1/ticker/bookTicker", self._book_ticker)
        r.add_get("/fapi/v1/premiumIndex", self._premium_index)
        r.add_post("/fapi/v1/order", self._post_order)
        r.add_get("/fapi/v1/order", self._get_order)
        r.add_delete("/fapi/v1/order", self._delete_order)
        r.add_get("/fapi/v1/openOrders", self._open_orders)
        r.add_get("/fapi/v1/leverageBracket", self._leverage_bracket)
        r.add_get("/fapi/v3/positionRisk", self._position_risk)
        r.add_get("/fapi/v3/account", self._account)
        r.add_get("/fapi/v2/balance", self._balance)
        for path in ("/ws", "/ws/{stream}", "/{category:public|market}/ws", "/{category:public|market}/ws/{stream}"):
            r.add_get(path, self._websocket)
        r.add_post("/sim/faults", self._set_faults)
        r.add_post("/sim/reference", self._set_reference)
        app.on_shutdown.append(self.ws.shutdown)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        if not self.counted_as_rest(request):
            return await handler(request)  # websockets: no request weight (the exchange counts connections)
        delay = self.faults.latency_s + self.faults.latency_by_path_s.get(request.path, 0.0)
        try:
            if self.faults.outage:  # a load balancer in front of a dead exchange: no JSON
                self.requests += 1
                return web.Response(status=503, text="Service Unavailable")
            key = (request.method, request.path)
            if request.path == "/fapi/v1/depth":
                weight = depth_weight(int(request.query.get("limit", "500")))
            elif request.path == "/fapi/v1/openOrders" and "symbol" not in request.query:
                weight = 40
            else:
                weight = WEIGHTS.get(key, 1)
            ip = request.remote or "?"
            verdict = self.limits.check(ip, weight, key == ("POST", "/fapi/v1/order"), self.clock())
            headers = {"X-MBX-USED-WEIGHT-1M": str(verdict.used_weight),
                       "X-MBX-ORDER-COUNT-1M": str(verdict.order_count)}
            if verdict.status == 418:
                raise BinanceError(418, -1003, f"Way too many requests; IP({ip}) banned until {verdict.banned_until_ms}. "
                                   "Please use the websocket for live updates to avoid bans.",
                                   {**headers, "Retry-After": str(verdict.retry_after_s)})
            if verdict.status == 429:
                raise BinanceError(429, -1003, f"Too many requests; current limit of IP({ip}) is "
                                   f"{self.limits.weight_per_window} requests per minute. Please use the websocket "
                                   "for live updates to avoid polling the API.",
                                   {**headers, "Retry-After": str(verdict.retry_after_s)})
            response = await handler(request)
            response.headers.update(headers)
        except BinanceError as error:
            response = web.json_response({"code": error.code, "msg": error.msg}, status=error.status,
                                         headers=error.headers)
        if delay > 0:
            await asyncio.sleep(delay)
        self.requests += 1
        return response

    async def _signed(self, request: web.Request) -> tuple[Account, dict[str, str]]:
        """Check key, signature and timestamp; return the account and the parameters."""
        api_key = request.headers.get("X-MBX-APIKEY")
        if not api_key:
            raise BinanceError(401, -2014, "API-key format invalid.")
        account = self.accounts.get(api_key)
        if account is None:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        query = request.query_string
        body = (await request.text()) if request.can_read_body else ""
        payload = query + body  # Binance signs "totalParams": the query string, then the body
        head, sep, signature = payload.rpartition("&signature=")
        if not sep:
            raise BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        expected = hmac.new(account.secret.encode(), head.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(head, keep_blank_values=True))
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", RECV_WINDOW_MS_DEFAULT))
        except (KeyError, ValueError):
            raise BinanceError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if not 0 < recv_window <= RECV_WINDOW_MS_MAX:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000")
        now = self.now_ms()
        if timestamp > now + AHEAD_MS_MAX:
            raise BinanceError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return account, params

    def _spec(self, params) -> SymbolSpec:
        symbol = params.get("symbol")
        if symbol not in self.specs:
            raise BinanceError(400, -1121, "Invalid symbol.")
        return self.specs[symbol]

    # -- public --------------------------------------------------------------------------
    async def _ping(self, request):
        return web.json_response({})

    async def _time(self, request):
        return web.json_response({"serverTime": self.now_ms()})

    async def _exchange_info(self, request):
        symbols = []
        for spec in self.specs.values():
            symbols.append({
                "symbol": spec.symbol, "pair": spec.symbol, "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
                "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": spec.base,
                "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": spec.price_precision,
                "quantityPrecision": spec.quantity_precision, "baseAssetPrecision": 8, "quotePrecision": 8,
                "underlyingType": "COIN", "underlyingSubType": [], "triggerProtect": "0.0500",
                "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": str(spec.tick), "maxPrice": "4529764",
                     "tickSize": str(spec.tick)},
                    {"filterType": "LOT_SIZE", "stepSize": str(spec.step), "maxQty": str(spec.max_qty),
                     "minQty": str(spec.min_qty)},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": str(spec.step), "maxQty": str(spec.max_qty),
                     "minQty": str(spec.min_qty)},
                    {"filterType": "MAX_NUM_ORDERS", "limit": OPEN_ORDERS_PER_SYMBOL_MAX},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": str(spec.min_notional)},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                     "multiplierDecimal": "4"},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                               "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
            })
        return web.json_response({
            "timezone": "UTC", "serverTime": self.now_ms(), "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                 "limit": self.limits.weight_per_window},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": self.limits.orders_per_window},
            ],
            "exchangeFilters": [], "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        })

    async def _depth(self, request):
        spec = self._spec(request.query)
        limit = int(request.query.get("limit", "500"))
        book = self.book(spec.symbol)
        now = self.now_ms()
        return web.json_response({
            "lastUpdateId": book.generation, "E": now, "T": now,
            "bids": [[str(p), str(q)] for p, q in book.bids[:limit]],
            "asks": [[str(p), str(q)] for p, q in book.asks[:limit]],
        })

    def _book_ticker_of(self, symbol: str) -> dict:
        book = self.book(symbol)
        bid = book.bids[0] if book.bids else [D(0), D(0)]
        ask = book.asks[0] if book.asks else [D(0), D(0)]
        return {"symbol": symbol, "bidPrice": str(bid[0]), "bidQty": str(bid[1]), "askPrice": str(ask[0]),
                "askQty": str(ask[1]), "time": self.now_ms(), "lastUpdateId": book.generation}

    async def _book_ticker(self, request):
        if "symbol" in request.query:
            return web.json_response(self._book_ticker_of(self._spec(request.query).symbol))
        return web.json_response([self._book_ticker_of(s) for s in self.specs])

    def _ticker_of(self, symbol: str) -> dict:
        book = self.book(symbol)
        mid = book.mid() or book.reference
        now = self.now_ms()
        return {"symbol": symbol, "priceChange": "0", "priceChangePercent": "0.000", "weightedAvgPrice": str(mid),
                "lastPrice": str(mid), "lastQty": "0", "openPrice": str(book.reference), "highPrice": str(mid),
                "lowPrice": str(mid), "volume": "0", "quoteVolume": "0", "openTime": now - 86_400_000,
                "closeTime": now, "firstId": 0, "lastId": 0, "count": 0}

    async def _ticker_24hr(self, request):
        if "symbol" in request.query:
            return web.json_response(self._ticker_of(self._spec(request.query).symbol))
        return web.json_response([self._ticker_of(s) for s in self.specs])

    def _premium_of(self, symbol: str) -> dict:
        book = self.book(symbol)
        mid = book.mid() or book.reference
        now = self.now_ms()
        return {"symbol": symbol, "markPrice": str(mid), "indexPrice": str(book.reference),
                "estimatedSettlePrice": str(book.reference), "lastFundingRate": "0.00010000",
                "interestRate": "0.00010000", "nextFundingTime": (now // 28_800_000 + 1) * 28_800_000, "time": now}

    async def _premium_index(self, request):
        if "symbol" in request.query:
            return web.json_response(self._premium_of(self._spec(request.query).symbol))
        return web.json_response([self._premium_of(s) for s in self.specs])

    # -- orders --------------------------------------------------------------------------
    async def _post_order(self, request):
        account, params = await self._signed(request)
        spec = self._spec(params)
        side, kind = params.get("side"), params.get("type")
        if side not in ("BUY", "SELL"):
            raise BinanceError(400, -1117, "Invalid side.")
        if kind not in ("LIMIT", "MARKET"):
            raise BinanceError(400, -1116, "Invalid orderType.")
        try:
            qty = D(params["quantity"])
            price = D(params["price"]) if kind == "LIMIT" else D(0)
        except (KeyError, InvalidOperation):
            raise BinanceError(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        tif = params.get("timeInForce", "GTC" if kind == "LIMIT" else "GTC")
        if qty < spec.min_qty or qty > spec.max_qty or (qty % spec.step) != 0:
            raise BinanceError(400, -1111, "Precision is over the maximum defined for this asset.")
        if kind == "LIMIT" and (price <= 0 or (price % spec.tick) != 0):
            raise BinanceError(400, -4014, "Price not increased by tick size.")
        book = self.book(spec.symbol)
        reference_price = price if kind == "LIMIT" else (book.mid() or book.reference)
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        if qty * reference_price < spec.min_notional and not reduce_only:
            raise BinanceError(400, -4164, f"Order's notional must be no smaller than {spec.min_notional} (unless you "
                               "choose reduce only).")
        client_id = params.get("newClientOrderId") or f"sim{next(self._order_ids)}"
        previous = account.by_client_id.get(client_id)
        if previous is not None and account.orders[previous].status in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(400, -4116, "ClientOrderId is duplicated.")
        self._check_margin(account, spec.symbol, side, qty, reference_price)
        if self.on_order is not None:
            await self.on_order("before", params)
        now = self.now_ms()
        order = Order(next(self._order_ids), client_id, spec.symbol, side, kind, tif, qty, price, reduce_only, now)
        self._remember(account, order)
        self._execute(account, order, book)
        self.orders_placed += 1
        if self.on_order is not None:
            await self.on_order("after", params)
        return web.json_response(order.wire())

    def _remember(self, account: Account, order: Order) -> None:
        if len(account.orders) >= ORDERS_PER_ACCOUNT_MAX:
            for order_id, old in list(account.orders.items()):
                if old.status not in ("NEW", "PARTIALLY_FILLED"):
                    del account.orders[order_id]
                    if account.by_client_id.get(old.client_order_id) == order_id:
                        del account.by_client_id[old.client_order_id]
                    break
        account.orders[order.order_id] = order
        account.by_client_id[order.client_order_id] = order.order_id

    def _check_margin(self, account: Account, symbol: str, side: str, qty: Decimal, price: Decimal) -> None:
        position = account.positions.get(symbol, Position())
        signed = qty if side == "BUY" else -qty
        if abs(position.amount + signed) <= abs(position.amount):
            return  # reduces the position: always allowed
        used = sum((abs(p.amount) * self.book(s).reference for s, p in account.positions.items()), D(0)) / LEVERAGE_DEFAULT
        if used + qty * price / LEVERAGE_DEFAULT > account.wallet_usdt:
            raise BinanceError(400, -2019, "Margin is insufficient.")

    def _execute(self, account: Account, order: Order, book: Book) -> None:
        limit = order.price if order.type == "LIMIT" else None
        for price, qty in book.take(order.side, order.orig_qty, limit):
            self._fill(account, order, price, qty)
        if order.executed_qty == order.orig_qty:
            order.status = "FILLED"
        elif order.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
            order.status = "EXPIRED"  # the rest of an IOC is cancelled: Binance reports EXPIRED
        elif order.executed_qty > 0:
            order.status = "PARTIALLY_FILLED"
        order.update_ms = self.now_ms()

    def _fill(self, account: Account, order: Order, price: Decimal, qty: Decimal) -> None:
        order.executed_qty += qty
        order.cum_quote += price * qty
        position = account.positions.setdefault(order.symbol, Position())
        account.wallet_usdt += position.fill(qty if order.side == "BUY" else -qty, price, self.now_ms())

    def match_resting(self) -> None:
        """Fill resting limit orders that the current books cross (called by tests and the runner)."""
        for account in self.accounts.values():
            for order in account.orders.values():
                if order.status in ("NEW", "PARTIALLY_FILLED"):
                    book = self.book(order.symbol)
                    for price, qty in book.take(order.side, order.orig_qty - order.executed_qty, order.price):
                        self._fill(account, order, price, qty)
                    if order.executed_qty == order.orig_qty:
                        order.status = "FILLED"
                    elif order.executed_qty > 0:
                        order.status = "PARTIALLY_FILLED"

    def _find(self, account: Account, params: dict, code: int, msg: str) -> Order:
        self._spec(params)
        order = None
        if "orderId" in params:
            order = account.orders.get(int(params["orderId"]))
        elif "origClientOrderId" in params:
            order_id = account.by_client_id.get(params["origClientOrderId"])
            order = account.orders.get(order_id) if order_id is not None else None
        else:
            raise BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order is None or order.symbol != params["symbol"]:
            raise BinanceError(400, code, msg)
        return order

    async def _get_order(self, request):
        account, params = await self._signed(request)
        return web.json_response(self._find(account, params, -2013, "Order does not exist.").wire())

    async def _delete_order(self, request):
        account, params = await self._signed(request)
        order = self._find(account, params, -2011, "Unknown order sent.")
        if order.status not in ("NEW", "PARTIALLY_FILLED"):
            raise BinanceError(400, -2011, "Unknown order sent.")
        order.status = "CANCELED"
        order.update_ms = self.now_ms()
        return web.json_response(order.wire())

    async def _open_orders(self, request):
        account, params = await self._signed(request)
        symbol = params.get("symbol")
        return web.json_response([o.wire() for o in account.orders.values()
                                  if o.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, o.symbol)])

    # -- account -------------------------------------------------------------------------
    async def _leverage_bracket(self, request):
        await self._signed(request)
        return web.json_response([
            {"symbol": s, "notionalCoef": 1.0, "brackets": [
                {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
                 "maintMarginRatio": 0.004, "cum": 0.0},
                {"bracket": 2, "initialLeverage": 100, "notionalCap": 600000, "notionalFloor": 50000,
                 "maintMarginRatio": 0.005, "cum": 50.0}]}
            for s in self.specs])

    def _position_wire(self, symbol: str, position: Position) -> dict:
        mark = self.book(symbol).reference
        notional = position.amount * mark
        upnl = position.amount * (mark - position.entry)
        margin = abs(notional) / LEVERAGE_DEFAULT
        return {"symbol": symbol, "positionSide": "BOTH", "positionAmt": str(position.amount),
                "entryPrice": str(position.entry), "breakEvenPrice": str(position.entry), "markPrice": str(mark),
                "unRealizedProfit": f"{upnl:.8f}", "liquidationPrice": "0", "isolatedMargin": "0",
                "notional": f"{notional:.8f}", "marginAsset": "USDT", "isolatedWallet": "0",
                "initialMargin": f"{margin:.8f}", "maintMargin": f"{margin / 10:.8f}",
                "positionInitialMargin": f"{margin:.8f}", "openOrderInitialMargin": "0", "adl": 0,
                "bidNotional": "0", "askNotional": "0", "updateTime": position.update_ms}

    async def _position_risk(self, request):
        account, params = await self._signed(request)
        symbol = params.get("symbol")
        return web.json_response([self._position_wire(s, p) for s, p in account.positions.items()
                                  if p.amount != 0 and symbol in (None, s)])

    def _balances(self, account: Account) -> dict:
        upnl = sum((p.amount * (self.book(s).reference - p.entry) for s, p in account.positions.items()), D(0))
        margin = sum((abs(p.amount) * self.book(s).reference for s, p in account.positions.items()), D(0)) / LEVERAGE_DEFAULT
        return {"wallet": account.wallet_usdt, "upnl": upnl, "margin": margin,
                "available": account.wallet_usdt + upnl - margin}

    async def _account(self, request):
        account, params = await self._signed(request)
        b = self._balances(account)
        asset = {"asset": "USDT", "walletBalance": str(b["wallet"]), "unrealizedProfit": f"{b['upnl']:.8f}",
                 "marginBalance": f"{b['wallet'] + b['upnl']:.8f}", "maintMargin": f"{b['margin'] / 10:.8f}",
                 "initialMargin": f"{b['margin']:.8f}", "positionInitialMargin": f"{b['margin']:.8f}",
                 "openOrderInitialMargin": "0", "crossWalletBalance": str(b["wallet"]),
                 "crossUnPnl": f"{b['upnl']:.8f}", "availableBalance": f"{b['available']:.8f}",
                 "maxWithdrawAmount": f"{b['available']:.8f}", "updateTime": self.now_ms()}
        return web.json_response({
            "totalInitialMargin": asset["initialMargin"], "totalMaintMargin": asset["maintMargin"],
            "totalWalletBalance": asset["walletBalance"], "totalUnrealizedProfit": asset["unrealizedProfit"],
            "totalMarginBalance": asset["marginBalance"], "totalPositionInitialMargin": asset["initialMargin"],
            "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": asset["walletBalance"],
            "totalCrossUnPnl": asset["unrealizedProfit"], "availableBalance": asset["availableBalance"],
            "maxWithdrawAmount": asset["maxWithdrawAmount"], "assets": [asset],
            "positions": [{"symbol": s, "positionSide": "BOTH", "positionAmt": str(p.amount),
                           "unrealizedProfit": "0", "isolatedMargin": "0", "notional": str(p.amount * p.entry),
                           "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0", "updateTime": p.update_ms}
                          for s, p in account.positions.items() if p.amount != 0],
        })

    async def _balance(self, request):
        account, params = await self._signed(request)
        b = self._balances(account)
        return web.json_response([{"accountAlias": "sim", "asset": "USDT", "balance": str(b["wallet"]),
                                   "crossWalletBalance": str(b["wallet"]), "crossUnPnl": f"{b['upnl']:.8f}",
                                   "availableBalance": f"{b['available']:.8f}",
                                   "maxWithdrawAmount": f"{b['available']:.8f}", "marginAvailable": True,
                                   "updateTime": self.now_ms()}])

    # -- websocket market streams -------------------------------------------------------
    async def _websocket(self, request):
        path_stream = request.match_info.get("stream")
        symbol = self._stream_ids.get(path_stream)

        def on_open(conn: Connection) -> None:  # /ws/btcusdt@bookTicker: subscribed by its URL
            if symbol is not None:
                self.ws.subscribe(conn, (BOOK_TICKER, symbol))
        return await self.ws.serve(request, self._ws_request, on_open)

    def _ws_request(self, conn: Connection, text: str) -> None:
        """One client request on a market-stream connection, answered as Binance does."""
        try:
            body = json.loads(text)
        except ValueError as error:
            conn.send({"error": {"code": 3, "msg": f"Invalid JSON: {str(error)[:100]}"}, "id": None})
            return
        request_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(body, dict) or body.get("method") not in WS_METHODS:
            conn.send({"error": {"code": 2, "msg": "Invalid request: unknown variant, expected one of "
                                 "SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS"}, "id": request_id})
            return
        if body["method"] == "LIST_SUBSCRIPTIONS":
            conn.send({"result": sorted(f"{k.lower()}@{c}" for c, k in conn.topics), "id": request_id})
            return
        params = body.get("params")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            conn.send({"error": {"code": 2, "msg": "Invalid request: params must be a list of stream names"},
                       "id": request_id})
            return
        # Binance acknowledges a stream it does not have (it just never sends): unknown names are skipped
        topics = [(BOOK_TICKER, self._stream_ids[p]) for p in params if p in self._stream_ids]
        if body["method"] == "UNSUBSCRIBE":
            conn.topics.difference_update(topics)
            conn.send({"result": None, "id": request_id})
            return
        if not self.ws.has_room(conn, topics):
            conn.send({"error": {"code": 2, "msg": f"Invalid request: at most {WS_SUBSCRIPTIONS_PER_CONNECTION_MAX} "
                                 "streams per connection"}, "id": request_id})
            return
        conn.send({"result": None, "id": request_id})  # the acknowledgement, then the tops
        for topic in topics:
            self.ws.subscribe(conn, topic)

    def _ws_frame(self, channel: str, symbol: str) -> dict:
        t = self._book_ticker_of(symbol)  # the REST top, in the stream's field names
        return {"e": BOOK_TICKER, "u": t["lastUpdateId"], "s": symbol, "b": t["bidPrice"], "B": t["bidQty"],
                "a": t["askPrice"], "A": t["askQty"], "T": t["time"], "E": t["time"]}

    # -- control endpoints (demos; tests call the methods) -------------------------------
    async def _set_faults(self, request):
        return web.json_response(self.set_faults(json.loads(await request.text() or "{}")))

    async def _set_reference(self, request):
        body = json.loads(await request.text() or "{}")
        self.set_reference(body["symbol"], body["price"])
        return web.json_response({"symbol": body["symbol"], "price": str(self.books[body["symbol"]].reference)})
