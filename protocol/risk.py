"""A per-agent risk view: exposure per market, margin usage, distance to liquidation and a
risk score — one pure function that both sides compute the same way.

It lives in ``protocol`` because both ends need it and DESIGN §2 lets neither import the
other: the venue publishes it at ``GET /agents/{agent}/risk`` (``adapters/gateway``, from
``engine.views``) and an agent computes it from its own streams (``agents/risk.py``).

Inputs are the agent's balances and its open positions as ``Holding``s (its side of each).
Exposure is notional at the last oracle price: ``size × P / entry`` (the size in USDC at
entry, marked to P), long positive. Per market: net (long − short) and gross (long + short).

- ``margin_usage_bps``: locked (held + position margins) over equity.
- ``maintenance_usage_bps``: the maintenance requirement of every side over equity
  (10 000: at liquidation on a portfolio basis; each position is liquidated on its own).
- ``liquidation_distance_bps``: per position, how far the price may move against the side
  before it is liquidatable (``engine.risk.formulas``' liquidation prices); the nearest one
  is the agent's. None without positions or prices.
- ``leverage_bps``: gross exposure over equity.
- ``score`` 0..100, higher is riskier: ``0.5 × proximity + 0.3 × maintenance + 0.2 ×
  leverage``, each 0..100: proximity 100 at a liquidation distance of 0 falling linearly to 0
  at ``DISTANCE_SAFE_BPS`` (20%); maintenance = maintenance usage (capped at 100%);
  leverage = gross / equity over ``LEVERAGE_FULL`` (20×). ``level``: low < 25 ≤ medium < 50 ≤
  high < 75 ≤ critical.

Money stays integer; ratios are integer bps (rounded half-even once); the score is an int.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from engine.markets import EngineConfig
from engine.risk import formulas
from engine.units import BPS_SCALE

DISTANCE_SAFE_BPS = 2_000
LEVERAGE_FULL = 20
LEVELS = ((25, "low"), (50, "medium"), (75, "high"))


class Holding(NamedTuple):
    """One side of one open position, as its owner sees it."""

    position_id: int
    market: int
    sign: int  # +1 the agent is long, -1 short
    size_e6: int  # still open
    size_open_e6: int  # at open
    entry_price_e8: int
    margin_e6: int  # the agent's side's margin now
    margin_open_e6: int  # that margin at open (im = margin_open / size_open)


class PositionRisk(msgspec.Struct, frozen=True):
    position_id: int
    market: int
    side: str
    exposure_e6: int  # signed notional at the last price
    unrealized_pnl_e6: int
    margin_e6: int
    maintenance_e6: int
    liquidation_price_e8: int  # 0: never (a long whose margin covers its size)
    liquidation_distance_bps: int | None  # None: no price


class MarketRisk(msgspec.Struct, frozen=True):
    market: int
    symbol: str
    price_e8: int
    positions: int
    net_exposure_e6: int
    gross_exposure_e6: int
    unrealized_pnl_e6: int
    margin_e6: int
    liquidation_distance_bps: int | None  # the nearest of the market's positions


class RiskView(msgspec.Struct, frozen=True):
    agent: str
    equity_e6: int  # free + held + margins + unrealized PnL
    free_e6: int
    held_e6: int
    margin_e6: int
    unrealized_pnl_e6: int
    net_exposure_e6: int  # sum of the markets' net exposures
    gross_exposure_e6: int
    margin_usage_bps: int
    maintenance_e6: int
    maintenance_usage_bps: int
    leverage_bps: int
    liquidation_distance_bps: int | None
    score: int
    level: str
    markets: list[MarketRisk]
    positions: list[PositionRisk]


def _ratio_bps(numerator: int | float, denominator: int | float) -> int:
    if denominator <= 0:
        return BPS_SCALE * 100 if numerator > 0 else 0  # nothing left to lose: saturate
    return round(numerator * BPS_SCALE / denominator)


def position_risk(h: Holding, price_e8: int, maintenance_bps: int) -> PositionRisk:
    """One side's exposure, PnL, maintenance and distance to liquidation at ``price_e8``."""
    side = "long" if h.sign > 0 else "short"
    if price_e8 <= 0:
        return PositionRisk(h.position_id, h.market, side, h.sign * h.size_e6, 0, h.margin_e6, 0, 0, None)
    exposure = round(h.size_e6 * price_e8 / h.entry_price_e8)
    pnl = h.sign * int(formulas.pnl_long_e6(h.size_e6, h.entry_price_e8, price_e8))
    maintenance = round(formulas.requirement_e6(h.margin_open_e6, h.size_open_e6, h.size_e6, h.entry_price_e8,
                                                price_e8, maintenance_bps))
    if h.sign > 0:
        liq = formulas.liquidation_price_long_e8(h.margin_e6, h.margin_open_e6, h.size_open_e6, h.size_e6,
                                                 h.entry_price_e8, maintenance_bps)
        distance = (price_e8 - liq) / price_e8 if liq > 0 else 1.0
    else:
        liq = formulas.liquidation_price_short_e8(h.margin_e6, h.margin_open_e6, h.size_open_e6, h.size_e6,
                                                  h.entry_price_e8, maintenance_bps)
        distance = (liq - price_e8) / price_e8
    return PositionRisk(h.position_id, h.market, side, h.sign * exposure, pnl, h.margin_e6, maintenance,
                        round(liq), round(max(-1.0, min(distance, 1.0)) * BPS_SCALE))


def score_of(distance_bps: int | None, maintenance_usage_bps: int, leverage_bps: int) -> int:
    """The 0..100 risk score (module docstring)."""
    proximity = 0.0 if distance_bps is None else 100.0 * (1.0 - max(0, min(distance_bps, DISTANCE_SAFE_BPS))
                                                            / DISTANCE_SAFE_BPS)
    maintenance = min(100.0, maintenance_usage_bps / 100.0)
    leverage = min(100.0, leverage_bps / (LEVERAGE_FULL * 100.0))
    return round(0.5 * proximity + 0.3 * maintenance + 0.2 * leverage)


def level_of(score: int) -> str:
    for bound, name in LEVELS:
        if score < bound:
            return name
    return "critical"


def risk_view(agent: str, free_e6: int, held_e6: int, holdings: list[Holding], prices_e8: dict[int, int],
              config: EngineConfig) -> RiskView:
    """The risk view of ``agent`` with these balances and holdings at these prices."""
    by_market: dict[int, list[PositionRisk]] = {}
    for h in sorted(holdings, key=lambda h: h.position_id):
        market = config.markets[h.market]
        by_market.setdefault(h.market, []).append(
            position_risk(h, prices_e8.get(h.market, 0), market.maintenance_of_initial_bps))
    markets, positions = [], []
    for market_id in sorted(by_market):
        rows = by_market[market_id]
        positions.extend(rows)
        distances = [r.liquidation_distance_bps for r in rows if r.liquidation_distance_bps is not None]
        markets.append(MarketRisk(
            market_id, config.markets[market_id].symbol, prices_e8.get(market_id, 0), len(rows),
            sum(r.exposure_e6 for r in rows), sum(abs(r.exposure_e6) for r in rows),
            sum(r.unrealized_pnl_e6 for r in rows), sum(r.margin_e6 for r in rows),
            min(distances) if distances else None))
    margin = sum(r.margin_e6 for r in positions)
    pnl = sum(r.unrealized_pnl_e6 for r in positions)
    equity = free_e6 + held_e6 + margin + pnl
    gross = sum(m.gross_exposure_e6 for m in markets)
    maintenance = sum(r.maintenance_e6 for r in positions)
    distances = [m.liquidation_distance_bps for m in markets if m.liquidation_distance_bps is not None]
    distance = min(distances) if distances else None
    maintenance_usage = _ratio_bps(maintenance, equity)
    leverage = _ratio_bps(gross, equity)
    score = score_of(distance, maintenance_usage, leverage)
    return RiskView(agent, equity, free_e6, held_e6, margin, pnl, sum(m.net_exposure_e6 for m in markets), gross,
                    _ratio_bps(held_e6 + margin, equity), maintenance, maintenance_usage, leverage, distance,
                    score, level_of(score), markets, positions)
