"""Alerts: views computed from the venue's rolling series, journaled nowhere (pure functions).

Anomalies are **robust z-scores**: how many robust standard deviations the latest value is
from the median of the window before it, the deviation estimated by the median absolute
deviation (MAD × 1.4826, consistent with σ for normal data), or — when more than half the
window is one value and the MAD is 0 — by the mean absolute deviation × 1.2533 (Iglewicz and
Hoaglin). A window shorter than ``ZSCORE_SAMPLES_MIN`` says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import msgspec

MAD_TO_SIGMA = 1.4826  # σ ≈ 1.4826 × MAD for normal data
MEAN_AD_TO_SIGMA = 1.2533  # σ ≈ 1.2533 × mean absolute deviation (√(π/2))
ZSCORE_SAMPLES_MIN = 20  # fewer points before the latest: no z-score
ZSCORE_WINDOW = 120  # points before the latest that the median and MAD are taken over
ZSCORE_ALERT = 5.0  # |z| at or above: an anomaly (fat-tailed returns: 3.5 fires on every jump)
ZSCORE_CRITICAL = 10.0
PROJECTION_LAG_S_MAX = 30.0  # a projection (SQL, settlement, hedger) further behind than this: alert
PROJECTION_LAG_SEQ_MAX = 50_000

WARN, CRITICAL = "warn", "critical"


class Alert(msgspec.Struct, frozen=True, gc=False):
    kind: str  # price_anomaly | funding_anomaly | flow_anomaly | oracle_stale | projection_lag | hedger_down
    subject: str  # the market, projection or exchange
    severity: str  # warn | critical
    message: str
    value: float
    bound: float


def robust_z(window: Sequence[float], latest: float) -> float | None:
    """``latest``'s robust z-score against ``window`` (None: too few points, or no spread at all
    and ``latest`` equal to the median)."""
    n = len(window)
    if n < ZSCORE_SAMPLES_MIN:
        return None
    ordered = sorted(window)
    median = _median(ordered)
    deviations = sorted(abs(x - median) for x in ordered)
    scale = MAD_TO_SIGMA * _median(deviations)
    if scale == 0.0:
        scale = MEAN_AD_TO_SIGMA * sum(deviations) / n
    if scale == 0.0:
        return None if latest == median else math.copysign(math.inf, latest - median)
    return (latest - median) / scale


def latest_z(series: Sequence[float], window: int = ZSCORE_WINDOW) -> float | None:
    """The robust z-score of the series' last value against up to ``window`` values before it."""
    if len(series) < 2:
        return None
    return robust_z(series[max(0, len(series) - 1 - window):-1], series[-1])


def log_returns(prices: Sequence[float]) -> list[float]:
    return [math.log(b / a) for a, b in zip(prices, prices[1:]) if a > 0 and b > 0]


def anomaly(kind: str, subject: str, what: str, z: float | None, threshold: float = ZSCORE_ALERT) -> Alert | None:
    """An alert when ``|z| >= threshold``; ``what`` names the quantity for the message."""
    if z is None or abs(z) < threshold:
        return None
    severity = CRITICAL if abs(z) >= ZSCORE_CRITICAL else WARN
    shown = "∞" if math.isinf(z) else f"{z:+.1f}"
    return Alert(kind, subject, severity, f"{subject}: {what} at robust z {shown} (|z| ≥ {threshold:g})",
                 _finite(z), threshold)


def price_alert(market: str, prices: Sequence[float]) -> Alert | None:
    """The latest oracle move against the window's moves (z of the last log return)."""
    return anomaly("price_anomaly", market, "last price move", latest_z(log_returns(prices)))


def funding_alert(market: str, rates: Sequence[float]) -> Alert | None:
    """The latest negotiated funding rate against the rates negotiated before it."""
    return anomaly("funding_anomaly", market, "negotiated funding rate", latest_z(rates))


def flow_alert(market: str, bucket_counts: Sequence[float]) -> Alert | None:
    """The last complete bucket's flow (RFQs + quotes + fills) against the buckets before it."""
    return anomaly("flow_anomaly", market, "RFQ/quote/fill flow", latest_z(bucket_counts))


def oracle_stale_alert(market: str, age_ns: int | None, age_ns_max: int) -> Alert | None:
    """The market's last oracle price is older than its max age (or it never had one)."""
    if age_ns is None:
        return Alert("oracle_stale", market, CRITICAL, f"{market}: no oracle price yet", math.inf,
                     age_ns_max / 1e9)
    if age_ns <= age_ns_max:
        return None
    age_s, max_s = age_ns / 1e9, age_ns_max / 1e9
    return Alert("oracle_stale", market, CRITICAL if age_s > 5 * max_s else WARN,
                 f"{market}: oracle price is {age_s:.1f} s old (max {max_s:g} s)", age_s, max_s)


def lag_alerts(lags: Mapping[str, Mapping], lag_s_max: float = PROJECTION_LAG_S_MAX,
               lag_seq_max: int = PROJECTION_LAG_SEQ_MAX) -> list[Alert]:
    """Projections behind beyond a bound: ``lags`` is name → ``{"lag_seq", "lag_s"}`` (either may
    be missing); the seconds bound is checked first."""
    out = []
    for name, lag in sorted(lags.items()):
        lag_s, lag_seq = _number(lag.get("lag_s")), _number(lag.get("lag_seq"))
        if lag_s is not None and lag_s > lag_s_max:
            out.append(Alert("projection_lag", name, WARN, f"{name}: {lag_s:.1f} s behind the journal "
                             f"(max {lag_s_max:g} s)", lag_s, lag_s_max))
        elif lag_seq is not None and lag_seq > lag_seq_max:
            out.append(Alert("projection_lag", name, WARN, f"{name}: {lag_seq:.0f} events behind the journal "
                             f"(max {lag_seq_max})", lag_seq, float(lag_seq_max)))
    return out


def hedger_alerts(exchanges: Mapping[str, Mapping]) -> list[Alert]:
    """A hedger exchange down (critical) or degraded (warn): ``exchanges`` as in the hedger's
    ``status()["exchanges"]`` (name → ``{"state", "reason", ...}``)."""
    out = []
    for name, health in sorted(exchanges.items()):
        state = health.get("state")
        if state in ("down", "degraded"):
            reason = health.get("reason") or "no reason given"
            out.append(Alert("hedger_down", name, CRITICAL if state == "down" else WARN,
                             f"hedger exchange {name} is {state} ({reason})", 1.0 if state == "down" else 0.5, 0.0))
    return out


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _finite(z: float) -> float:
    return z if math.isfinite(z) else math.copysign(1e9, z)
