"""The dashboard in a real browser (headless Debian chromium): it loads with no console error,
shows the markets, moves a price when the oracle updates, shows a fill in the flow and a
liquidation, and raises the oracle-staleness alert when the oracle stops; with the SQL read
models on, the fill reaches the leaderboard and the agent's KPIs, and a projection's lag shows
in the health panel and as an alert. Waits are on the DOM (playwright's wait_for_*) or on the
projection runner (``wait_for_seq``), never sleeps; screenshots go to tests/dashboard/screenshots/."""

from __future__ import annotations

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


async def test_the_sql_read_models_on_the_page(sql_rig, page):
    """SQL on: a fill reaches the leaderboard (once the runner applied its seq), the agent page's
    equity and KPIs come from /agents/{agent}/stats, /health's projections and oracle fields are
    shown as they are, a stalled projection's lag shows and alerts, and a 503/404 reads as off."""
    from adapters.dashboard.routes import DASHBOARD
    from venue.oracle import build_feed

    rig, alice = sql_rig, agent_of(ALICE)
    runner = rig.venue.projections.runner
    # /health's oracle field is the feed's status(): a real (synthetic) feed, built but not run.
    config = rig.venue.config
    config.oracle.source = "synthetic"
    rig.venue.oracle_feed = build_feed(config, rig.venue.symbols, submit_with=rig.venue.sequencer.submit_with,
                                       clock=rig.clock, last_publish_ns=[0] * len(rig.venue.symbols), registry=None)
    for key in (ALICE, BOB, CAROL):
        await rig.faucet(key, 1000)
    await rig.oracle("BTC-PERP", 100_000)

    await page.goto(f"http://127.0.0.1:{rig.port}/")
    await page.wait_for_selector("body[data-ready='1']", timeout=TIMEOUT_MS)
    await page.wait_for_selector("#health-projections tr[data-projection='sql'][data-state='live']", timeout=TIMEOUT_MS)
    assert await page.text_content("#health-oracle [data-testid='oracle-primary']") == "synthetic"
    assert await page.text_content("#health-oracle tr[data-oracle-market='BTC-PERP'] td[data-field='source']") == \
        "synthetic"
    assert await page.text_content("#health-oracle tr[data-oracle-market='BTC-PERP'] td[data-field='synthetic_age_ms']") \
        == "–"  # no price from the feed yet (null)

    # A fill: once the runner applied its seq, the leaderboard shows alice with the read model's figures.
    first = await open_position(rig, leverage=10, quotes=[(BOB, 0.006), (CAROL, 0.005)])
    fill_seq = first["opened"]["seq"]
    await runner.wait_for_seq("sql", fill_seq)
    await page.wait_for_function(
        f"Number(document.querySelector(\"[data-testid='leaderboard-as-of']\")?.textContent) >= {fill_seq}",
        timeout=TIMEOUT_MS)
    row = f"#leaderboard tr[data-agent='{alice}']"
    await page.wait_for_selector(row, timeout=TIMEOUT_MS)
    board = (await rig.get("/leaderboard?by=pnl")).body
    assert board["as_of_seq"] >= fill_seq
    expected = next(r for r in board["agents"] if r["agent"] == alice)
    assert await page.text_content(f"{row} td[data-kpi='net_pnl_usdc']") == expected["net_pnl_usdc"]
    assert await page.text_content(f"{row} td[data-kpi='volume_usdc']") == expected["volume_usdc"] == "100"
    assert await page.text_content(f"{row} td[data-kpi='rank']") == str(expected["rank"])
    await page.wait_for_function(  # the health panel follows the runner
        f"Number(document.querySelector(\"#health-projections tr[data-projection='sql'] td[data-field='seq']\")"
        f".textContent) >= {fill_seq}", timeout=TIMEOUT_MS)
    dashboard = rig.runner.app[DASHBOARD]
    assert dashboard.lags()["sql"]["lag_seq"] == 0
    await page.screenshot(path=str(SCREENSHOTS / "venue-sql.png"), full_page=True)

    # A stalled projection: its lag (seqs, and seconds of journal time) shows, and alerts past 30 s.
    gate = threading.Event()
    sql, apply = rig.venue.projections.sql, rig.venue.projections.sql.apply
    sql.apply = lambda records, after_seq: (gate.wait(TIMEOUT_MS / 1000), apply(records, after_seq))[1]
    try:
        rig.clock.advance_ms(40_000)
        await rig.oracle("BTC-PERP", 100_100)
        await page.wait_for_selector("#alerts li[data-kind='projection_lag'][data-subject='sql']", timeout=TIMEOUT_MS)
        health = (await rig.get("/health")).body
        sql_row = next(p for p in health["projections"] if p["name"] == "sql")
        assert sql_row["lag_seq"] >= 1 and sql_row["lag_s"] >= 40
        cells = "#health-projections tr[data-projection='sql'] td"
        await page.wait_for_function(
            f"Number(document.querySelector(\"{cells}[data-field='lag_s']\").textContent) >= 40", timeout=TIMEOUT_MS)
        assert int(await page.text_content(f"{cells}[data-field='lag_seq']")) >= 1
        await page.screenshot(path=str(SCREENSHOTS / "projection-lag.png"), full_page=True)
    finally:
        gate.set()
    await runner.wait_for_seq("sql", rig.venue.hub.last_seq)
    await page.wait_for_function(
        f"document.querySelector(\"{cells}[data-field='lag_seq']\").textContent === '0'", timeout=TIMEOUT_MS)
    await page.wait_for_selector("#alerts li[data-kind='projection_lag']", state="detached", timeout=TIMEOUT_MS)

    # The agent page: equity and KPIs from /agents/{agent}/stats (as of the runner's seq).
    stats = (await rig.get(f"/agents/{alice}/stats")).body
    assert stats["as_of_seq"] == rig.venue.hub.last_seq
    await page.goto(f"http://127.0.0.1:{rig.port}/#/agent/{alice}")
    await page.wait_for_selector("#agent-account[data-source='sql']", timeout=TIMEOUT_MS)
    assert await page.text_content("[data-testid='stats-as-of']") == str(stats["as_of_seq"])
    for name in ("net_pnl_usdc", "fees_paid_usdc", "volume_usdc", "deposited_usdc", "open_positions"):
        assert await page.text_content(f"#agent-stats td[data-kpi='{name}']") == str(stats[name]), name
    booked = Decimal(stats["deposited_usdc"]) - Decimal(stats["withdrawn_usdc"]) + Decimal(stats["net_pnl_usdc"])
    assert Decimal(await page.text_content("[data-testid='agent-booked']")) == booked
    account = await rig.account(ALICE)  # the read model's books agree with the engine's
    assert booked == Decimal(account["free_usdc"]) + Decimal(account["held_usdc"]) + Decimal(account["margin_usdc"])
    await page.screenshot(path=str(SCREENSHOTS / "agent-sql.png"), full_page=True)

    # An answer of 503 UNAVAILABLE, or a bare 404 (a venue without the route), reads as off.
    await page.goto(f"http://127.0.0.1:{rig.port}/")
    await page.wait_for_selector(f"#leaderboard tr[data-agent='{alice}']", timeout=TIMEOUT_MS)
    unavailable = json.dumps({"error": {"code": "UNAVAILABLE", "message": "the SQL read models are off"}})
    for status, body, shown in ((503, unavailable, "answered 503 UNAVAILABLE"), (404, "404: Not Found", "answered 404")):
        await page.route("**/leaderboard?*", _answer(status, body))
        await page.wait_for_selector(f"#leaderboard :text('SQL read models off (/leaderboard {shown})')",
                                     timeout=TIMEOUT_MS)
        await page.unroute("**/leaderboard?*")
    # Those two answers were the test's own (the browser logs a failed load); nothing else.
    assert [e for e in page.errors if "/leaderboard?" not in e] == []


def _answer(status: int, body: str):
    """A playwright route handler answering ``status`` with ``body``."""
    async def answer(route, request) -> None:
        await route.fulfill(status=status, body=body, content_type="application/json")

    return answer
