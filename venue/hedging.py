"""The hedger on the running venue (DESIGN §9, docs/hedging.md): ``[hedging]`` turned into a
``Hedger`` registered as a projection on the venue's runner, and — for ``embedded`` exchanges —
the exchange simulators started in this process on loopback, one account per hedged maker,
their reference prices fed from the venue's durable ``OracleUpdated`` events.

``VenueHedging`` is what the venue holds (``venue.hedger``): ``start()`` before the runner
starts, ``sink`` (the projection the runner drives), ``stop()`` after the runner stopped,
``status()`` for ``/health`` and the dashboard, ``status_text()`` for the status line, a
Prometheus collector for ``/metrics``.

The hedger is asyncio (``ccxt.async_support``); the runner calls projections from its worker
threads, so ``HedgerSink`` gives the hedger a private loop (``LoopThread``) and every call to
it runs there, one at a time. What the venue's loop reads (``status()``) is a snapshot the
hedger's loop takes after every batch and every health ping — never the hedger's live dicts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import secrets
import sys
import time
from decimal import Decimal
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from adapters.hedging.exchanges import Credentials, make_client
from adapters.hedging.hedger import ExchangeConfig, Hedger, HedgerConfig
from engine import events as ev
from ledger.projections.external import LoopThread
from ledger.records import JournalRecord
from venue.config import DEMO_MAKER_ROLES, EMBEDDED
from venue.projections import sql_url

log = logging.getLogger("agentperp.hedging")

NAME = "hedging"  # the projection's name (runner, /health, /metrics, status line)
HEDGING_DIR = "hedging"  # DATA/hedging: the hedger's state, audit trail and (default) keyfile
STATE_FILE, AUDIT_FILE, KEYFILE = "hedger.json", "audit.jsonl", "keys.json"
START_TIMEOUT_S = 60.0  # start(): load the state, open the clients, reconcile with every exchange
BATCH_TIMEOUT_S = 120.0  # one batch applied and hedged, at most, before it counts as failed (retried)
# How long a part batch waits for more events (``Runner._coalesce``): a batch costs hand-offs
# between the venue's loop, the runner's thread and the hedger's, and a state file write,
# whatever its size; 10 ms is nothing beside an exchange's round trip.
HEDGE_COALESCE_S = 0.01
# Catching up a long journal (a restart after downtime, a rebuilt state file), the hedger
# applies batches that end this many seqs or more before the journal's durable end without
# sending orders — each maker's exposure moves again before the end, and hedging every batch
# would trade each change on the exchanges — and hedges the keys they marked once, from the
# batch that reaches the end; at least every HEDGE_DEFER_S_MAX even so (a hedger that cannot
# catch up still hedges). Live, a batch ends a coalesce window behind: far below this.
CATCH_UP_BEHIND_SEQ_MIN = 5_000
HEDGE_DEFER_S_MAX = 5.0
CLOSE_TIMEOUT_S = 10.0
PING_INTERVAL_S = 5.0  # health pings per exchange while no hedge is sent
EMBEDDED_WALLET_USDT = 100_000_000  # each hedged maker's account on an embedded simulator
EMBEDDED_RATE_LIMIT_MS = 5.0  # ccxt's throttler against an embedded simulator (loopback)
STATES = ("connected", "degraded", "down")


class HedgeTimeout(Exception):
    """A call to the hedger did not finish in time; it was cancelled (the runner retries)."""


class HedgerSink:
    """``Hedger`` (async) as the runner's projection (blocking ``load_checkpoint`` / ``apply`` /
    ``recover``): ``start()`` before the first batch, ``HedgeIncomplete`` raised through to the
    runner, which retries the same seq with backoff."""

    def __init__(self, hedger: Hedger, *, name: str = NAME, tail_seq=None, clock=time.monotonic) -> None:
        """``tail_seq()``: the journal's durable last seq now (None: hedge after every batch)."""
        self.name = name
        self.hedger = hedger
        self.tail_seq = tail_seq
        self.clock = clock
        self.batches_deferred = 0  # batches applied without hedging (catching up)
        self._hedged_s = clock()  # when a batch last hedged (or the sink began)
        self.loop = LoopThread(f"{name}-sink")
        self.coalesce_s = HEDGE_COALESCE_S
        self.started = False
        self.snapshot: dict = {}  # hedger.status() taken on the hedger's loop; replaced whole, read anywhere
        self._one_at_a_time: asyncio.Lock | None = None  # made on the hedger's loop
        self._pinger: concurrent.futures.Future | None = None

    # -- the runner's contract (called from its thread) ----------------------------------
    def load_checkpoint(self) -> int:
        if not self.started:
            try:
                self._call(self._start(), START_TIMEOUT_S)
            except Exception:  # apply() tries again, and its failure shows in /health
                log.exception("hedging: start failed; retried with the first batch")
        return self.hedger.position

    def apply(self, records: list[JournalRecord], after_seq: int) -> int:
        if not self.started:
            self._call(self._start(), START_TIMEOUT_S)
        hedge = self._hedges_after(records[-1].last_seq)
        self._call(self._handle(records, hedge), BATCH_TIMEOUT_S)
        if hedge:  # reached its targets: the deferral's clock starts when the hedging ended
            self._hedged_s = self.clock()
        return records[-1].last_seq

    def _hedges_after(self, last_seq: int) -> bool:
        """Whether the batch ending at ``last_seq`` hedges (``CATCH_UP_BEHIND_SEQ_MIN``): a
        batch far behind defers until ``HEDGE_DEFER_S_MAX`` after the last hedging that
        succeeded — so a slow hedge does not end the deferral, and a failed one (retried by
        the runner, the same seq) is tried again rather than deferred into a false success."""
        if (self.tail_seq is not None and self.tail_seq() - last_seq >= CATCH_UP_BEHIND_SEQ_MIN
                and self.clock() - self._hedged_s < HEDGE_DEFER_S_MAX):
            self.batches_deferred += 1
            return False
        return True

    def recover(self) -> None:
        """Nothing to drop: the hedger's state file is written before every group of orders and
        after every batch, and a key not at its target stays marked for the next attempt."""

    def close(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        try:
            self._call(self.hedger.close(), CLOSE_TIMEOUT_S)
        except Exception:
            log.exception("hedging: closing the exchange clients failed")
        self.loop.close()

    # -- on the hedger's loop ------------------------------------------------------------
    def _call(self, coroutine, timeout_s: float):
        future = asyncio.run_coroutine_threadsafe(self._serialized(coroutine), self.loop.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()  # the next call waits until it has unwound (the lock)
            raise HedgeTimeout(f"hedger call did not finish in {timeout_s:g} s; cancelled") from None

    async def _serialized(self, coroutine):
        if self._one_at_a_time is None:
            self._one_at_a_time = asyncio.Lock()
        async with self._one_at_a_time:
            return await coroutine

    async def _start(self) -> None:
        h = self.hedger
        await asyncio.gather(*(c.close() for c in [*h.clients.values(), *h.public.values()]))  # a failed start's
        h.clients.clear()
        h.public.clear()
        try:
            await h.start()
        finally:
            self.snapshot = h.status()
        self.started = True
        if self._pinger is None:
            self._pinger = asyncio.run_coroutine_threadsafe(self._ping_forever(), self.loop.loop)

    async def _handle(self, records: list[JournalRecord], hedge: bool) -> None:
        try:
            await self.hedger.handle(records, hedge=hedge)
        finally:
            self.snapshot = self.hedger.status()

    async def _ping_forever(self) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            try:
                async with self._one_at_a_time:
                    await self.hedger.ping()
                    self.snapshot = self.hedger.status()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hedging: health ping failed")


class VenueHedging:
    def __init__(self, venue) -> None:
        self.venue = venue
        self.config = venue.config.hedging
        self.sink: HedgerSink | None = None
        self.sims: dict[str, object] = {}  # exchange name → embedded BinanceSim | OkxSim
        self.urls: dict[str, str] = {}  # exchange name → base URL ("" : the real exchange)
        self.makers: dict[str, str] = {}  # agent id → its name in [hedging] makers
        self.credentials: dict[str, dict[str, Credentials]] = {}  # agent → exchange → keys (never printed)
        self.markets: dict[int, str] = {}  # venue market id → ccxt symbol
        self._servers: list = []
        self._prices: dict[int, int] = {}  # market → price_e8 not yet given to the simulators
        self._feeding = False

    @property
    def enabled(self) -> bool:
        mode = self.config.enabled
        return mode == "on" or (mode == "auto" and self.venue.config.venue.demo)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start the embedded simulators and build the hedger's projection (the runner starts it)."""
        if not self.enabled:
            return
        c, data_dir = self.config, Path(self.venue.config.venue.data_dir)
        self.markets = {m: c.symbols[s] for m, s in enumerate(self.venue.symbols) if s in c.symbols}
        self.makers = {_agent_id(name, self.venue.config.demo.seed): name for name in c.makers}
        stored = self._keyfile_credentials(data_dir)
        exchanges = []
        for e in c.exchanges:
            embedded = e.base_url == EMBEDDED or e.base_url.startswith(EMBEDDED + ":")
            if embedded:
                port = int(e.base_url.partition(":")[2] or 0)
                self.urls[e.name] = await self._start_sim(e.name, e.kind, port)
            else:
                self.urls[e.name] = e.base_url
            for agent, name in self.makers.items():
                creds = (self._embedded_account(e.name, e.kind, agent) if embedded
                         else stored.get(name, {}).get(e.name) or stored.get(agent, {}).get(e.name))
                if creds is not None:
                    self.credentials.setdefault(agent, {})[e.name] = creds
            exchanges.append(ExchangeConfig(
                e.name, e.kind, self.urls[e.name] or None, fee_bps=e.fee_bps, weight_per_window=e.weight_per_window,
                timeout_ms=e.timeout_ms, recv_window_ms=e.recv_window_ms,
                rate_limit_ms=EMBEDDED_RATE_LIMIT_MS if embedded else None))
        unkeyed = sorted(self.makers[a] for a in self.makers if a not in self.credentials)
        if unkeyed:
            log.warning("hedging: no credentials for %s on any exchange: not hedged", ", ".join(unkeyed))
        hedger = Hedger(HedgerConfig(
            makers={a: creds for a, creds in self.credentials.items()}, exchanges=tuple(exchanges),
            markets=self.markets, state_path=data_dir / HEDGING_DIR / STATE_FILE,
            audit_path=data_dir / HEDGING_DIR / AUDIT_FILE, hedge_ratio_bps=c.hedge_ratio_bps,
            slippage_bps=c.slippage_bps,
            # The audit file imported into the read models' database ([projections] sql; off: the file only).
            audit_sql_url=sql_url(self.venue.config) if self.venue.config.projections.sql else None))
        hub = self.venue.hub
        self.sink = HedgerSink(hedger, tail_seq=lambda: hub.last_seq)
        if self.sims:  # their books move around the venue's durable oracle prices
            self._prices = {m: p[0] for m, p in self.venue.last_prices.items() if m in self.markets}
            self._feed()
            self.venue.hub.listen(self._on_durable)
        self.venue.metrics.registry.register(_HedgingCollector(self))

    async def stop(self) -> None:
        """After the runner stopped: close the hedger's clients and loop, then the simulators."""
        if self.sink is not None:
            await asyncio.to_thread(self.sink.close)
        for server in self._servers:
            await server.cleanup()
        self._servers.clear()

    def feed_client(self, exchange: str | None = None):
        """A public (unkeyed) ccxt client of ``exchange`` (default: the first of ``[hedging]
        exchanges``) at the URL the hedger uses — the demo's arbitrage maker polls its funding
        rates and books (agents/arbitrage.py ``CcxtFeed``); None while hedging is off. The
        caller closes it."""
        if self.sink is None:
            return None
        e = next((e for e in self.config.exchanges if e.name == exchange or exchange is None), None)
        if e is None:
            raise ValueError(f"no exchange {exchange!r} in [hedging] exchanges")
        embedded = e.name in self.sims
        return make_client(e.kind, self.urls[e.name] or None, None, timeout_ms=e.timeout_ms,
                           rate_limit_ms=EMBEDDED_RATE_LIMIT_MS if embedded else None)

    # -- embedded exchanges -----------------------------------------------------------------
    async def _start_sim(self, name: str, kind: str, port: int) -> str:
        from adapters.hedging.sim.server import start

        seed = self.venue.config.demo.seed * 100 + len(self.sims)
        if kind == "okx":
            from adapters.hedging.sim.okx import OkxSim

            sim = OkxSim(seed=seed)
        else:
            from adapters.hedging.sim.binance import BinanceSim

            sim = BinanceSim(seed=seed)
        runner, bound = await start(sim.app(), "127.0.0.1", port)
        self._servers.append(runner)
        self.sims[name] = sim
        return f"http://127.0.0.1:{bound}"

    def _embedded_account(self, exchange: str, kind: str, agent: str) -> Credentials:
        """A fresh account (random key and secret, this run only) for ``agent`` on a simulator."""
        sim = self.sims[exchange]
        creds = Credentials(f"ap{secrets.token_hex(8)}", secrets.token_hex(32),
                            secrets.token_hex(8) if kind == "okx" else "")
        if kind == "okx":
            sim.add_account(creds.api_key, creds.secret, creds.password, cash_usdt=EMBEDDED_WALLET_USDT)
        else:
            sim.add_account(creds.api_key, creds.secret, wallet_usdt=EMBEDDED_WALLET_USDT)
        return creds

    def _on_durable(self, events: list) -> None:
        """Hub listener (on the ack path): note the prices; the books move in a later callback."""
        for event in events:
            if type(event) is ev.OracleUpdated and event.market in self.markets:
                self._prices[event.market] = event.price_e8
        if self._prices and not self._feeding:
            self._feeding = True
            asyncio.get_running_loop().call_soon(self._feed)

    def _feed(self) -> None:
        self._feeding = False
        prices, self._prices = self._prices, {}
        for market, price_e8 in prices.items():
            for name, sim in self.sims.items():
                symbol = sim_symbol(sim, self.markets[market])
                if symbol is not None:
                    sim.set_reference(symbol, Decimal(price_e8) / Decimal(10**8))

    def _keyfile_credentials(self, data_dir: Path) -> dict[str, dict[str, Credentials]]:
        """maker → exchange → keys from the keyfile, when some exchange is not embedded."""
        if all(e.base_url == EMBEDDED or e.base_url.startswith(EMBEDDED + ":") for e in self.config.exchanges):
            return {}
        from adapters.hedging import keys

        path = Path(self.config.keyfile) if self.config.keyfile else data_dir / HEDGING_DIR / KEYFILE
        if not path.exists():
            log.warning("hedging: no keyfile at %s: makers on non-embedded exchanges are not hedged", path)
            return {}
        return keys.credentials(path, keys.passphrase(prompt=sys.stdin.isatty()))

    # -- what the venue shows ------------------------------------------------------------
    async def audit(self, read, **kwargs):
        """``read(connection, **kwargs)`` (``audit_sql.recent`` / ``orders``) on the audit's
        database, in a worker thread: the hedger's, else the read models' (hedging off: what
        earlier runs imported); None with the read models off (``--no-sql``)."""
        importer = self.sink.hedger.audit_sql if self.sink is not None else None
        sql = self.venue.projections.sql
        engine = importer.engine if importer is not None else sql.engine if sql is not None else None
        if engine is None:
            return None

        def run():
            with engine.connect() as conn:
                return read(conn, **kwargs)

        return await asyncio.to_thread(run)

    def status(self) -> dict:
        """The hedger's last snapshot (per maker and market, exchanges' health, books) with its
        projection's lag and the hedged / residual notional in USDC; {} when off."""
        if self.sink is None:
            return {}
        snapshot = dict(self.sink.snapshot)
        rows = snapshot.get("positions", [])
        snapshot["hedged_usdc"] = str(sum((Decimal(r["hedged_usdc"]) for r in rows), Decimal(0)))
        snapshot["residual_usdc"] = str(sum((Decimal(r["residual_usdc"]) for r in rows), Decimal(0)))
        snapshot["makers"] = len(self.credentials)
        snapshot["batches_deferred"] = self.sink.batches_deferred  # caught up without hedging (CATCH_UP_BEHIND_SEQ_MIN)
        snapshot["urls"] = {name: url or "(the real exchange)" for name, url in self.urls.items()}
        runner = self.venue.projections.runner
        for item in runner.summary() if runner is not None else []:
            if item["name"] == NAME:
                snapshot.update(lag_seq=item["lag_seq"], lag_s=item["lag_s"], state=item["state"])
        return snapshot

    def status_text(self) -> str:
        """``hedged 1,234.56 / residual 0.00 USDC (binance connected, okx connected)`` for the status line."""
        if self.sink is None:
            return ""
        s = self.status()
        health = ", ".join(f"{n} {e['state']}" for n, e in s.get("exchanges", {}).items())
        return (f"hedged {Decimal(s['hedged_usdc']):,.2f} / residual {Decimal(s['residual_usdc']):,.2f} USDC"
                + (f" ({health})" if health else ""))


def sim_symbol(sim, ccxt_symbol: str) -> str | None:
    """``BTC/USDT:USDT`` as simulator ``sim`` names it (``BTCUSDT``, ``BTC-USDT-SWAP``); None if unlisted."""
    base, _, rest = ccxt_symbol.partition("/")
    quote = rest.partition(":")[0]
    symbol = f"{base}-{quote}-SWAP" if type(sim).__name__ == "OkxSim" else f"{base}{quote}"
    return symbol if symbol in sim.books else None


def _agent_id(name: str, seed: int) -> str:
    """A demo maker's role → its agent id under ``[demo] seed``; anything else is an agent id."""
    if name in DEMO_MAKER_ROLES:
        from agents import sdk

        return str(sdk.demo_keypair(seed, name, 0).pubkey())
    return name


class _HedgingCollector:
    """/metrics: order-book analysis per exchange and symbol, exchange health, notional."""

    def __init__(self, hedging: VenueHedging) -> None:
        self.hedging = hedging

    def collect(self):
        s = self.hedging.status()
        spread = GaugeMetricFamily("agentperp_hedge_spread_bps", "Spread of the exchange's book at the last hedge",
                                   labels=["exchange", "symbol"])
        cost = GaugeMetricFamily("agentperp_hedge_cost_bps",
                                 "All-in cost of the last hedge (half spread + impact + fee)", labels=["exchange", "symbol"])
        state = GaugeMetricFamily("agentperp_hedge_exchange_state", "1 for the exchange's health state",
                                  labels=["exchange", "state"])
        latency = GaugeMetricFamily("agentperp_hedge_exchange_latency_ms", "Latency of the last successful request",
                                    labels=["exchange"])
        failures = CounterMetricFamily("agentperp_hedge_exchange_failures", "Failed requests", labels=["exchange"])
        notional = GaugeMetricFamily("agentperp_hedge_notional_usdc", "Hedged and residual notional over makers",
                                     labels=["kind"])
        orders = CounterMetricFamily("agentperp_hedge_orders", "Hedge orders sent this run")
        for key, book in s.get("books", {}).items():
            exchange, _, symbol = key.partition(" ")
            if book.get("spread_bps") is not None:
                spread.add_metric([exchange, symbol], book["spread_bps"])
            if book.get("cost_bps") is not None:
                cost.add_metric([exchange, symbol], book["cost_bps"])
        for exchange, health in s.get("exchanges", {}).items():
            for name in STATES:
                state.add_metric([exchange, name], 1.0 if health["state"] == name else 0.0)
            latency.add_metric([exchange], health["latency_ms"])
            failures.add_metric([exchange], health["failures"])
        if s:
            notional.add_metric(["hedged"], float(s["hedged_usdc"]))
            notional.add_metric(["residual"], float(s["residual_usdc"]))
            orders.add_metric([], s.get("orders_sent", 0))
        yield from (spread, cost, state, latency, failures, notional, orders)
