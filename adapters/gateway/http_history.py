"""The HTTP reads that need history, answered from the SQL read models (docs/projections.md):

- ``GET /agents/{agent}/stats``: the agent's KPIs and balances;
- ``GET /leaderboard?by=pnl|sharpe|volume|reliability&limit=N``;
- ``GET /history/positions?agent=&status=open|closed|liquidated|expired&before_id=&limit=``:
  positions newest first, keyset-paginated (``next_before_id``), at most ``PAGE_SIZE_MAX``.

Every answer says how far the read model is (``as_of_seq``): it follows the journal
asynchronously, so it may be a few seqs behind ``/health``'s ``last_seq``. Rows are rendered
with the gateway's one rule: ``X_e6`` -> ``X_usdc``, ``X_e8`` / ``X_e9`` -> ``X`` (decimal
strings), ids as strings. With the read models off: ``UNAVAILABLE`` (503).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from adapters.gateway import human as h
from engine import rejections as rj
from ledger.projections.sql import queries
from protocol.codes import UNAVAILABLE, UNKNOWN_AGENT

AGENT_CHARS_MAX = 64  # the read model's key column
BEFORE_ID_MAX = 2**62  # keyset cursor bound (ids are int64)
_ID_FIELDS = {"position_id", "quote_id"}
_DROP = {"market"}  # the numeric id: rows carry market_symbol


def render_row(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name in _DROP:
            continue
        if name == "rfq_id":
            out["request_id"] = str(value)
        elif name in _ID_FIELDS:
            out[name] = None if value is None else str(value)
        elif name.endswith("_e6"):
            out[name[:-3] + "_usdc"] = None if value is None else h.usdc(value)
        elif name.endswith("_e8"):
            out[name[:-3]] = None if value is None else h.price(value)
        elif name.endswith("_e9"):
            out[name[:-3]] = None if value is None else h.rate(value)
        else:
            out[name] = value
    return out


class HistoryRoutes:
    def __init__(self, gateway) -> None:
        self.gateway = gateway  # the HttpGateway: its venue, json_response and query helpers
        self.projections = gateway.venue.projections

    def _require(self) -> None:
        if self.projections.sql is None:
            raise self.gateway.error(UNAVAILABLE, "the SQL read models are off on this venue (projections.sql)",
                                     setting="projections.sql")

    async def _read(self, fn, *args, **kwargs):
        self._require()
        as_of = await self.projections.read(queries.checkpoint, self.projections.sql.name)
        return (as_of[0] if as_of else 0), await self.projections.read(fn, *args, **kwargs)

    def _agent(self, agent: str | None) -> str | None:
        if agent is not None and len(agent) > AGENT_CHARS_MAX:
            raise self.gateway.error(rj.INVALID_FIELD, f"the agent key is longer than {AGENT_CHARS_MAX} characters",
                                     field="agent")
        return agent

    async def stats(self, request: web.Request) -> web.Response:
        agent = self._agent(request.match_info["agent"])
        as_of, found = await self._read(queries.agent_stats, agent)
        if found is None:
            raise self.gateway.error(UNKNOWN_AGENT, f"the read model has no agent {agent[:64]}", agent=agent[:64],
                                     as_of_seq=as_of)
        return _json({"as_of_seq": as_of, **render_row(found)})

    async def leaderboard(self, request: web.Request) -> web.Response:
        by = request.query.get("by", "pnl")
        if by not in queries.LEADERBOARD_BY:
            raise self.gateway.error(rj.INVALID_FIELD, f"by must be one of {', '.join(queries.LEADERBOARD_BY)}",
                                     field="by", allowed=list(queries.LEADERBOARD_BY))
        limit = self.gateway.query_int(request, "limit", queries.LEADERBOARD_SIZE_DEFAULT, 1,
                                       queries.LEADERBOARD_SIZE_MAX)
        as_of, rows = await self._read(queries.leaderboard, by, limit)
        return _json({"as_of_seq": as_of, "by": by,
                      "agents": [{"rank": i + 1, **render_row(row)} for i, row in enumerate(rows)]})

    async def positions(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        if status is not None and status not in queries.POSITION_STATUS:
            raise self.gateway.error(rj.INVALID_FIELD, f"status must be one of {', '.join(queries.POSITION_STATUS)}",
                                     field="status", allowed=list(queries.POSITION_STATUS))
        limit = self.gateway.query_int(request, "limit", queries.PAGE_SIZE_DEFAULT, 1, queries.PAGE_SIZE_MAX)
        before_id = request.query.get("before_id")
        before = None if before_id is None else self.gateway.query_int(request, "before_id", 0, 1, BEFORE_ID_MAX)
        agent = self._agent(request.query.get("agent") or None)
        as_of, (rows, next_before) = await self._read(queries.positions_history, agent=agent, status=status,
                                                      before_id=before, limit=limit)
        return _json({"as_of_seq": as_of, "positions": [render_row(row) for row in rows],
                      "next_before_id": None if next_before is None else str(next_before)})



def _json(value) -> web.Response:
    from adapters.gateway.http import json_response

    return json_response(value)


def add_routes(app: web.Application, gateway) -> None:
    routes = HistoryRoutes(gateway)
    app.router.add_get("/agents/{agent}/stats", routes.stats)
    app.router.add_get("/leaderboard", routes.leaderboard)
    app.router.add_get("/history/positions", routes.positions)


# -- OpenAPI (kept here, apart from openapi.py, so the two evolve without conflicts) ----------

def openapi_paths() -> dict:
    """The history routes' entries of ``/openapi.json``."""
    def query(name: str, description: str, schema: dict | None = None) -> dict:
        return {"name": name, "in": "query", "required": False, "description": description,
                "schema": schema or {"type": "string"}}

    error = {"description": "error", "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorBody"}}}}
    row = {"type": "object", "description": "a read-model row in human units: X_usdc (decimal strings) for "
                                            "micro-USDC columns, prices and rates as decimal strings, ids as strings"}

    def get(summary: str, description: str, parameters: list, schema: dict, statuses: tuple[str, ...]) -> dict:
        responses = {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}
        responses.update({status: error for status in statuses})
        return {"get": {"summary": summary, "description": description, "parameters": parameters,
                        "responses": responses}}

    as_of = {"type": "integer", "description": "the read model includes every event up to this seq"}
    return {
        "/agents/{agent}/stats": get(
            "An agent's KPIs and balances (SQL read model)",
            "Volume, fees, realized and net PnL, funding paid and received, liquidation penalty, keeper "
            "rewards, max drawdown, win rate, Sharpe of daily PnL, and for makers fill ratio and quote "
            "reliability (docs/projections.md).",
            [{"name": "agent", "in": "path", "required": True,
              "schema": {"type": "string", "minLength": 1, "maxLength": AGENT_CHARS_MAX}}],
            {"type": "object", "properties": {"as_of_seq": as_of}, "additionalProperties": True},
            ("400", "404", "503")),
        "/leaderboard": get(
            "Agents ranked by a KPI (SQL read model)", "Highest first; agents without the figure are left out.",
            [query("by", "pnl (net) | sharpe | volume | reliability (default pnl)",
                   {"type": "string", "enum": list(queries.LEADERBOARD_BY)}),
             query("limit", f"at most this many (default {queries.LEADERBOARD_SIZE_DEFAULT}, max "
                            f"{queries.LEADERBOARD_SIZE_MAX})",
                   {"type": "integer", "minimum": 1, "maximum": queries.LEADERBOARD_SIZE_MAX})],
            {"type": "object", "properties": {"as_of_seq": as_of, "by": {"type": "string"},
                                              "agents": {"type": "array", "items": row}}},
            ("400", "503")),
        "/history/positions": get(
            "Positions, newest first, open and ended (SQL read model)",
            "Keyset-paginated: pass next_before_id as before_id for the next page (null: the last page).",
            [query("agent", "only this agent's (either side)", {"type": "string", "maxLength": AGENT_CHARS_MAX}),
             query("status", "open | closed (every ended one) | liquidated | expired",
                   {"type": "string", "enum": list(queries.POSITION_STATUS)}),
             query("before_id", "only positions with a smaller id", {"type": "integer", "minimum": 1, "maximum": BEFORE_ID_MAX}),
             query("limit", f"page size (default {queries.PAGE_SIZE_DEFAULT}, max {queries.PAGE_SIZE_MAX})",
                   {"type": "integer", "minimum": 1, "maximum": queries.PAGE_SIZE_MAX})],
            {"type": "object", "properties": {"as_of_seq": as_of, "positions": {"type": "array", "items": row},
                                              "next_before_id": {"type": ["string", "null"]}}},
            ("400", "503")),
    }
