"""The OpenAPI 3.1 document of the HTTP API (served at ``/openapi.json``), generated from the
request and response structs of ``http_schemas`` with ``msgspec.json.schema_components`` —
never written by hand, so it cannot drift from what the handlers decode and encode."""

from __future__ import annotations

import msgspec

from adapters.dashboard import routes as dashboard_routes
from adapters.gateway import http_history
from adapters.gateway import http_schemas as s
from adapters.gateway import websocket
from adapters.gateway.http_schemas import EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX

REF = "#/components/schemas/{name}"
SIGNED = [{"agent": [], "timestamp": [], "signature": []}]

# (path, body struct, summary) of every signed POST.
SIGNED_POSTS = (
    ("/trade/request", s.TradeRequestBody, "Ask for quotes (open an RFQ); holds size/leverage + taker fee"),
    ("/trade/quote", s.TradeQuoteBody, "Quote a funding rate with firm collateral on an RFQ"),
    ("/trade/accept", s.TradeAcceptBody, "Accept a quote (or the best one); opens the position"),
    ("/trade/close", s.TradeCloseBody, "Close a percentage of a position (either party)"),
    ("/trade/cancel", s.TradeCancelBody, "Cancel one's RFQ (request_id) or quote (quote_id)"),
    ("/trade/liquidate", s.TradeLiquidateBody, "Liquidate a liquidatable position (keeper; earns the reward)"),
    ("/trade/margin", s.TradeMarginBody, "Add margin to, or remove it from, one's side of a position"),
    ("/account/withdraw", s.WithdrawBody, "Withdraw free USDC to an external destination"),
)
DEV_POSTS = (
    ("/dev/faucet", s.FaucetBody, "Credit free USDC (dev only; unsigned)"),
    ("/dev/oracle", s.OracleBody, "Set a market's oracle price now (dev only; unsigned)"),
)
ERROR_STATUSES = {
    "400": "the request does not fit this document: MALFORMED, INVALID_FIELD, OUT_OF_RANGE",
    "401": "NOT_AUTHENTICATED, BAD_AGENT, STALE_REQUEST, BAD_SIGNATURE",
    "403": "FORBIDDEN, NOT_OWNER",
    "404": "UNKNOWN_MARKET, UNKNOWN_RFQ, UNKNOWN_QUOTE, UNKNOWN_POSITION, NOT_FOUND",
    "409": "DUPLICATE (replayed request), RFQ_EXPIRED, RFQ_CLOSED, QUOTE_EXPIRED, ORACLE_OUT_OF_ORDER",
    "413": "FRAME_TOO_LARGE",
    "422": "it fits this document, and a rule of the venue refuses it: the engine's business rejections "
           "(INSUFFICIENT_FUNDS, RATE_ABOVE_MAX, ORACLE_STALE, ...), a market's own range, a rule across "
           "fields (OUT_OF_RANGE, INVALID_FIELD)",
    "429": "OVERLOADED, RATE_LIMITED",
    "503": "STOPPED",
}


def _ref(struct: type) -> dict[str, str]:
    return {"$ref": REF.format(name=struct.__name__)}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _number_branch(field_schema: dict) -> dict:
    """The JSON-number branch of a decimal field's schema (``http_schemas.decimal_schema``)."""
    for option in field_schema.get("anyOf", ()):
        if "anyOf" in option:  # an optional field: (decimal | null)
            return _number_branch(option)
        if option.get("type") in ("number", "integer"):
            return option
    raise KeyError("not a decimal field")


def _narrow_to_markets(components: dict, markets) -> None:
    """Each market-dependent field bounded by the venue's own markets (their union)."""
    symbols = [m.symbol for m in markets]
    for name in ("TradeRequestBody", "OracleBody"):
        components[name]["properties"]["market"] = {"type": "string", "enum": symbols}
    request = components["TradeRequestBody"]["properties"]
    size = _number_branch(request["size_usdc"])
    size["minimum"] = _human(min(m.size_e6_min for m in markets), 6)
    size["maximum"] = _human(max(m.size_e6_max for m in markets), 6)
    _number_branch(request["leverage"])["maximum"] = max(m.leverage_max for m in markets)
    _number_branch(request["expires_in"])["maximum"] = _human(max(m.rfq_lifetime_ms_max for m in markets), 3)
    quote = components["TradeQuoteBody"]["properties"]
    _number_branch(quote["valid_for"])["maximum"] = _human(max(m.quote_lifetime_ms_max for m in markets), 3)


def _human(units: int, places: int) -> int | float:
    """``units × 10**-places`` as the JSON number a schema states (exact: a short decimal)."""
    whole, fraction = divmod(units, 10**places)
    return whole if not fraction else float(f"{units}e-{places}")


def _errors() -> dict:
    return {status: {"description": codes, **_json(_ref(s.ErrorBody))} for status, codes in ERROR_STATUSES.items()}


def _post(body: type, summary: str, signed: bool) -> dict:
    operation = {
        "summary": summary,
        "description": (body.__doc__ or "").strip(),
        "requestBody": {"required": True, **_json(_ref(body))},
        "responses": {"200": {"description": "accepted: the command's events", **_json(_ref(s.CommandResult))},
                      **_errors()},
    }
    if signed:
        operation["security"] = SIGNED
    return {"post": operation}


def _get(summary: str, schema: dict, parameters: list[dict] | None = None, statuses: tuple[str, ...] = ("400",)) -> dict:
    errors = _errors()
    return {"get": {"summary": summary, "parameters": parameters or [],
                    "responses": {"200": {"description": "OK", **_json(schema)},
                                  **{status: errors[status] for status in statuses}}}}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


def _list(struct: type) -> dict:
    return {"type": "array", "items": _ref(struct)}


def document(markets, *, dev: bool = True) -> dict:
    """The OpenAPI document of a venue with ``markets`` (the dev helpers only when ``dev``)."""
    _, components = msgspec.json.schema_components(s.REQUEST_BODIES + s.RESPONSES, ref_template=REF)
    _narrow_to_markets(components, markets)
    symbols = [m.symbol for m in markets]
    market = {"type": "string", "enum": symbols}
    agent = {"type": "string", "pattern": s.AGENT_PATTERN}
    an_id = {"type": "string", "pattern": s.ID_PATTERN}
    paths: dict[str, dict] = {}
    for path, body, summary in SIGNED_POSTS:
        paths[path] = _post(body, summary, signed=True)
    if dev:
        for path, body, summary in DEV_POSTS:
            paths[path] = _post(body, summary, signed=False)
    seq = {"type": "integer", "minimum": 1, "maximum": 2**62}
    paths["/markets"] = _get("Markets, their parameters and last oracle price", _list(s.MarketInfo), statuses=())
    paths["/rfqs"] = _get("Open RFQs", _list(s.RfqInfo), [_query("market", "only this market's", market)],
                          ("400", "404"))
    paths["/quotes"] = _get("Live quotes", _list(s.QuoteInfo), [_query("request_id", "only this RFQ's", an_id)])
    paths["/positions"] = _get("Open positions", _list(s.PositionInfo),
                               [_query("agent", "only this agent's", agent),
                                _query("market", "only this market's", market)], ("400", "404"))
    paths["/positions/{position_id}"] = _get(
        "One open position", _ref(s.PositionInfo),
        [{"name": "position_id", "in": "path", "required": True, "schema": an_id}], ("400", "404"))
    paths["/accounts/{agent}"] = _get(
        "An agent's balances and open positions", _ref(s.AccountInfo),
        [{"name": "agent", "in": "path", "required": True, "schema": agent}])
    # issue 16: the per-agent risk view (protocol/risk.py), rendered by http.risk_info
    paths["/agents/{agent}/risk"] = _get(
        "An agent's risk: exposure per market, margin usage, distance to liquidation, a 0-100 score",
        RISK_SCHEMA, [{"name": "agent", "in": "path", "required": True, "schema": agent}])
    paths["/events"] = _get("The journal's events in seq order, in human units", _ref(s.EventsPage),
                            [_query("from_seq", "first seq (default 1)", seq),
                             _query("limit", f"at most this many (default {EVENTS_PAGE_DEFAULT})",
                                    {"type": "integer", "minimum": 1, "maximum": EVENTS_PAGE_MAX})])
    paths["/health"] = _get("Liveness and the last durable seq (503 while stopping)", _ref(s.Health), statuses=())
    paths["/metrics"] = {"get": {"summary": "Prometheus metrics (text exposition format)", "responses": {
        "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}}}}
    paths["/openapi.json"] = {"get": {"summary": "This document", "responses": {
        "200": {"description": "OK", **_json({"type": "object"})}}}}
    paths["/ws"] = {"get": {
        "summary": "WebSocket event streams (upgrade)",
        "description": (websocket.__doc__ or "").strip(),
        "parameters": [_query("streams", "comma-separated: " + ", ".join(websocket.ALL_STREAMS)
                              + " (default: " + ", ".join(websocket.DEFAULT_STREAMS) + ")",
                              {"type": "string", "pattern": "^(" + "|".join(websocket.ALL_STREAMS) + ")(,("
                               + "|".join(websocket.ALL_STREAMS) + "))*$"}),
                       _query("from_seq", "replay from this seq, then live (default: live only)", seq)],
        # Public streams need no signature; the account stream needs the signed upgrade.
        "security": [{}, *SIGNED],
        "responses": {"101": {"description": "switching protocols"},
                      "426": {"description": "not a WebSocket upgrade request", **_json(_ref(s.ErrorBody))},
                      **{k: v for k, v in _errors().items() if k in ("400", "401", "429")}}}}
    # -- the SQL history reads (adapters/gateway/http_history.py) --
    paths.update(http_history.openapi_paths())
    from adapters.gateway import http_escrow  # GET /escrow/reconcile (issue 13)
    paths.update(http_escrow.openapi_paths())
    from adapters.gateway import http_hedging  # GET /hedging/audit, /hedging/orders (docs/hedging.md)
    paths.update(http_hedging.openapi_paths())
    paths.update(dashboard_routes.openapi_paths())  # GET /, /dashboard/* (docs/dashboard.md)
    return {
        "openapi": "3.1.0",
        "info": {"title": "agentperp", "version": "1",
                 "description": "Perpetual futures between AI agents by RFQ. Human units: decimal USDC, "
                                "fractions per 8h for funding rates, seconds. See docs/http.md."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "agent": {"type": "apiKey", "in": "header", "name": "X-Agent",
                          "description": "base58 Ed25519 public key"},
                "timestamp": {"type": "apiKey", "in": "header", "name": "X-Timestamp",
                              "description": "Unix time in ms, within the signature window of the venue's clock"},
                "signature": {"type": "apiKey", "in": "header", "name": "X-Signature",
                              "description": "base58 Ed25519 signature over "
                                             "\"{timestamp}\\n{METHOD}\\n{path}\\n\" + body"},
            },
        },
    }


# -- GET /agents/{agent}/risk (issue 16) --------------------------------------------------------------

_USDC = {"type": "string"}
_BPS_OR_NULL = {"anyOf": [{"type": "integer"}, {"type": "null"}]}


def _object(properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


RISK_SCHEMA = _object({
    "agent_id": {"type": "string"}, "equity_usdc": _USDC, "free_usdc": _USDC, "held_usdc": _USDC,
    "margin_usdc": _USDC, "unrealized_pnl_usdc": _USDC, "net_exposure_usdc": _USDC, "gross_exposure_usdc": _USDC,
    "margin_usage_bps": {"type": "integer"}, "maintenance_usdc": _USDC, "maintenance_usage_bps": {"type": "integer"},
    "leverage_bps": {"type": "integer"}, "liquidation_distance_bps": _BPS_OR_NULL,
    "score": {"type": "integer", "minimum": 0, "maximum": 100},
    "level": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
    "markets": {"type": "array", "items": _object({
        "market": {"type": "string"}, "price": {"type": "string"}, "positions": {"type": "integer"},
        "net_exposure_usdc": _USDC, "gross_exposure_usdc": _USDC, "unrealized_pnl_usdc": _USDC,
        "margin_usdc": _USDC, "liquidation_distance_bps": _BPS_OR_NULL})},
    "positions": {"type": "array", "items": _object({
        "position_id": {"type": "string"}, "market": {"type": "string"},
        "side": {"type": "string", "enum": ["long", "short"]}, "exposure_usdc": _USDC,
        "unrealized_pnl_usdc": _USDC, "margin_usdc": _USDC, "maintenance_usdc": _USDC,
        "liquidation_price": {"type": "string"}, "liquidation_distance_bps": _BPS_OR_NULL})},
})
