"""The oracle feed: every source's prices are screened here, one source per market is
chosen, and its prices go to the sequencer as ``OracleUpdate`` commands.

Screen (the same for every source, before anything reaches the engine): a publish time
more than ``future_skew_ns_max`` ahead of the venue's clock is dropped (``future``: a
source's clock is wrong); one not after that source's last price for the market is dropped
(``repeat`` when equal — Hermes sends several updates per publish second — or
``backwards``); a market outside the configuration is dropped (``unknown_market``). What a
source itself refused (malformed JSON, an unknown feed id, a non-positive or inexact price)
arrives through ``Sink.drop``. Each drop is counted by source and reason; the first drops
of a reason and then every 10th power are logged with the detail, so a hostile peer cannot
flood the log.

Failover, per market, with a ``check`` source: the primary is *unhealthy* when its last
price was published more than ``stale_ns`` ago (before its first price: ``stale_ns`` after
the feed started), or when both sources are fresh and they differ by more than
``divergence_bps_max`` of the check's price. An unhealthy primary is dropped for a fresh
check (the check's last price is submitted at once); the market returns to the primary
once it has been healthy for ``failback_ns`` (at once if the check went stale). Each switch
is journaled — a ``SwitchOracleSource`` goes to the sequencer before the first price from
the new source, so the journal holds ``OracleSourceSwitched(market, from, to, reason)`` ahead
of the first ``OracleUpdated`` with the new ``source`` — and logged, counted
(``agentperp_oracle_failovers``) and visible in ``status()`` (``/health``). Only updates published
after the last one submitted for the market are submitted, so switching never sends the
engine a price older than the one it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from adapters.oracle.metrics import OracleMetrics
from adapters.oracle.source import Source
from engine import oracle as engine_oracle
from engine.commands import OracleUpdate, SwitchOracleSource
from engine.units import BPS_SCALE, NS_PER_MS

log = logging.getLogger("agentperp.oracle")

# Screen drop reasons (pyth_parse has the translation ones)
FUTURE = "future"
REPEAT = "repeat"
BACKWARDS = "backwards"
UNKNOWN_MARKET = "unknown_market"
QUIET_REASONS = frozenset({REPEAT})  # expected in normal operation: counted, never logged

# Switch reasons: the engine's closed set (SwitchOracleSource.reason)
STALE = engine_oracle.SWITCH_STALE
DIVERGED = engine_oracle.SWITCH_DIVERGED
RECOVERED = engine_oracle.SWITCH_RECOVERED
CHECK_STALE = engine_oracle.SWITCH_CHECK_STALE

SWITCHES_KEPT = 64  # the last switches shown in status()


class _Role:
    """One source's side of the feed (the ``Sink`` that source writes to)."""

    def __init__(self, feed: OracleFeed, source: Source, n_markets: int):
        self.feed = feed
        self.source = source
        self.name = source.name
        self.last: list[OracleUpdate | None] = [None] * n_markets

    def update(self, update: OracleUpdate) -> None:
        self.feed._offer(self, update)

    def drop(self, reason: str, detail: str) -> None:
        self.feed._dropped(self.name, reason, detail)

    def note(self, what: str, detail: str = "") -> None:
        if self.feed.metrics:
            self.feed.metrics.source_events.labels(self.name, what).inc()


class OracleFeed:
    def __init__(self, symbols: list[str], primary: Source, check: Source | None = None, *,
                 submit_with: Callable, clock: Callable[[], int], stale_ns: int, divergence_bps_max: int,
                 failback_ns: int, future_skew_ns_max: int, watch_interval_s: float,
                 last_publish_ns: list[int] | None = None, metrics: OracleMetrics | None = None):
        assert check is None or check.name != primary.name, "oracle: the check must be another source"
        n = len(symbols)
        self.symbols = symbols
        self.primary = _Role(self, primary, n)
        self.check = _Role(self, check, n) if check is not None else None
        self.submit_with = submit_with
        self.clock = clock
        self.stale_ns = stale_ns
        self.divergence_bps_max = divergence_bps_max
        self.failback_ns = failback_ns
        self.future_skew_ns_max = future_skew_ns_max
        self.watch_interval_s = watch_interval_s
        self.metrics = metrics
        self.active: list[_Role] = [self.primary] * n
        self.submitted_ns: list[int] = list(last_publish_ns or [0] * n)  # the engine's last publish_ns
        self.healthy_since_ns: list[int] = [0] * n  # the primary's, while the check is in use
        self.started_ns = clock()
        self.dropped: dict[tuple[str, str], int] = {}
        self.rejected: dict[str, int] = {}
        self.switches: deque[dict] = deque(maxlen=SWITCHES_KEPT)
        self.failovers = 0
        self.on_switch: list[Callable[[int, str, str, str], None]] = []  # (market, from, to, reason)
        if metrics:
            for symbol in symbols:
                metrics.in_use.labels(symbol, self.primary.name).set(1)
            metrics.count_sources(self.source_counts)

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every source and the staleness watch until cancelled."""
        tasks = [asyncio.create_task(self._run_source(self.primary), name=f"oracle-{self.primary.name}")]
        if self.check is not None:
            tasks.append(asyncio.create_task(self._run_source(self.check), name=f"oracle-{self.check.name}"))
            tasks.append(asyncio.create_task(self._watch(), name="oracle-watch"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_source(self, role: _Role) -> None:
        try:
            await role.source.run(role)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in a source: say so; the venue and the other source go on
            log.exception("oracle source %s stopped", role.name)
            role.note("failed")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_interval_s)
            now_ns = self.clock()
            for market in range(len(self.symbols)):
                self._evaluate(market, now_ns)

    # -- screening and choosing -------------------------------------------------------------

    def _offer(self, role: _Role, u: OracleUpdate) -> None:
        market = u.market
        if not 0 <= market < len(self.symbols):
            return self._dropped(role.name, UNKNOWN_MARKET, f"market {market}")
        now_ns = self.clock()
        if u.publish_ns > now_ns + self.future_skew_ns_max:
            return self._dropped(role.name, FUTURE, f"{self.symbols[market]} published "
                                 f"{(u.publish_ns - now_ns) // NS_PER_MS} ms ahead of the venue's clock")
        last = role.last[market]
        if last is not None and u.publish_ns <= last.publish_ns:
            if u.publish_ns == last.publish_ns:
                return self._dropped(role.name, REPEAT, "")
            return self._dropped(role.name, BACKWARDS, f"{self.symbols[market]} publish time "
                                 f"{(last.publish_ns - u.publish_ns) // NS_PER_MS} ms before the last")
        role.last[market] = u
        if self.metrics:
            self.metrics.received.labels(role.name).inc()
        self._evaluate(market, now_ns)
        if self.active[market] is role:
            self._submit(role, u)

    def _submit(self, role: _Role, u: OracleUpdate) -> None:
        if u.publish_ns <= self.submitted_ns[u.market]:
            return  # after a switch: older than what the engine has
        self.submitted_ns[u.market] = u.publish_ns
        self.submit_with(u, lambda outcome: self._durable(role.name, outcome))

    def _durable(self, source: str, outcome, price: bool = True) -> None:
        if outcome.rejection is None:
            if self.metrics and price:
                self.metrics.submitted.labels(source).inc()
            return
        code = outcome.rejection.code
        self.rejected[code] = self.rejected.get(code, 0) + 1
        if self.metrics:
            self.metrics.rejected.labels(source, code).inc()
        if _worth_logging(self.rejected[code]):
            log.warning("oracle %s: the engine rejected an update (%s, %d so far): %s", source, code,
                        self.rejected[code], outcome.rejection.message)

    def _fresh(self, role: _Role, market: int, now_ns: int) -> bool:
        last = role.last[market]
        since_ns = last.publish_ns if last is not None else self.started_ns
        return now_ns - since_ns <= self.stale_ns

    def _unhealthy(self, market: int, now_ns: int, check_fresh: bool) -> str | None:
        """Why the primary may not price ``market`` now (None: it may)."""
        if not self._fresh(self.primary, market, now_ns):
            return STALE
        p, c = self.primary.last[market], self.check.last[market]
        if check_fresh and p is not None and c is not None and \
                abs(p.price_e8 - c.price_e8) * BPS_SCALE > self.divergence_bps_max * c.price_e8:
            return DIVERGED
        return None

    def _evaluate(self, market: int, now_ns: int) -> None:
        if self.check is None:
            return
        check_fresh = self._fresh(self.check, market, now_ns) and self.check.last[market] is not None
        why = self._unhealthy(market, now_ns, check_fresh)
        if self.active[market] is self.primary:
            if why is not None and check_fresh:
                self._switch(market, self.check, why, now_ns)
            return
        if why is not None:
            self.healthy_since_ns[market] = 0
            return
        if not self.healthy_since_ns[market]:
            self.healthy_since_ns[market] = now_ns
        if not check_fresh:
            self._switch(market, self.primary, CHECK_STALE, now_ns)
        elif now_ns - self.healthy_since_ns[market] >= self.failback_ns:
            self._switch(market, self.primary, RECOVERED, now_ns)

    def _switch(self, market: int, to: _Role, reason: str, now_ns: int) -> None:
        old = self.active[market]
        self.active[market] = to
        self.healthy_since_ns[market] = 0
        self.failovers += 1
        symbol = self.symbols[market]
        detail = self._describe(market, now_ns)
        self.switches.append({"market": symbol, "from": old.name, "to": to.name, "reason": reason,
                              "at_ns": now_ns, **detail})
        log.warning("oracle %s: %s -> %s (%s; %s)", symbol, old.name, to.name, reason,
                    ", ".join(f"{k} {v}" for k, v in detail.items()))
        if self.metrics:
            self.metrics.failovers.labels(symbol, old.name, to.name, reason).inc()
            self.metrics.in_use.labels(symbol, old.name).set(0)
            self.metrics.in_use.labels(symbol, to.name).set(1)
        # Journaled first: the sequencer keeps submission order, so the switch precedes
        # the new source's first price.
        self.submit_with(SwitchOracleSource(market, old.name, to.name, reason),
                         lambda outcome: self._durable(to.name, outcome, price=False))
        last = to.last[market]
        if last is not None:
            self._submit(to, last)
        for listener in self.on_switch:
            listener(market, old.name, to.name, reason)

    # -- what ops see -----------------------------------------------------------------------

    def _describe(self, market: int, now_ns: int) -> dict:
        found = {}
        for role in (self.primary, self.check):
            if role is None:
                continue
            last = role.last[market]
            found[f"{role.name}_age_ms"] = None if last is None else (now_ns - last.publish_ns) // NS_PER_MS
        p = self.primary.last[market]
        c = self.check.last[market] if self.check is not None else None
        if p is not None and c is not None:
            found["divergence_bps"] = abs(p.price_e8 - c.price_e8) * BPS_SCALE // c.price_e8
        return found

    def status(self) -> dict:
        """The feed for ``/health``: sources, the one in use per market, drops and switches."""
        now_ns = self.clock()
        dropped: dict[str, dict[str, int]] = {}
        for (source, reason), count in self.dropped.items():
            dropped.setdefault(source, {})[reason] = count
        return {
            "primary": self.primary.name, "check": self.check.name if self.check else None,
            "markets": {symbol: {"source": self.active[m].name, **self._describe(m, now_ns)}
                        for m, symbol in enumerate(self.symbols)},
            "failovers": self.failovers, "last_switches": list(self.switches)[-8:],
            "dropped": dropped, "rejected": dict(self.rejected),
            "sources": self.source_counts(),
        }

    def source_counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """What a source counts itself (the CCXT median: per exchange), for sources that do."""
        return {role.name: role.source.status() for role in (self.primary, self.check)
                if role is not None and callable(getattr(role.source, "status", None))}

    def _dropped(self, source: str, reason: str, detail: str) -> None:
        key = (source, reason)
        count = self.dropped[key] = self.dropped.get(key, 0) + 1
        if self.metrics:
            self.metrics.dropped.labels(source, reason).inc()
        if reason not in QUIET_REASONS and _worth_logging(count):
            log.warning("oracle %s: dropped (%s, %d so far): %s", source, reason, count, detail)


def _worth_logging(count: int) -> bool:
    """1, 2, ..., 10, then 100, 1000, ...: every drop is counted, the log stays readable."""
    if count <= 10:
        return True
    while count % 10 == 0:
        count //= 10
    return count == 1
