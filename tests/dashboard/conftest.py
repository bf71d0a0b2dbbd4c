"""A dev venue on loopback (fake clock; tests/http's rig) and headless Debian chromium driven by
playwright's async API on the same loop. Skipped, saying why, only when chromium is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.http.conftest import Rig, stop_rig, venue_config
from tests.support import FakeClock

SCREENSHOTS = Path(__file__).parent / "screenshots"  # gitignored
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
                 "--disable-extensions", "--no-first-run"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def start_rig(tmp_path, *, sql: bool) -> Rig:
    """tests/http's rig with the SQL read models (``[projections] sql``) on or off, said
    explicitly: the page differs (leaderboard, agent KPIs, projection lags)."""
    from adapters.gateway import http
    from venue.app import Venue

    import aiohttp

    clock = FakeClock()
    config = venue_config(tmp_path)
    config.projections.sql = sql
    # On the venue's runner, not in its own process: test_browser stalls its apply to show a lag.
    config.projections.sql_process = "off"
    venue = Venue(config, clock=clock)
    await venue.start(serve=False)
    runner, port = await http.serve(venue)
    session = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}")
    return Rig(venue, clock, session, port, runner)


@pytest.fixture
async def rig(tmp_path):
    """A venue without the SQL read models (its history routes answer 503 UNAVAILABLE)."""
    rig = await start_rig(tmp_path, sql=False)
    try:
        yield rig
    finally:
        await stop_rig(rig)


@pytest.fixture
async def sql_rig(tmp_path):
    """A venue with the SQL read models on (SQLite in the data dir), as by default."""
    rig = await start_rig(tmp_path, sql=True)
    try:
        yield rig
    finally:
        await stop_rig(rig)


@pytest.fixture
async def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright (test extras) is not installed")
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser):
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.errors = []  # console errors and uncaught exceptions, asserted empty by the tests
    page.on("console", lambda m: page.errors.append(f"console.{m.type}: {m.text} ({m.location.get('url', '')})")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(f"pageerror: {e}"))
    yield page
    await context.close()
