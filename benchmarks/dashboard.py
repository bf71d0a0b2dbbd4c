"""`python -m benchmarks.dashboard [--quick] [--json FILE]`: the dashboard page in headless
Debian chromium against a venue in the same process (journal fsync ``batch``, dev helpers on,
no oracle feed, no agents).

Figures:
- ``dashboard.page_load_ms``: navigation start → the page has read its state, drawn every
  market and opened ``/ws`` (``body[data-ready]``), percentiles over ``LOADS`` loads;
- ``dashboard.page_events_per_s``: a burst of ``EVENTS`` oracle updates (one command each,
  submitted as fast as the sequencer takes them) → the rate at which the page *applied* them
  (its ``__dashboard.lastSeq`` reached the last seq), i.e. the rate it sustains without
  falling behind;
- baseline, in the same run: ``dashboard.bare_ws_events_per_s`` — a bare aiohttp WebSocket
  client on the same streams, counting frames; ``dashboard.page_to_bare_ratio`` the ratio.
Both clients are connected during the same burst, so both see the venue's own rate as the
ceiling; a ratio near 1 means the page keeps up with the venue.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time

import aiohttp

from adapters.gateway import http
from benchmarks.report import emit, percentiles
from engine import commands as cmd
from venue.app import Venue
from venue.config import load

EVENTS = 20_000
LOADS = 5
SUBMIT_WINDOW = 256  # commands in flight at once
STREAMS = "trade_request,quote,position_opened,funding,position_closed,liquidation,oracle"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]


async def _burst(venue: Venue, events: int) -> int:
    base_ns = venue.clock()
    sem = asyncio.Semaphore(SUBMIT_WINDOW)

    async def one(i: int) -> None:
        async with sem:
            price = 10_000_000_000_000 + (i % 1000) * 100_000_000
            await venue.execute(cmd.OracleUpdate(i % 3, price, price // 10_000, base_ns + i + 1, "bench"))

    await asyncio.gather(*(one(i) for i in range(events)))
    return venue.hub.last_seq


async def _bare_client(url: str, first_seq: int, last_seq_box: list, done: asyncio.Event, marks: dict) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        async for message in ws:
            body = message.json()
            seq = body.get("seq")
            if seq is None:
                continue
            marks.setdefault("first", time.perf_counter())
            if last_seq_box and seq >= last_seq_box[0]:
                marks["last"] = time.perf_counter()
                done.set()
                return


async def run(events: int, loads: int) -> dict:
    from playwright.async_api import async_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as data:
        config = load(env={}, overrides={"venue": {"data_dir": data, "demo": False, "dev": True},
                                         "gateway": {"tcp_port": 0, "http_port": 0}, "oracle": {"source": "none"}})
        venue = Venue(config)
        await venue.start(serve=False)
        runner, port = await http.serve(venue)
        base = f"http://127.0.0.1:{port}"
        await _burst(venue, 30)  # every market has a price before the page loads
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                load_ms = []
                for _ in range(loads):
                    started = time.perf_counter()
                    await page.goto(base + "/")
                    await page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                    load_ms.append((time.perf_counter() - started) * 1e3)
                await page.wait_for_selector("#ws-status[data-state='live']", timeout=60_000)

                first_seq = venue.hub.last_seq + 1
                last_box: list = []
                done, marks = asyncio.Event(), {}
                bare = asyncio.create_task(_bare_client(f"{base}/ws?streams={STREAMS}&from_seq={first_seq}",
                                                        first_seq, last_box, done, marks))
                await asyncio.sleep(0.5)  # both subscribed before the burst (a bench, not a test)
                started = time.perf_counter()
                last_seq = await _burst(venue, events)
                venue_s = time.perf_counter() - started
                last_box.append(last_seq)
                await page.wait_for_function(f"window.__dashboard.lastSeq >= {last_seq}", timeout=600_000,
                                             polling=20)
                page_s = time.perf_counter() - started
                await asyncio.wait_for(done.wait(), 600)
                bare_s = marks["last"] - started
                bare.cancel()
                stats = await page.evaluate("window.__dashboard")
                await browser.close()
        finally:
            await runner.cleanup()
            await venue.stop()
    return {
        "dashboard.page_load_ms": percentiles(load_ms),
        "dashboard.events": events,
        "dashboard.venue_events_per_s": events / venue_s,
        "dashboard.bare_ws_events_per_s": events / bare_s,
        "dashboard.page_events_per_s": events / page_s,
        "dashboard.page_to_bare_ratio": bare_s / page_s,
        "dashboard.page_dropped_events": stats.get("dropped", 0),
        "dashboard.page_reconnects": stats.get("reconnects", 0),
    }


def main(json_path: str | None = None, quick: bool = False) -> int:
    figures = asyncio.run(run(EVENTS // 10 if quick else EVENTS, 2 if quick else LOADS))
    return emit(figures, {}, json_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    raise SystemExit(main(args.json, args.quick))
