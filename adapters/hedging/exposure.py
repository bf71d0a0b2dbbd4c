"""Hedged makers' net exposure per market, from journal events (pure; no I/O).

A position of ``size_e6`` (USDC notional at entry) opened at ``entry_price_e8`` carries
``size_e6 * 10**11 / entry_price_e8`` nano-units of base (``qty_e9``): the engine's PnL is
linear in price (``size * (price - entry) / entry``), exactly a linear perp of that base
quantity, so that is the quantity to hedge. Long adds, short subtracts. Partial closes keep
the remaining size at the same entry; a liquidation ends the position.

Only positions where a hedged maker is a side are tracked (``POSITIONS_MAX`` of them, a hard
limit: beyond it the projection stops and says so rather than hedge from a wrong book).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine import events as ev
from engine.units import div_half_even

POSITIONS_MAX = 1_000_000  # tracked positions of hedged makers; ~100 B each


def qty_e9(size_e6: int, entry_price_e8: int) -> int:
    """Base quantity (1e-9 units) of ``size_e6`` USDC notional at ``entry_price_e8``."""
    assert entry_price_e8 > 0, "an open position always has a positive entry price"
    return div_half_even(size_e6 * 10**11, entry_price_e8)


class ExposureLimit(Exception):
    """More positions of hedged makers than ``POSITIONS_MAX``."""


@dataclass
class Tracked:
    market: int
    long_agent: str
    short_agent: str
    size_e6: int
    entry_price_e8: int


@dataclass
class Exposure:
    """Net ``qty_e9`` per (maker, market) and the seq of the event that last changed it."""

    makers: frozenset[str]
    positions: dict[int, Tracked] = field(default_factory=dict)
    net_e9: dict[tuple[str, int], int] = field(default_factory=dict)
    changed_seq: dict[tuple[str, int], int] = field(default_factory=dict)
    last_price_e8: dict[int, int] = field(default_factory=dict)  # last oracle price per market

    def apply(self, event) -> list[tuple[str, int]]:
        """Apply one event; return the (maker, market) keys whose exposure it changed."""
        kind = type(event)
        if kind is ev.PositionOpened:
            sides = [a for a in (event.long_agent, event.short_agent) if a in self.makers]
            if not sides:
                return []
            if len(self.positions) >= POSITIONS_MAX:
                raise ExposureLimit(f"more than {POSITIONS_MAX} open positions of hedged makers")
            self.positions[event.position_id] = Tracked(event.market, event.long_agent, event.short_agent,
                                                        event.size_e6, event.entry_price_e8)
            return self._move(event.position_id, event.size_e6, event.seq)
        if kind is ev.PositionClosed:
            if event.position_id not in self.positions:
                return []
            return self._move(event.position_id, -event.closed_size_e6, event.seq)
        if kind is ev.PositionLiquidated:
            tracked = self.positions.get(event.position_id)
            if tracked is None:
                return []
            return self._move(event.position_id, -tracked.size_e6, event.seq)
        if kind is ev.OracleUpdated:
            self.last_price_e8[event.market] = event.price_e8
        return []

    def _move(self, position_id: int, delta_size_e6: int, seq: int) -> list[tuple[str, int]]:
        tracked = self.positions[position_id]
        before = qty_e9(tracked.size_e6, tracked.entry_price_e8)
        tracked.size_e6 += delta_size_e6
        assert tracked.size_e6 >= 0, f"position {position_id} closed beyond its size"
        after = qty_e9(tracked.size_e6, tracked.entry_price_e8)
        if tracked.size_e6 == 0:
            del self.positions[position_id]
        keys = []
        for agent, sign in ((tracked.long_agent, 1), (tracked.short_agent, -1)):
            if agent in self.makers:
                key = (agent, tracked.market)
                self.net_e9[key] = self.net_e9.get(key, 0) + sign * (after - before)
                self.changed_seq[key] = seq
                keys.append(key)
        return keys

    # -- durable form (the hedger's checkpoint) ------------------------------------------
    def to_dict(self) -> dict:
        return {
            "positions": {str(k): [t.market, t.long_agent, t.short_agent, t.size_e6, t.entry_price_e8]
                          for k, t in self.positions.items()},
            "net_e9": [[m, k, v] for (m, k), v in self.net_e9.items()],
            "changed_seq": [[m, k, v] for (m, k), v in self.changed_seq.items()],
            "last_price_e8": {str(k): v for k, v in self.last_price_e8.items()},
        }

    @classmethod
    def from_dict(cls, makers: frozenset[str], data: dict) -> Exposure:
        exposure = cls(makers)
        exposure.positions = {int(k): Tracked(*v) for k, v in data["positions"].items()}
        exposure.net_e9 = {(m, k): v for m, k, v in data["net_e9"]}
        exposure.changed_seq = {(m, k): v for m, k, v in data["changed_seq"]}
        exposure.last_price_e8 = {int(k): v for k, v in data["last_price_e8"].items()}
        return exposure
