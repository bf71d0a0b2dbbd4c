"""The dashboard of one venue: the rolling model fed by the hub, the alerts (computed when
asked: the page's poll, a ``/metrics`` scrape), and the forecasts refreshed on a bounded
background worker so the event loop never waits for a fit.

Projection lags come from the venue's runner (``venue.projections.summary()``, as in
``/health``); edges that are not there yet (settlement, hedger) are read if the venue has them,
by the contract stated in ``docs/dashboard.md``; absent, they are simply not shown.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from prometheus_client.core import GaugeMetricFamily

from adapters.dashboard import alerts as al
from adapters.dashboard import forecast as fc
from adapters.dashboard.model import Model
from adapters.gateway import render
from engine import views

log = logging.getLogger("agentperp.dashboard")

BACKFILL_EVENTS_MAX = 20_000  # journal events read at start so a restarted venue's charts are not empty
PENDING_EVENTS_MAX = 100_000  # live events held while the backfill reads; beyond: the backfill is dropped
FORECAST_INTERVAL_S = 5.0  # one refresh of every market's forecasts at most this often
FORECAST_WORKERS = 1  # one thread: at most one fit runs at a time, whatever the number of pages
FLOW_SENT_MAX = 100  # flow events in one state answer
PRICES_SENT_MAX = 1_000  # price points per market in a state answer with history
LIQUIDATIONS_SENT_MAX = 50

ASSET_DIR = Path(__file__).parent / "static"
CHARTS_ASSET = "vendor/lightweight-charts.standalone.production.js"


class Dashboard:
    def __init__(self, venue):
        self.venue = venue
        self.symbols = list(venue.symbols)
        self.model = Model(self.symbols)
        self.forecasts: dict[str, dict] = {}
        self.forecast_note = "waiting for the first refresh"
        self.forecast_refreshes = 0
        self.charts_asset = ASSET_DIR / CHARTS_ASSET  # absent (never fetched): the page runs with charts off
        self._executor = ThreadPoolExecutor(max_workers=FORECAST_WORKERS, thread_name_prefix="dashboard-forecast")
        self._tasks: list[asyncio.Task] = []
        self._pending: list | None = None  # live events held during the backfill
        self._last_seq_at_listen = venue.hub.last_seq
        if self._last_seq_at_listen > 0:
            self._pending = []
        venue.hub.listen(self._on_events)
        venue.metrics.registry.register(AlertCollector(self))

    # -- feeding ----------------------------------------------------------------------------

    def _on_events(self, events: list) -> None:
        self.model.write_ms.append(self.venue.sequencer.last_write_s * 1e3)
        if self._pending is not None:
            if len(self._pending) + len(events) > PENDING_EVENTS_MAX:
                self._pending = None  # the backfill is too slow: show live events only
                log.warning("dashboard: backfill dropped (more than %d live events meanwhile)", PENDING_EVENTS_MAX)
            else:
                self._pending.extend(events)
                return
        self.model.on_events(events)

    async def _backfill(self) -> None:
        to_seq = self._last_seq_at_listen
        from_seq = max(1, to_seq - BACKFILL_EVENTS_MAX + 1)
        try:
            found, _ = await asyncio.get_running_loop().run_in_executor(
                None, self.venue.hub.lookups.events, from_seq, to_seq, BACKFILL_EVENTS_MAX)
        except Exception:  # a view: the venue goes on without history
            log.exception("dashboard: backfill failed")
            found = []
        pending, self._pending = self._pending, None
        if pending is not None:
            self.model.on_events(found)
            self.model.on_events(pending)

    # -- life cycle -------------------------------------------------------------------------

    async def start(self, app=None) -> None:
        if self._pending is not None:
            self._tasks.append(asyncio.create_task(self._backfill(), name="dashboard-backfill"))
        self._tasks.append(asyncio.create_task(self._forecast_loop(), name="dashboard-forecasts"))

    async def stop(self, app=None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- forecasts --------------------------------------------------------------------------

    async def _forecast_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            inputs = {symbol: (self.model.price_floats(m), self.model.rate_floats(m))
                      for m, symbol in enumerate(self.symbols)}
            try:
                self.forecasts = await loop.run_in_executor(self._executor, compute_forecasts, inputs)
                self.forecast_refreshes += 1
                self.forecast_note = "estimates: statsmodels ETS(A,N,N), 80% prediction intervals"
            except ImportError as error:
                self.forecast_note = f"forecasts off: {error.name} is not installed"
            except Exception as error:  # a view: say so on the page, keep the venue going
                log.exception("dashboard: forecast refresh failed")
                self.forecast_note = f"forecast refresh failed: {type(error).__name__}"
            await asyncio.sleep(FORECAST_INTERVAL_S)

    # -- alerts -----------------------------------------------------------------------------

    def alerts(self) -> list[al.Alert]:
        venue, model = self.venue, self.model
        now_ns = venue.clock()
        oracle = venue.state.oracle
        found: list[al.Alert | None] = []
        for m, market in enumerate(venue.engine_config.markets):
            symbol = market.symbol
            found.append(al.price_alert(symbol, [p for _, p in model.price_floats(m)]))
            found.append(al.funding_alert(symbol, model.rate_floats(m)))
            found.append(al.flow_alert(symbol, model.complete_flow_counts(m, now_ns)))
            publish_ns = int(oracle.publish_ns[m])
            found.append(al.oracle_stale_alert(symbol, now_ns - publish_ns if publish_ns else None,
                                               market.oracle_age_ns_max))
        out = [a for a in found if a is not None]
        out += al.lag_alerts(self.lags())
        out += al.hedger_alerts(self.hedger_exchanges())
        return out

    def lags(self) -> dict[str, dict]:
        """name → {"lag_seq", "lag_s"} of every projection the venue runs (docs/dashboard.md):
        the venue's runner (``venue.projections.summary()``, the rows of ``/health``'s
        ``projections``), then any other edge's ``status()``."""
        found: dict[str, dict] = {}
        summary = getattr(getattr(self.venue, "projections", None), "summary", None)
        if callable(summary):
            try:
                rows = summary()
            except Exception:  # a view of another edge: its failure is its own alert, not ours
                log.exception("dashboard: projections.summary() failed")
                rows = []
            found.update({str(row["name"]): {"lag_seq": row.get("lag_seq"), "lag_s": row.get("lag_s"),
                                             "state": row.get("state")}
                          for row in rows if isinstance(row, dict) and "name" in row})
        for attr in ("projections", "settlement", "hedger"):
            edge = getattr(self.venue, attr, None)
            status = _status(edge)
            if not status:
                continue
            rows = status.get("projections", status)
            if isinstance(rows, dict) and ("lag_s" in rows or "lag_seq" in rows):
                found[attr] = rows
            elif isinstance(rows, dict):
                found.update({str(k): v for k, v in rows.items() if isinstance(v, dict)
                              and ("lag_s" in v or "lag_seq" in v)})
        return found

    def hedger_exchanges(self) -> dict[str, dict]:
        status = _status(getattr(self.venue, "hedger", None))
        exchanges = status.get("exchanges") if status else None
        return exchanges if isinstance(exchanges, dict) else {}

    # -- what the page reads ----------------------------------------------------------------

    def state(self, *, history: bool) -> dict:
        venue, model = self.venue, self.model
        state, symbols = venue.state, self.symbols
        now_ns = venue.clock()
        books = views.books(state)
        rfq_market = {r.rfq_id: r.market for r in views.rfqs(state)}
        quote_rates: dict[int, list[int]] = {}
        for q in views.quotes(state):
            market = rfq_market.get(q.rfq_id)
            if market is not None:
                quote_rates.setdefault(market, []).append(q.funding_rate_e9)
        oi_long, oi_short = open_interest_by_taker_side(state, len(symbols))
        markets = []
        for m, market in enumerate(venue.engine_config.markets):
            o = state.oracle
            publish_ns = int(o.publish_ns[m])
            rates = quote_rates.get(m, [])
            row = {
                "market": market.symbol, "price": render.h.price(int(o.price_e8[m])) if publish_ns else None,
                "conf": render.h.price(int(o.conf_e8[m])) if publish_ns else None,
                "source": o.source[m] if publish_ns else None, "publish_ns": publish_ns,
                "age_ms": (now_ns - publish_ns) // 1_000_000 if publish_ns else None,
                "oracle_age_ms_max": market.oracle_age_ns_max // 1_000_000,
                "open_rfqs": sum(1 for v in rfq_market.values() if v == m), "live_quotes": len(rates),
                "quote_rate_best": render.h.rate(min(rates)) if rates else None,
                "quote_rate_median": render.h.rate(int(statistics.median_low(rates))) if rates else None,
                "last_fill_rate": render.h.rate(model.rates[m][-1][1]) if model.rates[m] else None,
                "oi_taker_long_usdc": render.h.usdc(int(oi_long[m])),
                "oi_taker_short_usdc": render.h.usdc(int(oi_short[m])),
                "forecast": self.forecasts.get(market.symbol),
            }
            if history:
                points = list(model.prices[m])[-PRICES_SENT_MAX:]
                row["prices"] = [[ts // 1_000_000, render.h.price(p), render.h.price(c)] for ts, p, c, _ in points]
                row["rates"] = [[ts // 1_000_000, render.h.rate(r)] for ts, r in model.rates[m]]
            markets.append(row)
        writes = sorted(model.write_ms)
        return {
            "last_seq": model.last_seq if self._pending is None else venue.hub.last_seq,
            "server_time_ms": now_ns // 1_000_000,
            "charts_asset": self.charts_asset.is_file(),
            "markets": markets,
            "books": {"insurance_usdc": render.h.usdc(books.insurance_e6), "bad_debt_usdc": render.h.usdc(books.bad_debt_e6),
                      "fees_usdc": render.h.usdc(books.fees_e6), "open_positions": books.open_positions,
                      "open_interest_usdc": render.h.usdc(books.open_interest_e6), "open_rfqs": books.open_rfqs,
                      "live_quotes": books.live_quotes},
            "flow": [render.render_event(e, symbols) for e in list(model.flow)[-FLOW_SENT_MAX:]],
            "liquidations": [render.render_event(e, symbols) for e in list(model.liquidations)[-LIQUIDATIONS_SENT_MAX:]],
            "alerts": [{"kind": a.kind, "subject": a.subject, "severity": a.severity, "message": a.message}
                       for a in self.alerts()],
            "forecast_note": self.forecast_note,
            "edges": {
                "journal_write_ms_last": round(writes and model.write_ms[-1] or 0.0, 3),
                "journal_write_ms_p50": round(_quantile(writes, 0.5), 3),
                "journal_write_ms_p99": round(_quantile(writes, 0.99), 3),
                "journal_batches_sampled": len(writes),
                "sequencer_queue_depth": venue.sequencer.queue_depth,
                "lags": self.lags(),
                "hedger_exchanges": self.hedger_exchanges(),
            },
        }


def compute_forecasts(inputs: dict[str, tuple[list, list]]) -> dict[str, dict]:
    """Every market's forecasts (runs on the worker thread): symbol → volatility, rate, cone."""
    out = {}
    for symbol, (prices, rates) in inputs.items():
        vol = fc.volatility_forecast(prices)
        rate = fc.rate_forecast(rates)
        row: dict = {"volatility": _plain(vol), "funding_rate": _plain(rate)}
        if vol is not None and prices:
            last_ms, last_price = prices[-1][0] // 1_000_000, prices[-1][1]
            lower, upper = fc.price_cone(last_price, vol.mean)
            step_ms = fc.VOL_BUCKET_NS // 1_000_000
            row["price_cone"] = {"level": fc.BAND_LEVEL, "from_ms": last_ms, "step_ms": step_ms,
                                 "lower": lower, "upper": upper}
        out[symbol] = row
    return out


def open_interest_by_taker_side(state, markets: int) -> tuple[np.ndarray, np.ndarray]:
    """Open size (e6) per market of positions whose taker was long, and short."""
    from engine.state import OPEN

    p = state.positions
    live = p.column("status") == OPEN
    market = p.column("market")[live]
    size = p.column("size_e6")[live].astype(np.int64)
    taker_long = p.column("taker_is_long")[live].astype(bool)
    longs = np.bincount(market[taker_long], weights=size[taker_long], minlength=markets)
    shorts = np.bincount(market[~taker_long], weights=size[~taker_long], minlength=markets)
    return longs, shorts


class AlertCollector:
    """The alerts in ``/metrics``: ``agentperp_alert_active{kind, subject, severity}`` = 1 per
    active alert, computed at scrape time (labels bounded: kinds × markets, projections, exchanges)."""

    def __init__(self, dashboard: Dashboard):
        self.dashboard = dashboard

    def collect(self):
        active = GaugeMetricFamily("agentperp_alert_active", "Dashboard alerts active now (views; journaled nowhere)",
                                   labels=["kind", "subject", "severity"])
        for alert in self.dashboard.alerts():
            active.add_metric([alert.kind, alert.subject, alert.severity], 1.0)
        yield active
        refreshes = GaugeMetricFamily("agentperp_dashboard_forecast_refreshes", "Forecast refreshes done")
        refreshes.add_metric([], float(self.dashboard.forecast_refreshes))
        yield refreshes


def _status(edge) -> dict | None:
    status = getattr(edge, "status", None)
    if not callable(status):
        return None
    try:
        found = status()
    except Exception:  # a view of another edge: its failure is its own alert, not ours
        log.exception("dashboard: status() of %r failed", edge)
        return None
    return found if isinstance(found, dict) else None


def _plain(forecast: fc.Forecast | None) -> dict | None:
    if forecast is None:
        return None
    return {"what": forecast.what, "step": forecast.step, "level": forecast.level, "mean": forecast.mean,
            "lower": forecast.lower, "upper": forecast.upper, "fitted_on": forecast.fitted_on, "estimate": True}


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
