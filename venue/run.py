"""``agentperp run``: start the venue (and by default the demo agents), show a live status
line, stop cleanly on Ctrl-C or after ``--duration``, and print a summary."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

from engine import events as ev
from engine import views
from engine.units import USDC_E6, div_half_even
from ledger.genesis import ConfigChanged
from venue.app import Venue
from venue.config import Config
from venue.settlement import SettlementUnavailable


class Activity:
    """Running totals of what the venue did this run, fed by the hub's durable events."""

    def __init__(self) -> None:
        self.rfqs = 0
        self.fills = 0
        self.closes = 0
        self.liquidations = 0
        self.funding_paid_e6 = 0

    def __call__(self, events: list) -> None:
        for event in events:
            kind = type(event)
            if kind is ev.RfqOpened:
                self.rfqs += 1
            elif kind is ev.PositionOpened:
                self.fills += 1
            elif kind is ev.PositionClosed:
                self.closes += 1
            elif kind is ev.PositionLiquidated:
                self.liquidations += 1
            elif kind is ev.FundingSettled:
                self.funding_paid_e6 += sum(abs(x) for x in event.long_to_short_e6)


def _usdc(amount_e6: int) -> str:
    """USDC to the cent for the status line, by integer rounding (money never passes a float)."""
    cents = div_half_even(amount_e6, USDC_E6 // 100)
    sign = "-" if cents < 0 else ""
    whole, cents = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def status_line(venue: Venue, activity: Activity, commands_per_s: float) -> str:
    books = views.books(venue.state)
    return (f"seq {books.last_seq:>9,} | rfqs {activity.rfqs:>6,} | fills {activity.fills:>5,} | "
            f"open {books.open_positions:>4,} (OI {_usdc(books.open_interest_e6)} USDC) | "
            f"funding {_usdc(activity.funding_paid_e6)} | liquidations {activity.liquidations:>3,} | "
            + (f"{lag} | " if (lag := venue.projections.status_text()) else "")
            + (f"{hedge} | " if (hedge := venue.hedger.status_text()) else "")
            + f"{commands_per_s:,.0f} cmd/s")


async def _status(venue: Venue, activity: Activity, interval_s: float, tty: bool) -> None:
    last_total, last_t = venue.sequencer.commands_total, time.perf_counter()
    while True:
        await asyncio.sleep(interval_s)
        now = time.perf_counter()
        rate = (venue.sequencer.commands_total - last_total) / (now - last_t)
        last_total, last_t = venue.sequencer.commands_total, now
        venue.metrics.commands_per_s.set(rate)
        line = status_line(venue, activity, rate)
        if tty:
            print("\r" + line, end="", flush=True)
        else:
            print(line, flush=True)


async def run_venue(config: Config) -> int:
    venue = Venue(config)
    started = time.perf_counter()
    await venue.start()
    activity = Activity()
    venue.hub.listen(activity)
    v, g = config.venue, config.gateway
    print(f"agentperp venue — data in {v.data_dir}/ (journal fsync: {v.fsync}); "
          f"replayed {venue.recovered_records:,} journal records, last seq {venue.state.last_seq:,}")
    print(f"  TCP (msgpack | JSON)  {g.host}:{venue.tcp_port}")
    print(f"  HTTP + WebSocket      http://{g.host}:{venue.http_port}/  (docs: /openapi.json, metrics: /metrics)")
    print(f"  markets               {', '.join(venue.symbols)}; oracle: {config.oracle.source}")
    if venue.projections.sql is not None:
        from venue.projections import sql_url

        print(f"  SQL read models       {sql_url(config)}  (GET /agents/{{agent}}/stats, /leaderboard, /history/positions)")
    if (settlement := venue.projections.settlement) is not None:  # issue 13: the escrow, live
        print(f"  escrow settlement     {settlement.describe()}  (GET /escrow/reconcile)")
    if venue.hedger.sink is not None:  # [hedging] (venue/hedging.py)
        print(f"  hedging               {len(venue.hedger.credentials)} makers on "
              + ", ".join(f"{n} {u or '(real)'}" + (" (embedded simulator)" if n in venue.hedger.sims else "")
                          for n, u in venue.hedger.urls.items()))
    if v.dev:
        print("  dev helpers ENABLED   POST /dev/faucet, POST /dev/oracle (unsigned; for demos and tests only)")
    if v.demo:
        from agents import demo

        for task in await demo.start(venue):
            venue.add_task(task)
        print(f"  demo agents           {config.demo.traders} traders, {len(demo.MAKERS)} market makers, 1 keeper (over TCP)")
    print("Ctrl-C stops; running again resumes from the journal." if not v.duration_s
          else f"stopping by itself after {v.duration_s:g} s.")
    if v.status_interval_s > 0:
        venue.add_task(asyncio.create_task(_status(venue, activity, v.status_interval_s, sys.stdout.isatty())))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiters = [asyncio.create_task(stop.wait()), venue.sequencer_task]
    await asyncio.wait(waiters, timeout=v.duration_s or None, return_when=asyncio.FIRST_COMPLETED)
    waiters[0].cancel()
    failed = venue.sequencer.failed
    await venue.stop()
    elapsed = time.perf_counter() - started
    print()
    print(f"stopped after {elapsed:,.1f} s: {venue.sequencer.commands_total:,} commands "
          f"({venue.sequencer.commands_total / elapsed:,.0f}/s), last seq {venue.state.last_seq:,}")
    print("  " + status_line(venue, activity, 0.0).rsplit(" | ", 1)[0])
    if failed is not None:
        print(f"the venue failed: {failed!r}", file=sys.stderr)
        return 1
    return 0


def main(config: Config) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(run_venue(config))
    except KeyboardInterrupt:
        return 130
    except (ConfigChanged, SettlementUnavailable) as error:  # refused at start: say what and how on
        print(f"agentperp: the venue did not start: {error}", file=sys.stderr)
        return 2
