"""The edge service: the rules every gateway (TCP, HTTP, WebSocket) applies, written once.

``Venue.edge`` is the one instance; each gateway decodes its own transport and then asks it:

| rule | method | codes |
|---|---|---|
| who signed an HTTP request / WebSocket upgrade (DESIGN §8 signing) | ``authenticate`` | NOT_AUTHENTICATED, BAD_AGENT, STALE_REQUEST, BAD_SIGNATURE, DUPLICATE (replayed), RATE_LIMITED |
| the agent's request budget (one token bucket per agent, across all its connections) | ``rate_limit`` | RATE_LIMITED (``retry_after_ms``) |
| who may send which command | ``authorize`` (``auth.authorize``) | FORBIDDEN, NOT_AUTHENTICATED, BAD_SIGNATURE |
| the answer to a command, a repeated client_id answered with the first result | ``answer`` | DUPLICATE when the first result is gone |
| code -> HTTP status | ``status_of`` / ``STATUS_OF_CODE`` | every code |

Limits held here (each named, enforced, tested at the bound): ``limits.BUCKETS_MAX`` agents'
buckets, ``REPLAY_CACHE_MAX`` signed requests remembered for replay detection.
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import NamedTuple

from adapters.gateway import auth
from adapters.gateway.limits import RateLimits, TokenBucket
from engine import rejections as rj
from engine.rejections import Rejected
from engine.units import NS_PER_MS
from protocol import codes
from protocol.signing import http_message, parse_agent, verify

STATUS_OF_CODE: dict[str, int] = {
    codes.MALFORMED: 400, rj.OUT_OF_RANGE: 400, rj.INVALID_FIELD: 400, codes.UNKNOWN_STREAM: 400,
    codes.PROTOCOL_ERROR: 400, codes.UNSUPPORTED_VERSION: 400,
    codes.NOT_AUTHENTICATED: 401, codes.BAD_AGENT: 401, codes.BAD_SIGNATURE: 401, codes.STALE_REQUEST: 401,
    codes.FORBIDDEN: 403, rj.NOT_OWNER: 403,
    codes.NOT_FOUND: 404, rj.UNKNOWN_MARKET: 404, rj.UNKNOWN_RFQ: 404, rj.UNKNOWN_QUOTE: 404,
    rj.UNKNOWN_POSITION: 404, codes.UNKNOWN_SUBSCRIPTION: 404, codes.UNKNOWN_AGENT: 404,
    codes.METHOD_NOT_ALLOWED: 405,
    codes.LOGIN_TIMEOUT: 408, codes.IDLE_TIMEOUT: 408,
    codes.UPGRADE_REQUIRED: 426,
    rj.DUPLICATE: 409, rj.RFQ_EXPIRED: 409, rj.RFQ_CLOSED: 409, rj.QUOTE_EXPIRED: 409, rj.ORACLE_OUT_OF_ORDER: 409,
    codes.FRAME_TOO_LARGE: 413,
    rj.INSUFFICIENT_FUNDS: 422, rj.INSUFFICIENT_COLLATERAL: 422, rj.INSUFFICIENT_MARGIN: 422,
    rj.SELF_QUOTE: 422, rj.NO_QUOTES: 422, rj.RATE_ABOVE_MAX: 422, rj.ORACLE_STALE: 422,
    rj.ORACLE_UNCERTAIN: 422, rj.ORACLE_INVALID: 422, rj.ORACLE_VOLATILE: 422, rj.NOT_LIQUIDATABLE: 422, rj.REMAINDER_TOO_SMALL: 422, rj.LIMIT_REACHED: 422,
    codes.OVERLOADED: 429, codes.RATE_LIMITED: 429, codes.TOO_MANY_CONNECTIONS: 429,
    codes.TOO_MANY_SUBSCRIPTIONS: 429, codes.SLOW_CONSUMER: 429,
    codes.INTERNAL: 500,
    codes.STOPPED: 503, codes.SHUTTING_DOWN: 503, codes.UNAVAILABLE: 503,
}  # every edge code is listed (tests/http/test_docs_and_metrics.py holds it so)
BUSINESS_STATUS = 422  # any engine code not listed above

REPLAY_CACHE_MAX = 1_000_000  # signed requests remembered for replay detection (beyond: RATE_LIMITED)
_TIMESTAMP = re.compile(r"[0-9]{1,16}")


def status_of(code: str, *, fits_schema: bool = False) -> int:
    """The HTTP status that answers a rejection with ``code``.

    400 means "the request does not fit /openapi.json" (which states every bound, pattern and
    enum of every field); so a field rule that a schema-valid request broke — a rule across
    fields, a market's own range, the engine's decision — is 422 (``fits_schema``)."""
    status = STATUS_OF_CODE.get(code, BUSINESS_STATUS)
    return BUSINESS_STATUS if fits_schema and status == 400 else status


class Result(NamedTuple):
    """What an accepted command did, as every gateway answers it."""

    seq: int  # its last event's seq (the venue's last seq if it caused none)
    cmd_id: int
    ts_ns: int
    events: list
    duplicate: bool = False  # a repeated client_id: the first execution's result, nothing executed again


class ReplayGuard:
    """Signed requests seen within the signature window: the same (agent, signature) twice
    is a replay. Entries leave once their timestamp is older than the window (a request that
    old is stale anyway), from the front of a deque, O(1) each; at most ``capacity`` are kept."""

    def __init__(self, window_ms: int, capacity: int = REPLAY_CACHE_MAX):
        self.window_ms = window_ms
        self.capacity = capacity
        self._seen: set[tuple[str, str]] = set()
        self._order: deque[tuple[int, tuple[str, str]]] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, agent: str, signature: str, timestamp_ms: int, now_ms: int) -> bool | None:
        """True if a replay; else remember it (None: the cache is full, refuse for now)."""
        horizon = now_ms - self.window_ms
        order = self._order
        while order and order[0][0] < horizon:
            _, key = order.popleft()
            self._seen.discard(key)
        key = (agent, signature)
        if key in self._seen:
            return True
        if len(self._seen) >= self.capacity:
            return None
        self._seen.add(key)
        order.append((timestamp_ms, key))
        return False


class Edge:
    """The edge rules of one venue, shared by its TCP, HTTP and WebSocket gateways."""

    def __init__(self, venue):
        self.venue = venue
        self.limits = venue.config.gateway
        self.rate_limits = RateLimits(self.limits.requests_per_s, self.limits.request_burst)
        self.replays = ReplayGuard(self.limits.signature_window_ms)

    # -- request budget ---------------------------------------------------------------------------

    def bucket_for(self, agent: str | None) -> TokenBucket:
        """``agent``'s bucket (shared by all its connections); an observer's own bucket for None."""
        if agent is None:
            return TokenBucket(self.limits.requests_per_s, self.limits.request_burst)
        return self.rate_limits.bucket_for(agent)

    def rate_limit(self, bucket: TokenBucket) -> Rejected | None:
        """None if one more request fits in ``bucket`` (and count it); else RATE_LIMITED."""
        wait_s = bucket.take(time.monotonic())
        if not wait_s:
            return None
        return Rejected(codes.RATE_LIMITED, "request rate limit reached; retry later",
                        {"retry_after_ms": int(wait_s * 1000) + 1, "requests_per_s": self.limits.requests_per_s,
                         "request_burst": self.limits.request_burst})

    # -- who is asking ----------------------------------------------------------------------------

    @staticmethod
    def authorize(command, agent: str | None) -> Rejected | None:
        """None if ``agent`` may send ``command`` (``auth.authorize``)."""
        return auth.authorize(command, agent)

    def authenticate(self, method: str, path: str, headers, body: bytes) -> str | Rejected:
        """The signer of an HTTP request (DESIGN §8 signing: ``path`` with its query as sent),
        checked in this order: headers, agent key, timestamp window, signature, replay, budget."""
        agent, timestamp, signature = (headers.get("X-Agent"), headers.get("X-Timestamp"),
                                       headers.get("X-Signature"))
        missing = [name for name, value in (("X-Agent", agent), ("X-Timestamp", timestamp),
                                            ("X-Signature", signature)) if not value]
        if missing:
            return Rejected(codes.NOT_AUTHENTICATED, "sign the request: X-Agent, X-Timestamp, X-Signature",
                            {"missing": missing})
        if parse_agent(agent) is None:
            return Rejected(codes.BAD_AGENT, "X-Agent must be a base58 Solana public key", {"agent": agent[:64]})
        now_ms = self.venue.clock() // NS_PER_MS
        window_ms = self.limits.signature_window_ms
        if not _TIMESTAMP.fullmatch(timestamp):
            return Rejected(codes.STALE_REQUEST, "X-Timestamp must be the Unix time in milliseconds",
                            {"timestamp": timestamp[:32], "server_time_ms": now_ms, "window_ms": window_ms})
        timestamp_ms = int(timestamp)
        if abs(timestamp_ms - now_ms) > window_ms:
            return Rejected(codes.STALE_REQUEST, f"X-Timestamp is more than {window_ms} ms from the venue's clock",
                            {"timestamp_ms": timestamp_ms, "server_time_ms": now_ms, "window_ms": window_ms})
        if not verify(agent, http_message(timestamp, method, path, body), signature):
            return Rejected(codes.BAD_SIGNATURE, "X-Signature must be the agent's base58 Ed25519 signature over "
                            "\"{timestamp}\\n{METHOD}\\n{path}\\n\" + body",
                            {"signed_prefix": f"{timestamp}\n{method}\n{path}\n", "body_bytes": len(body)})
        replay = self.replays.seen(agent, signature, timestamp_ms, now_ms)
        if replay is None:
            return Rejected(codes.RATE_LIMITED, "too many signed requests in the window; retry shortly",
                            {"retry_after_ms": window_ms, "replay_cache_max": self.replays.capacity})
        if replay:
            return Rejected(rj.DUPLICATE, "this signed request was already received; sign a new one "
                            "(a new X-Timestamp) to send it again",
                            {"reason": codes.REPLAYED_REQUEST, "timestamp_ms": timestamp_ms})
        refused = self.rate_limit(self.bucket_for(agent))
        return agent if refused is None else refused

    # -- answers ----------------------------------------------------------------------------------

    @staticmethod
    def first_seq(rejection: Rejected | None) -> int | None:
        """The seq of the first execution when ``rejection`` is a repeated client_id whose first
        result can be answered; None otherwise."""
        if rejection is None or rejection.code != rj.DUPLICATE:
            return None
        first_seq = rejection.detail.get("first_seq")
        return first_seq if type(first_seq) is int and first_seq > 0 else None

    async def original(self, rejection: Rejected) -> Result | Rejected:
        """The first execution's result of a repeated client_id (DESIGN §5), read from the
        journal; the DUPLICATE rejection itself if that result is not there (it was a rejection)."""
        first_seq = self.first_seq(rejection)
        record = None if first_seq is None else await self.venue.hub.record_of(first_seq)
        if record is None or record.rejection is not None:
            return rejection
        return Result(record.last_seq, record.cmd_id, record.ts_ns, record.events, True)

    async def answer(self, outcome) -> Result | Rejected:
        """What to answer for a sequencer ``Outcome``."""
        rejection = outcome.rejection
        if rejection is None:
            return Result(outcome.seq, outcome.cmd_id, outcome.ts_ns, outcome.events)
        if self.first_seq(rejection) is not None:
            return await self.original(rejection)
        return rejection
