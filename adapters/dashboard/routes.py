"""The dashboard's routes on the venue's aiohttp application (read-only GETs):

| route | answer |
|---|---|
| ``GET /`` | the page (``static/index.html``) |
| ``GET /dashboard/state?history=0|1`` | markets, books, flow, liquidations, alerts, forecasts, edges (JSON) |
| ``GET /dashboard/assets/{name}`` | the page's script and style, and the vendored chart library |

``register(app, gateway)`` is called once by ``HttpGateway.app``; ``openapi_paths()`` is how
``/openapi.json`` describes them.
"""

from __future__ import annotations

from aiohttp import web

from adapters.dashboard.service import ASSET_DIR, CHARTS_ASSET, Dashboard
from engine import rejections as rj
from protocol import codes

ASSETS = {  # name in the URL → file under static/ (nothing else is served)
    "app.js": ("app.js", "text/javascript"),
    "app.css": ("app.css", "text/css"),
    "lightweight-charts.js": (CHARTS_ASSET, "text/javascript"),
}
ASSET_PATTERN = "^[a-z0-9.-]{1,40}$"
DASHBOARD = web.AppKey("dashboard", Dashboard)


def register(app: web.Application, gateway) -> Dashboard:
    """Add the dashboard's routes to ``app`` and run its background work with the app."""
    dashboard = Dashboard(gateway.venue)
    app[DASHBOARD] = dashboard
    app.on_startup.append(dashboard.start)
    app.on_cleanup.append(dashboard.stop)
    index = (ASSET_DIR / "index.html").read_bytes()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=index, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def state(request: web.Request) -> web.Response:
        history = request.query.get("history", "0")
        if history not in ("0", "1"):
            raise gateway.error(rj.INVALID_FIELD, "history must be 0 or 1", field="history", value=history[:40])
        from adapters.gateway.http import json_response

        return json_response(dashboard.state(history=history == "1"))

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        found = ASSETS.get(name)
        path = (dashboard.charts_asset if found[0] == CHARTS_ASSET else ASSET_DIR / found[0]) if found else None
        if path is None or not path.is_file():
            raise gateway.error(codes.NOT_FOUND, f"no dashboard asset {name[:40]!r}",
                                assets=sorted(n for n, (f, _) in ASSETS.items() if (ASSET_DIR / f).is_file()))
        return web.Response(body=path.read_bytes(), content_type=found[1], charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    app.router.add_get("/", page)
    app.router.add_get("/dashboard/state", state)
    app.router.add_get("/dashboard/assets/{name}", asset)
    return dashboard


def openapi_paths() -> dict[str, dict]:
    """The dashboard's routes as OpenAPI path items."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    return {
        "/": {"get": {"summary": "The ops dashboard (read-only HTML page; docs/dashboard.md)", "responses": {
            "200": {"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/dashboard/state": {"get": {
            "summary": "The dashboard's view: markets, books, flow, liquidations, alerts, forecasts (estimates), edges",
            "parameters": [{"name": "history", "in": "query", "required": False,
                            "description": "1: include each market's price and rate history",
                            "schema": {"type": "string", "enum": ["0", "1"]}}],
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                          "400": {"description": "history is not 0 or 1", **error}}}},
        "/dashboard/assets/{name}": {"get": {
            "summary": "The dashboard page's script, style and vendored chart library",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": ASSET_PATTERN}}],
            "responses": {"200": {"description": "OK", "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}},
                "404": {"description": "no such asset (or the chart library was not fetched)", **error}}}},
    }
