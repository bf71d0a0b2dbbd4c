"""Every numba kernel against its pure-Python twin, bit for bit, on generated columns
including edge values (min/max sizes and prices, zero and drained margins)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.kernels import reference
from engine.kernels.funding_nb import settle_funding_nb
from engine.kernels.sweep_nb import band_of_rows_nb, position_bands_nb, sweep_market_nb, sweep_outputs, watch_market_nb
from engine.risk import formulas
from engine.state import OPEN
from engine.units import FUNDING_INTERVAL_NS, PRICE_E8_MAX, RATE_E9_MAX, SIZE_E6_MAX

N_MAX = 40
sizes = st.integers(1, SIZE_E6_MAX) | st.sampled_from([1, 10_000_000, SIZE_E6_MAX])
prices = st.integers(1, PRICE_E8_MAX) | st.sampled_from([1, 10**13, PRICE_E8_MAX])
rates = st.integers(-RATE_E9_MAX, RATE_E9_MAX) | st.sampled_from([0, 1, -1, RATE_E9_MAX, -RATE_E9_MAX])


@st.composite
def positions(draw):
    n = draw(st.integers(0, N_MAX))
    size_open = np.array(draw(st.lists(sizes, min_size=n, max_size=n)), np.int64)
    size = np.array([draw(st.integers(1, int(s))) for s in size_open], np.int64)
    def margins():
        return np.array([draw(st.integers(0, int(s)) | st.just(0)) for s in size_open], np.int64)
    return {
        "status": np.array(draw(st.lists(st.sampled_from([0, 1, 1, 1]), min_size=n, max_size=n)), np.int8),
        "market": np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), np.int64),
        "size_e6": size, "size_open_e6": size_open,
        "entry_price_e8": np.array(draw(st.lists(prices, min_size=n, max_size=n)), np.int64),
        "margin_long_e6": margins(), "margin_short_e6": margins(),
        "margin_open_long_e6": np.maximum(margins(), 1), "margin_open_short_e6": np.maximum(margins(), 1),
        "rate_e9": np.array(draw(st.lists(rates, min_size=n, max_size=n)), np.int64),
        "taker_is_long": np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.int8),
        "last_funding_ns": np.array(draw(st.lists(st.integers(0, 2 * FUNDING_INTERVAL_NS), min_size=n, max_size=n)),
                                    np.int64),
        "flagged_ns": np.array(draw(st.lists(st.sampled_from([0, 0, 5]), min_size=n, max_size=n)), np.int64),
        "n": n,
    }


def _sweep_args(p):
    return (p["status"], p["market"], p["size_e6"], p["size_open_e6"], p["entry_price_e8"], p["margin_long_e6"],
            p["margin_short_e6"], p["margin_open_long_e6"], p["margin_open_short_e6"], p["n"])


@settings(max_examples=120, deadline=None)
@given(p=positions(), market=st.integers(0, 2), price_e8=prices, maintenance_bps=st.integers(1, 10_000))
def test_sweep_matches_twin(p, market, price_e8, maintenance_bps):
    fast, slow = sweep_outputs(p["n"]), sweep_outputs(p["n"])
    count_fast = sweep_market_nb(*_sweep_args(p), market, price_e8, maintenance_bps, *fast)
    count_slow = reference.sweep_market(*_sweep_args(p), market, price_e8, maintenance_bps, *slow)
    assert count_fast == count_slow
    for a, b in zip(fast, slow):
        assert a.tobytes() == b.tobytes()  # bit for bit, floats included

    # The watch agrees with the sweep's verdict (flagged = liquidatable and not yet flagged)
    # whether it tests every row exactly or trusts the rows' own safe bands.
    in_market = (p["status"] == 1) & (p["market"] == market)
    liquidatable = in_market & (fast[4] != 0)
    for bands_hold, (low, high) in ((False, _empty_bands(p["n"])), (True, _position_bands(p, maintenance_bps))):
        flags = [np.zeros(p["n"], np.int64) for _ in range(4)]
        args = (*_sweep_args(p)[:-1], p["flagged_ns"], low, high, bands_hold, p["n"], market, price_e8,
                maintenance_bps)
        got = watch_market_nb(*args, flags[0], flags[1])
        want = reference.watch_market(*args, flags[2], flags[3])
        assert got == want
        assert flags[0][: got[0]].tolist() == flags[2][: want[0]].tolist()
        assert flags[1][: got[1]].tolist() == flags[3][: want[1]].tolist()
        assert flags[0][: got[0]].tolist() == np.flatnonzero(liquidatable & (p["flagged_ns"] == 0)).tolist()
        assert flags[1][: got[1]].tolist() == np.flatnonzero(
            in_market & ~liquidatable & (p["flagged_ns"] != 0)).tolist()


def _empty_bands(n):
    return np.full(n, math.inf), np.full(n, -math.inf)


def _position_bands(p, maintenance_bps, kernel=position_bands_nb):
    low, high = _empty_bands(p["n"])
    kernel(*_sweep_args(p), np.full(3, maintenance_bps, np.int64), low, high)
    return low, high


@settings(max_examples=120, deadline=None)
@given(p=positions(), boundary_ns=st.integers(1, 3 * FUNDING_INTERVAL_NS))
def test_funding_matches_twin(p, boundary_ns):
    args = (p["status"], p["size_e6"], p["rate_e9"], p["taker_is_long"], p["margin_long_e6"], p["margin_short_e6"],
            p["last_funding_ns"], p["n"], boundary_ns)
    out_fast = (np.zeros(p["n"], np.int64), np.zeros(p["n"], np.int64))
    out_slow = (np.zeros(p["n"], np.int64), np.zeros(p["n"], np.int64))
    got = settle_funding_nb(*args, *out_fast)
    want = reference.settle_funding(*args, *out_slow)
    assert got == want
    assert out_fast[0].tolist() == out_slow[0].tolist() and out_fast[1].tolist() == out_slow[1].tolist()
    # No payer ever pays more than its margin.
    for row, amount in zip(out_fast[0][: got[0]], out_fast[1][: got[0]]):
        assert -p["margin_short_e6"][row] <= amount <= p["margin_long_e6"][row]


@settings(max_examples=120, deadline=None)
@given(p=positions(), market=st.integers(0, 2), maintenance_bps=st.integers(1, 10_000))
def test_position_bands_match_twin_and_make_the_market_band(p, market, maintenance_bps):
    """Each row's stored band, bit for bit as its twin's; their intersection over a market is
    the intersection of ``formulas.safe_band_e8`` over the market's open rows."""
    fast, slow = _position_bands(p, maintenance_bps), _position_bands(p, maintenance_bps, reference.position_bands)
    assert fast[0].tobytes() == slow[0].tobytes() and fast[1].tobytes() == slow[1].tobytes()
    got = band_of_rows_nb(p["status"], p["market"], *fast, p["n"], market)
    assert got == reference.band_of_rows(p["status"], p["market"], *fast, p["n"], market)
    want_low, want_high = -math.inf, math.inf
    for row in range(p["n"]):
        if p["status"][row] == OPEN and p["market"][row] == market:
            low, high = formulas.safe_band_e8(*(int(p[name][row]) for name in (
                "margin_long_e6", "margin_short_e6", "margin_open_long_e6", "margin_open_short_e6", "size_open_e6",
                "size_e6", "entry_price_e8")), maintenance_bps)
            want_low, want_high = max(want_low, low), min(want_high, high)
    assert np.float64(got[0]).tobytes() == np.float64(want_low).tobytes()
    assert np.float64(got[1]).tobytes() == np.float64(want_high).tobytes()


@settings(max_examples=200, deadline=None)
@given(p=positions(), market=st.integers(0, 2), maintenance_bps=st.integers(1, 10_000), data=st.data())
def test_no_position_is_liquidatable_inside_the_market_band(p, market, maintenance_bps, data):
    """What lets an oracle update skip its sweep: inside the band, the sweep flags nothing —
    at its very edges too."""
    low, high = band_of_rows_nb(p["status"], p["market"], *_position_bands(p, maintenance_bps), p["n"], market)
    first = 1 if low < 1 else math.floor(low) + 1
    last = PRICE_E8_MAX if high > PRICE_E8_MAX else math.ceil(high) - 1
    if first > last:
        return
    price_e8 = data.draw(st.sampled_from([first, last]) | st.integers(first, last))
    out = sweep_outputs(p["n"])
    assert sweep_market_nb(*_sweep_args(p), market, price_e8, maintenance_bps, *out) == 0


def test_sweep_of_the_worked_example():
    """The liquidation price of a 10x long at 100 000 with 5% maintenance is 94 736.84..."""
    p = {"status": np.array([1], np.int8), "market": np.array([0], np.int64),
         "size_e6": np.array([100_000_000], np.int64), "size_open_e6": np.array([100_000_000], np.int64),
         "entry_price_e8": np.array([100_000 * 10**8], np.int64),
         "margin_long_e6": np.array([10_000_000], np.int64), "margin_short_e6": np.array([100_000_000], np.int64),
         "margin_open_long_e6": np.array([10_000_000], np.int64),
         "margin_open_short_e6": np.array([100_000_000], np.int64), "n": 1}
    for price_usd, liquidatable in ((94_800, 0), (94_700, 1)):
        out = sweep_outputs(1)
        assert sweep_market_nb(*_sweep_args(p), 0, price_usd * 10**8, 5_000, *out) == liquidatable
    assert abs(out[2][0] / 1e8 - 94_736.842105) < 1e-5


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, N_MAX), data=st.data(), maintenance_bps=st.sampled_from([1, 5_000, 10_000]))
def test_kernels_at_the_exact_threshold_match_their_twins(n, data, maintenance_bps):
    """Positions exactly at maintenance (± 1 micro-USDC) at the price: float64 cannot tell,
    so the kernels' second, exact pass decides — and agrees with the twins and the rule."""
    size = np.array(data.draw(st.lists(st.integers(1, 10**6), min_size=n, max_size=n)), np.int64) * 10_000
    margin_open = np.array(data.draw(st.lists(st.integers(1, 10**5), min_size=n, max_size=n)), np.int64) * 10_000
    margin_open = np.minimum(margin_open, size)
    requirement = margin_open * maintenance_bps // 10_000  # exact: margin_open is in whole 10 000s
    delta = np.array(data.draw(st.lists(st.sampled_from([-1, 0, 0, 1]), min_size=n, max_size=n)), np.int64)
    entry = data.draw(prices)
    p = {"status": np.ones(n, np.int8), "market": np.zeros(n, np.int64), "size_e6": size, "size_open_e6": size.copy(),
         "entry_price_e8": np.full(n, entry, np.int64), "margin_long_e6": np.maximum(requirement + delta, 0),
         "margin_short_e6": size.copy(), "margin_open_long_e6": margin_open, "margin_open_short_e6": size.copy(),
         "flagged_ns": np.array(data.draw(st.lists(st.sampled_from([0, 5]), min_size=n, max_size=n)), np.int64),
         "n": n}
    fast, slow = sweep_outputs(n), sweep_outputs(n)
    count = sweep_market_nb(*_sweep_args(p), 0, entry, maintenance_bps, *fast)
    assert count == reference.sweep_market(*_sweep_args(p), 0, entry, maintenance_bps, *slow)
    for a, b in zip(fast, slow):
        assert a.tobytes() == b.tobytes()
    below = p["margin_long_e6"] < requirement  # at the entry price the PnL is 0: the rule, exactly
    assert fast[4].tolist() == np.where(below, 1, 0).tolist()
    flags = [np.zeros(n, np.int64) for _ in range(4)]
    args = (*_sweep_args(p)[:-1], p["flagged_ns"], *_position_bands(p, maintenance_bps), True, n, 0, entry,
            maintenance_bps)
    got, want = watch_market_nb(*args, flags[0], flags[1]), reference.watch_market(*args, flags[2], flags[3])
    assert got == want
    assert flags[0][: got[0]].tolist() == flags[2][: want[0]].tolist() == np.flatnonzero(
        below & (p["flagged_ns"] == 0)).tolist()
    assert flags[1][: got[1]].tolist() == flags[3][: want[1]].tolist()
