"""REST fuzz: random bodies, fields, types and paths, signed or not — never a 5xx, always a
JSON answer with a stable shape, and the books still balance afterwards."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.gateway import http_schemas as s
from engine import invariants
from tests.support import agent_of, keypair

TRADER, MAKER = keypair(1), keypair(2)
POSTS = ["/trade/request", "/trade/quote", "/trade/accept", "/trade/close", "/trade/cancel", "/trade/liquidate",
         "/trade/margin", "/account/withdraw", "/dev/faucet", "/dev/oracle"]
FIELDS = sorted({name for body in s.REQUEST_BODIES for name in body.__struct_fields__})
EXAMPLES = int(os.environ.get("AGENTPERP_FUZZ_EXAMPLES", "120"))

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.integers(-3, 200),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["best", "long", "short", "perpetual", "1h", "24h", "BTC-PERP", "add", "remove", "1", "2",
                     "0", "-1", "1e999", "NaN", "0.0000001", agent_of(TRADER), agent_of(MAKER)]),
    st.decimals(allow_nan=False, allow_infinity=False, places=12).map(str),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                            inner, max_size=3),
                      max_leaves=6)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), values, max_size=9)
# Valid bodies per route, to be mutated: the fuzz then reaches the engine's checks too.
TEMPLATES = {
    "/trade/request": {"market": "BTC-PERP", "side": "long", "size_usdc": 100, "leverage": 10,
                       "max_funding_rate": 0.01, "duration": "perpetual", "expires_in": 30},
    "/trade/quote": {"request_id": "1", "funding_rate": 0.005, "collateral_usdc": 100, "valid_for": 10},
    "/trade/accept": {"request_id": "1", "quote_id": "best", "signature": "1" * 88},
    "/trade/close": {"position_id": "1", "size_percent": 50},
    "/trade/cancel": {"quote_id": "1"},
    "/trade/liquidate": {"position_id": "1"},
    "/trade/margin": {"position_id": "1", "amount_usdc": 1},
    "/account/withdraw": {"amount_usdc": 1, "destination": "somewhere"},
    "/dev/faucet": {"agent_id": agent_of(TRADER), "amount_usdc": 5},
    "/dev/oracle": {"market": "BTC-PERP", "price": 100_000},
}


@st.composite
def requests(draw):
    path = draw(st.sampled_from(POSTS))
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "bytes"]))
    if kind == "bytes":
        return path, b"\x00raw" + draw(st.binary(max_size=40))
    if kind == "random":
        return path, draw(bodies)
    body = dict(TEMPLATES[path])
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del body[key]
        else:
            body[key] = draw(values)
    body.update(draw(st.dictionaries(st.sampled_from(FIELDS), values, max_size=2)))
    return path, body


def encode(body) -> bytes:
    return json.dumps(body, default=str).encode()


def check_answer(response) -> None:
    assert response.status < 500, response.body
    if response.status == 200:
        assert "seq" in response.body or isinstance(response.body, list), response.body
    else:
        error = response.body["error"]
        assert set(error) == {"code", "message", "detail"} and error["code"].isupper(), response.body


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests(), signer=st.sampled_from([TRADER, MAKER, MAKER, TRADER, None]))
async def test_random_posts_never_fail_the_venue(fuzz_rig, request, signer):
    rig = fuzz_rig
    path, body = request
    raw = body if isinstance(body, bytes) else encode(body)
    response = await rig.post(path, raw, signer)
    check_answer(response)
    invariants.check(rig.venue.state)


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segment=st.text(min_size=1, max_size=30).map(lambda t: t.replace("/", "").replace("?", "").replace("#", "")
                                                    or "x"),
       route=st.sampled_from(["/accounts/{}", "/positions/{}", "/events?from_seq={}", "/events?limit={}",
                              "/quotes?request_id={}", "/rfqs?market={}", "/positions?market={}", "/ws?streams={}",
                              "/ws?from_seq={}", "/{}"]))
async def test_random_reads_never_fail_the_venue(fuzz_rig, segment, route):
    from urllib.parse import quote

    response = await fuzz_rig.get(route.format(quote(segment, safe="")))
    assert response.status < 500, response.body
