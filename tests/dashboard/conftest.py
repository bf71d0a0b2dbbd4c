"""A dev venue on loopback (fake clock; tests/http's rig) and headless Debian chromium driven by
playwright's async API on the same loop. Skipped, saying why, only when chromium is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.http.conftest import start_rig, stop_rig

SCREENSHOTS = Path(__file__).parent / "screenshots"  # gitignored
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage",
                 "--disable-extensions", "--no-first-run"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
async def rig(tmp_path):
    rig = await start_rig(tmp_path)
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
    page.on("console", lambda m: page.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(f"pageerror: {e}"))
    yield page
    await context.close()
