"""Every way a request can be wrong, each with its code and status — and the venue keeps
serving after each."""

from __future__ import annotations

import json

import pytest

from tests.http.conftest import start_rig, stop_rig
from tests.support import NS_PER_MS, agent_of, keypair

ALICE, BOB, MALLORY = keypair(1), keypair(2), keypair(9)


def rfq_body(agent=None, **changes):
    body = {"agent_id": agent or agent_of(ALICE), "market": "BTC-PERP", "side": "long", "size_usdc": 100,
            "leverage": 10, "max_funding_rate": 0.01, "duration": "perpetual", "expires_in": 30}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
async def funded(rig):
    await rig.faucet(ALICE, 1000)
    await rig.faucet(BOB, 1000)
    await rig.oracle("BTC-PERP", 100_000)
    return rig


async def still_serving(rig):
    assert (await rig.get("/health")).body["status"] == "ok"
    response = await rig.post("/trade/request", rfq_body(), ALICE)
    assert response.status == 200, response.body


async def test_signing_failures(funded):
    rig = funded
    body = json.dumps(rfq_body()).encode()
    now_ms = rig.clock() // NS_PER_MS
    window = rig.venue.config.gateway.signature_window_ms

    stale = await rig.post("/trade/request", body, ALICE, timestamp_ms=now_ms - window - 1)
    assert (stale.status, stale.code) == (401, "STALE_REQUEST")
    assert stale.body["error"]["detail"]["server_time_ms"] == now_ms
    future = await rig.post("/trade/request", body, ALICE, timestamp_ms=now_ms + window + 1)
    assert (future.status, future.code) == (401, "STALE_REQUEST")
    edge = await rig.post("/trade/request", body, ALICE, timestamp_ms=now_ms - window)
    assert edge.status == 200

    headers = rig.signed_headers(MALLORY, "POST", "/trade/request", body)
    headers["X-Agent"] = agent_of(ALICE)  # signed by someone else
    forged = await rig.raw("POST", "/trade/request", body, headers)
    assert (forged.status, forged.code) == (401, "BAD_SIGNATURE")
    headers = rig.signed_headers(ALICE, "POST", "/trade/request", body)
    tampered = await rig.raw("POST", "/trade/request", body.replace(b'"size_usdc": 100', b'"size_usdc": 900'),
                             headers)
    assert (tampered.status, tampered.code) == (401, "BAD_SIGNATURE")
    headers = rig.signed_headers(ALICE, "POST", "/trade/quote", body)  # signed for another path
    wrong_path = await rig.raw("POST", "/trade/request", body, headers)
    assert (wrong_path.status, wrong_path.code) == (401, "BAD_SIGNATURE")
    garbage = await rig.raw("POST", "/trade/request", body, {**headers, "X-Signature": "not-base58-0OIl"})
    assert (garbage.status, garbage.code) == (401, "BAD_SIGNATURE")

    unsigned = await rig.post("/trade/request", body)
    assert (unsigned.status, unsigned.code) == (401, "NOT_AUTHENTICATED")
    assert set(unsigned.body["error"]["detail"]["missing"]) == {"X-Agent", "X-Timestamp", "X-Signature"}
    bad_agent = await rig.raw("POST", "/trade/request", body, {**headers, "X-Agent": "alice"})
    assert (bad_agent.status, bad_agent.code) == (401, "BAD_AGENT")
    bad_ts = await rig.raw("POST", "/trade/request", body, {**headers, "X-Timestamp": "yesterday"})
    assert (bad_ts.status, bad_ts.code) == (401, "STALE_REQUEST")

    # The same signed request twice: the second is a replay, refused without executing.
    headers = rig.signed_headers(ALICE, "POST", "/trade/request", body)
    first = await rig.raw("POST", "/trade/request", body, headers)
    replay = await rig.raw("POST", "/trade/request", body, headers)
    assert first.status == 200
    assert (replay.status, replay.code) == (409, "DUPLICATE")
    assert replay.body["error"]["detail"]["reason"] == "replayed_request"
    rfqs = (await rig.get("/rfqs")).body
    assert len(rfqs) == 2  # the edge case and the first of the pair; nothing else executed

    # agent_id in the body is not the signer.
    other = await rig.post("/trade/request", rfq_body(agent=agent_of(BOB)), ALICE)
    assert (other.status, other.code) == (403, "FORBIDDEN")
    assert other.body["error"]["detail"]["field"] == "agent_id"

    # The accept's own signature must be the trader's over accept:{request_id}:{quote_id}.
    request_id = rfqs[0]["request_id"]
    await rig.ok("/trade/quote", {"request_id": request_id, "agent_id": agent_of(BOB), "funding_rate": 0.005,
                                  "collateral_usdc": 100, "valid_for": 10}, BOB)
    wrong = str(ALICE.sign_message(f"accept:{request_id}:1".encode()))
    bad_accept = await rig.post("/trade/accept", {"request_id": request_id, "quote_id": "best", "signature": wrong},
                                ALICE)
    assert (bad_accept.status, bad_accept.code) == (401, "BAD_SIGNATURE")
    assert bad_accept.body["error"]["detail"]["message"] == f"accept:{request_id}:best"
    await still_serving(rig)


@pytest.mark.parametrize("raw, field", [
    (b"{not json", None),
    (b"", None),
    (b"[1, 2]", None),
    (b'"a string"', None),
    (json.dumps(rfq_body(size_usdc=...)).encode(), "size_usdc"),
    (json.dumps(rfq_body(market=...)).encode(), "market"),
    (json.dumps(rfq_body(leverage={"n": 10})).encode(), "leverage"),
    (json.dumps(rfq_body(leverage=None)).encode(), "leverage"),
    (json.dumps(rfq_body(size_usdc=True)).encode(), "size_usdc"),
    (json.dumps(rfq_body(size_usdc=[100])).encode(), "size_usdc"),
    (json.dumps(rfq_body(side=1)).encode(), "side"),
    (json.dumps(rfq_body(expires_in={"s": 30})).encode(), "expires_in"),
    (json.dumps(rfq_body(client_id="x" * 65)).encode(), "client_id"),
])
async def test_malformed_bodies(funded, raw, field):
    response = await funded.post("/trade/request", raw, ALICE)
    assert (response.status, response.code) == (400, "MALFORMED"), response.body
    if field is not None:
        assert response.body["error"]["detail"]["field"] == field
    assert (await funded.get("/rfqs")).body == []


@pytest.mark.parametrize("changes, status, code, field", [
    ({"size_usdc": 0.0000001}, 400, "INVALID_FIELD", "size_usdc"),
    ({"size_usdc": "100.0000005"}, 400, "INVALID_FIELD", "size_usdc"),
    ({"max_funding_rate": 0.0000000001}, 400, "INVALID_FIELD", "max_funding_rate"),
    ({"expires_in": 0.0001}, 400, "INVALID_FIELD", "expires_in"),
    ({"size_usdc": "NaN"}, 400, "INVALID_FIELD", "size_usdc"),
    ({"size_usdc": "Infinity"}, 400, "INVALID_FIELD", "size_usdc"),
    ({"size_usdc": 1e30}, 400, "OUT_OF_RANGE", "size_usdc"),
    ({"size_usdc": "1e999999999"}, 400, "INVALID_FIELD", "size_usdc"),  # a decimal string has no exponent
    ({"size_usdc": 5}, 422, "OUT_OF_RANGE", "size_usdc"),  # fits the schema's form; the market's minimum (10 USDC)
    ({"leverage": 10**30}, 400, "OUT_OF_RANGE", "leverage"),
    ({"leverage": 10.5}, 400, "INVALID_FIELD", "leverage"),
    ({"leverage": "5", "size_usdc": 5000}, 422, "INSUFFICIENT_FUNDS", None),  # "5" and 10.0 are whole numbers
    ({"leverage": 10.0, "size_usdc": "10000.000000"}, 422, "INSUFFICIENT_FUNDS", None),
    ({"leverage": 50}, 422, "OUT_OF_RANGE", "leverage"),  # the market's max leverage (the engine's rule)
    ({"side": "sideways"}, 400, "INVALID_FIELD", "side"),
    ({"duration": "2h"}, 400, "INVALID_FIELD", "duration"),
    ({"market": "DOGE-PERP"}, 404, "UNKNOWN_MARKET", None),
    ({"size_usdc": 900_000}, 422, "INSUFFICIENT_FUNDS", None),
])
async def test_values_that_do_not_fit(funded, changes, status, code, field):
    response = await funded.post("/trade/request", rfq_body(**changes), ALICE)
    assert (response.status, response.code) == (status, code), response.body
    if field is not None:
        assert response.body["error"]["detail"]["field"] == field
    assert set(response.body["error"]) == {"code", "message", "detail"}
    if changes == {"size_usdc": 5}:  # the engine's rejection, in the API's units
        assert response.body["error"]["detail"] == {"field": "size_usdc", "value": "5", "min": "10",
                                                    "max": "1000000"}
    if code == "INSUFFICIENT_FUNDS":
        assert response.body["error"]["detail"]["available_usdc"] == "1000"


async def test_state_conflicts_and_unknown_ids(funded):
    rig = funded
    unknown = await rig.post("/trade/quote", {"request_id": "99", "funding_rate": 0.001, "collateral_usdc": 100},
                             BOB)
    assert (unknown.status, unknown.code) == (404, "UNKNOWN_RFQ")
    bad_id = await rig.post("/trade/quote", {"request_id": "007", "funding_rate": 0.001, "collateral_usdc": 100},
                            BOB)
    assert (bad_id.status, bad_id.code) == (400, "INVALID_FIELD")
    request = await rig.ok("/trade/request", rfq_body(expires_in=1), ALICE)
    self_quote = await rig.post("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.001,
                                                 "collateral_usdc": 100}, ALICE)
    assert (self_quote.status, self_quote.code) == (422, "SELF_QUOTE")
    above = await rig.post("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.02,
                                            "collateral_usdc": 100}, BOB)
    assert (above.status, above.code) == (422, "RATE_ABOVE_MAX")
    no_quotes = await rig.post("/trade/accept", {"request_id": request["request_id"], "quote_id": "best",
                                                 "signature": str(ALICE.sign_message(
                                                     f"accept:{request['request_id']}:best".encode()))}, ALICE)
    assert (no_quotes.status, no_quotes.code) == (422, "NO_QUOTES")
    rig.clock.advance_ms(1_500)
    late = await rig.post("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.001,
                                           "collateral_usdc": 100}, BOB)
    assert (late.status, late.code) == (409, "RFQ_EXPIRED")
    position = await rig.post("/trade/close", {"position_id": "5"}, ALICE)
    assert (position.status, position.code) == (404, "UNKNOWN_POSITION")
    cancel_both = await rig.post("/trade/cancel", {"request_id": "1", "quote_id": "1"}, ALICE)
    assert (cancel_both.status, cancel_both.code) == (422, "INVALID_FIELD")  # a rule across fields
    await still_serving(rig)


async def test_client_id_returns_the_first_result(funded):
    rig = funded
    first = await rig.ok("/trade/request", rfq_body(client_id="order-1"), ALICE)
    again = await rig.ok("/trade/request", rfq_body(client_id="order-1"), ALICE)  # a new signature: not a replay
    assert again["duplicate"] is True
    assert (again["request_id"], again["seq"], again["events"]) == (first["request_id"], first["seq"],
                                                                      first["events"])
    assert len((await rig.get("/rfqs")).body) == 1


async def test_cancel_and_margin_and_withdraw(funded):
    rig = funded
    request = await rig.ok("/trade/request", rfq_body(), ALICE)
    quote = await rig.ok("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.004,
                                          "collateral_usdc": 100}, BOB)
    cancelled = await rig.ok("/trade/cancel", {"quote_id": quote["quote_id"]}, BOB)
    assert cancelled["quote_id"] == quote["quote_id"] and cancelled["events"][0]["reason"] == "cancelled"
    not_owner = await rig.post("/trade/cancel", {"request_id": request["request_id"]}, BOB)
    assert (not_owner.status, not_owner.code) == (403, "NOT_OWNER")
    quote = await rig.ok("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.004,
                                          "collateral_usdc": 100}, BOB)
    accepted = await rig.ok("/trade/accept", {"request_id": request["request_id"], "quote_id": quote["quote_id"],
                                              "signature": str(ALICE.sign_message(
                                                  f"accept:{request['request_id']}:{quote['quote_id']}".encode()))},
                            ALICE)
    position_id = accepted["position_id"]
    added = await rig.ok("/trade/margin", {"position_id": position_id, "amount_usdc": "2.5"}, ALICE)
    assert added["events"][0]["delta_usdc"] == "2.5"
    removed = await rig.ok("/trade/margin", {"position_id": position_id, "action": "remove", "amount_usdc": 1},
                           ALICE)
    assert removed["events"][0]["delta_usdc"] == "-1"
    too_much = await rig.post("/trade/margin", {"position_id": position_id, "amount_usdc": -11}, ALICE)
    assert (too_much.status, too_much.code) == (422, "INSUFFICIENT_MARGIN")
    zero = await rig.post("/trade/margin", {"position_id": position_id, "amount_usdc": 0}, ALICE)
    assert (zero.status, zero.code) == (422, "OUT_OF_RANGE")  # a rule the schema cannot state
    assert (await rig.get(f"/positions/{position_id}")).body["margin_long_usdc"] == "11.5"
    withdrawn = await rig.ok("/account/withdraw", {"amount_usdc": "0.000001", "destination": agent_of(ALICE)},
                             ALICE)
    assert withdrawn["events"][0]["amount_usdc"] == "0.000001"
    broke = await rig.post("/account/withdraw", {"amount_usdc": 10_000, "destination": "x"}, ALICE)
    assert (broke.status, broke.code) == (422, "INSUFFICIENT_FUNDS")


async def test_routes_sizes_and_methods(funded):
    rig = funded
    missing = await rig.get("/nope")
    assert (missing.status, missing.code) == (404, "NOT_FOUND")
    method = await rig.raw("DELETE", "/trade/request")
    assert (method.status, method.code) == (405, "METHOD_NOT_ALLOWED")
    big = b'{"pad": "' + b"x" * rig.venue.config.gateway.max_frame_bytes + b'"}'
    too_large = await rig.post("/trade/request", big, ALICE)
    assert (too_large.status, too_large.code) == (413, "FRAME_TOO_LARGE")
    assert (await rig.get("/rfqs?market=NOPE")).code == "UNKNOWN_MARKET"
    assert (await rig.get("/events?from_seq=abc")).status == 400
    assert (await rig.get("/events?limit=0")).code == "OUT_OF_RANGE"
    assert (await rig.get("/accounts/alice")).code == "INVALID_FIELD"
    fresh = await rig.get(f"/accounts/{agent_of(keypair(77))}")
    assert fresh.body == {"agent_id": agent_of(keypair(77)), "free_usdc": "0", "held_usdc": "0",
                          "margin_usdc": "0", "positions": []}
    await still_serving(rig)


async def test_dev_helpers_only_with_dev(tmp_path):
    rig = await start_rig(tmp_path, dev=False)
    try:
        faucet = await rig.post("/dev/faucet", {"agent_id": agent_of(ALICE), "amount_usdc": 10})
        assert (faucet.status, faucet.code) == (404, "NOT_FOUND")
        oracle = await rig.post("/dev/oracle", {"market": "BTC-PERP", "price": 1})
        assert (oracle.status, oracle.code) == (404, "NOT_FOUND")
        assert "/dev/faucet" not in (await rig.get("/openapi.json")).body["paths"]
    finally:
        await stop_rig(rig)


async def test_a_replacing_quote_answers_with_its_own_id(funded):
    rig = funded
    request = await rig.ok("/trade/request", rfq_body(), ALICE)
    first = await rig.ok("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.004,
                                          "collateral_usdc": 100}, BOB)
    second = await rig.ok("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.003,
                                           "collateral_usdc": 100}, BOB)
    released = next(e for e in second["events"] if e["type"] == "quote_released.v1")
    assert released["quote_id"] == first["quote_id"] and released["reason"] == "replaced"
    assert second["quote_id"] != first["quote_id"]
    [live] = (await rig.get(f"/quotes?request_id={request['request_id']}")).body
    assert live["quote_id"] == second["quote_id"] and live["funding_rate"] == "0.003"
