"""/metrics is Prometheus text; /openapi.json describes every route; /markets, /health."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.support import agent_of, keypair


async def test_metrics_parse_as_prometheus_text(rig):
    await rig.faucet(keypair(1), 100)
    response = await rig.session.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    assert {"agentperp_commands", "agentperp_queue_depth_commands", "agentperp_open_interest_usdc",
            "agentperp_open_positions"} <= set(families)
    assert families["agentperp_commands"].samples[0].value >= 1


async def test_openapi_describes_every_route(rig):
    document = (await rig.get("/openapi.json")).body
    assert document["openapi"].startswith("3.")
    routes = {resource.canonical for resource in rig.runner.app.router.resources()}
    assert routes == set(document["paths"])
    schemas = document["components"]["schemas"]
    for name in ("TradeRequestBody", "TradeQuoteBody", "TradeAcceptBody", "TradeCloseBody", "CommandResult",
                 "AccountInfo", "PositionInfo", "ErrorBody"):
        assert name in schemas
    size = schemas["TradeRequestBody"]["properties"]["size_usdc"]["anyOf"]
    assert size[0] == {"type": "number", "minimum": 10, "maximum": 1_000_000, "multipleOf": 1e-06}  # the markets'
    assert size[1] == {"type": "string", "pattern": "^[0-9]{1,7}(\\.[0-9]{1,6})?$"}
    assert schemas["TradeRequestBody"]["properties"]["market"]["enum"] == ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    assert set(document["components"]["securitySchemes"]) == {"agent", "timestamp", "signature"}
    assert document["paths"]["/trade/request"]["post"]["security"] == [
        {"agent": [], "timestamp": [], "signature": []}]

    for path, item in document["paths"].items():
        for operation in item.values():
            for response in operation["responses"].values():
                for media in response.get("content", {}).values():
                    ref = media["schema"].get("$ref") or media["schema"].get("items", {}).get("$ref")
                    if ref:
                        assert ref.rsplit("/", 1)[1] in schemas, (path, ref)


async def test_a_405_says_what_is_allowed(rig):
    async with rig.session.request("PUT", "/trade/request") as response:
        assert response.status == 405 and response.headers["Allow"] == "POST"
        assert (await response.json())["error"]["detail"]["allowed"] == ["POST"]


async def test_markets_and_health(rig):
    markets = (await rig.get("/markets")).body
    assert [m["market"] for m in markets] == ["BTC-PERP", "ETH-PERP", "SOL-PERP"]
    assert markets[0]["price"] is None and markets[0]["size_min_usdc"] == "10"
    await rig.oracle("ETH-PERP", "3200.12345678")
    eth = (await rig.get("/markets")).body[1]
    assert (eth["price"], eth["conf"]) == ("3200.12345678", "0.32001234")
    health = (await rig.get("/health")).body
    assert health["status"] == "ok" and health["last_seq"] == rig.venue.state.last_seq and health["dev"] is True
    assert (await rig.get(f"/accounts/{agent_of(keypair(3))}")).status == 200


def test_every_code_has_a_client_error_status():
    from adapters.gateway.edge import STATUS_OF_CODE, status_of
    from engine import rejections
    from protocol import codes as edge_codes

    engine_codes = [v for k, v in vars(rejections).items() if k.isupper() and isinstance(v, str)]
    for code in [*engine_codes, *edge_codes.EDGE_CODES]:
        if code not in (edge_codes.STOPPED, edge_codes.INTERNAL, edge_codes.SHUTTING_DOWN, edge_codes.UNAVAILABLE):
            # the client's doing, a 4xx (STOPPED, SHUTTING_DOWN, UNAVAILABLE: the venue's own state; INTERNAL: a bug)
            assert 400 <= status_of(code) < 500, code
    assert (status_of("OVERLOADED"), status_of("STOPPED"), status_of("SOME_FUTURE_ENGINE_CODE")) == (429, 503, 422)
    assert all(400 <= status <= 503 for status in STATUS_OF_CODE.values())
    assert edge_codes.EDGE_CODES <= set(STATUS_OF_CODE), edge_codes.EDGE_CODES - set(STATUS_OF_CODE)


async def test_a_stopping_venue_answers_503(rig):
    rig.venue.sequencer.stop()
    response = await rig.post("/dev/faucet", {"agent_id": agent_of(keypair(1)), "amount_usdc": 1})
    assert (response.status, response.code) == (503, "STOPPED")
    assert (await rig.get("/health")).status == 503
