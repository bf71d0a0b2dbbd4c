"""The hedger's audit trail from the SQL read model (docs/hedging.md, "Audit trail"):

- ``GET /hedging/audit?maker=&kind=&limit=``: the newest audit lines (decisions, requests,
  responses, resolutions, reconciliations), each with its redacted JSON ``record``;
- ``GET /hedging/orders?maker=&limit=``: the newest hedge orders (client order id, exchange,
  side, quantity, limit price, status, filled quantity), quantities and prices as decimal strings.

Bad parameters: ``INVALID_FIELD`` / ``OUT_OF_RANGE`` (400) naming the field and what is allowed.
With hedging off they answer what earlier runs imported; with the read models off
(``--no-sql``): ``UNAVAILABLE`` (503).
"""

from __future__ import annotations

from aiohttp import web

from adapters.gateway.http_history import AGENT_CHARS_MAX, render_row
from adapters.hedging import audit_sql
from engine import rejections as rj
from protocol.codes import UNAVAILABLE

KINDS = ("decision", "request", "response", "resolved", "reconcile", "log_opened")


def add_routes(app: web.Application, gateway) -> None:
    def params(request: web.Request) -> dict:
        maker = request.query.get("maker") or None
        if maker is not None and len(maker) > AGENT_CHARS_MAX:
            raise gateway.error(rj.INVALID_FIELD, f"maker is longer than {AGENT_CHARS_MAX} characters", field="maker")
        limit = gateway.query_int(request, "limit", audit_sql.LIMIT_DEFAULT, 1, audit_sql.LIMIT_MAX)
        return {"maker": maker, "limit": limit}

    async def read(fn, **kwargs):
        hedging = getattr(gateway.venue, "hedger", None)
        rows = await hedging.audit(fn, **kwargs) if hedging is not None else None
        if rows is None:
            raise gateway.error(UNAVAILABLE, "the SQL read models are off on this venue (projections.sql)",
                                setting="projections.sql", hint="the hedger's audit is in DATA/hedging/audit.jsonl")
        from adapters.gateway.http import json_response
        return json_response(rows)

    async def audit(request: web.Request) -> web.Response:
        kind = request.query.get("kind") or None
        if kind is not None and kind not in KINDS:
            raise gateway.error(rj.INVALID_FIELD, f"kind must be one of {', '.join(KINDS)}", field="kind",
                                allowed=list(KINDS))
        response = await read(lambda conn, **kw: {"entries": audit_sql.recent(conn, **kw)}, kind=kind,
                              **params(request))
        return response

    async def orders(request: web.Request) -> web.Response:
        return await read(lambda conn, **kw: {"orders": [render_row(r) for r in audit_sql.orders(conn, **kw)]},
                          **params(request))

    app.router.add_get("/hedging/audit", audit)
    app.router.add_get("/hedging/orders", orders)


def openapi_paths() -> dict:
    """This module's entries of ``/openapi.json``."""
    error = {"description": "error", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorBody"}}}}

    def query(name: str, description: str, schema: dict) -> dict:
        return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}

    maker = query("maker", "only this maker's (agent id)", {"type": "string", "maxLength": AGENT_CHARS_MAX})
    limit = query("limit", f"rows, newest first (default {audit_sql.LIMIT_DEFAULT})",
                  {"type": "integer", "minimum": 1, "maximum": audit_sql.LIMIT_MAX})
    entry = {"type": "object", "properties": {
        "ts_ns": {"type": "integer"}, "kind": {"type": "string", "enum": list(KINDS)},
        "maker": {"type": ["string", "null"]}, "market": {"type": ["integer", "null"]},
        "exchange": {"type": ["string", "null"]}, "call": {"type": ["string", "null"]},
        "cid": {"type": ["string", "null"], "description": "the order's newClientOrderId"},
        "action": {"type": ["string", "null"]}, "error": {"type": ["string", "null"]},
        "record": {"type": "object", "description": "the audit line as written (secrets redacted)"}}}
    order = {"type": "object", "properties": {
        "cid": {"type": "string"}, "maker": {"type": "string"}, "exchange": {"type": "string"},
        "symbol": {"type": "string"}, "side": {"type": "string", "enum": ["buy", "sell"]},
        "qty": {"type": "string", "description": "base units asked"},
        "price": {"type": "string", "description": "the IOC's limit price"},
        "filled": {"type": ["string", "null"]}, "seq": {"type": "integer"},
        "status": {"type": "string", "description": "sent | closed | canceled | expired | open | rejected | "
                                                     "refused | unknown | resolved | never_placed"},
        "error": {"type": ["string", "null"]}, "sent_ts_ns": {"type": "integer"}, "updated_ts_ns": {"type": "integer"}}}

    def get(summary: str, parameters: list, key: str, item: dict) -> dict:
        schema = {"type": "object", "properties": {key: {"type": "array", "items": item}}}
        return {"get": {"summary": summary, "description": (__doc__ or "").strip(), "parameters": parameters,
                        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                                      "400": error, "503": error}}}

    kind = query("kind", "only lines of this kind", {"type": "string", "enum": list(KINDS)})
    return {"/hedging/audit": get("The hedger's audit trail (SQL read model)", [maker, kind, limit], "entries", entry),
            "/hedging/orders": get("The hedger's orders (SQL read model)", [maker, limit], "orders", order)}
