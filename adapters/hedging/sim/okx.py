"""OKX v5 REST (``/api/v5/...``) for USDT-margined perpetual swaps, as ``ccxt.okx`` calls it.

Public: ``GET /api/v5/public/time``, ``/public/instruments?instType=SWAP``, ``/market/ticker``,
``/market/tickers?instType=SWAP``, ``/market/books``. Private (headers ``OK-ACCESS-KEY``,
``OK-ACCESS-PASSPHRASE``, ``OK-ACCESS-TIMESTAMP`` (ISO-8601, ms, within 30 s of the server),
``OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + path?query + body))``):
``POST /api/v5/trade/order``, ``/trade/batch-orders`` (ccxt's default for ``create_order``),
``/trade/cancel-order``, ``GET /trade/order``, ``/trade/orders-pending``,
``/account/positions``, ``/account/balance``. An optional ``expTime`` header (ms) is a
deadline: a request arriving after it is refused (50102), as the real exchange does.

Everything answers OKX's shape ``{"code": "0", "msg": "", "data": [...]}``; failures carry
OKX's own codes (ccxt maps them): 50011 (429, too many requests), 50102 (timestamp expired),
50103/50104/50105/50111/50113 (401, key / passphrase / signature), 50014 and 51000
(parameters), 51001 (instrument), 51008 (insufficient margin), 51016 (duplicated clOrdId),
51020/51121 (size), 51400/51401/51402 (cancel), 51603 (order does not exist). Order
placement failures answer ``code "1"`` with the reason in ``data[].sCode`` (HTTP 200).

Websocket, public channels (``/ws/v5/public``): ``{"op": "subscribe"|"unsubscribe", "args":
[{"channel", "instId"}]}`` answered per argument ``{"event": "subscribe", "arg": {...}, "connId"}``
or ``{"event": "error", "code", "msg", "connId"}`` (60012 illegal request, 60018 no such
channel or instrument); the text ``ping`` is answered ``pong``. Two channels are simulated,
``bbo-tbt`` (``{"arg", "data": [{"asks": [[px, sz, "0", n]], "bids": [...], "ts", "seqId"}]}``)
and ``tickers`` (the REST ticker's fields), pushed whenever the book's top moves. Bounds in
``sim/ws.py``.

Sizes on the wire are **contracts** (``ctVal`` base units each: BTC 0.01, ETH 0.1, SOL 1, as
on OKX); the book and positions are kept in base units and shared with the Binance simulator
(``book.Book``, ``book.Position``). One-way (``net``) position mode, cross margin.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from aiohttp import web

from adapters.hedging.sim.book import Book, BookVenue, Faults, Position, SymbolSpec
from adapters.hedging.sim.ws import WS_SUBSCRIPTIONS_PER_CONNECTION_MAX, Connection, TopStreams

D = Decimal
TIMESTAMP_SKEW_MS_MAX = 30_000  # OKX: a request timestamp further from the server's clock → 50102
ORDERS_PER_ACCOUNT_MAX = 100_000
BODY_BYTES_MAX = 64 * 1024
BATCH_ORDERS_MAX = 20  # /trade/batch-orders takes at most 20
CLIENT_ID_MAX = 32  # clOrdId: up to 32 letters and digits
LEVERAGE_DEFAULT = 20
WS_CHANNELS = ("bbo-tbt", "tickers")  # the public channels simulated


@dataclass(frozen=True)
class Instrument:
    inst_id: str  # BTC-USDT-SWAP
    base: str
    ct_val: Decimal  # base units per contract
    lot_sz: Decimal  # contracts
    min_sz: Decimal  # contracts
    tick_sz: Decimal
    max_lmt_sz: Decimal = D("100000000")


def default_instruments() -> dict[str, Instrument]:
    """BTC, ETH and SOL USDT swaps with OKX's contract values, lots and ticks."""
    return {i.inst_id: i for i in (
        Instrument("BTC-USDT-SWAP", "BTC", D("0.01"), D("0.01"), D("0.01"), D("0.1")),
        Instrument("ETH-USDT-SWAP", "ETH", D("0.1"), D("0.01"), D("0.01"), D("0.01")),
        Instrument("SOL-USDT-SWAP", "SOL", D("1"), D("0.01"), D("0.01"), D("0.01")),
    )}


DEFAULT_REFERENCES = {"BTC-USDT-SWAP": D("100000"), "ETH-USDT-SWAP": D("4000"), "SOL-USDT-SWAP": D("200")}
DEFAULT_DEPTH = {"BTC-USDT-SWAP": D("2"), "ETH-USDT-SWAP": D("40"), "SOL-USDT-SWAP": D("800")}  # base units/level
# Requests per 2 s per (client, endpoint), OKX's documented limits for these endpoints.
LIMITS_PER_2S = {"/api/v5/market/ticker": 20, "/api/v5/market/tickers": 20, "/api/v5/market/books": 40,
                 "/api/v5/public/instruments": 20, "/api/v5/public/time": 10, "/api/v5/trade/order": 60,
                 "/api/v5/trade/batch-orders": 300, "/api/v5/trade/cancel-order": 60,
                 "/api/v5/trade/orders-pending": 60, "/api/v5/account/positions": 10,
                 "/api/v5/account/balance": 10}
RATE_WINDOW_S = 2.0
RATE_CLIENTS_MAX = 10_000


class OkxError(Exception):
    def __init__(self, code: str, msg: str, status: int = 200, data: list | None = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status, self.data = code, msg, status, data or []


@dataclass
class OkxOrder:
    ord_id: str
    cl_ord_id: str
    inst_id: str
    side: str  # buy | sell
    ord_type: str  # limit | market | ioc | fok | post_only
    sz: Decimal  # contracts
    px: Decimal
    reduce_only: bool
    c_time: int
    acc_fill_sz: Decimal = D(0)  # contracts
    fill_quote: Decimal = D(0)  # Σ price × base quantity
    state: str = "live"  # live | partially_filled | filled | canceled
    u_time: int = 0
    tag: str = ""

    def wire(self, ct_val: Decimal) -> dict:
        base = self.acc_fill_sz * ct_val
        avg = self.fill_quote / base if base else D(0)
        return {
            "instType": "SWAP", "instId": self.inst_id, "ccy": "", "ordId": self.ord_id, "clOrdId": self.cl_ord_id,
            "tag": self.tag, "px": str(self.px), "pxUsd": "", "pxVol": "", "pxType": "", "sz": str(self.sz),
            "pnl": "0", "ordType": self.ord_type, "side": self.side, "posSide": "net", "tdMode": "cross",
            "accFillSz": str(self.acc_fill_sz), "fillPx": "", "tradeId": "", "fillSz": "0", "fillTime": "",
            "avgPx": str(avg) if base else "", "state": self.state, "lever": str(LEVERAGE_DEFAULT),
            "attachAlgoClOrdId": "", "tpTriggerPx": "", "tpTriggerPxType": "", "tpOrdPx": "", "slTriggerPx": "",
            "slTriggerPxType": "", "slOrdPx": "", "attachAlgoOrds": [], "feeCcy": "USDT", "fee": "0",
            "rebateCcy": "USDT", "rebate": "0", "source": "", "category": "normal",
            "reduceOnly": "true" if self.reduce_only else "false", "stpId": "", "stpMode": "cancel_maker",
            "cancelSource": "", "quickMgnType": "", "algoClOrdId": "", "algoId": "", "isTpLimit": "false",
            "uTime": str(self.u_time or self.c_time), "cTime": str(self.c_time),
        }


@dataclass
class OkxAccount:
    api_key: str
    secret: str
    passphrase: str
    cash_usdt: Decimal
    positions: dict[str, Position] = field(default_factory=dict)  # base units
    orders: dict[str, OkxOrder] = field(default_factory=dict)  # ordId → order, insertion order = age
    by_client_id: dict[str, str] = field(default_factory=dict)


class OkxSim(BookVenue):
    """The exchange: accounts, books, limits and faults. ``app()`` serves it."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time,
                 instruments: dict[str, Instrument] | None = None, references: dict[str, Decimal] | None = None,
                 depth: dict[str, Decimal] | None = None, refresh_s: float = 1.0,
                 limits_per_2s: dict[str, int] | None = None) -> None:
        self.clock = clock
        self.faults = Faults()
        self.instruments = instruments or default_instruments()
        refs = {**DEFAULT_REFERENCES, **(references or {})}
        depths = {**DEFAULT_DEPTH, **(depth or {})}
        self.books: dict[str, Book] = {}
        for inst_id, inst in self.instruments.items():
            step = inst.lot_sz * inst.ct_val
            spec = SymbolSpec(inst_id, inst.base, inst.tick_sz, step, inst.min_sz * inst.ct_val,
                              inst.max_lmt_sz * inst.ct_val, D(0), 0, 0)
            self.books[inst_id] = Book(spec, D(str(refs[inst_id])), D(str(depths[inst_id])), seed=seed,
                                       refresh_s=refresh_s)
        self.limits_per_2s = {**LIMITS_PER_2S, **(limits_per_2s or {})}
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self.accounts: dict[str, OkxAccount] = {}
        self.on_order: Callable[[str, dict], Awaitable[None]] | None = None
        self._order_ids = itertools.count(700_000_000_000_000_001)
        self.requests = 0
        self.requests_by_path: dict[str, int] = {}  # keys: the routes' paths (bounded by the route table)
        self.orders_placed = 0
        self.rate_limited = 0
        self.ws = TopStreams(self, self._ws_frame)
        self._conn_ids = itertools.count(1)

    # -- control -------------------------------------------------------------------------
    def add_account(self, api_key: str, secret: str, passphrase: str = "",
                    cash_usdt: Decimal | int | str = 1_000_000) -> OkxAccount:
        account = OkxAccount(api_key, secret, passphrase, D(str(cash_usdt)))
        self.accounts[api_key] = account
        return account

    # -- HTTP ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=BODY_BYTES_MAX)
        r = app.router
        r.add_get("/api/v5/public/time", self._time)
        r.add_get("/api/v5/public/instruments", self._instruments)
        r.add_get("/api/v5/market/ticker", self._ticker)
        r.add_get("/api/v5/market/tickers", self._tickers)
        r.add_get("/api/v5/market/books", self._books)
        r.add_post("/api/v5/trade/order", self._post_order)
        r.add_post("/api/v5/trade/batch-orders", self._post_batch)
        r.add_post("/api/v5/trade/cancel-order", self._cancel_order)
        r.add_get("/api/v5/trade/order", self._get_order)
        r.add_get("/api/v5/trade/orders-pending", self._orders_pending)
        r.add_get("/api/v5/account/positions", self._positions)
        r.add_get("/api/v5/account/balance", self._balance)
        r.add_get("/ws/v5/public", self._websocket)
        r.add_post("/sim/faults", self._set_faults)
        r.add_post("/sim/reference", self._set_reference)
        app.on_shutdown.append(self.ws.shutdown)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        if not self.counted_as_rest(request):
            return await handler(request)  # websockets: bounded by connections, not by the REST limits
        delay = self.faults.latency_s + self.faults.latency_by_path_s.get(request.path, 0.0)
        try:
            if self.faults.outage:
                self.requests += 1
                return web.Response(status=503, text="Service Unavailable")
            self._rate_check(request.remote or "?", request.path)
            data = await handler(request)
            response = web.json_response({"code": "0", "msg": "", "data": data})
        except OkxError as error:
            response = web.json_response({"code": error.code, "msg": error.msg, "data": error.data},
                                         status=error.status)
        if delay > 0:
            await asyncio.sleep(delay)
        self.requests += 1
        return response

    def _rate_check(self, ip: str, path: str) -> None:
        limit = self.limits_per_2s.get(path)
        if limit is None:
            return
        key = (ip, path)
        recent = self._recent.get(key)
        if recent is None:
            if len(self._recent) >= RATE_CLIENTS_MAX:
                self._recent.pop(next(iter(self._recent)))
            recent = self._recent[key] = deque()
        now = self.clock()
        while recent and now - recent[0] >= RATE_WINDOW_S:
            recent.popleft()
        if len(recent) >= limit:
            self.rate_limited += 1
            raise OkxError("50011", "Too Many Requests", 429)
        recent.append(now)

    async def _signed(self, request: web.Request) -> tuple[OkxAccount, str]:
        """Check key, passphrase, timestamp, signature and ``expTime``; the account and the body."""
        h = request.headers
        key, passphrase = h.get("OK-ACCESS-KEY"), h.get("OK-ACCESS-PASSPHRASE")
        stamp, sign = h.get("OK-ACCESS-TIMESTAMP"), h.get("OK-ACCESS-SIGN")
        if not key:
            raise OkxError("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.', 401)
        if not passphrase:
            raise OkxError("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.', 401)
        if not sign:
            raise OkxError("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.', 401)
        if not stamp:
            raise OkxError("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.', 401)
        account = self.accounts.get(key)
        if account is None:
            raise OkxError("50111", "Invalid OK-ACCESS-KEY.", 401)
        if not hmac.compare_digest(passphrase, account.passphrase):
            raise OkxError("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
        try:
            stamp_ms = int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            raise OkxError("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401) from None
        body = (await request.text()) if request.can_read_body else ""
        path_query = request.raw_path  # as sent: the signature covers the percent-encoded query (%2C in instId=a,b)
        expected = base64.b64encode(hmac.new(account.secret.encode(), (stamp + request.method + path_query + body)
                                             .encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, sign):
            raise OkxError("50113", "Invalid signature.", 401)
        now = self.now_ms()
        if abs(now - stamp_ms) > TIMESTAMP_SKEW_MS_MAX:
            raise OkxError("50102", "Timestamp request expired.", 401)
        exp_time = h.get("expTime")
        if exp_time is not None:
            if not exp_time.isdigit():
                raise OkxError("50014", "Parameter expTime error.", 400)
            if now > int(exp_time):
                raise OkxError("50102", "Timestamp request expired.", 401)
        return account, body

    def _inst(self, inst_id: str | None) -> Instrument:
        if inst_id is None or inst_id == "":
            raise OkxError("50014", "Parameter instId cannot be empty.", 400)
        inst = self.instruments.get(inst_id)
        if inst is None:
            raise OkxError("51001", "Instrument ID does not exist.", 400)
        return inst

    # -- public --------------------------------------------------------------------------
    async def _time(self, request):
        return [{"ts": str(self.now_ms())}]

    async def _instruments(self, request):
        kind = request.query.get("instType")
        if not kind:
            raise OkxError("50014", "Parameter instType cannot be empty.", 400)
        if kind != "SWAP":
            return []  # this simulator lists perpetual swaps only
        return [{
            "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear", "ctVal": str(i.ct_val),
            "ctValCcy": i.base, "expTime": "", "instFamily": f"{i.base}-USDT", "instId": i.inst_id,
            "instType": "SWAP", "lever": "100", "listTime": "1573557408000", "lotSz": str(i.lot_sz),
            "maxIcebergSz": str(i.max_lmt_sz), "maxLmtAmt": "20000000", "maxLmtSz": str(i.max_lmt_sz),
            "maxMktAmt": "", "maxMktSz": "12000", "maxStopSz": "12000", "maxTriggerSz": str(i.max_lmt_sz),
            "maxTwapSz": str(i.max_lmt_sz), "minSz": str(i.min_sz), "optType": "", "quoteCcy": "",
            "settleCcy": "USDT", "state": "live", "ruleType": "normal", "stk": "", "tickSz": str(i.tick_sz),
            "uly": f"{i.base}-USDT", "instIdCode": 10_000 + n,
        } for n, i in enumerate(self.instruments.values())]

    def _ticker_of(self, inst: Instrument) -> dict:
        book = self.book(inst.inst_id)
        bid = book.bids[0] if book.bids else [D(0), D(0)]
        ask = book.asks[0] if book.asks else [D(0), D(0)]
        mid = book.mid() or book.reference
        return {"instType": "SWAP", "instId": inst.inst_id, "last": str(mid), "lastSz": "0",
                "askPx": str(ask[0]), "askSz": str(ask[1] / inst.ct_val), "bidPx": str(bid[0]),
                "bidSz": str(bid[1] / inst.ct_val), "open24h": str(book.reference), "high24h": str(mid),
                "low24h": str(mid), "volCcy24h": "0", "vol24h": "0", "sodUtc0": str(book.reference),
                "sodUtc8": str(book.reference), "ts": str(self.now_ms())}

    async def _ticker(self, request):
        return [self._ticker_of(self._inst(request.query.get("instId")))]

    async def _tickers(self, request):
        kind = request.query.get("instType")
        if not kind:
            raise OkxError("50014", "Parameter instType cannot be empty.", 400)
        return [self._ticker_of(i) for i in self.instruments.values()] if kind == "SWAP" else []

    async def _books(self, request):
        inst = self._inst(request.query.get("instId"))
        try:
            sz = int(request.query.get("sz", "1"))
        except ValueError:
            raise OkxError("51000", "Parameter sz error", 400) from None
        if not 1 <= sz <= 400:
            raise OkxError("51000", "Parameter sz error", 400)
        book = self.book(inst.inst_id)
        return [{"asks": [[str(p), str(q / inst.ct_val), "0", "1"] for p, q in book.asks[:sz]],
                 "bids": [[str(p), str(q / inst.ct_val), "0", "1"] for p, q in book.bids[:sz]],
                 "ts": str(self.now_ms()), "seqId": book.generation}]

    # -- orders --------------------------------------------------------------------------
    async def _post_order(self, request):
        account, body = await self._signed(request)
        request_ = _json_object(body)
        result = await self._place(account, request_)
        if result["sCode"] != "0":
            raise OkxError("1", "All operations failed", 200, [result])
        return [result]

    async def _post_batch(self, request):
        account, body = await self._signed(request)
        try:
            requests = json.loads(body)
        except ValueError:
            raise OkxError("50014", "Parameter body cannot be empty.", 400) from None
        if not isinstance(requests, list) or not 1 <= len(requests) <= BATCH_ORDERS_MAX or \
                not all(isinstance(r, dict) for r in requests):
            raise OkxError("51000", "Parameter body error", 400)
        results = [await self._place(account, r) for r in requests]
        failed = sum(r["sCode"] != "0" for r in results)
        if failed == len(results):
            raise OkxError("1", "All operations failed", 200, results)
        if failed:
            raise OkxError("2", "Bulk operation partially succeeded", 200, results)
        return results

    async def _place(self, account: OkxAccount, p: dict) -> dict:
        """One order of a place request → its ``data`` entry (``sCode`` "0" or the reason)."""
        cl_ord_id = str(p.get("clOrdId") or "")
        tag = str(p.get("tag") or "")

        def refused(code: str, msg: str) -> dict:
            return {"clOrdId": cl_ord_id, "ordId": "", "tag": tag, "ts": str(self.now_ms()), "sCode": code,
                    "sMsg": msg}

        inst = self.instruments.get(str(p.get("instId") or ""))
        if inst is None:
            return refused("51001", "Instrument ID does not exist.")
        side, ord_type = p.get("side"), p.get("ordType")
        if side not in ("buy", "sell"):
            return refused("51000", "Parameter side error")
        if ord_type not in ("limit", "market", "ioc", "fok", "post_only"):
            return refused("51000", "Parameter ordType error")
        if p.get("tdMode") not in ("cross", "isolated"):
            return refused("51000", "Parameter tdMode error")
        if p.get("posSide") not in (None, "", "net"):
            return refused("51000", "Parameter posSide error")  # one-way (net) mode
        if cl_ord_id and (len(cl_ord_id) > CLIENT_ID_MAX or not cl_ord_id.isalnum() or not cl_ord_id.isascii()):
            return refused("51000", "Parameter clOrdId error")
        try:
            sz = D(str(p["sz"]))
            px = D(str(p["px"])) if ord_type != "market" else D(0)
        except (KeyError, InvalidOperation):
            return refused("51000", "Parameter sz error" if "sz" not in p else "Parameter px error")
        if sz < inst.min_sz:
            return refused("51020", "Order quantity should be greater than the min available amount.")
        if sz % inst.lot_sz != 0 or sz > inst.max_lmt_sz:
            return refused("51121", "Order quantity must be a multiple of the lot size.")
        if ord_type != "market" and (px <= 0 or px % inst.tick_sz != 0):
            return refused("51000", "Parameter px error")
        previous = account.orders.get(account.by_client_id.get(cl_ord_id, "")) if cl_ord_id else None
        if previous is not None and previous.state in ("live", "partially_filled"):
            return refused("51016", "Duplicated client order ID.")  # among pending orders, as Binance's -4116
        book = self.book(inst.inst_id)
        qty = sz * inst.ct_val
        reduce_only = str(p.get("reduceOnly", "false")).lower() == "true"
        price = px if ord_type != "market" else (book.mid() or book.reference)
        if not self._margin_ok(account, inst.inst_id, side, qty, price):
            return refused("51008", "Order failed. Insufficient USDT margin in account")
        if self.on_order is not None:
            await self.on_order("before", p)
        now = self.now_ms()
        order = OkxOrder(str(next(self._order_ids)), cl_ord_id, inst.inst_id, side, ord_type, sz, px, reduce_only,
                         now, tag=tag)
        self._remember(account, order)
        self._execute(account, order, inst, book)
        self.orders_placed += 1
        if self.on_order is not None:
            await self.on_order("after", p)
        return {"clOrdId": cl_ord_id, "ordId": order.ord_id, "tag": tag, "ts": str(now), "sCode": "0",
                "sMsg": "Order placed"}

    def _remember(self, account: OkxAccount, order: OkxOrder) -> None:
        if len(account.orders) >= ORDERS_PER_ACCOUNT_MAX:
            for ord_id, old in list(account.orders.items()):
                if old.state in ("filled", "canceled"):
                    del account.orders[ord_id]
                    if account.by_client_id.get(old.cl_ord_id) == ord_id:
                        del account.by_client_id[old.cl_ord_id]
                    break
        account.orders[order.ord_id] = order
        if order.cl_ord_id:
            account.by_client_id[order.cl_ord_id] = order.ord_id

    def _margin_ok(self, account: OkxAccount, inst_id: str, side: str, qty: Decimal, price: Decimal) -> bool:
        position = account.positions.get(inst_id, Position())
        signed = qty if side == "buy" else -qty
        if abs(position.amount + signed) <= abs(position.amount):
            return True
        used = sum((abs(p.amount) * self.book(i).reference for i, p in account.positions.items()), D(0))
        return (used + qty * price) / LEVERAGE_DEFAULT <= account.cash_usdt

    def _execute(self, account: OkxAccount, order: OkxOrder, inst: Instrument, book: Book) -> None:
        limit = order.px if order.ord_type != "market" else None
        side = order.side.upper()
        want = (order.sz - order.acc_fill_sz) * inst.ct_val
        if order.ord_type == "post_only":
            best = book.asks if side == "BUY" else book.bids
            if best and ((side == "BUY" and best[0][0] <= order.px) or (side == "SELL" and best[0][0] >= order.px)):
                order.state, order.u_time = "canceled", self.now_ms()  # would take: post-only is cancelled
                return
            fills = []
        elif order.ord_type == "fok":
            levels = book.asks if side == "BUY" else book.bids
            available = sum((q for p, q in levels if (p <= order.px if side == "BUY" else p >= order.px)), D(0))
            fills = book.take(side, want, limit) if available >= want else []
        else:
            fills = book.take(side, want, limit)
        for price, qty in fills:
            self._fill(account, order, inst, price, qty)
        if order.acc_fill_sz == order.sz:
            order.state = "filled"
        elif order.ord_type in ("market", "ioc", "fok"):
            order.state = "canceled"  # OKX reports an IOC's unfilled rest as canceled (accFillSz says how much)
        elif order.acc_fill_sz > 0:
            order.state = "partially_filled"
        order.u_time = self.now_ms()

    def _fill(self, account: OkxAccount, order: OkxOrder, inst: Instrument, price: Decimal, qty: Decimal) -> None:
        order.acc_fill_sz += qty / inst.ct_val
        order.fill_quote += price * qty
        position = account.positions.setdefault(order.inst_id, Position())
        account.cash_usdt += position.fill(qty if order.side == "buy" else -qty, price, self.now_ms())

    def match_resting(self) -> None:
        """Fill resting limit orders that the current books cross."""
        for account in self.accounts.values():
            for order in account.orders.values():
                if order.state in ("live", "partially_filled"):
                    inst = self.instruments[order.inst_id]
                    book = self.book(order.inst_id)
                    want = (order.sz - order.acc_fill_sz) * inst.ct_val
                    for price, qty in book.take(order.side.upper(), want, order.px):
                        self._fill(account, order, inst, price, qty)
                    if order.acc_fill_sz == order.sz:
                        order.state = "filled"
                    elif order.acc_fill_sz > 0:
                        order.state = "partially_filled"

    def _find(self, account: OkxAccount, p: dict) -> OkxOrder | None:
        self._inst(p.get("instId"))
        if p.get("ordId"):
            order = account.orders.get(str(p["ordId"]))
        elif p.get("clOrdId"):
            ord_id = account.by_client_id.get(str(p["clOrdId"]))
            order = account.orders.get(ord_id) if ord_id is not None else None
        else:
            raise OkxError("51000", "Parameter ordId or clOrdId error", 400)
        return order if order is not None and order.inst_id == p["instId"] else None

    async def _get_order(self, request):
        account, _ = await self._signed(request)
        order = self._find(account, dict(request.query))
        if order is None:
            raise OkxError("51603", "Order does not exist", 200)
        return [order.wire(self.instruments[order.inst_id].ct_val)]

    async def _cancel_order(self, request):
        account, body = await self._signed(request)
        p = _json_object(body)
        order = self._find(account, p)
        ids = {"clOrdId": str(p.get("clOrdId") or ""), "ordId": str(p.get("ordId") or "")}
        if order is None or order.state in ("filled", "canceled"):
            code, msg = ("51400", "Cancellation failed as the order does not exist.") if order is None else \
                ("51401", "Cancellation failed as the order is already canceled.") if order.state == "canceled" else \
                ("51402", "Cancellation failed as the order is already completed.")
            raise OkxError("1", "All operations failed", 200, [{**ids, "sCode": code, "sMsg": msg,
                                                                  "ts": str(self.now_ms())}])
        order.state, order.u_time = "canceled", self.now_ms()
        return [{"clOrdId": order.cl_ord_id, "ordId": order.ord_id, "sCode": "0", "sMsg": "",
                 "ts": str(order.u_time)}]

    async def _orders_pending(self, request):
        account, _ = await self._signed(request)
        inst_id = request.query.get("instId")
        return [o.wire(self.instruments[o.inst_id].ct_val) for o in reversed(account.orders.values())
                if o.state in ("live", "partially_filled") and inst_id in (None, o.inst_id)]

    # -- account -------------------------------------------------------------------------
    async def _positions(self, request):
        account, _ = await self._signed(request)
        wanted = request.query.get("instId")
        wanted_ids = set(wanted.split(",")) if wanted else None
        rows = []
        for inst_id, p in account.positions.items():
            if p.amount == 0 or (wanted_ids is not None and inst_id not in wanted_ids):
                continue
            inst = self.instruments[inst_id]
            mark = self.book(inst_id).reference
            notional = abs(p.amount) * mark
            imr = notional / LEVERAGE_DEFAULT
            upl = p.amount * (mark - p.entry)
            rows.append({
                "adl": "1", "availPos": "", "avgPx": str(p.entry), "cTime": str(p.update_ms), "ccy": "USDT",
                "deltaBS": "", "deltaPA": "", "gammaBS": "", "gammaPA": "", "imr": f"{imr:.8f}", "instId": inst_id,
                "instType": "SWAP", "interest": "", "idxPx": str(mark), "last": str(mark), "lever": str(LEVERAGE_DEFAULT),
                "liab": "", "liabCcy": "", "liqPx": "", "markPx": str(mark), "margin": "", "mgnMode": "cross",
                "mgnRatio": "", "mmr": f"{imr / 10:.8f}", "notionalUsd": f"{notional:.8f}", "optVal": "",
                "pos": str(p.amount / inst.ct_val), "posCcy": "", "posId": str(zlib.crc32(f"{account.api_key}:{inst_id}".encode())),
                "posSide": "net", "thetaBS": "", "thetaPA": "", "tradeId": "", "uTime": str(p.update_ms),
                "upl": f"{upl:.8f}", "uplRatio": f"{(upl / imr) if imr else 0:.8f}", "vegaBS": "", "vegaPA": "",
                "realizedPnl": f"{p.realized:.8f}", "pnl": f"{p.realized:.8f}", "fee": "0", "fundingFee": "0",
                "liqPenalty": "0", "closeOrderAlgo": [], "bePx": str(p.entry),
            })
        return rows

    async def _balance(self, request):
        account, _ = await self._signed(request)
        upl = sum((p.amount * (self.book(i).reference - p.entry) for i, p in account.positions.items()), D(0))
        imr = sum((abs(p.amount) * self.book(i).reference for i, p in account.positions.items()), D(0)) \
            / LEVERAGE_DEFAULT
        eq = account.cash_usdt + upl
        now = str(self.now_ms())
        return [{"adjEq": f"{eq:.8f}", "borrowFroz": "", "imr": f"{imr:.8f}", "isoEq": "0", "mgnRatio": "",
                 "mmr": f"{imr / 10:.8f}", "notionalUsd": "", "ordFroz": "0", "totalEq": f"{eq:.8f}", "uTime": now,
                 "upl": f"{upl:.8f}", "details": [{
                     "availBal": f"{eq - imr:.8f}", "availEq": f"{eq - imr:.8f}", "cashBal": str(account.cash_usdt),
                     "ccy": "USDT", "crossLiab": "0", "disEq": f"{eq:.8f}", "eq": f"{eq:.8f}", "eqUsd": f"{eq:.8f}",
                     "fixedBal": "0", "frozenBal": f"{imr:.8f}", "imr": f"{imr:.8f}", "interest": "0",
                     "isoEq": "0", "isoLiab": "", "isoUpl": "0", "liab": "0", "maxLoan": "", "mgnRatio": "",
                     "mmr": f"{imr / 10:.8f}", "notionalLever": "", "ordFrozen": "0", "stgyEq": "0",
                     "twap": "0", "uTime": now, "upl": f"{upl:.8f}", "uplLiab": "0"}]}]

    # -- websocket, public channels ---------------------------------------------------------
    async def _websocket(self, request):
        conn_id = f"{next(self._conn_ids):08x}"
        return await self.ws.serve(request, lambda conn, text: self._ws_request(conn, text, conn_id))

    def _ws_request(self, conn: Connection, text: str, conn_id: str) -> None:
        """One client message on a public connection, answered as OKX does."""
        if text == "ping":
            conn.send("pong")
            return
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        op = body.get("op") if isinstance(body, dict) else None
        args = body.get("args") if isinstance(body, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            conn.send({"event": "error", "code": "60012", "msg": f"Illegal request: {text[:200]}", "connId": conn_id})
            return
        for arg in args:
            self._ws_arg(conn, op, arg, conn_id)

    def _ws_arg(self, conn: Connection, op: str, arg, conn_id: str) -> None:
        channel = arg.get("channel") if isinstance(arg, dict) else None
        inst_id = arg.get("instId") if isinstance(arg, dict) else None
        if channel not in WS_CHANNELS or inst_id not in self.instruments:
            conn.send({"event": "error", "code": "60018", "msg": f"Wrong URL or channel:{channel},instId:{inst_id} "
                       "doesn't exist. Please use the correct URL, channel and parameters referring to API document.",
                       "connId": conn_id})
            return
        topic = (channel, inst_id)
        if op == "unsubscribe":
            conn.topics.discard(topic)
            conn.send({"event": "unsubscribe", "arg": {"channel": channel, "instId": inst_id}, "connId": conn_id})
            return
        if not self.ws.has_room(conn, [topic]):
            conn.send({"event": "error", "code": "60012", "msg": f"Illegal request: at most "
                       f"{WS_SUBSCRIPTIONS_PER_CONNECTION_MAX} subscriptions per connection", "connId": conn_id})
            return
        conn.send({"event": "subscribe", "arg": {"channel": channel, "instId": inst_id}, "connId": conn_id})
        self.ws.subscribe(conn, topic)  # the acknowledgement, then the top

    def _ws_frame(self, channel: str, inst_id: str) -> dict:
        inst = self.instruments[inst_id]
        if channel == "tickers":
            return {"arg": {"channel": channel, "instId": inst_id}, "data": [self._ticker_of(inst)]}
        book = self.book(inst_id)
        return {"arg": {"channel": channel, "instId": inst_id}, "data": [{
            "asks": [[str(p), f"{q / inst.ct_val:f}", "0", "1"] for p, q in book.asks[:1]],
            "bids": [[str(p), f"{q / inst.ct_val:f}", "0", "1"] for p, q in book.bids[:1]],
            "ts": str(self.now_ms()), "seqId": book.generation}]}

    # -- control endpoints (demos; tests call the methods) -------------------------------
    async def _set_faults(self, request):
        return web.json_response(self.set_faults(json.loads(await request.text() or "{}")))

    async def _set_reference(self, request):
        body = json.loads(await request.text() or "{}")
        self.set_reference(body["instId"], body["price"])
        return web.json_response({"instId": body["instId"], "price": str(self.books[body["instId"]].reference)})


def _json_object(body: str) -> dict:
    try:
        value = json.loads(body) if body else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise OkxError("50014", "Parameter body cannot be empty.", 400)
    return value
