"""The stable codes of the edge: every refusal that the gateways (TCP, HTTP, WebSocket) or the
sequencer answer before or instead of the engine's decision. The engine's own codes are in
``engine.rejections``; no other module defines a code. ``adapters.gateway.edge.STATUS_OF_CODE``
maps each code to its HTTP status.

The SDK reads them too (which refusals are worth a reconnect), so they live in the protocol.
"""

from __future__ import annotations

# -- who is asking -----------------------------------------------------------------------------
BAD_SIGNATURE = "BAD_SIGNATURE"  # a signature that does not verify, or is not base58 Ed25519
BAD_AGENT = "BAD_AGENT"  # not a base58 Solana public key
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"  # a command before login, from an observer, or unsigned
FORBIDDEN = "FORBIDDEN"  # a command agents may not send, or on behalf of another agent
STALE_REQUEST = "STALE_REQUEST"  # X-Timestamp too far from the venue's clock

# -- the shape of what was sent ------------------------------------------------------------------
MALFORMED = "MALFORMED"  # undecodable frame or body, wrong types, missing fields
FRAME_TOO_LARGE = "FRAME_TOO_LARGE"  # a frame or body above gateway.max_frame_bytes
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"  # Hello with a protocol version we do not speak
PROTOCOL_ERROR = "PROTOCOL_ERROR"  # a well-formed message that is not allowed at this point (TCP)
NOT_FOUND = "NOT_FOUND"  # no such route (HTTP)
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"  # the route exists, not with this method (HTTP; Allow says which)
UPGRADE_REQUIRED = "UPGRADE_REQUIRED"  # GET /ws without a WebSocket upgrade

# -- limits --------------------------------------------------------------------------------------
RATE_LIMITED = "RATE_LIMITED"  # the agent's request budget is spent; detail: retry_after_ms
TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"  # above gateway.connections_per_agent (TCP)
SLOW_CONSUMER = "SLOW_CONSUMER"  # the outbound queue overflowed; the connection is closed
LOGIN_TIMEOUT = "LOGIN_TIMEOUT"  # no Login within gateway.login_timeout_s (TCP)
IDLE_TIMEOUT = "IDLE_TIMEOUT"  # nothing received (not even a Ping) for gateway.idle_timeout_s (TCP)
TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"  # more than wire.SUBSCRIPTIONS_MAX on one connection

# -- streams -------------------------------------------------------------------------------------
UNKNOWN_STREAM = "UNKNOWN_STREAM"  # Subscribe (TCP) or ?streams= (WebSocket) names no such stream
UNKNOWN_SUBSCRIPTION = "UNKNOWN_SUBSCRIPTION"  # Unsubscribe of a sub that is not open (TCP)

# -- the SQL history reads (adapters/gateway/http_history.py) ------------------------------------
UNAVAILABLE = "UNAVAILABLE"  # the SQL read models (or the hedger's audit in them) are not running on this venue
UNKNOWN_AGENT = "UNKNOWN_AGENT"  # the read model has no such agent

# -- the venue itself (never journaled) ------------------------------------------------------------
OVERLOADED = "OVERLOADED"  # the sequencer's queue is full; retry later (detail: queue_max)
STOPPED = "STOPPED"  # the venue is stopping or failed; the command was not executed
SHUTTING_DOWN = "SHUTTING_DOWN"  # the venue is stopping; reconnect later (TCP Error)
INTERNAL = "INTERNAL"  # a bug: the request did nothing it had not already done; see the venue's log

# detail.reason of a DUPLICATE (an engine code) answered for a replayed signed HTTP request.
REPLAYED_REQUEST = "replayed_request"

EDGE_CODES = frozenset(value for name, value in list(globals().items())
                       if name.isupper() and name != "REPLAYED_REQUEST" and isinstance(value, str))
