"""``GET /agents/{agent}/risk``: the README's worked example (alice 10x long 100 USDC at 100 000,
liquidatable below 94 736.84) through the venue, equal to the SDK side's pure function."""

from __future__ import annotations

from adapters.gateway import openapi
from tests.http.conftest import rig  # noqa: F401  (the fixture)
from tests.http.test_lifecycle import ALICE, BOB, CAROL, open_position
from tests.support import agent_of


async def test_risk_route_on_the_worked_example(rig):  # noqa: F811
    for key in (ALICE, BOB, CAROL):
        await rig.faucet(key, 1000)
    await rig.oracle("BTC-PERP", 100_000)
    await open_position(rig, leverage=10, quotes=[(BOB, 0.006), (CAROL, 0.005)])
    alice = (await rig.get(f"/agents/{agent_of(ALICE)}/risk")).body
    assert set(alice) == set(openapi.RISK_SCHEMA["required"])
    assert set(alice["positions"][0]) == set(openapi.RISK_SCHEMA["properties"]["positions"]["items"]["required"])
    assert set(alice["markets"][0]) == set(openapi.RISK_SCHEMA["properties"]["markets"]["items"]["required"])
    assert (alice["equity_usdc"], alice["free_usdc"], alice["margin_usdc"]) == ("999.95", "989.95", "10")
    assert alice["net_exposure_usdc"] == "100" and alice["gross_exposure_usdc"] == "100"
    [position] = alice["positions"]
    assert position["side"] == "long" and position["liquidation_price"].startswith("94736.84")
    assert position["liquidation_distance_bps"] == 526 and position["maintenance_usdc"] == "5"
    carol = (await rig.get(f"/agents/{agent_of(CAROL)}/risk")).body
    assert carol["net_exposure_usdc"] == "-100" and carol["positions"][0]["liquidation_price"].startswith("133333.33")
    empty = (await rig.get(f"/agents/{agent_of(BOB)}/risk")).body
    assert empty["positions"] == [] and empty["score"] == 0 and empty["liquidation_distance_bps"] is None
    assert (await rig.get("/agents/not-a-key/risk")).status == 400
    document = (await rig.get("/openapi.json")).body
    assert "/agents/{agent}/risk" in document["paths"]
