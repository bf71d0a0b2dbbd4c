"""The HTTP API and WebSocket (aiohttp) of DESIGN §8: human units in, engine commands through
the sequencer, human units out. ``docs/http.md`` is its manual; ``/openapi.json`` its schema.

A signed request (every ``POST /trade/*`` and ``/account/*``) is checked in this order, each
failure answered at once with its code: body size (``FRAME_TOO_LARGE``, 413), the three
headers (``NOT_AUTHENTICATED``, 401), the agent key (``BAD_AGENT``, 401), the timestamp within
``gateway.signature_window_ms`` of the venue's clock (``STALE_REQUEST``, 401), the signature
(``BAD_SIGNATURE``, 401), replay (``DUPLICATE`` with ``detail.reason = "replayed_request"``,
409), the agent's request budget (``RATE_LIMITED``, 429); then the body (``MALFORMED``, 400;
``INVALID_FIELD`` / ``OUT_OF_RANGE``, 400), the acting agent (``FORBIDDEN``, 403), and the
engine's own decision. Every rejection is ``{"error": {"code", "message", "detail"}}``.

GETs are public: the venue is as transparent as the chain its escrow lives on. The private
``account`` WebSocket stream needs a signed upgrade request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.dashboard import routes as dashboard_routes
from adapters.gateway import http_escrow, http_hedging, http_history, http_parse, openapi, render, websocket
from adapters.gateway import http_schemas as s
from adapters.gateway.edge import Result, status_of
from adapters.gateway.http_schemas import EVENTS_PAGE_DEFAULT, EVENTS_PAGE_MAX
from adapters.gateway.human import ConversionError
from engine import rejections as rj
from engine import views
from engine.rejections import Rejected
from engine.units import NS_PER_MS
from protocol import codes
from protocol.risk import Holding, RiskView, risk_view
from protocol.signing import parse_agent

log = logging.getLogger("agentperp.gateway.http")

_encoder = msgspec.json.Encoder()
GATEWAY = web.AppKey("gateway", object)  # the HttpGateway serving an application


class ApiError(Exception):
    """A rejection to answer with; raised anywhere in a handler."""

    def __init__(self, code: str, message: str, detail: dict | None = None):
        super().__init__(message)
        self.rejection = Rejected(code, message, detail or {})


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, content_type="application/json")


def error_response(rejection: Rejected, *, fits_schema: bool = False) -> web.Response:
    body = s.ErrorBody(error=s.ErrorInfo(code=rejection.code, message=rejection.message,
                                         detail=dict(rejection.detail)))
    return json_response(body, status_of(rejection.code, fits_schema=fits_schema))


class HttpGateway:
    """The aiohttp application of one venue."""

    def __init__(self, venue):
        self.venue = venue
        self.gateway = venue.config.gateway
        self.dev = venue.config.venue.dev
        self.edge = venue.edge
        self.websockets: set[web.WebSocketResponse] = set()  # at most websockets_max open at once
        self.websockets_max = websocket.WEBSOCKETS_MAX
        self.websocket_ended = asyncio.Event()  # set as each connection ends: a waiter clears it, never polls
        self._openapi: bytes | None = None

    # -- the application --------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.gateway.max_frame_bytes, middlewares=[self._errors])
        app[GATEWAY] = self
        post = [
            ("/trade/request", s.TradeRequestBody, lambda b, a: http_parse.request_quote(b, a, self.venue.symbols)),
            ("/trade/quote", s.TradeQuoteBody, http_parse.submit_quote),
            ("/trade/accept", s.TradeAcceptBody, http_parse.accept_quote),
            ("/trade/close", s.TradeCloseBody, http_parse.close_position),
            ("/trade/cancel", s.TradeCancelBody, http_parse.cancel),
            ("/trade/liquidate", s.TradeLiquidateBody, http_parse.liquidate),
            ("/trade/margin", s.TradeMarginBody, http_parse.margin),
            ("/account/withdraw", s.WithdrawBody, http_parse.withdraw),
        ]
        for path, body_type, parse in post:
            app.router.add_post(path, self._signed(body_type, parse))
        app.router.add_post("/dev/faucet", self.dev_faucet)
        app.router.add_post("/dev/oracle", self.dev_oracle)
        app.router.add_get("/markets", self.markets)
        app.router.add_get("/rfqs", self.rfqs)
        app.router.add_get("/quotes", self.quotes)
        app.router.add_get("/positions", self.positions)
        app.router.add_get("/positions/{position_id}", self.position)
        app.router.add_get("/accounts/{agent}", self.account)
        app.router.add_get("/agents/{agent}/risk", self.agent_risk)  # issue 16, block at the end of the class
        app.router.add_get("/events", self.events)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_get("/ws", self.ws)
        http_history.add_routes(app, self)  # GET /agents/{agent}/stats, /leaderboard, /history/positions (SQL)
        dashboard_routes.register(app, self)  # the ops dashboard: GET /, /dashboard/* (docs/dashboard.md)
        http_escrow.add_routes(app, self)  # GET /escrow/reconcile: the live chain vs the engine (issue 13)
        http_hedging.add_routes(app, self)  # GET /hedging/audit, /hedging/orders: the hedger's audit trail (SQL)
        app.on_shutdown.append(self._close_websockets)
        return app

    async def _close_websockets(self, app: web.Application) -> None:
        for ws in list(self.websockets):
            await ws.close(code=1001, message=b"venue stopping")

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return error_response(error.rejection)
        except ConversionError as error:
            return error_response(error.rejection(), fits_schema=error.fits_schema)
        except web.HTTPRequestEntityTooLarge:
            return error_response(Rejected(codes.FRAME_TOO_LARGE, "the body is larger than the venue accepts",
                                           {"max_bytes": self.gateway.max_frame_bytes}))
        except web.HTTPNotFound:
            return error_response(Rejected(codes.NOT_FOUND, f"no route {request.method} {request.path}",
                                           {"openapi": "/openapi.json"}))
        except web.HTTPMethodNotAllowed as error:
            allowed = sorted(error.allowed_methods)
            response = error_response(Rejected(codes.METHOD_NOT_ALLOWED,
                                               f"{request.method} is not allowed on {request.path}",
                                               {"allowed": allowed}))
            response.headers["Allow"] = ", ".join(allowed)  # RFC 9110: a 405 says what is allowed
            return response
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return error_response(Rejected(codes.MALFORMED, error.reason or "bad request", {"status": error.status}))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return error_response(Rejected(codes.INTERNAL, "internal error (a bug); see the venue's log", {}))

    @staticmethod
    def error(code: str, message: str, **detail) -> ApiError:
        return ApiError(code, message, detail)

    # -- signing ------------------------------------------------------------------------

    async def authenticate(self, request: web.Request, body: bytes) -> str:
        """The signer of ``request`` (the edge service's rule), or raise the rejection."""
        signer = self.edge.authenticate(request.method, request.raw_path, request.headers, body)
        if type(signer) is Rejected:
            raise ApiError(signer.code, signer.message, signer.detail)
        return signer

    def _signed(self, body_type: type, parse):
        async def handler(request: web.Request) -> web.Response:
            raw = await request.read()
            agent = await self.authenticate(request, raw)
            body = decode_body(raw, body_type)
            if body.agent_id is not None and body.agent_id != agent:
                raise self.error(codes.FORBIDDEN, "agent_id must be the signer (X-Agent)", field="agent_id",
                                 agent_id=body.agent_id[:64], signer=agent)
            command = parse(body, agent)
            refused = self.edge.authorize(command, agent)
            if refused is not None:
                return error_response(refused)
            return await self.execute(command)

        return handler

    # -- executing ----------------------------------------------------------------------

    async def execute(self, command) -> web.Response:
        answer = await self.edge.answer(await self.venue.execute(command))
        if type(answer) is Result:
            return json_response(render.command_result(answer.events, self.venue.symbols, seq=answer.seq,
                                                       cmd_id=answer.cmd_id, ts_ns=answer.ts_ns,
                                                       duplicate=answer.duplicate))
        message, detail = render.human_detail(answer.code, answer.message, answer.detail, self.venue.symbols)
        # The request fitted the schema; what refused it is a rule of the market or the engine.
        return error_response(Rejected(answer.code, message, detail), fits_schema=True)

    # -- dev helpers --------------------------------------------------------------------

    def _dev_only(self, request: web.Request) -> None:
        if not self.dev:
            raise self.error(codes.NOT_FOUND, f"no route {request.method} {request.path} (dev helpers need --dev)")

    async def dev_faucet(self, request: web.Request) -> web.Response:
        self._dev_only(request)
        body = decode_body(await request.read(), s.FaucetBody)
        if parse_agent(body.agent_id) is None:
            raise self.error(rj.INVALID_FIELD, "agent_id must be a base58 Solana public key", field="agent_id")
        command = http_parse.faucet(body, f"dev-faucet:{uuid.uuid4().hex}")
        return await self.execute(command)

    async def dev_oracle(self, request: web.Request) -> web.Response:
        self._dev_only(request)
        body = decode_body(await request.read(), s.OracleBody)
        market = http_parse.market_id(body.market, self.venue.symbols)
        # publish_ns must increase per market (ORACLE_OUT_OF_ORDER): the venue's clock, or just after the last.
        publish_ns = max(self.venue.clock(), self.venue.state.oracle.publish_ns[market] + 1)
        return await self.execute(http_parse.oracle(body, self.venue.symbols, publish_ns))

    # -- reads --------------------------------------------------------------------------

    def query_int(self, request: web.Request, name: str, default: int, low: int, high: int) -> int:
        values = request.query.getall(name, [])
        if len(values) > 1:  # ?x=1&x=2 is an array, not the integer the document states
            raise self.error(rj.INVALID_FIELD, f"{name} must be given once", field=name, count=len(values))
        if not values:
            return default
        text = values[0]  # an empty value is not an integer: refused below
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise self.error(rj.INVALID_FIELD, f"{name} must be an integer", field=name, value=text[:40])
        value = int(text)
        if not low <= value <= high:
            raise self.error(rj.OUT_OF_RANGE, f"{name} {value} is outside [{low}, {high}]", field=name, value=value,
                             min=low, max=high)
        return value

    def _query_market(self, request: web.Request) -> int | None:
        symbol = request.query.get("market")
        return None if symbol is None else http_parse.market_id(symbol, self.venue.symbols)

    async def markets(self, request: web.Request) -> web.Response:
        state, oracle = self.venue.state, self.venue.state.oracle
        return json_response([render.market_info(m, oracle.price_e8[m.market_id], oracle.conf_e8[m.market_id],
                                                 oracle.publish_ns[m.market_id], oracle.source[m.market_id])
                              for m in state.config.markets])

    async def rfqs(self, request: web.Request) -> web.Response:
        found = views.rfqs(self.venue.state, market=self._query_market(request))
        return json_response([render.rfq_info(r, self.venue.symbols) for r in found])

    async def quotes(self, request: web.Request) -> web.Response:
        rfq_id = request.query.get("request_id")
        found = views.quotes(self.venue.state, None if rfq_id is None else http_parse.parse_id(rfq_id, "request_id"))
        return json_response([render.quote_info(q) for q in found])

    async def positions(self, request: web.Request) -> web.Response:
        agent = request.query.get("agent")
        if agent is not None and parse_agent(agent) is None:
            raise self.error(rj.INVALID_FIELD, "agent must be a base58 Solana public key", field="agent")
        found = views.positions(self.venue.state, agent=agent, market=self._query_market(request))
        return json_response([render.position_info(p, self.venue.symbols) for p in found])

    async def position(self, request: web.Request) -> web.Response:
        position_id = http_parse.parse_id(request.match_info["position_id"], "position_id")
        found = views.position(self.venue.state, position_id)
        if found is None:
            raise self.error(rj.UNKNOWN_POSITION, f"no open position {position_id}", position_id=position_id)
        return json_response(render.position_info(found, self.venue.symbols))

    async def account(self, request: web.Request) -> web.Response:
        agent = request.match_info["agent"]
        if parse_agent(agent) is None:
            raise self.error(rj.INVALID_FIELD, "the agent must be a base58 Solana public key", field="agent")
        return json_response(render.account_info(views.account(self.venue.state, agent), self.venue.symbols))

    # -- GET /agents/{agent}/risk (issue 16: strategies) ----------------------------------------
    # protocol.risk.risk_view — the same pure function agents compute from their streams
    # (agents/risk.py) — over engine.views, rendered in human units (USDC strings, bps, price).

    async def agent_risk(self, request: web.Request) -> web.Response:
        agent = request.match_info["agent"]
        if parse_agent(agent) is None:
            raise self.error(rj.INVALID_FIELD, "the agent must be a base58 Solana public key", field="agent")
        state = self.venue.state
        account = views.account(state, agent)
        p = state.positions.v
        holdings = []
        for pos in account.positions:
            row, long = state.position_row[pos.position_id], pos.long_agent == agent
            holdings.append(Holding(pos.position_id, pos.market, 1 if long else -1, pos.size_e6, pos.size_opened_e6,
                                    pos.entry_price_e8, pos.margin_long_e6 if long else pos.margin_short_e6,
                                    int(p.margin_open_long_e6[row] if long else p.margin_open_short_e6[row])))
        prices = {m.market_id: int(state.oracle.price_e8[m.market_id]) for m in state.config.markets}
        view = risk_view(agent, account.free_e6, account.held_e6, holdings, prices, state.config)
        return json_response(risk_info(view, self.venue.symbols))

    async def events(self, request: web.Request) -> web.Response:
        """The journal's events from ``from_seq`` (default 1), at most ``limit``, in human units."""
        hub = self.venue.hub
        from_seq = self.query_int(request, "from_seq", 1, 1, 2**62)
        limit = self.query_int(request, "limit", EVENTS_PAGE_DEFAULT, 1, EVENTS_PAGE_MAX)
        last_seq = hub.last_seq
        found: list = []
        if from_seq <= last_seq:
            found, _ = await asyncio.get_running_loop().run_in_executor(
                None, hub.lookups.events, from_seq, last_seq, limit)
            found = found[:limit]
        next_from_seq = found[-1].seq + 1 if found else from_seq
        return json_response(s.EventsPage(events=[render.render_event(e, self.venue.symbols) for e in found],
                                          next_from_seq=next_from_seq, last_seq=last_seq))

    async def health(self, request: web.Request) -> web.Response:
        sequencer = self.venue.sequencer
        stopping = sequencer.failed is not None or getattr(sequencer, "_stopping", False)
        body = s.Health(status="stopping" if stopping else "ok", last_seq=self.venue.hub.last_seq,
                        server_time_ms=self.venue.clock() // NS_PER_MS, queue_depth=sequencer.queue_depth,
                        markets=list(self.venue.symbols), dev=self.dev,
                        oracle=feed.status() if (feed := getattr(self.venue, "oracle_feed", None)) else None,
                        projections=self.venue.projections.summary(),
                        hedging=(hedger.status() or None) if (hedger := getattr(self.venue, "hedger", None)) else None)
        return json_response(body, 503 if stopping else 200)

    async def metrics(self, request: web.Request) -> web.Response:
        metrics = self.venue.metrics
        books = views.books(self.venue.state)
        metrics.queue_depth.set(self.venue.sequencer.queue_depth)
        metrics.open_interest.set(books.open_interest_e6 / 1e6)  # a gauge for dashboards, not money
        metrics.open_positions.set(books.open_positions)
        return web.Response(body=generate_latest(metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            self._openapi = _encoder.encode(openapi.document(self.venue.engine_config.markets, dev=self.dev))
        return web.Response(body=self._openapi, content_type="application/json")

    async def ws(self, request: web.Request) -> web.StreamResponse:
        return await websocket.handle(self, request)


_DECODERS: dict[type, msgspec.json.Decoder] = {}  # one per body type, reused
_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def decode_body(raw: bytes, body_type: type):
    """``raw`` JSON -> ``body_type``, or raise MALFORMED naming the field and the problem."""
    decoder = _DECODERS.get(body_type)
    if decoder is None:
        decoder = _DECODERS[body_type] = msgspec.json.Decoder(body_type, float_hook=Decimal)
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as error:
        text = str(error)
        detail: dict[str, Any] = {"reason": text}
        missing, at = _MISSING.search(text), _AT.search(text)
        if missing:
            detail["field"] = (at.group(1) + "." if at and at.group(1) else "") + missing.group(1)
        elif at:
            detail["field"] = at.group(1)
        raise ApiError(codes.MALFORMED, f"the body does not fit {body_type.__name__}: {text}", detail) from None
    except msgspec.DecodeError as error:
        raise ApiError(codes.MALFORMED, "the body is not a JSON object", {"reason": str(error)}) from None


async def serve(venue) -> tuple[web.AppRunner, int]:
    """Start the HTTP API on ``gateway.host:http_port`` (0: any free port); the runner (whose
    ``cleanup()`` stops it) and the bound port."""
    gateway = HttpGateway(venue)
    runner = web.AppRunner(gateway.app(), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, venue.config.gateway.host, venue.config.gateway.http_port)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port


# -- the risk view in human units (issue 16) ---------------------------------------------------------

def risk_info(view: RiskView, symbols: list[str]) -> dict:
    """``protocol.risk.RiskView`` for ``GET /agents/{agent}/risk`` (schema: ``openapi.RISK_SCHEMA``)."""
    from adapters.gateway.human import price, usdc

    return {
        "agent_id": view.agent, "equity_usdc": usdc(view.equity_e6), "free_usdc": usdc(view.free_e6),
        "held_usdc": usdc(view.held_e6), "margin_usdc": usdc(view.margin_e6),
        "unrealized_pnl_usdc": usdc(view.unrealized_pnl_e6), "net_exposure_usdc": usdc(view.net_exposure_e6),
        "gross_exposure_usdc": usdc(view.gross_exposure_e6), "margin_usage_bps": view.margin_usage_bps,
        "maintenance_usdc": usdc(view.maintenance_e6), "maintenance_usage_bps": view.maintenance_usage_bps,
        "leverage_bps": view.leverage_bps, "liquidation_distance_bps": view.liquidation_distance_bps,
        "score": view.score, "level": view.level,
        "markets": [{"market": symbols[m.market], "price": price(m.price_e8), "positions": m.positions,
                     "net_exposure_usdc": usdc(m.net_exposure_e6), "gross_exposure_usdc": usdc(m.gross_exposure_e6),
                     "unrealized_pnl_usdc": usdc(m.unrealized_pnl_e6), "margin_usdc": usdc(m.margin_e6),
                     "liquidation_distance_bps": m.liquidation_distance_bps} for m in view.markets],
        "positions": [{"position_id": str(r.position_id), "market": symbols[r.market], "side": r.side,
                       "exposure_usdc": usdc(r.exposure_e6), "unrealized_pnl_usdc": usdc(r.unrealized_pnl_e6),
                       "margin_usdc": usdc(r.margin_e6), "maintenance_usdc": usdc(r.maintenance_e6),
                       "liquidation_price": price(r.liquidation_price_e8),
                       "liquidation_distance_bps": r.liquidation_distance_bps} for r in view.positions],
    }
