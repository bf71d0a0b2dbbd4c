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
from collections import deque
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters.gateway import auth, http_history, http_parse, openapi, render, websocket
from adapters.gateway import http_schemas as s
from adapters.gateway.human import ConversionError
from engine import rejections as rj
from engine import views
from engine.rejections import Rejected
from engine.units import NS_PER_MS
from adapters.gateway.hub import read_events

log = logging.getLogger("agentperp.gateway.http")

# Edge codes of the HTTP API only (the rest are engine.rejections and adapters.gateway.auth).
NOT_FOUND = "NOT_FOUND"  # no such route
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
INTERNAL = "INTERNAL"  # a bug: the request did nothing it had not already done; see the venue's log
REPLAYED_REQUEST = "replayed_request"  # detail.reason of a DUPLICATE for a replayed signed request

STATUS_OF_CODE: dict[str, int] = {
    auth.MALFORMED: 400, rj.OUT_OF_RANGE: 400, rj.INVALID_FIELD: 400, websocket.UNKNOWN_STREAM: 400,
    auth.NOT_AUTHENTICATED: 401, auth.BAD_AGENT: 401, auth.BAD_SIGNATURE: 401, auth.STALE_REQUEST: 401,
    auth.FORBIDDEN: 403, rj.NOT_OWNER: 403,
    NOT_FOUND: 404, rj.UNKNOWN_MARKET: 404, rj.UNKNOWN_RFQ: 404, rj.UNKNOWN_QUOTE: 404, rj.UNKNOWN_POSITION: 404,
    METHOD_NOT_ALLOWED: 405,
    rj.DUPLICATE: 409, rj.RFQ_EXPIRED: 409, rj.RFQ_CLOSED: 409, rj.QUOTE_EXPIRED: 409, rj.ORACLE_OUT_OF_ORDER: 409,
    auth.FRAME_TOO_LARGE: 413,
    rj.INSUFFICIENT_FUNDS: 422, rj.INSUFFICIENT_COLLATERAL: 422, rj.INSUFFICIENT_MARGIN: 422,
    rj.SELF_QUOTE: 422, rj.NO_QUOTES: 422, rj.RATE_ABOVE_MAX: 422, rj.ORACLE_STALE: 422,
    rj.ORACLE_UNCERTAIN: 422, rj.NOT_LIQUIDATABLE: 422, rj.REMAINDER_TOO_SMALL: 422, rj.LIMIT_REACHED: 422,
    auth.OVERLOADED: 429, auth.RATE_LIMITED: 429,
    INTERNAL: 500,
    auth.STOPPED: 503,
}
STATUS_OF_CODE.update(http_history.STATUS_OF_CODE)  # the SQL history reads' own codes
BUSINESS_STATUS = 422  # any engine code not listed above

EVENTS_PAGE_DEFAULT = 500
EVENTS_PAGE_MAX = 5_000
REPLAY_CACHE_MAX = 1_000_000  # signed requests remembered for replay detection
_TIMESTAMP = re.compile(r"[0-9]{1,16}")

_encoder = msgspec.json.Encoder()


class ApiError(Exception):
    """A rejection to answer with; raised anywhere in a handler."""

    def __init__(self, code: str, message: str, detail: dict | None = None):
        super().__init__(message)
        self.rejection = Rejected(code, message, detail or {})


def status_of(code: str) -> int:
    return STATUS_OF_CODE.get(code, BUSINESS_STATUS)


def json_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(value), status=status, content_type="application/json")


def error_response(rejection: Rejected) -> web.Response:
    body = s.ErrorBody(error=s.ErrorInfo(code=rejection.code, message=rejection.message,
                                         detail=dict(rejection.detail)))
    return json_response(body, status_of(rejection.code))


class ReplayGuard:
    """Signed requests seen within the signature window: the same (agent, signature) twice
    is a replay. Entries leave once their timestamp is older than the window (a request that
    old is stale anyway); at most ``REPLAY_CACHE_MAX`` are kept."""

    def __init__(self, window_ms: int):
        self.window_ms = window_ms
        self._seen: dict[tuple[str, str], int] = {}
        self._order: deque[tuple[int, tuple[str, str]]] = deque()

    def seen(self, agent: str, signature: str, timestamp_ms: int, now_ms: int) -> bool | None:
        """True if a replay; else remember it (None: the cache is full, refuse for now)."""
        horizon = now_ms - self.window_ms
        order = self._order
        while order and order[0][0] < horizon:
            _, key = order.popleft()
            self._seen.pop(key, None)
        key = (agent, signature)
        if key in self._seen:
            return True
        if len(self._seen) >= REPLAY_CACHE_MAX:
            return None
        self._seen[key] = timestamp_ms
        order.append((timestamp_ms, key))
        return False


class HttpGateway:
    """The aiohttp application of one venue."""

    def __init__(self, venue):
        self.venue = venue
        self.gateway = venue.config.gateway
        self.dev = venue.config.venue.dev
        self.replays = ReplayGuard(self.gateway.signature_window_ms)
        self.websockets: set[web.WebSocketResponse] = set()
        self._openapi: bytes | None = None

    # -- the application --------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.gateway.max_frame_bytes, middlewares=[self._errors])
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
        app.router.add_get("/events", self.events)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_get("/ws", self.ws)
        http_history.add_routes(app, self)  # GET /agents/{agent}/stats, /leaderboard, /history/positions (SQL)
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
            return error_response(error.rejection())
        except web.HTTPRequestEntityTooLarge:
            return error_response(Rejected(auth.FRAME_TOO_LARGE, "the body is larger than the venue accepts",
                                           {"max_bytes": self.gateway.max_frame_bytes}))
        except web.HTTPNotFound:
            return error_response(Rejected(NOT_FOUND, f"no route {request.method} {request.path}",
                                           {"openapi": "/openapi.json"}))
        except web.HTTPMethodNotAllowed as error:
            return error_response(Rejected(METHOD_NOT_ALLOWED, f"{request.method} is not allowed on {request.path}",
                                           {"allowed": sorted(error.allowed_methods)}))
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return error_response(Rejected(auth.MALFORMED, error.reason or "bad request", {"status": error.status}))
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            return error_response(Rejected(INTERNAL, "internal error (a bug); see the venue's log", {}))

    @staticmethod
    def error(code: str, message: str, **detail) -> ApiError:
        return ApiError(code, message, detail)

    # -- signing ------------------------------------------------------------------------

    async def authenticate(self, request: web.Request, body: bytes) -> str:
        """The signer of ``request`` (DESIGN §8 signing), or raise the rejection."""
        headers = request.headers
        agent, timestamp, signature = (headers.get("X-Agent"), headers.get("X-Timestamp"),
                                       headers.get("X-Signature"))
        missing = [name for name, value in (("X-Agent", agent), ("X-Timestamp", timestamp),
                                            ("X-Signature", signature)) if not value]
        if missing:
            raise self.error(auth.NOT_AUTHENTICATED, "sign the request: X-Agent, X-Timestamp, X-Signature",
                             missing=missing)
        if auth.parse_agent(agent) is None:
            raise self.error(auth.BAD_AGENT, "X-Agent must be a base58 Solana public key", agent=agent[:64])
        now_ms = self.venue.clock() // NS_PER_MS
        window_ms = self.gateway.signature_window_ms
        if not _TIMESTAMP.fullmatch(timestamp):
            raise self.error(auth.STALE_REQUEST, "X-Timestamp must be the Unix time in milliseconds",
                             timestamp=timestamp[:32], server_time_ms=now_ms, window_ms=window_ms)
        timestamp_ms = int(timestamp)
        if abs(timestamp_ms - now_ms) > window_ms:
            raise self.error(auth.STALE_REQUEST, f"X-Timestamp is more than {window_ms} ms from the venue's clock",
                             timestamp_ms=timestamp_ms, server_time_ms=now_ms, window_ms=window_ms)
        message = auth.http_message(timestamp, request.method, request.raw_path, body)
        if not auth.verify(agent, message, signature):
            raise self.error(auth.BAD_SIGNATURE, "X-Signature must be the agent's base58 Ed25519 signature over "
                             "\"{timestamp}\\n{METHOD}\\n{path}\\n\" + body",
                             signed_prefix=f"{timestamp}\n{request.method}\n{request.raw_path}\n",
                             body_bytes=len(body))
        replay = self.replays.seen(agent, signature, timestamp_ms, now_ms)
        if replay is None:
            raise self.error(auth.RATE_LIMITED, "too many signed requests in the window; retry shortly",
                             retry_after_ms=window_ms)
        if replay:
            raise self.error(rj.DUPLICATE, "this signed request was already received; sign a new one "
                             "(a new X-Timestamp) to send it again", reason=REPLAYED_REQUEST,
                             timestamp_ms=timestamp_ms)
        retry_after_ms = self.venue.rate_limits.retry_after_ms(agent)
        if retry_after_ms:
            raise self.error(auth.RATE_LIMITED, "request budget spent; retry later", retry_after_ms=retry_after_ms,
                             requests_per_s=self.gateway.requests_per_s)
        return agent

    def _signed(self, body_type: type, parse):
        async def handler(request: web.Request) -> web.Response:
            raw = await request.read()
            agent = await self.authenticate(request, raw)
            body = decode_body(raw, body_type)
            if body.agent_id is not None and body.agent_id != agent:
                raise self.error(auth.FORBIDDEN, "agent_id must be the signer (X-Agent)", field="agent_id",
                                 agent_id=body.agent_id[:64], signer=agent)
            command = parse(body, agent)
            refused = auth.authorize(command, agent)
            if refused is not None:
                return error_response(refused)
            return await self.execute(command)

        return handler

    # -- executing ----------------------------------------------------------------------

    async def execute(self, command) -> web.Response:
        outcome = await self.venue.execute(command)
        rejection = outcome.rejection
        if rejection is None:
            return json_response(render.command_result(outcome.events, self.venue.symbols, seq=outcome.seq,
                                                       cmd_id=outcome.cmd_id, ts_ns=outcome.ts_ns))
        if rejection.code == rj.DUPLICATE and getattr(command, "client_id", "") and \
                isinstance(rejection.detail.get("first_seq"), int):
            record = await self.venue.hub.record_of(rejection.detail["first_seq"])
            if record is not None and record.events:
                return json_response(render.command_result(
                    record.events, self.venue.symbols, seq=record.last_seq, cmd_id=record.cmd_id,
                    ts_ns=record.ts_ns, duplicate=True))
        message, detail = render.human_detail(rejection.code, rejection.message, rejection.detail,
                                              self.venue.symbols)
        return error_response(Rejected(rejection.code, message, detail))

    # -- dev helpers --------------------------------------------------------------------

    def _dev_only(self, request: web.Request) -> None:
        if not self.dev:
            raise self.error(NOT_FOUND, f"no route {request.method} {request.path} (dev helpers need --dev)")

    async def dev_faucet(self, request: web.Request) -> web.Response:
        self._dev_only(request)
        body = decode_body(await request.read(), s.FaucetBody)
        if auth.parse_agent(body.agent_id) is None:
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
        text = request.query.get(name)
        if text is None or text == "":
            return default
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
                                                 oracle.publish_ns[m.market_id]) for m in state.config.markets])

    async def rfqs(self, request: web.Request) -> web.Response:
        found = views.rfqs(self.venue.state, market=self._query_market(request))
        return json_response([render.rfq_info(r, self.venue.symbols) for r in found])

    async def quotes(self, request: web.Request) -> web.Response:
        rfq_id = request.query.get("request_id")
        found = views.quotes(self.venue.state, None if rfq_id is None else http_parse.parse_id(rfq_id, "request_id"))
        return json_response([render.quote_info(q) for q in found])

    async def positions(self, request: web.Request) -> web.Response:
        agent = request.query.get("agent")
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
        if auth.parse_agent(agent) is None:
            raise self.error(rj.INVALID_FIELD, "the agent must be a base58 Solana public key", field="agent")
        return json_response(render.account_info(views.account(self.venue.state, agent), self.venue.symbols))

    async def events(self, request: web.Request) -> web.Response:
        """The journal's events from ``from_seq`` (default 1), at most ``limit``, in human units."""
        hub = self.venue.hub
        from_seq = self.query_int(request, "from_seq", 1, 1, 2**62)
        limit = self.query_int(request, "limit", EVENTS_PAGE_DEFAULT, 1, EVENTS_PAGE_MAX)
        last_seq = hub.last_seq
        found: list = []
        if from_seq <= last_seq:
            found, _ = await asyncio.get_running_loop().run_in_executor(
                None, read_events, hub.journal_dir, from_seq, last_seq, limit)
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
                        projections=self.venue.projections.summary())
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
            self._openapi = _encoder.encode(openapi.document(dev=self.dev))
        return web.Response(body=self._openapi, content_type="application/json")

    async def ws(self, request: web.Request) -> web.StreamResponse:
        return await websocket.handle(self, request)


_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r" - at `\$\.?([^`]*)`$")


def decode_body(raw: bytes, body_type: type):
    """``raw`` JSON -> ``body_type``, or raise MALFORMED naming the field and the problem."""
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as error:
        text = str(error)
        detail: dict[str, Any] = {"reason": text}
        missing, at = _MISSING.search(text), _AT.search(text)
        if missing:
            detail["field"] = (at.group(1) + "." if at and at.group(1) else "") + missing.group(1)
        elif at:
            detail["field"] = at.group(1)
        raise ApiError(auth.MALFORMED, f"the body does not fit {body_type.__name__}: {text}", detail) from None
    except msgspec.DecodeError as error:
        raise ApiError(auth.MALFORMED, "the body is not a JSON object", {"reason": str(error)}) from None


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
