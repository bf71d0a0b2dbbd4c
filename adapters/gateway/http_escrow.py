"""``GET /escrow/reconcile``: the live chain against the engine (issue 13).

The venue's settlement (``venue.settlement.VenueSettlement``) compares, at its checkpoint, every
agent's free and locked balance, every position, the program's books and the vault with the
engine's state at that same seq. Amounts stay integers (micro-USDC, ``_e6``) as
``adapters/solana/reconcile.Report`` has them; ``ok`` is true when nothing differs. With
settlement off (``--settlement none``): ``UNAVAILABLE`` (503).
"""

from __future__ import annotations

from aiohttp import web

from protocol.codes import UNAVAILABLE


def add_routes(app: web.Application, gateway) -> None:
    async def reconcile(request: web.Request) -> web.Response:
        settlement = gateway.venue.projections.settlement
        if settlement is None or not settlement.enabled:
            raise gateway.error(UNAVAILABLE, "settlement is off on this venue ([settlement] backend = none)",
                                hint="start the venue with --settlement litesvm (the default) or rpc")
        from adapters.gateway.http import json_response
        return json_response(await settlement.reconcile())

    app.router.add_get("/escrow/reconcile", reconcile)


def openapi_paths() -> dict:
    """This module's entries of ``/openapi.json``."""
    error = {"description": "error", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorBody"}}}}
    difference = {"type": "object", "properties": {
        "kind": {"type": "string", "enum": ["agent", "position", "config", "vault", "journal"]},
        "key": {"type": "string"}, "field": {"type": "string"}, "engine": {}, "chain": {}}}
    report = {"type": "object", "properties": {
        "ok": {"type": "boolean", "description": "no difference"},
        "differences": {"type": "array", "items": difference},
        "agents_checked": {"type": "integer"}, "positions_checked": {"type": "integer"},
        "vault_balance_e6": {"type": "integer", "description": "the vault's USDC, micro-USDC"},
        "chain_held_e6": {"type": "integer", "description": "Σ agents' free + locked, fees and insurance on chain"},
        "seq": {"type": "integer", "description": "compared at this seq (the settlement's checkpoint)"},
        "engine_seq": {"type": "integer"}, "lag_seq": {"type": "integer"},
        "backend": {"type": "string", "enum": ["litesvm", "rpc"]}, "vault": {"type": "string"},
        "unmirrored": {"type": "array", "items": {"type": "object"},
                       "description": "events the chain cannot express (seq, event, reason)"}}}
    return {"/escrow/reconcile": {"get": {
        "summary": "The live escrow chain against the engine: every agent and position, the vault",
        "description": (__doc__ or "").strip(),
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": report}}},
                      "503": error}}}}
