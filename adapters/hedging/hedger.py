"""The hedger: a projection of the journal that keeps each hedged maker's exchange positions at
``-hedge_ratio × exposure`` per market, through ccxt.

Shape of a projection (``ledger/projections``): ``handle(records)`` takes a batch of
``JournalRecord``s in seq order and returns when they are applied and hedged; ``position``
is the last applied seq (resume from ``position + 1``). A record already applied is skipped,
so a retried batch is harmless. If a target cannot be reached (every exchange down, the
attempts for one seq used up) ``handle`` raises ``HedgeIncomplete`` after saving: the runner
retries at the same seq with backoff; nothing is skipped.

**Never hedge twice.** Every order's ``newClientOrderId`` is derived from (maker, market,
seq of the event that last changed the exposure, attempt k). Before an order is sent, its
intent (id, exchange, side, quantity, ``timestamp``) is written to the durable state; the
order carries that ``timestamp``, so the exchange refuses it once ``recvWindow`` has passed.
After a crash (or a timeout) an intent is resolved by fetching the order by its client id:
found → its fill counts; not found after ``timestamp + recvWindow + clock margin`` → it can
never execute, and the next attempt gets a new id. Then (at start) open orders are
cancelled and positions are read back from every reachable exchange: the exchange's
position is the hedge; only then does hedging continue.

Sizing: the delta ``target - hedge`` is rounded down to the exchange's lot; below the
minimum quantity or notional it stays as residual (reported, not traded). Orders are IOC
limits bounded at mid ± ``slippage_bps``; an unfilled rest is re-hedged at the next attempt.
The exchange for each order is the healthy one with the lowest all-in cost
(``analysis.hedge_cost_bps``), so a dead exchange is failed over.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from pathlib import Path

import ccxt

from protocol import orderbook as analysis
from adapters.hedging.audit import AuditLog
from adapters.hedging.audit_sql import AuditSql
from adapters.hedging.budget import RateBudget
from adapters.hedging.exchanges import Credentials, make_client
from adapters.hedging.exposure import Exposure
from adapters.hedging.health import Health
from ledger.files import replace_durably

# Limits (see docs/hedging.md, "Limits").
ATTEMPTS_PER_SEQ_MAX = 8  # orders for one (maker, market, seq) before giving up until the next retry
RESOLVE_TRIES_MAX = 5  # fetches of one unresolved order per resolution
INTENTS_MAX = 1_024  # unresolved orders in the state; beyond it the hedger stops sending
MAKERS_CONCURRENT_MAX = 16  # makers hedged at once
RATE_RETRIES_MAX = 3  # reads re-sent after waiting out a 429
DEPTH_LEVELS = 20  # order-book levels fetched per cost estimate
CLOCK_MARGIN_MS_DEFAULT = 1_000  # our clock vs the exchange's, assumed bound
CLIENT_ID_PREFIX = "ap"
# Seqs applied but not yet in the state file, at most, when no hedged exposure changed (those are
# only applied again after a crash; the exposure and the checkpoint are always written together).
CHECKPOINT_LAG_SEQ_MAX = 10_000

DEFAULT_SYMBOLS = {"BTC-PERP": "BTC/USDT:USDT", "ETH-PERP": "ETH/USDT:USDT", "SOL-PERP": "SOL/USDT:USDT"}


def ccxt_symbol(venue_symbol: str) -> str:
    """``BTC-PERP`` → ``BTC/USDT:USDT`` (a USDT-margined linear perpetual of the same base)."""
    base, _, kind = venue_symbol.partition("-")
    if kind != "PERP" or not base:
        raise ValueError(f"not a perpetual symbol: {venue_symbol!r}")
    return DEFAULT_SYMBOLS.get(venue_symbol, f"{base}/USDT:USDT")


def client_order_id(maker: str, market: int, seq: int, attempt: int) -> str:
    """A Binance-valid id (≤ 36 of ``[A-Za-z0-9_-]``), the same for the same inputs after a restart."""
    digest = hashlib.sha256(f"{maker}|{market}|{seq}".encode()).hexdigest()[:24]
    return f"{CLIENT_ID_PREFIX}{digest}-{attempt}"


class HedgeIncomplete(Exception):
    """Some targets were not reached; the state is saved; retry the same batch later."""


@dataclass(frozen=True)
class ExchangeConfig:
    name: str  # our name for it: "binance", "binance-b", "okx"
    kind: str  # ccxt id: binanceusdm | okx
    base_url: str | None = None  # None: the real exchange
    fee_bps: float = 5.0
    weight_per_window: int = 2400
    window_s: float = 60.0
    timeout_ms: int = 5_000
    recv_window_ms: int = 5_000
    rate_limit_ms: float | None = None  # ccxt's throttler per client (None: ccxt's own, 50 ms for Binance)


@dataclass
class HedgerConfig:
    makers: dict[str, dict[str, Credentials]]  # maker agent → exchange name → credentials
    exchanges: tuple[ExchangeConfig, ...]
    markets: dict[int, str]  # venue market id → ccxt symbol
    state_path: Path
    audit_path: Path | None = None
    audit_sql_url: str | None = None  # the read model the audit file is imported into (None: the file only)
    hedge_ratio_bps: int = 10_000
    slippage_bps: int = 50
    clock_margin_ms: int = CLOCK_MARGIN_MS_DEFAULT
    attempts_per_seq_max: int = ATTEMPTS_PER_SEQ_MAX


@dataclass
class _State:
    """What survives a restart: written whole (fsync + rename) before each group of orders
    leaves (write-ahead) and once at the end of every batch — not per change."""

    applied_seq: int = 0
    hedges: dict[tuple[str, int, str], Decimal] = field(default_factory=dict)  # base units, signed
    intents: dict[str, dict] = field(default_factory=dict)  # client order id → intent
    attempts: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)  # key → (seq, next k)
    dirty: set[tuple[str, int]] = field(default_factory=set)


class Hedger:
    name = "hedging"

    def __init__(self, config: HedgerConfig, *, clock=time.time, sleep=asyncio.sleep, client_factory=make_client):
        self.config = config
        self.clock, self.sleep = clock, sleep
        self.exposure = Exposure(frozenset(config.makers))
        self.state = _State()
        self.audit = AuditLog(config.audit_path, clock)
        self.audit_sql: AuditSql | None = None  # started by start() when audit_sql_url is set
        self.health = {e.name: Health(e.name) for e in config.exchanges}
        self.budgets = {e.name: RateBudget(e.weight_per_window, e.window_s, clock, sleep) for e in config.exchanges}
        self.exchanges = {e.name: e for e in config.exchanges}
        self._factory = client_factory
        self.clients: dict[tuple[str, str], object] = {}  # (maker, exchange) → ccxt client
        self.public: dict[str, object] = {}  # exchange → ccxt client without keys
        self.books: dict[tuple[str, str], dict] = {}  # (exchange, symbol) → last analysis, for /metrics
        self.orders_sent = 0
        self.fills = 0
        self.acked_ns: list[int] = []  # perf_counter_ns of each ack (the benchmark reads it; bounded)
        self._maker_locks = {m: asyncio.Lock() for m in config.makers}
        self._client_maker: dict[int, str] = {}  # id(ccxt client) → its maker, for the audit lines
        # Group commit of the state file: one write covers every change made before it began.
        self._state_writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hedger-state")
        self._state_lock = asyncio.Lock()
        self._changes = 0  # changes asked to be made durable so far
        self._durable = 0  # of which the state file holds every one up to this
        self._durable_seq = 0  # the applied_seq that the state file holds
        self.state_writes = 0  # fsynced writes of the state file (the benchmark reads it)
        self._exposure_json: tuple[int, str] | None = None  # (applied_seq, exposure JSON): changes only with it

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the durable state, start the audit's SQL import, open the clients, then
        reconcile with the exchanges."""
        self._load()
        if self.config.audit_sql_url and self.audit.path is not None and self.audit_sql is None:
            self.audit_sql = AuditSql(self.config.audit_sql_url, self.audit.path)
            self.audit_sql.start(self.audit.log_id, self.audit.offset)
            self.audit.listener = self.audit_sql.notify
        self._client_maker.clear()  # a start again (after a failed one) opens new clients
        for e in self.config.exchanges:
            self.public[e.name] = self._factory(e.kind, e.base_url, None, timeout_ms=e.timeout_ms,
                                                rate_limit_ms=e.rate_limit_ms)
            for maker, creds in self.config.makers.items():
                if e.name in creds:
                    client = self._factory(e.kind, e.base_url, creds[e.name], timeout_ms=e.timeout_ms,
                                           recv_window_ms=e.recv_window_ms, rate_limit_ms=e.rate_limit_ms)
                    self.clients[(maker, e.name)] = client
                    self._client_maker[id(client)] = maker
        await self.reconcile()

    async def close(self) -> None:
        # At once: ccxt's close waits timeout_on_exit (250 ms) per client after closing it.
        await asyncio.gather(*(client.close() for client in [*self.clients.values(), *self.public.values()]))
        if self.state.applied_seq > self._durable_seq:  # batches that changed no exposure (CHECKPOINT_LAG_SEQ_MAX)
            await self.persist()
        self._state_writer.shutdown(wait=True)  # the last state write finishes
        self.audit.close()
        if self.audit_sql is not None:
            await asyncio.to_thread(self.audit_sql.close)  # imports the last lines first (bounded)

    @property
    def position(self) -> int:
        """The last journal seq applied (the projection's checkpoint)."""
        return self.state.applied_seq

    async def ping(self) -> None:
        """One light request (server time) per exchange whose breaker lets it through, so health
        moves while no hedge is sent: a dead exchange is seen down, a healed one closes its
        breaker (the ping is the half-open probe). Not audited (no decision rides on it)."""
        for name, client in self.public.items():
            if not self.health[name].usable(self.clock()):
                continue
            await self.budgets[name].acquire(1)
            started = time.perf_counter()
            try:
                await client.fetch_time()
            except ccxt.DDoSProtection:
                headers = client.last_response_headers or {}
                self.budgets[name].back_off(float(headers.get("Retry-After") or headers.get("retry-after") or 1))
            except (ccxt.NetworkError, ccxt.ExchangeNotAvailable):
                self.health[name].failure(self.clock(), "network")
            except ccxt.BaseError:  # it answered
                self.health[name].success((time.perf_counter() - started) * 1e3)
            else:
                self.health[name].success((time.perf_counter() - started) * 1e3)

    # -- the projection ------------------------------------------------------------------
    async def handle(self, records, *, hedge: bool = True) -> None:
        """Apply a batch of journal records, then hedge every changed exposure — or, with
        ``hedge`` False (a catch-up far behind the journal's end, whose exposure moves again
        before it gets there), only mark it: a later batch hedges each marked key once."""
        changed, sent = False, self.orders_sent
        for record in records:
            if record.last_seq <= self.state.applied_seq:
                continue
            for event in record.events:
                if event.seq > self.state.applied_seq:
                    for key in self.exposure.apply(event):
                        self.state.dirty.add(key)
                        changed = True
            self.state.applied_seq = max(self.state.applied_seq, record.last_seq)
        try:
            if hedge:
                await self.hedge_dirty()
        finally:  # the checkpoint, the exposure and what the orders did: one write per batch
            if (changed or self.orders_sent != sent
                    or self.state.applied_seq - self._durable_seq >= CHECKPOINT_LAG_SEQ_MAX):
                await self.persist()

    async def hedge_dirty(self) -> None:
        """Hedge every key not at its target; raise ``HedgeIncomplete`` if some remain."""
        by_maker: dict[str, list[tuple[str, int]]] = {}
        for key in sorted(self.state.dirty):
            by_maker.setdefault(key[0], []).append(key)
        gate = asyncio.Semaphore(MAKERS_CONCURRENT_MAX)

        async def one_maker(keys):
            # One maker's markets one after the other: more requests in flight at once would
            # meet a 429's Retry-After already on their way (and earn a 418 ban).
            async with gate, self._maker_locks[keys[0][0]]:
                for key in keys:
                    if await self._hedge(key):
                        self.state.dirty.discard(key)  # saved with the next write; a restart recomputes it anyway

        await asyncio.gather(*(one_maker(keys) for keys in by_maker.values()))
        if self.state.dirty:
            raise HedgeIncomplete(f"{len(self.state.dirty)} (maker, market) targets not reached: "
                                  f"{sorted(self.state.dirty)[:5]}")

    # -- targets -------------------------------------------------------------------------
    def target(self, key: tuple[str, int]) -> Decimal:
        net_e9 = self.exposure.net_e9.get(key, 0)
        return -Decimal(net_e9) * self.config.hedge_ratio_bps / Decimal(10_000) / Decimal(10**9)

    def hedge(self, key: tuple[str, int]) -> Decimal:
        return sum((q for (m, k, _), q in self.state.hedges.items() if (m, k) == key), Decimal(0))

    async def _hedge(self, key: tuple[str, int]) -> bool:
        """Trade ``key`` toward its target; True when there (within a lot / minimum)."""
        maker, market = key
        symbol = self.config.markets.get(market)
        if symbol is None:
            return True  # a market we do not hedge
        for _ in range(self.config.attempts_per_seq_max + 1):
            if any(i["maker"] == maker and i["market"] == market for i in self.state.intents.values()):
                if not await self._resolve_all(maker, market):
                    return False  # an order we cannot see yet: do not send another
            delta = self.target(key) - self.hedge(key)
            side = "buy" if delta > 0 else "sell"
            choice = await self._choose(maker, symbol, side, abs(delta))
            if choice is None:
                self.audit.write("decision", maker=maker, market=market, action="no_exchange", delta=str(delta))
                return False
            name, mid = choice
            client = self.clients[(maker, name)]
            spec = client.markets[symbol]
            step = Decimal(str(spec["precision"]["amount"]))
            qty = (abs(delta) / step).to_integral_value(ROUND_DOWN) * step
            min_qty = Decimal(str(spec["limits"]["amount"]["min"] or 0))
            min_cost = Decimal(str(spec["limits"]["cost"]["min"] or 0))
            seq = self.exposure.changed_seq.get(key, 0)
            last_seq, k = self.state.attempts.get(key, (seq, 0))
            if last_seq != seq:
                k = 0
            if k >= self.config.attempts_per_seq_max:
                self.audit.write("decision", maker=maker, market=market, action="attempts_exhausted", seq=seq)
                return False
            if len(self.state.intents) >= INTENTS_MAX:
                return False
            tick = Decimal(str(spec["precision"]["price"]))
            slip = Decimal(self.config.slippage_bps) / Decimal(10_000)
            bound = Decimal(str(mid)) * (1 + slip if side == "buy" else 1 - slip)
            bound = (bound / tick).to_integral_value(ROUND_FLOOR if side == "buy" else ROUND_CEILING) * tick
            if qty == 0 or qty < min_qty or qty * bound < min_cost:  # the exchange checks notional at the limit price
                self.audit.write("decision", maker=maker, market=market, action="residual", delta=str(delta),
                                 lot=str(step))
                return True
            cid = client_order_id(maker, market, seq, k)
            intent = {"cid": cid, "maker": maker, "market": market, "exchange": name, "symbol": symbol,
                      "side": side, "qty": str(qty), "price": str(bound), "seq": seq,
                      "ts_ms": int(self.clock() * 1000)}
            self.state.attempts[key] = (seq, k + 1)
            self.state.intents[cid] = intent
            await self.persist()  # write-ahead: the id and timestamp are durable before the order leaves
            self.audit.write("decision", action="order", target=str(self.target(key)),
                             hedge=str(self.hedge(key)), **intent)
            filled = await self._send(client, intent)
            if filled is None:
                return False  # unknown outcome: resolved before anything else is sent for this key
            self._settle(intent, filled)
        return False

    def _settle(self, intent: dict, filled: Decimal) -> None:
        signed = filled if intent["side"] == "buy" else -filled
        hkey = (intent["maker"], intent["market"], intent["exchange"])
        self.state.hedges[hkey] = self.state.hedges.get(hkey, Decimal(0)) + signed
        self.state.intents.pop(intent["cid"], None)
        self.fills += int(filled > 0)
        # Not written here: a crash before the next write leaves the intent in the file, and the
        # restart resolves it by its client id (its fill counts once) and reads the positions back.

    async def _choose(self, maker: str, symbol: str, side: str, size: Decimal):
        """(exchange, mid) with the lowest all-in cost among the usable ones, or None."""
        costs, mids = {}, {}
        for name, e in self.exchanges.items():
            if (maker, name) not in self.clients or not self.health[name].usable(self.clock()):
                continue
            try:
                client = self.clients[(maker, name)]
                if not client.markets:
                    await self._call(name, 1, "load_markets", client.load_markets)
                book = await self._call(name, 2, "fetch_order_book",
                                        lambda: self.public[name].fetch_order_book(symbol, DEPTH_LEVELS))
            except ccxt.BaseError:
                continue
            m = analysis.mid(book["bids"], book["asks"])
            if m is None:
                continue
            cost = analysis.hedge_cost_bps(book["bids"], book["asks"], side, float(size), e.fee_bps)
            self.books[(name, symbol)] = {"mid": m, "spread_bps": analysis.spread_bps(book["bids"], book["asks"]),
                                          "cost_bps": cost}
            costs[name], mids[name] = cost, m
        name = analysis.choose(costs)
        return None if name is None else (name, mids[name])

    # -- requests ------------------------------------------------------------------------
    async def _call(self, name: str, weight: int, what: str, fn, client=None, **audit_fields):
        """One request: budget, health, audit. Reads refused by a 429 wait out its Retry-After
        and are sent again (``RATE_RETRIES_MAX``); orders never are (a new attempt is a new id)."""
        for _ in range(RATE_RETRIES_MAX):
            try:
                return await self._call_once(name, weight, what, fn, client, **audit_fields)
            except ccxt.DDoSProtection:
                if what == "create_order":
                    raise
        return await self._call_once(name, weight, what, fn, client, **audit_fields)

    async def _call_once(self, name: str, weight: int, what: str, fn, client=None, **audit_fields):
        await self.budgets[name].acquire(weight)
        started = time.perf_counter()
        if client is not None:
            audit_fields.setdefault("maker", self._client_maker.get(id(client)))
        self.audit.write("request", exchange=name, call=what, **audit_fields)
        headers_of = client or self.public.get(name)
        try:
            result = await fn()
        except ccxt.DDoSProtection as error:
            headers = (headers_of.last_response_headers or {}) if headers_of else {}
            retry_after = float(headers.get("Retry-After") or headers.get("retry-after") or 1)
            self.budgets[name].back_off(retry_after)  # the budget waits; health is not at stake
            self.audit.write("response", exchange=name, call=what, error=type(error).__name__,
                             retry_after_s=retry_after, **audit_fields)
            raise
        except ccxt.AuthenticationError as error:
            self.health[name].failure(self.clock(), "auth")
            self.audit.write("response", exchange=name, call=what, error=type(error).__name__,
                             detail=str(error)[:300], **audit_fields)
            raise
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as error:
            self.health[name].failure(self.clock(), "network")
            self.audit.write("response", exchange=name, call=what, error=type(error).__name__,
                             detail=str(error)[:300], **audit_fields)
            raise
        except ccxt.BaseError as error:  # the exchange answered: it is alive
            self.health[name].success((time.perf_counter() - started) * 1e3)
            self.audit.write("response", exchange=name, call=what, error=type(error).__name__,
                             detail=str(error)[:300], **audit_fields)
            raise
        self.health[name].success((time.perf_counter() - started) * 1e3)
        headers = (headers_of.last_response_headers or {}) if headers_of else {}
        used = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("x-mbx-used-weight-1m")
        self.budgets[name].observe(int(used) if used else None)
        return result

    async def _send(self, client, intent: dict) -> Decimal | None:
        """Place one IOC order; its filled quantity, or None when the outcome is not known yet."""
        name = intent["exchange"]
        params = {"timeInForce": "IOC", "newClientOrderId": intent["cid"], "timestamp": intent["ts_ms"]}
        self.orders_sent += 1
        try:
            order = await self._call(name, 0, "create_order",
                                     lambda: client.create_order(intent["symbol"], "limit", intent["side"],
                                                                 float(intent["qty"]), float(intent["price"]), params),
                                     client=client, cid=intent["cid"])
        except (ccxt.DDoSProtection, ccxt.AuthenticationError, ccxt.InvalidNonce):
            self._settle(intent, Decimal(0))  # refused before it reached the book: it never executes
            return Decimal(0)
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable):
            return await self._resolve(intent)
        except ccxt.BaseError:
            self._settle(intent, Decimal(0))  # refused (funds, filters): nothing filled
            return None
        self.acked_ns.append(time.perf_counter_ns())
        if len(self.acked_ns) > 1_000_000:
            del self.acked_ns[:500_000]
        self.audit.write("response", exchange=name, call="create_order", cid=intent["cid"], maker=intent["maker"],
                         status=order.get("status"), filled=order.get("filled"), average=order.get("average"))
        return Decimal(str(order.get("filled") or 0))

    async def _resolve(self, intent: dict) -> Decimal | None:
        """Find out what became of an order we did not see answered; settle it if we can."""
        name = intent["exchange"]
        client = self.clients.get((intent["maker"], name))
        if client is None:
            return None
        e = self.exchanges[name]
        deadline_s = (intent["ts_ms"] + e.recv_window_ms + self.config.clock_margin_ms) / 1000
        for _ in range(RESOLVE_TRIES_MAX):
            try:
                if not client.markets:
                    await self._call(name, 1, "load_markets", client.load_markets)
                order = await self._call(name, 1, "fetch_order",
                                         lambda: client.fetch_order(None, intent["symbol"],
                                                                    {"origClientOrderId": intent["cid"]}),
                                         client=client, cid=intent["cid"])
            except ccxt.OrderNotFound:
                now = self.clock()
                if now >= deadline_s:  # the exchange refuses it from now on: it never executed
                    self.audit.write("resolved", cid=intent["cid"], outcome="never_placed")
                    self._settle(intent, Decimal(0))
                    return Decimal(0)
                await self.sleep(deadline_s - now)
                continue
            except ccxt.BaseError:
                return None  # unreachable: keep the intent, try again later
            filled = Decimal(str(order.get("filled") or 0))
            if order.get("status") == "open":  # resting (not ours to leave): cancel, then count its fill
                try:
                    order = await self._call(name, 1, "cancel_order",
                                             lambda: client.cancel_order(order["id"], intent["symbol"]), client=client)
                    filled = Decimal(str(order.get("filled") or filled))
                except ccxt.BaseError:
                    return None
            self.audit.write("resolved", cid=intent["cid"], outcome="found", filled=str(filled))
            self._settle(intent, filled)
            return filled
        return None

    async def _resolve_all(self, maker: str, market: int) -> bool:
        for intent in [i for i in self.state.intents.values() if i["maker"] == maker and i["market"] == market]:
            if await self._resolve(intent) is None:
                return False
        return True

    # -- restart -------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Resolve unfinished orders, cancel stray open ones, take positions from the exchanges."""
        for intent in list(self.state.intents.values()):
            await self._resolve(intent)
        symbols = sorted(set(self.config.markets.values()))
        by_symbol = {s: m for m, s in self.config.markets.items()}
        for (maker, name), client in self.clients.items():
            try:
                if not client.markets:
                    await self._call(name, 1, "load_markets", client.load_markets)
                for symbol in symbols:
                    for order in await self._call(name, 1, "fetch_open_orders",
                                                  lambda: client.fetch_open_orders(symbol), client=client):
                        if str(order.get("clientOrderId") or "").startswith(CLIENT_ID_PREFIX):
                            await self._call(name, 1, "cancel_order",
                                             lambda: client.cancel_order(order["id"], symbol), client=client)
                            self.audit.write("reconcile", maker=maker, exchange=name, cancelled=order["clientOrderId"])
                positions = await self._call(name, 5, "fetch_positions",
                                             lambda: client.fetch_positions(symbols), client=client)
            except ccxt.BaseError:
                continue  # unreachable now: keep what we knew; reconciled when it answers
            seen = {}
            for p in positions:
                if p["symbol"] in by_symbol:
                    contracts = Decimal(str(p.get("contracts") or 0))
                    seen[p["symbol"]] = contracts if p.get("side") != "short" else -contracts
            for symbol in symbols:
                hkey = (maker, by_symbol[symbol], name)
                known = self.state.hedges.get(hkey, Decimal(0))
                actual = seen.get(symbol, Decimal(0))
                if known != actual:
                    self.audit.write("reconcile", maker=maker, exchange=name, symbol=symbol, known=str(known),
                                     actual=str(actual))
                self.state.hedges[hkey] = actual
        self.state.dirty.update((m, k) for m in self.config.makers for k in self.config.markets
                                if (m, k) in self.exposure.net_e9 or self.hedge((m, k)) != 0)
        await self.persist()

    # -- durable state -------------------------------------------------------------------
    async def persist(self) -> None:
        """Make every change made so far durable (group commit): callers that arrive while a
        write is in flight share the next one, so N makers' intents cost one fsync, not N.
        The write runs on one writer thread (in order; a cancelled caller's write still ends
        before the next begins), off the hedger's loop."""
        self._changes += 1
        wanted = self._changes
        async with self._state_lock:
            if self._durable >= wanted:
                return  # a write that began after this change was made holds it
            covered, seq, data = self._changes, self.state.applied_seq, self._state_bytes()
            await asyncio.get_running_loop().run_in_executor(self._state_writer, replace_durably,
                                                             self.config.state_path, data)
            self._durable, self._durable_seq = max(self._durable, covered), seq
            self.state_writes += 1

    def _state_bytes(self) -> bytes:
        if self._exposure_json is None or self._exposure_json[0] != self.state.applied_seq:
            self._exposure_json = (self.state.applied_seq,
                                   json.dumps(self.exposure.to_dict(), separators=(",", ":")))
        rest = {
            "version": 1,
            "applied_seq": self.state.applied_seq,
            "hedges": [[m, k, e, str(q)] for (m, k, e), q in self.state.hedges.items()],
            "intents": self.state.intents,
            "attempts": [[m, k, s, n] for (m, k), (s, n) in self.state.attempts.items()],
            "dirty": sorted(self.state.dirty),
        }
        return ('{"exposure":' + self._exposure_json[1] + "," + json.dumps(rest, separators=(",", ":"))[1:]).encode()

    def _load(self) -> None:
        path = self.config.state_path
        if not path.exists():
            return
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["version"] == 1, f"unknown hedger state version {data['version']} in {path}"
        self.state.applied_seq = self._durable_seq = data["applied_seq"]
        self.exposure = Exposure.from_dict(frozenset(self.config.makers), data["exposure"])
        self.state.hedges = {(m, k, e): Decimal(q) for m, k, e, q in data["hedges"]}
        self.state.intents = data["intents"]
        self.state.attempts = {(m, k): (s, n) for m, k, s, n in data["attempts"]}
        self.state.dirty = {(m, k) for m, k in data["dirty"]}

    # -- status --------------------------------------------------------------------------
    def status(self) -> dict:
        """Exposure, hedge and residual per maker and market (base units and USDC), and health."""
        rows = []
        for maker in sorted(self.config.makers):
            for market in sorted(self.config.markets):
                key = (maker, market)
                exposure = Decimal(self.exposure.net_e9.get(key, 0)) / Decimal(10**9)
                hedge, target = self.hedge(key), self.target(key)
                if exposure == 0 and hedge == 0:
                    continue
                price = Decimal(self.exposure.last_price_e8.get(market, 0)) / Decimal(10**8)
                rows.append({"maker": maker, "market": market, "symbol": self.config.markets[market],
                             "exposure": str(exposure), "target": str(target), "hedge": str(hedge),
                             "residual": str(target - hedge), "hedged_usdc": f"{abs(hedge) * price:.2f}",
                             "residual_usdc": f"{abs(target - hedge) * price:.2f}"})
        return {
            "applied_seq": self.state.applied_seq, "pending": len(self.state.intents),
            "dirty": len(self.state.dirty), "orders_sent": self.orders_sent, "fills": self.fills,
            "positions": rows,
            "audit_sql": self.audit_sql.status() if self.audit_sql is not None else None,
            "exchanges": {n: {"state": h.state, "reason": h.reason, "latency_ms": round(h.latency_ms, 2),
                              "failures": h.failures_total, "backoffs_429": self.budgets[n].backoffs}
                          for n, h in self.health.items()},
            "books": {f"{n} {s}": {k: (round(v, 3) if math.isfinite(v) else None) for k, v in b.items()}
                      for (n, s), b in self.books.items()},
        }
