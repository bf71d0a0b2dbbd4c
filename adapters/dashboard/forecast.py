"""Short-horizon forecasts, with confidence bands, of each market's price volatility and of
the funding rates negotiated on it — **estimates**, said so wherever they are shown.

The model is statsmodels' ETS (``ETSModel``: simple exponential smoothing with additive
errors, fitted by maximum likelihood), whose prediction intervals are analytic:

- volatility: the oracle prices are sampled on a grid of ``VOL_BUCKET_NS`` (the last price in
  each bucket); the absolute log return of each bucket × √(π/2) is an unbiased one-bucket σ
  estimate for normal returns; ETS forecasts it ``VOL_HORIZON_BUCKETS`` ahead;
- funding: the rates of the market's fills, in fill order; ETS forecasts the next
  ``RATE_HORIZON_FILLS`` fills' rate.

Pure functions of plain lists; ``service`` runs them on a bounded background worker.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import msgspec

VOL_BUCKET_NS = 5_000_000_000  # price sampling grid for volatility: 5 s
VOL_HORIZON_BUCKETS = 12  # forecast one minute ahead
RATE_HORIZON_FILLS = 10
FORECAST_INPUT_MAX = 240  # points fitted, the newest: a fit stays in the tens of ms
FORECAST_SAMPLES_MIN = 12  # fewer: no forecast ("not enough data")
BAND_LEVEL = 0.80  # the band's coverage
ABS_RETURN_TO_SIGMA = math.sqrt(math.pi / 2)


class Forecast(msgspec.Struct, frozen=True, gc=False):
    """``mean[k]``, ``lower[k]``, ``upper[k]``: step ``k + 1`` ahead; ``level``: the band's coverage."""

    what: str  # volatility_bps (σ of a 5 s log return, in bps) | funding_rate (fraction per 8h)
    step: str  # what one step ahead is: "5s" or "fill"
    level: float
    mean: list[float]
    lower: list[float]
    upper: list[float]
    fitted_on: int  # points the model saw
    estimate: bool = True


def bucket_last(points: Sequence[tuple[int, float]], bucket_ns: int = VOL_BUCKET_NS) -> list[float]:
    """``(ts_ns, price)`` in time order → the last price of each bucket of ``bucket_ns``, empty
    buckets carrying the previous price (no move)."""
    out: list[float] = []
    last_bucket = None
    for ts_ns, price in points:
        bucket = ts_ns // bucket_ns
        if last_bucket is not None and bucket > last_bucket:
            gap = min(bucket - last_bucket - 1, FORECAST_INPUT_MAX)
            out.extend([out[-1]] * gap)
            out.append(price)
        elif last_bucket is None:
            out.append(price)
        else:
            out[-1] = price
        last_bucket = bucket
    return out[-(FORECAST_INPUT_MAX + 1):]


def sigma_series_bps(bucket_prices: Sequence[float]) -> list[float]:
    """One σ estimate per bucket, in bps: |log return| × √(π/2) × 1e4."""
    return [abs(math.log(b / a)) * ABS_RETURN_TO_SIGMA * 1e4
            for a, b in zip(bucket_prices, bucket_prices[1:]) if a > 0 and b > 0]


def ets_forecast(values: Sequence[float], horizon: int, level: float = BAND_LEVEL) -> tuple[list, list, list] | None:
    """ETS(A,N,N) fitted on ``values`` (the newest ``FORECAST_INPUT_MAX``): mean, lower and
    upper of the next ``horizon`` steps at ``level``; None with too few points."""
    y = [float(v) for v in values[-FORECAST_INPUT_MAX:]]
    if len(y) < FORECAST_SAMPLES_MIN:
        return None
    if max(y) == min(y):  # no variation: the level is the forecast, the band is empty
        return [y[-1]] * horizon, [y[-1]] * horizon, [y[-1]] * horizon
    import pandas as pd  # statsmodels' prediction results are indexed: it wants a Series
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short, noisy series
        result = ETSModel(pd.Series(y), error="add", trend=None, seasonal=None).fit(disp=False)
        frame = result.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=1 - level)
    return ([float(x) for x in frame["mean"]], [float(x) for x in frame["pi_lower"]],
            [float(x) for x in frame["pi_upper"]])


def volatility_forecast(points: Sequence[tuple[int, float]], horizon: int = VOL_HORIZON_BUCKETS,
                        level: float = BAND_LEVEL) -> Forecast | None:
    """The σ of the next ``horizon`` 5 s log returns (bps), from ``(ts_ns, price)`` points."""
    sigmas = sigma_series_bps(bucket_last(points))
    found = ets_forecast(sigmas, horizon, level)
    if found is None:
        return None
    mean, lower, upper = found
    clip = lambda xs: [max(0.0, x) for x in xs]  # noqa: E731 - a σ is never negative
    return Forecast("volatility_bps", "5s", level, clip(mean), clip(lower), clip(upper), len(sigmas[-FORECAST_INPUT_MAX:]))


def rate_forecast(rates: Sequence[float], horizon: int = RATE_HORIZON_FILLS, level: float = BAND_LEVEL) -> Forecast | None:
    """The funding rate of the market's next ``horizon`` fills (fraction per 8h)."""
    found = ets_forecast(rates, horizon, level)
    if found is None:
        return None
    mean, lower, upper = found
    return Forecast("funding_rate", "fill", level, mean, lower, upper, len(rates[-FORECAST_INPUT_MAX:]))


def price_cone(last_price: float, sigma_bps: Sequence[float], z: float = 1.2816) -> tuple[list[float], list[float]]:
    """A price range ``horizon`` steps ahead from per-step σ forecasts: ``last × exp(±z·√Σσ²)``
    (z = 1.2816: the 80% two-sided normal quantile)."""
    lower, upper, total = [], [], 0.0
    for sigma in sigma_bps:
        total += (sigma / 1e4) ** 2
        spread = z * math.sqrt(total)
        lower.append(last_price * math.exp(-spread))
        upper.append(last_price * math.exp(spread))
    return lower, upper
