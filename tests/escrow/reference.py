"""The engine's money rules (DESIGN §3-§4, engine/risk/*), restated for the escrow tests:
what the venue would send, and what the program must end up holding."""

from __future__ import annotations

from fractions import Fraction

BPS = 10_000


def div_half_even(n: int, d: int) -> int:
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q % 2 == 1):
        q += 1
    return q


def pnl_long_e6(size_e6: int, entry_e8: int, price_e8: int) -> int:
    """As the engine computes it (``engine.risk.formulas.pnl_long_e6``) and the program's
    ``pnl_at``: the exact quotient, rounded half to even (the clamp never applies here)."""
    return pnl_exact(size_e6, entry_e8, price_e8)


def pnl_exact(size_e6: int, entry_e8: int, price_e8: int) -> int:
    """The exact rational, rounded half to even (what the program computes itself)."""
    f = Fraction(size_e6 * (price_e8 - entry_e8), entry_e8)
    return round(f)


def below_maintenance(margin: int, pnl_side: int, margin_open: int, size_open: int, size: int, entry: int,
                      price: int, maintenance_bps: int) -> bool:
    equity = margin + pnl_side
    return Fraction(equity) < Fraction(margin_open, size_open) * Fraction(maintenance_bps, BPS) * Fraction(
        size * price, entry)


class PositionModel:
    """One position's margins through funding, partial closes and liquidation."""

    def __init__(self, size_e6, entry_e8, margin_long, margin_short):
        self.size = size_e6
        self.size_open = size_e6
        self.entry = entry_e8
        self.ml, self.ms = margin_long, margin_short
        self.mol, self.mos = margin_long, margin_short

    def funding(self, long_to_short: int) -> None:
        self.ml -= long_to_short
        self.ms += long_to_short

    def close_out(self, pnl: int, insurance: int) -> tuple[int, int]:
        """Returns (covered by insurance, bad debt)."""
        owed = abs(pnl)
        if pnl >= 0:
            paid = min(owed, self.ms)
            covered = min(owed - paid, insurance)
            self.ms -= paid
            self.ml += paid + covered
        else:
            paid = min(owed, self.ml)
            covered = min(owed - paid, insurance)
            self.ml -= paid
            self.ms += paid + covered
        return covered, owed - paid - covered

    def close(self, fraction_bps: int, price_e8: int, insurance: int = 0):
        """Returns (closed_size, pnl, back_long, back_short)."""
        full = fraction_bps == BPS
        closed = self.size if full else div_half_even(self.size * fraction_bps, BPS)
        pnl = pnl_long_e6(closed, self.entry, price_e8)
        self.close_out(pnl, insurance)
        if full:
            back_l, back_s = self.ml, self.ms
        else:
            back_l, back_s = div_half_even(self.ml * fraction_bps, BPS), div_half_even(self.ms * fraction_bps, BPS)
        self.ml -= back_l
        self.ms -= back_s
        self.size -= closed
        return closed, pnl, back_l, back_s

    def liquidate(self, side: str, price_e8: int, reward_bps: int = 500, insurance: int = 0):
        """Returns (pnl, reward, back_long, back_short)."""
        pnl = pnl_long_e6(self.size, self.entry, price_e8)
        self.close_out(pnl, insurance)
        left = self.ml if side == "long" else self.ms
        reward = div_half_even(max(left, 0) * reward_bps, BPS)
        if side == "long":
            self.ml -= reward
        else:
            self.ms -= reward
        back_l, back_s = self.ml, self.ms
        self.ml = self.ms = 0
        self.size = 0
        return pnl, reward, back_l, back_s
