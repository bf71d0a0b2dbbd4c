"""A whole life over REST with the exact request bodies of DESIGN §8: faucet, oracle, RFQ,
three quotes, accept of the best (signed), funding at the 8h boundary, a keeper's
liquidation after a price jump, and a close of 25% then the rest."""

from __future__ import annotations

from engine import invariants

from tests.support import NS_PER_MS, agent_of, keypair

ALICE, BOB, CAROL, DAVE, ERIN = (keypair(n) for n in range(1, 6))


def accept_signature(key, request_id: str, quote_id: str) -> str:
    return str(key.sign_message(f"accept:{request_id}:{quote_id}".encode()))


async def open_position(rig, *, leverage: int, quotes: list[tuple], quote_choice: str = "best") -> dict:
    alice = agent_of(ALICE)
    request = await rig.ok("/trade/request", {
        "agent_id": alice, "market": "BTC-PERP", "side": "long", "size_usdc": 100, "leverage": leverage,
        "max_funding_rate": 0.01, "duration": "perpetual", "expires_in": 30}, ALICE)
    request_id = request["request_id"]
    assert request["events"][0]["type"] == "rfq_opened.v1" and isinstance(request["seq"], int)
    quote_ids = []
    for key, rate in quotes:
        quote = await rig.ok("/trade/quote", {"request_id": request_id, "agent_id": agent_of(key),
                                              "funding_rate": rate, "collateral_usdc": 100, "valid_for": 10}, key)
        assert quote["request_id"] == request_id
        quote_ids.append(quote["quote_id"])
    listed = (await rig.get(f"/quotes?request_id={request_id}")).body
    assert sorted(q["quote_id"] for q in listed) == sorted(quote_ids)
    quote_id = "best" if quote_choice == "best" else quote_ids[int(quote_choice)]
    accepted = await rig.ok("/trade/accept", {"request_id": request_id, "quote_id": quote_id,
                                              "signature": accept_signature(ALICE, request_id, quote_id)}, ALICE)
    assert accepted["request_id"] == request_id
    opened = next(e for e in accepted["events"] if e["type"] == "position_opened.v1")
    assert opened["signature"] == accept_signature(ALICE, request_id, quote_id)
    return {"position_id": accepted["position_id"], "opened": opened, "quote_ids": quote_ids,
            "request_id": request_id}


async def test_full_lifecycle_over_rest(rig):
    for key in (ALICE, BOB, CAROL, DAVE, ERIN):
        deposit = await rig.faucet(key, 1000)
        assert deposit["events"][0]["amount_usdc"] == "1000"
    price = await rig.oracle("BTC-PERP", 100_000)
    assert price["events"][0]["price"] == "100000"

    # RFQ 1: 10x, three quotes; the best (lowest rate: carol's 0.5%) wins.
    first = await open_position(rig, leverage=10, quotes=[(BOB, 0.006), (CAROL, 0.005), (DAVE, 0.007)])
    opened = first["opened"]
    assert (opened["long_agent"], opened["short_agent"]) == (agent_of(ALICE), agent_of(CAROL))
    assert (opened["entry_price"], opened["funding_rate"], opened["size_usdc"]) == ("100000", "0.005", "100")
    assert (opened["margin_long_usdc"], opened["margin_short_usdc"], opened["taker_fee_usdc"]) == ("10", "100", "0.05")
    assert sorted(opened["released_quote_ids"]) == sorted([first["quote_ids"][0], first["quote_ids"][2]])
    account = await rig.account(ALICE)
    assert (account["agent_id"], account["free_usdc"], account["held_usdc"]) == (agent_of(ALICE), "989.95", "0")
    [position] = account["positions"]
    assert position == {**position, "position_id": first["position_id"], "market": "BTC-PERP",
                        "long_agent": agent_of(ALICE), "short_agent": agent_of(CAROL), "size_usdc": "100",
                        "entry_price": "100000", "margin_long_usdc": "10", "margin_short_usdc": "100",
                        "funding_rate": "0.005", "status": "open"}
    assert (await rig.account(BOB))["free_usdc"] == "1000"  # bob's quote was released

    # RFQ 2: 2x, one quote, accepted by its id.
    second = await open_position(rig, leverage=2, quotes=[(BOB, 0.005)], quote_choice="0")
    assert second["opened"]["margin_long_usdc"] == "50"

    # 08:00 UTC: one hour of funding at 0.5% per 8h on 100 USDC = 0.0625, long to short.
    seq_before = (await rig.get("/health")).body["last_seq"]
    rig.clock.advance_ms(3_600_000 + 500)
    funding = await rig.wait_for_event("funding_settled.v1", from_seq=seq_before + 1)
    assert funding["boundary_ns"] % (8 * 3600 * 10**9) == 0
    assert sorted(zip(funding["position_ids"], funding["long_to_short_usdc"])) == sorted(
        [(first["position_id"], "0.0625"), (second["position_id"], "0.0625")])
    p1 = (await rig.get(f"/positions/{first['position_id']}")).body
    assert (p1["margin_long_usdc"], p1["margin_short_usdc"]) == ("9.9375", "100.0625")

    # BTC gaps to 94 700: alice's 10x side is liquidatable; erin the keeper takes it.
    await rig.oracle("BTC-PERP", 94_700)
    liquidated = await rig.ok("/trade/liquidate", {"agent_id": agent_of(ERIN), "position_id": first["position_id"]},
                              ERIN)
    event = next(e for e in liquidated["events"] if e["type"] == "position_liquidated.v1")
    assert liquidated["position_id"] == first["position_id"]
    assert (event["side"], event["keeper"], event["pnl_long_usdc"]) == ("long", agent_of(ERIN), "-5.3")
    # 5% of what is left of alice's margin: (10 - 0.0625 - 5.3) × 5% = 0.231875
    assert event["reward_usdc"] == "0.231875"
    assert (await rig.account(ERIN))["free_usdc"] == "1000.231875"
    assert (await rig.get(f"/positions/{first['position_id']}")).status == 404

    # The 2x position survives; close 25%, then the rest.
    rig.clock.advance_ms(1_000)
    part = await rig.ok("/trade/close", {"position_id": second["position_id"], "size_percent": 25}, ALICE)
    closed = next(e for e in part["events"] if e["type"] == "position_closed.v1")
    assert (closed["fraction_bps"], closed["closed_size_usdc"], closed["remaining_size_usdc"]) == (2500, "25", "75")
    assert (await rig.get(f"/positions/{second['position_id']}")).body["size_usdc"] == "75"
    rest = await rig.ok("/trade/close", {"position_id": second["position_id"], "size_percent": 100}, ALICE)
    closed = next(e for e in rest["events"] if e["type"] == "position_closed.v1")
    assert closed["remaining_size_usdc"] == "0"
    account = await rig.account(ALICE)
    assert account["positions"] == [] and account["held_usdc"] == "0"
    assert (await rig.get("/positions")).body == []

    # The books balance to the micro-USDC.
    invariants.check(rig.venue.state)
    assert rig.venue.state.last_seq == (await rig.get("/health")).body["last_seq"]
    assert rig.clock() // NS_PER_MS == (await rig.get("/health")).body["server_time_ms"]
