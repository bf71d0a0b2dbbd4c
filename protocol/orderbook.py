"""Order-book analysis: pure functions over ``[[price, qty], ...]`` levels, best first.

Prices and quantities are floats as ccxt returns them (exchange data at the edge, never venue
money). Costs are in basis points of the mid. ``side`` is the hedger's: ``buy`` walks the
asks, ``sell`` the bids. Used to choose the exchange for each hedge order and exported to
``/metrics`` (see ``Hedger.metrics``), and by the arbitrage maker to price a hedge's cost
(``agents/arbitrage.py``): it lives in ``protocol`` so that the hedger and agents share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Levels = list[list[float]]


def mid(bids: Levels, asks: Levels) -> float | None:
    """The mid price, or None for a one-sided or empty book."""
    if not bids or not asks:
        return None
    return (bids[0][0] + asks[0][0]) / 2


def spread_bps(bids: Levels, asks: Levels) -> float:
    """Best ask minus best bid over the mid, in bps (inf for a one-sided book)."""
    m = mid(bids, asks)
    return math.inf if m is None else (asks[0][0] - bids[0][0]) / m * 1e4


@dataclass(frozen=True)
class Walk:
    """What taking ``size`` from one side would do."""

    filled: float  # base units available up to the size (and the price bound)
    average: float  # volume-weighted price of what fills (0 if nothing)
    worst: float  # the last level touched (0 if nothing)


def walk(levels: Levels, size: float, bound: float | None = None, side: str = "buy") -> Walk:
    """Take up to ``size`` from ``levels`` (the opposite side), not past ``bound``."""
    filled = notional = worst = 0.0
    for price, qty in levels:
        if filled >= size:
            break
        if bound is not None and ((side == "buy" and price > bound) or (side == "sell" and price < bound)):
            break
        take = min(qty, size - filled)
        filled += take
        notional += take * price
        worst = price
    return Walk(filled, notional / filled if filled else 0.0, worst)


def depth_to(levels: Levels, size: float) -> float:
    """How far from the best price (in price units) one must go to fill ``size``; inf if too deep."""
    w = walk(levels, size)
    return abs(w.worst - levels[0][0]) if levels and w.filled >= size else math.inf


def price_impact_bps(bids: Levels, asks: Levels, side: str, size: float) -> float:
    """Average fill price of ``size`` against the best price, in bps of the mid; inf if too deep."""
    levels = asks if side == "buy" else bids
    m = mid(bids, asks)
    w = walk(levels, size, side=side)
    if m is None or w.filled < size:
        return math.inf
    return abs(w.average - levels[0][0]) / m * 1e4


def hedge_cost_bps(bids: Levels, asks: Levels, side: str, size: float, fee_bps: float) -> float:
    """All-in cost of hedging ``size`` now: half the spread + impact + taker fee, bps of mid."""
    impact = price_impact_bps(bids, asks, side, size)
    return spread_bps(bids, asks) / 2 + impact + fee_bps


def choose(costs: dict[str, float]) -> str | None:
    """The exchange with the lowest finite cost (ties: the first named), or None."""
    finite = [(cost, name) for name, cost in costs.items() if math.isfinite(cost)]
    if finite:
        return min(finite)[1]
    return next(iter(costs), None)  # nothing deep enough anywhere: the first healthy one, for a partial fill
