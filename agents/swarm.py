"""SwarmMaker: four sub-agents vote on every RFQ; the maker quotes only on a clear consensus.

Each sub-agent is a pure function of hand-buildable inputs that returns an ``Opinion``
(quote or skip, a rate adjustment in e9, a confidence in [0, 1], a reason):

| sub-agent | weight | looks at | says |
|---|---|---|---|
| market analyzer | 25 | trend and volatility of the oracle (``agents.features``) | skip in a storm or a strong trend against the maker; + rate for a trend against it and for volatility |
| risk manager | 30 | exposure after the trade vs the limit, drawdown, volatility | **veto** beyond the limit or in extreme volatility; skip adding risk in a drawdown; + inventory rate |
| strategy optimizer | 20 | its recent quotes and fills | raise the rate when it fills too often, lower it when too rarely; skip an RFQ far larger than it usually fills |
| execution agent | 25 | the RFQ's remaining life, its live quotes | skip an RFQ about to expire or when too many quotes are live; the quote's lifetime |

``consensus``: each vote weighs ``weight × confidence``; agreement = the quote votes' weight
over all votes' weight; the maker quotes only when agreement is **above** ``threshold``
(65%) and no veto was cast; the rate adjustment is the weighted mean of the quote voters'.

Around the vote, two hard stops:
- **emergency stop**: an oracle update whose return is beyond ``shock_bps`` (or a realized
  volatility beyond ``shock_volatility``) cancels every live quote of the maker
  (``take_cancels()``: the live agent sends ``CancelQuote`` for each) and halts quoting for
  ``halt_ms``;
- **drawdown cap**: while equity (``agents.risk.AccountBook`` from its own events, starting at
  ``capital_e6``) is more than ``drawdown_cap_bps`` (15%) below its running peak, it does not
  quote.

Seeded (a ± ``jitter_e9`` on the rate from ``random.Random(seed)``) and explainable: every
decision is a ``Decision`` with its votes, kept in ``decisions`` (the last
``decisions_max``), counted in ``counts``, and logged at DEBUG on ``agentperp.agents.swarm``.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from typing import NamedTuple

from agents.features import MarketFeatures, PriceFeatures
from agents.risk import AccountBook
from engine import events as ev
from engine.units import NS_PER_MS, RATE_E9_MAX
from engine.views import PositionView, RfqView
from protocol.strategy import BaseStrategy, QuoteIntent

log = logging.getLogger("agentperp.agents.swarm")

QUOTE, SKIP = "quote", "skip"
WEIGHTS = {"market_analyzer": 25, "risk_manager": 30, "strategy_optimizer": 20, "execution_agent": 25}
THRESHOLD = 0.65


class Opinion(NamedTuple):
    action: str  # quote | skip
    rate_adjust_e9: int
    confidence: float  # 0..1
    reason: str
    veto: bool = False
    valid_for_ms: int = 0  # the execution agent's lifetime for the quote (0: no opinion)


class Vote(NamedTuple):
    agent: str
    weight: int
    action: str
    confidence: float
    rate_adjust_e9: int
    veto: bool
    reason: str


class Consensus(NamedTuple):
    act: bool
    agreement: float  # quote votes' weight / all votes' weight
    rate_adjust_e9: int
    vetoed_by: str | None
    votes: list[Vote]
    valid_for_ms: int = 0  # the longest lifetime a quote voter asked for (0: the market's default)


class Decision(NamedTuple):
    ts_ns: int
    rfq_id: int  # 0 for an emergency stop
    market: int
    outcome: str  # quote | skip | veto | halted | drawdown | above_max | emergency_stop
    agreement: float
    rate_e9: int | None
    votes: list[Vote]
    detail: str = ""

    def to_dict(self) -> dict:
        out = self._asdict()
        out["votes"] = [v._asdict() for v in self.votes]
        return out


# -- the sub-agents: pure functions ------------------------------------------------------------------

def market_analyzer(f: MarketFeatures, maker_sign: int, *, trend_rate_e9: int, volatility_rate_e9: int,
                    volatility_skip: float, samples_min: int, trend_skip: float = 0.002) -> Opinion:
    """Trend and volatility of the oracle. ``maker_sign``: +1 the maker goes long, -1 short."""
    if f.samples < 2:
        return Opinion(QUOTE, 0, 0.2, "no price history yet")
    if f.volatility >= volatility_skip:
        return Opinion(SKIP, 0, min(1.0, 0.6 + 0.4 * (f.volatility / volatility_skip - 1)),
                       f"volatility {f.volatility:.5f} >= {volatility_skip:.5f}")
    against = max(0.0, -maker_sign * f.trend)  # a rising price hurts a short maker
    if against >= trend_skip:
        return Opinion(SKIP, 0, min(1.0, 0.5 + 0.5 * (against / trend_skip - 1)),
                       f"trend {f.trend:+.5f} against the maker >= {trend_skip:.5f}")
    adjust = round(trend_rate_e9 * against + volatility_rate_e9 * f.volatility / volatility_skip)
    confidence = min(1.0, f.samples / samples_min) * 0.8
    return Opinion(QUOTE, adjust, confidence, f"trend {f.trend:+.5f}, volatility {f.volatility:.5f}")


def risk_manager(exposure_before_e6: int, exposure_after_e6: int, risk_limit_e6: int, drawdown_bps: int,
                 volatility: float, *, inventory_rate_e9: int, drawdown_warn_bps: int,
                 volatility_veto: float) -> Opinion:
    """Exposure against the limit, drawdown and volatility; the only sub-agent that may veto."""
    if abs(exposure_after_e6) > risk_limit_e6:
        return Opinion(SKIP, 0, 1.0, f"exposure {exposure_after_e6} beyond the limit {risk_limit_e6}", veto=True)
    if volatility >= volatility_veto:
        return Opinion(SKIP, 0, 1.0, f"volatility {volatility:.5f} >= veto {volatility_veto:.5f}", veto=True)
    adds = abs(exposure_after_e6) - abs(exposure_before_e6)
    adjust = round(inventory_rate_e9 * adds / risk_limit_e6)
    if adds > 0 and drawdown_bps >= drawdown_warn_bps:
        return Opinion(SKIP, 0, 0.9, f"drawdown {drawdown_bps} bps >= {drawdown_warn_bps}: no new risk")
    if adds <= 0:
        return Opinion(QUOTE, adjust, 0.9, "reduces exposure")
    used = abs(exposure_after_e6) / risk_limit_e6
    return Opinion(QUOTE, adjust, max(0.3, 0.9 - 0.6 * used), f"exposure after {used:.0%} of the limit")


def strategy_optimizer(quotes: int, fills: int, size_e6: int, fill_size_e6: float, *, fill_ratio_low: float,
                       fill_ratio_high: float, step_e9: int, size_multiple_max: float,
                       samples_min: int) -> Opinion:
    """Rate and size from its recent quotes (``quotes``) and how many filled (``fills``);
    ``fill_size_e6``: the mean size of its recent fills (0: none yet)."""
    confidence = min(1.0, quotes / samples_min) * 0.8 if quotes else 0.2
    if fill_size_e6 > 0 and size_e6 > size_multiple_max * fill_size_e6:
        return Opinion(SKIP, 0, max(0.5, confidence), f"size {size_e6} > {size_multiple_max}x its usual fill")
    if not quotes:
        return Opinion(QUOTE, 0, confidence, "no quotes yet")
    ratio = fills / quotes
    if ratio > fill_ratio_high:
        return Opinion(QUOTE, step_e9, confidence, f"fill ratio {ratio:.2f} high: ask more")
    if ratio < fill_ratio_low:
        return Opinion(QUOTE, -step_e9, confidence, f"fill ratio {ratio:.2f} low: ask less")
    return Opinion(QUOTE, 0, confidence, f"fill ratio {ratio:.2f} in range")


def execution_agent(remaining_ms: int, live_quotes: int, *, remaining_ms_min: int, live_quotes_max: int,
                    lifetime_ms: int) -> Opinion:
    """Timing: skip an RFQ about to expire or when too many quotes are live; the quote lifetime."""
    if remaining_ms < remaining_ms_min:
        return Opinion(SKIP, 0, 0.9, f"RFQ expires in {remaining_ms} ms < {remaining_ms_min}")
    if live_quotes >= live_quotes_max:
        return Opinion(SKIP, 0, 0.7, f"{live_quotes} live quotes >= {live_quotes_max}")
    valid_for_ms = max(1_000, min(lifetime_ms, remaining_ms))
    return Opinion(QUOTE, 0, 0.6, f"lifetime {valid_for_ms} ms", valid_for_ms=valid_for_ms)


def consensus(opinions: dict[str, Opinion], weights: dict[str, int] = WEIGHTS,
              threshold: float = THRESHOLD) -> Consensus:
    """Weighted vote: quote only when the quote side's weight × confidence is above
    ``threshold`` of the total and nobody vetoed."""
    votes = [Vote(name, weights[name], o.action, o.confidence, o.rate_adjust_e9, o.veto, o.reason)
             for name, o in opinions.items()]
    total = sum(v.weight * v.confidence for v in votes)
    quoting = [v for v in votes if v.action == QUOTE]
    yes = sum(v.weight * v.confidence for v in quoting)
    agreement = yes / total if total > 0 else 0.0
    vetoed_by = next((v.agent for v in votes if v.veto), None)
    adjust = round(sum(v.weight * v.confidence * v.rate_adjust_e9 for v in quoting) / yes) if yes > 0 else 0
    lifetime = max((opinions[v.agent].valid_for_ms for v in quoting), default=0)
    return Consensus(vetoed_by is None and agreement > threshold, agreement, adjust, vetoed_by, votes, lifetime)


def drawdown_bps(peak_e6: int, equity_e6: int) -> int:
    return 0 if peak_e6 <= 0 or equity_e6 >= peak_e6 else (peak_e6 - equity_e6) * 10_000 // peak_e6


def is_shock(last_return: float, volatility: float, *, shock_bps: int, shock_volatility: float) -> bool:
    return abs(last_return) * 10_000 >= shock_bps or volatility >= shock_volatility


# -- the strategy --------------------------------------------------------------------------------------

class SwarmMaker(BaseStrategy):
    """The swarm-consensus maker (module docstring). Every parameter is a keyword, so a
    tournament's ``--grid`` can sweep it (e.g. ``threshold=0.55,0.65,0.75``)."""

    def __init__(self, seed: int = 0, *, base_rate_e9: int = 1_000_000, jitter_e9: int = 100_000,
                 leverage: int = 5, risk_limit_e6: int = 200_000_000_000, capital_e6: int = 1_000_000_000_000,
                 threshold: float = THRESHOLD, weights: dict[str, int] | None = None,
                 trend_rate_e9: int = 200_000_000, volatility_rate_e9: int = 2_000_000,
                 volatility_skip: float = 0.01, volatility_veto: float = 0.02, samples_min: int = 16,
                 trend_skip: float = 0.002,
                 inventory_rate_e9: int = 4_000_000, drawdown_warn_bps: int = 1_000, drawdown_cap_bps: int = 1_500,
                 fill_ratio_low: float = 0.1, fill_ratio_high: float = 0.6, step_e9: int = 200_000,
                 size_multiple_max: float = 10.0, recent: int = 50, remaining_ms_min: int = 1_000,
                 live_quotes_max: int = 50, lifetime_ms: int = 10_000, shock_bps: int = 250,
                 shock_volatility: float = 0.03, halt_ms: int = 60_000, decisions_max: int = 100_000,
                 window: int = 64) -> None:
        super().__init__(seed)
        self.rng = random.Random(seed)
        self.base_rate_e9, self.jitter_e9, self.leverage = base_rate_e9, jitter_e9, leverage
        self.risk_limit_e6, self.capital_e6 = risk_limit_e6, capital_e6
        self.threshold, self.weights = threshold, dict(weights or WEIGHTS)
        self.analyzer = dict(trend_rate_e9=trend_rate_e9, volatility_rate_e9=volatility_rate_e9,
                             volatility_skip=volatility_skip, samples_min=samples_min, trend_skip=trend_skip)
        self.risk = dict(inventory_rate_e9=inventory_rate_e9, drawdown_warn_bps=drawdown_warn_bps,
                         volatility_veto=volatility_veto)
        self.optimizer = dict(fill_ratio_low=fill_ratio_low, fill_ratio_high=fill_ratio_high, step_e9=step_e9,
                              size_multiple_max=size_multiple_max, samples_min=samples_min)
        self.execution = dict(remaining_ms_min=remaining_ms_min, live_quotes_max=live_quotes_max,
                              lifetime_ms=lifetime_ms)
        self.drawdown_cap_bps = drawdown_cap_bps
        self.shock = dict(shock_bps=shock_bps, shock_volatility=shock_volatility)
        self.halt_ns = halt_ms * NS_PER_MS
        self.prices = PriceFeatures(window)
        self.book = AccountBook("", capital_e6)
        self.peak_e6 = capital_e6
        self.halted_until_ns = 0
        self.live_quotes: set[int] = set()
        self.cancels: list[int] = []
        self.recent_quotes: deque[int] = deque(maxlen=recent)  # rfq ids it quoted
        self.recent_fills: deque[int] = deque(maxlen=recent)  # sizes of its fills
        self.filled_rfqs: set[int] = set()
        self.decisions: deque[Decision] = deque(maxlen=decisions_max)
        self.counts: dict[str, int] = {}

    def on_start(self, config, agent: str) -> None:
        super().on_start(config, agent)
        self.book.agent = agent

    # -- the decision ------------------------------------------------------------------------------

    def _record(self, decision: Decision) -> None:
        self.decisions.append(decision)
        self.counts[decision.outcome] = self.counts.get(decision.outcome, 0) + 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("swarm %s rfq %d: %s (agreement %.2f) %s", self.agent[:8], decision.rfq_id, decision.outcome,
                      decision.agreement, "; ".join(f"{v.agent} {v.action} {v.confidence:.2f} {v.rate_adjust_e9:+d}"
                                                    f" ({v.reason})" for v in decision.votes))

    def opinions(self, rfq: RfqView, features: MarketFeatures, now_ns: int) -> dict[str, Opinion]:
        """The four sub-agents' opinions on ``rfq`` (state-dependent inputs gathered here)."""
        maker_sign = -1 if rfq.side == "long" else 1
        before = self.book.exposure_e6(rfq.market)
        after = before + maker_sign * rfq.size_e6
        quotes = len(self.recent_quotes)
        fills = sum(1 for rfq_id in self.recent_quotes if rfq_id in self.filled_rfqs)
        fill_size = sum(self.recent_fills) / len(self.recent_fills) if self.recent_fills else 0.0
        return {
            "market_analyzer": market_analyzer(features, maker_sign, **self.analyzer),
            "risk_manager": risk_manager(before, after, self.risk_limit_e6, self.drawdown_bps(), features.volatility,
                                         **self.risk),
            "strategy_optimizer": strategy_optimizer(quotes, fills, rfq.size_e6, fill_size, **self.optimizer),
            "execution_agent": execution_agent((rfq.expires_ns - now_ns) // NS_PER_MS, len(self.live_quotes),
                                               **self.execution),
        }

    def drawdown_bps(self) -> int:
        equity = self.book.equity_e6({m: p[-1] for m, p in self.prices.prices.items() if p})
        self.peak_e6 = max(self.peak_e6, equity)
        return drawdown_bps(self.peak_e6, equity)

    def on_rfq(self, rfq: RfqView, oracle_price_e8: int, now_ns: int) -> QuoteIntent | None:
        if oracle_price_e8 <= 0 or rfq.trader == self.agent:
            return None
        if now_ns < self.halted_until_ns:
            self._record(Decision(now_ns, rfq.rfq_id, rfq.market, "halted", 0.0, None, [],
                                  f"emergency stop until {self.halted_until_ns}"))
            return None
        drawdown = self.drawdown_bps()
        if drawdown > self.drawdown_cap_bps:
            self._record(Decision(now_ns, rfq.rfq_id, rfq.market, "drawdown", 0.0, None, [],
                                  f"drawdown {drawdown} bps > cap {self.drawdown_cap_bps}"))
            return None
        features = self.prices.features(rfq.market)
        if features.samples == 0:
            features = features._replace(price_e8=oracle_price_e8, samples=1)
        vote = consensus(self.opinions(rfq, features, now_ns), self.weights, self.threshold)
        if vote.vetoed_by is not None or not vote.act:
            self._record(Decision(now_ns, rfq.rfq_id, rfq.market, "veto" if vote.vetoed_by else "skip",
                                  vote.agreement, None, vote.votes))
            return None
        jitter = self.rng.randint(-self.jitter_e9, self.jitter_e9) if self.jitter_e9 else 0
        rate_e9 = max(-RATE_E9_MAX, min(RATE_E9_MAX, self.base_rate_e9 + vote.rate_adjust_e9 + jitter))
        if rate_e9 > rfq.max_funding_rate_e9:
            self._record(Decision(now_ns, rfq.rfq_id, rfq.market, "above_max", vote.agreement, rate_e9, vote.votes))
            return None
        self._record(Decision(now_ns, rfq.rfq_id, rfq.market, "quote", vote.agreement, rate_e9, vote.votes))
        self.recent_quotes.append(rfq.rfq_id)
        return QuoteIntent(rate_e9, self.collateral_e6(rfq), vote.valid_for_ms)

    def collateral_e6(self, rfq: RfqView) -> int:
        leverage_max = self.config.markets[rfq.market].leverage_max if self.config else self.leverage
        return -(-rfq.size_e6 // max(1, min(self.leverage, leverage_max)))

    # -- what it learns ------------------------------------------------------------------------------

    def on_fill(self, position: PositionView, now_ns: int) -> None:
        self.recent_fills.append(position.size_e6)

    def on_event(self, event, now_ns: int) -> None:
        self.book.apply(event)
        kind = type(event)
        if kind is ev.OracleUpdated:
            self.prices.observe(event.market, event.price_e8)
            f = self.prices.features(event.market)
            if f.samples >= 2 and is_shock(f.last_return, f.volatility, **self.shock):
                self.emergency_stop(event.market, f, now_ns)
        elif kind is ev.QuoteSubmitted and event.maker == self.agent:
            self.live_quotes.add(event.quote_id)
        elif kind is ev.QuoteReleased and event.maker == self.agent:
            self.live_quotes.discard(event.quote_id)
        elif kind is ev.PositionOpened:
            if self.agent in (event.long_agent, event.short_agent):
                self.filled_rfqs.add(event.rfq_id)
                self.live_quotes.discard(event.quote_id)
            for quote_id in event.released_quote_ids:
                self.live_quotes.discard(quote_id)

    def emergency_stop(self, market: int, f: MarketFeatures, now_ns: int) -> None:
        """Cancel every live quote and halt for ``halt_ms``."""
        self.halted_until_ns = max(self.halted_until_ns, now_ns + self.halt_ns)
        self.cancels.extend(sorted(self.live_quotes))
        self._record(Decision(now_ns, 0, market, "emergency_stop", 0.0, None, [],
                              f"return {f.last_return * 1e4:+.0f} bps, volatility {f.volatility:.5f}: "
                              f"cancel {len(self.live_quotes)} quotes, halt until {self.halted_until_ns}"))

    def take_cancels(self) -> list[int]:
        """Quote ids to cancel now (the live agent sends ``CancelQuote`` for each)."""
        out, self.cancels = self.cancels, []
        return out

    def explain(self) -> dict:
        """A summary for backtest/tournament output: decisions by outcome and mean agreement."""
        quoted = [d.agreement for d in self.decisions if d.votes]
        return {"decisions": dict(sorted(self.counts.items())),
                "mean_agreement": round(sum(quoted) / len(quoted), 4) if quoted else None,
                "emergency_stops": self.counts.get("emergency_stop", 0)}
