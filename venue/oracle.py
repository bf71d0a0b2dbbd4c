"""Wiring of the oracle (DESIGN §9): the sources named by ``[oracle] source`` built from the
venue's configuration, the feed that screens them and fails over, and ``agentperp oracle
record``. See docs/oracle.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable

from adapters.oracle.feed import OracleFeed
from adapters.oracle.metrics import OracleMetrics
from venue.config import Config, OracleSection

NS_PER_MS = 1_000_000
CCXT_POLL_INTERVAL_MS_MIN = 10  # a REST round (or stand-in) at most every 10 ms


def build_source(name: str, o: OracleSection, symbols: list[str], clock: Callable[[], int]):
    """One price source by its name (``pyth``, ``ccxt``, ``recorded``, ``synthetic``)."""
    if name == "synthetic":
        from adapters.oracle.synthetic import SyntheticOracle, SyntheticSource

        walk = SyntheticOracle(symbols, seed=o.seed, step_bps=o.step_bps, jump_probability=o.jump_probability,
                               jump_bps=o.jump_bps, conf_bps=o.conf_bps, start_prices=o.start_prices)
        return SyntheticSource(walk, o.interval_ms, clock)
    if name == "pyth":
        from adapters.oracle.pyth_client import PythSettings, PythSource, feed_ids_by_market

        return PythSource(PythSettings(
            base_url=o.pyth_base_url, feed_ids=feed_ids_by_market(symbols, o.pyth_feed_ids),
            api_key=o.pyth_api_key, api_key_header=o.pyth_api_key_header, mode=o.pyth_mode,
            poll_interval_s=o.pyth_poll_interval_ms / 1e3, stream_stale_s=o.pyth_stream_stale_ms / 1e3,
            backoff_base_s=o.pyth_backoff_base_ms / 1e3, backoff_max_s=o.pyth_backoff_max_ms / 1e3,
            rate_limited_s=o.pyth_rate_limited_ms / 1e3, budget_requests=o.pyth_requests_per_10s,
            budget_window_s=10.0))
    if name == "ccxt":
        from adapters.oracle.ccxt_client import CcxtExchange, CcxtSettings, CcxtSource

        symbols_by_market = {m: o.ccxt_symbols[symbol] for m, symbol in enumerate(symbols) if symbol in o.ccxt_symbols}
        if not symbols_by_market:
            raise ValueError("oracle source ccxt needs oracle.ccxt_symbols for at least one market")
        from adapters.hedging.exchanges import KINDS

        unknown = sorted(kind for kind in o.ccxt_exchanges.values() if kind not in KINDS)
        if unknown:
            raise ValueError(f"oracle.ccxt_exchanges: unknown ccxt ids {unknown}; known: {', '.join(KINDS)}")
        exchanges = tuple(CcxtExchange(name, kind, o.ccxt_base_urls.get(name) or None)
                          for name, kind in o.ccxt_exchanges.items())
        if not 1 <= o.ccxt_sources_min <= len(exchanges):
            raise ValueError(f"oracle.ccxt_sources_min {o.ccxt_sources_min}: between 1 and the "
                             f"{len(exchanges)} exchanges of oracle.ccxt_exchanges")
        for key, least in (("ccxt_ws_price_interval_ms", 1), ("ccxt_poll_interval_ms", CCXT_POLL_INTERVAL_MS_MIN),
                           ("ccxt_stale_ms", 1)):
            if getattr(o, key) < least:  # a 0 poll interval would spin while an exchange backs off
                raise ValueError(f"oracle.{key} {getattr(o, key)}: at least {least}")
        return CcxtSource(CcxtSettings(
            exchanges=exchanges, symbols=symbols_by_market, divergence_bps_max=o.ccxt_divergence_bps_max,
            sources_min=o.ccxt_sources_min, stale_s=o.ccxt_stale_ms / 1e3,
            poll_interval_s=o.ccxt_poll_interval_ms / 1e3, requests_per_10s=o.ccxt_requests_per_10s,
            timeout_ms=o.ccxt_timeout_ms, transport=o.ccxt_transport,
            ws_price_interval_s=o.ccxt_ws_price_interval_ms / 1e3), clock)
    if name == "recorded":
        from adapters.oracle.recorded import RecordedSource

        if not o.recorded_path:
            raise ValueError("oracle source recorded needs oracle.recorded_path (a file from agentperp oracle record)")
        return RecordedSource(o.recorded_path, symbols, speed=o.recorded_speed, loop=o.recorded_loop, clock=clock)
    raise ValueError(f"no oracle source {name!r}")


def build_feed(config: Config, symbols: list[str], *, submit_with: Callable, clock: Callable[[], int],
               last_publish_ns: list[int], registry) -> OracleFeed | None:
    """The feed of ``[oracle] source`` (None for ``none``)."""
    o = config.oracle
    primary, check = o.sources()
    if primary is None:
        return None
    return OracleFeed(
        symbols, build_source(primary, o, symbols, clock),
        build_source(check, o, symbols, clock) if check else None,
        submit_with=submit_with, clock=clock, stale_ns=o.stale_ms * NS_PER_MS,
        divergence_bps_max=o.divergence_bps_max, failback_ns=o.failback_ms * NS_PER_MS,
        future_skew_ns_max=o.future_skew_ms_max * NS_PER_MS, watch_interval_s=o.watch_interval_ms / 1e3,
        last_publish_ns=last_publish_ns, metrics=OracleMetrics(registry) if registry is not None else None)


def record_main(args: argparse.Namespace) -> int:
    """``agentperp oracle record --source NAME --out FILE [--duration S]``."""
    import logging

    from adapters.oracle.recorded import record
    from venue import config as venue_config

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = venue_config.load(args.config)
        symbols = [m["symbol"] for m in settings.markets]
        source = build_source(args.source, settings.oracle, symbols, time.time_ns)
    except (venue_config.ConfigError, ValueError) as error:
        print(f"agentperp oracle record: {error}", file=sys.stderr)
        return 2
    print(f"recording {args.source} ({', '.join(symbols)}) to {args.out}"
          + (f" for {args.duration:g} s" if args.duration else " until Ctrl-C"), flush=True)
    try:
        recorder = asyncio.run(record(source, args.out, symbols, args.duration))
    except KeyboardInterrupt:
        print(f"stopped; {args.out} holds what was recorded")
        return 130
    dropped = ", ".join(f"{k} {v}" for k, v in recorder.dropped.items()) or "none"
    print(f"wrote {recorder.lines:,} prices to {args.out} (dropped: {dropped})")
    return 0
