"""The dashboard in a real browser (headless Debian chromium): it loads with no console error,
shows the markets, moves a price when the oracle updates, shows a fill in the flow and a
liquidation, and raises the oracle-staleness alert when the oracle stops; with the SQL read
models on, the fill reaches the leaderboard and the agent's KPIs, and a projection's lag shows
in the health panel and as an alert. Waits are on the DOM (playwright's wait_for_*) or on the
projection runner (``wait_for_seq``), never sleeps; screenshots go to tests/dashboard/screenshots/."""

from __future__ import annotations

import asyncio
import json
import threading
from decimal import Decimal

from tests.dashboard.conftest import SCREENSHOTS
from tests.http.test_lifecycle import ALICE, BOB, CAROL, DAVE, ERIN, open_position
from tests.support import agent_of

TIMEOUT_MS = 20_000


async def test_the_venue_live_in_a_browser(rig, page):
    for key in (ALICE, BOB, CAROL, DAVE, ERIN):
        await rig.faucet(key, 1000)
    for market, price in (("BTC-PERP", 100_000), ("ETH-PERP", 3200), ("SOL-PERP", 150)):
        await rig.oracle(market, price)

    await page.goto(f"http://127.0.0.1:{rig.port}/")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    for market in ("BTC-PERP", "ETH-PERP", "SOL-PERP"):
        await page.wait_for_selector(f".market[data-market='{market}']", timeout=TIMEOUT_MS)
    assert await page.text_content("[data-testid='price-BTC-PERP']") == "100000"
    assert await page.text_content("[data-testid='source-BTC-PERP']") == "source: dev"
    await page.wait_for_selector("#ws-status[data-state='live']", timeout=TIMEOUT_MS)
    assert await page.is_hidden("#charts-missing"), "make dashboard-assets fetches the chart library"
    # The SQL read models are off: /health lists no "sql" projection, so the page never asks the
    # history routes (they would answer 503 UNAVAILABLE) and says so.
    await page.wait_for_selector("#leaderboard :text('SQL read models off (no sql projection in /health)')",
                                 timeout=TIMEOUT_MS)
    assert (await rig.get("/leaderboard")).code == "UNAVAILABLE"
    await page.wait_for_selector("#health-projections :text('no projections on this venue')", timeout=TIMEOUT_MS)
    await page.wait_for_selector("#health-oracle [data-testid='oracle-off']", timeout=TIMEOUT_MS)  # source = none

    # A fill appears in the flow, with its RFQ and quotes before it.
    first = await open_position(rig, leverage=10, quotes=[(BOB, 0.006), (CAROL, 0.005), (DAVE, 0.007)])
    fill = f"#flow tr[data-type='position_opened.v1']:has-text('position #{first['position_id']}')"
    await page.wait_for_selector(fill, timeout=TIMEOUT_MS)
    assert await page.locator("#flow tr[data-type='rfq_opened.v1']").count() >= 1
    assert await page.locator("#flow tr[data-type='quote_submitted.v1']").count() >= 3

    # The oracle moves: so does the page.
    await rig.oracle("BTC-PERP", "100200.5")
    await page.wait_for_function("document.querySelector(\"[data-testid='price-BTC-PERP']\").textContent === '100200.5'",
                                 timeout=TIMEOUT_MS)

    # BTC gaps to 94 700: alice's 10x long is liquidated by erin; the liquidation appears.
    await rig.oracle("BTC-PERP", 94_700)
    await rig.ok("/trade/liquidate", {"agent_id": agent_of(ERIN), "position_id": first["position_id"]}, ERIN)
    await page.wait_for_selector(f"#liquidations tr[data-position-id='{first['position_id']}']", timeout=TIMEOUT_MS)
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "venue.png"), full_page=True)

    # The oracle stops: once its last price is older than the market's max age (30 s), the alert.
    assert await page.locator("#alerts li[data-kind='oracle_stale']").count() == 0
    rig.clock.advance_ms(31_000)
    await page.wait_for_selector("#alerts li[data-kind='oracle_stale'][data-subject='BTC-PERP']", timeout=TIMEOUT_MS)
    await page.screenshot(path=str(SCREENSHOTS / "alerts.png"))
    metrics = await (await rig.session.get("/metrics")).text()
    assert 'agentperp_alert_active{kind="oracle_stale",severity="warn",subject="BTC-PERP"} 1.0' in metrics

    # An agent's page: balances and open positions (none left for alice), KPIs off without SQL.
    await page.goto(f"http://127.0.0.1:{rig.port}/#/agent/{agent_of(CAROL)}")
    await page.wait_for_selector("#agent-account[data-source='accounts']:has-text('equity')", timeout=TIMEOUT_MS)
    await page.wait_for_selector("#agent-stats :text('SQL read models off')", timeout=TIMEOUT_MS)
    await page.screenshot(path=str(SCREENSHOTS / "agent.png"), full_page=True)
    assert page.errors == []


async def test_the_page_says_charts_are_off_without_the_library(rig, page, tmp_path):
    from adapters.dashboard.routes import DASHBOARD

    rig.runner.app[DASHBOARD].charts_asset = tmp_path / "never-fetched.js"
    await rig.oracle("BTC-PERP", 100_000)
    await page.goto(f"http://127.0.0.1:{rig.port}/")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    assert await page.is_visible("#charts-missing")
    await rig.oracle("BTC-PERP", 100_001)
    await page.wait_for_function("document.querySelector(\"[data-testid='price-BTC-PERP']\").textContent === '100001'",
                                 timeout=TIMEOUT_MS)
    assert page.errors == []
