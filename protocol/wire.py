"""The TCP wire schema (DESIGN §8): every message of the agent protocol, as msgspec Structs.

Frames are ``[u32 big-endian length][payload]``; the payload is one message, msgpack by
default or JSON, chosen by the client's ``Hello`` (whose own encoding the server detects
from its first byte: ``{`` or whitespace is JSON, anything else msgpack). Every message is
a map with a ``type`` tag, so it reads the same in both encodings::

    {"type": "request", "req_id": 7, "command": {"type": "request_quote.v1", "trader": "...",
     "market": 0, "side": "long", "size_e6": 100000000, "leverage": 10, ...}}

Commands and events on the wire are the engine's own (``engine.commands``,
``engine.events``) in map form: the structs here are *derived* from the engine's at import
(same tag, same fields in the same order, same defaults), so the schema has one home and a
field appended there appears here. The engine's structs are ``array_like`` (compact
journal); these are maps with a ``type`` tag (readable, order-independent). Integers on
the wire are bounded to int64 (beyond it: ``MALFORMED``); the engine rejects what is
outside each field's documented range with ``OUT_OF_RANGE``.

Codes of the edge are in ``protocol.codes``; the engine's in ``engine.rejections``.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import Meta

from engine import commands as cmd
from engine import events as ev
from engine.markets import Market

PROTOCOL_VERSION = 1
LENGTH_PREFIX_BYTES = 4
# What a client must accept from the server: an Events frame is split to stay within the
# server's max_frame_bytes, but one event can be larger on its own (a FundingSettled over
# many positions), so the server never sends more than this in one frame.
SERVER_FRAME_BYTES_MAX = 64 * 1024 * 1024

SUBSCRIPTIONS_MAX = 16  # open subscriptions per connection

I64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
U63 = Annotated[int, Meta(ge=0, le=2**63 - 1)]  # req_id, seq: non-negative int64
Encoding = Literal["msgpack", "json"]


# -- commands and events, derived from the engine's -------------------------------------------

def _bounded(tp: Any) -> Any:
    """``tp`` with every bare ``int`` bounded to int64 (recursively through unions/lists)."""
    if tp is int:
        return I64
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return Union[tuple(_bounded(a) for a in typing.get_args(tp))]
    if origin is list:
        return list[_bounded(typing.get_args(tp)[0])]
    return tp


def _derive(engine_type: type, name: str, *, tagged: bool = True, replace: dict | None = None) -> type:
    fields = []
    for f in msgspec.structs.fields(engine_type):
        tp = (replace or {}).get(f.name, _bounded(f.type))
        if f.default is not msgspec.NODEFAULT:
            fields.append((f.name, tp, f.default))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, tp, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, tp))
    options: dict[str, Any] = {"frozen": True, "forbid_unknown_fields": True, "module": __name__}
    if tagged:
        options.update(tag=engine_type.__struct_config__.tag, tag_field="type")
    return msgspec.defstruct(name, fields, **options)


WireTransfer = _derive(ev.Transfer, "WireTransfer", tagged=False)

WireMarket = _derive(Market, "WireMarket", tagged=False)  # a market's parameters, in Welcome

WIRE_COMMAND: dict[type, type] = {t: _derive(t, "Wire" + t.__name__) for t in cmd.COMMAND_TYPES}
ENGINE_COMMAND: dict[type, type] = {w: t for t, w in WIRE_COMMAND.items()}
WireCommand = Union[tuple(WIRE_COMMAND.values())]  # type: ignore[valid-type]


def _transfers_type(t: type) -> dict:
    names = {f.name for f in msgspec.structs.fields(t)}
    return {"transfers": list[WireTransfer]} if "transfers" in names else {}


WIRE_EVENT: dict[type, type] = {t: _derive(t, "Wire" + t.__name__, replace=_transfers_type(t))
                                 for t in ev.EVENT_TYPES}
ENGINE_EVENT: dict[type, type] = {w: t for t, w in WIRE_EVENT.items()}
WireEvent = Union[tuple(WIRE_EVENT.values())]  # type: ignore[valid-type]

# Index of the ``transfers`` field in each event type (None: it has none).
_TRANSFERS_AT: dict[type, int | None] = {}
for _t in (*WIRE_EVENT, *ENGINE_EVENT):
    _names = [f.name for f in msgspec.structs.fields(_t)]
    _TRANSFERS_AT[_t] = _names.index("transfers") if "transfers" in _names else None

_astuple = msgspec.structs.astuple


def command_to_wire(command):
    """An engine command as its wire (map) form."""
    return WIRE_COMMAND[type(command)](*_astuple(command))


def command_from_wire(wire):
    """A decoded wire command as the engine's command (same fields, same order)."""
    return ENGINE_COMMAND[type(wire)](*_astuple(wire))


def event_to_wire(event):
    """An engine event as its wire (map) form; transfers become maps too."""
    return _convert_event(event, WIRE_EVENT, WireTransfer)


def event_from_wire(wire):
    """A decoded wire event as the engine's event (what the SDK hands to agents)."""
    return _convert_event(wire, ENGINE_EVENT, ev.Transfer)


def _convert_event(event, event_types: dict[type, type], transfer_type: type):
    """``event`` as its counterpart in ``event_types`` (same fields, same order), its
    transfers as ``transfer_type``."""
    kind = type(event)
    at = _TRANSFERS_AT[kind]
    if at is None:
        return event_types[kind](*_astuple(event))
    values = list(_astuple(event))
    values[at] = [transfer_type(*_astuple(t)) for t in values[at]]
    return event_types[kind](*values)


# -- messages -----------------------------------------------------------------------------------

class _Message(msgspec.Struct, frozen=True, tag_field="type", forbid_unknown_fields=True):
    pass


# client -> server

class Hello(_Message, tag="hello"):
    """First frame. ``agent`` (base58 public key) to trade; None to observe public streams."""

    version: int
    encoding: Encoding = "msgpack"
    agent: str | None = None


class Login(_Message, tag="login"):
    """Base58 Ed25519 signature over ``protocol.signing.login_message(nonce, agent)``."""

    signature: str
    cancel_quotes_on_disconnect: bool = True


class Request(_Message, tag="request"):
    req_id: U63
    command: WireCommand  # type: ignore[valid-type]


class Subscribe(_Message, tag="subscribe"):
    """``from_seq`` 0: live only (after the current last seq); n >= 1: backfill from seq n."""

    req_id: U63
    streams: list[str]
    from_seq: U63 = 0


class Unsubscribe(_Message, tag="unsubscribe"):
    req_id: U63
    sub: U63  # the req_id of the Subscribe


class Ping(_Message, tag="ping"):
    nonce: I64 = 0


ClientMessage = Union[Hello, Login, Request, Subscribe, Unsubscribe, Ping]


# server -> client

class Challenge(_Message, tag="challenge"):
    nonce: bytes  # 32 random bytes (base64 in JSON)


class Price(msgspec.Struct, frozen=True):
    """A market's last durable oracle price (what its last ``OracleUpdated`` set)."""

    market: int
    price_e8: int
    conf_e8: int
    publish_ns: int


class Welcome(_Message, tag="welcome"):
    session: str
    server_time_ns: int
    last_seq: int
    agent: str | None = None
    limits: dict[str, float] = {}
    markets: list[WireMarket] = []  # type: ignore[valid-type]  # by market id
    # The last price of each market that has one, as of ``last_seq``: an agent can quote
    # or mark at once, without waiting for the next update on the ``oracle`` stream.
    prices: list[Price] = []


class Ack(_Message, tag="ack"):
    """``seq``: the last seq of the command's events (the venue's last seq if it caused none).
    ``duplicate``: a repeated client_id; ``events`` are the first execution's."""

    req_id: int
    seq: int
    events: list[WireEvent]  # type: ignore[valid-type]
    duplicate: bool = False


class Rejected(_Message, tag="rejected"):
    req_id: int
    code: str
    message: str
    detail: dict[str, Any] = {}


class Events(_Message, tag="events"):
    """Events of subscription ``sub`` (its Subscribe's req_id), in seq order."""

    sub: int
    events: list[WireEvent]  # type: ignore[valid-type]


class Pong(_Message, tag="pong"):
    nonce: int = 0
    server_time_ns: int = 0


class Error(_Message, tag="error"):
    """The connection is closed after this frame."""

    code: str
    message: str
    detail: dict[str, Any] = {}


ServerMessage = Union[Challenge, Welcome, Ack, Rejected, Events, Pong, Error]


# -- codecs --------------------------------------------------------------------------------------

def is_json(payload: bytes | memoryview) -> bool:
    """Whether a first frame is JSON (a map starts with ``{``, maybe after whitespace)."""
    return len(payload) > 0 and payload[0] in b"{ \t\r\n"


class Codec:
    """One encoding's reusable encoder and decoders (never built per message)."""

    __slots__ = ("name", "encoder", "client_decoder", "server_decoder")

    def __init__(self, name: Encoding):
        self.name = name
        if name == "json":
            self.encoder = msgspec.json.Encoder()
            self.client_decoder = msgspec.json.Decoder(ClientMessage)
            self.server_decoder = msgspec.json.Decoder(ServerMessage)
        else:
            self.encoder = msgspec.msgpack.Encoder()
            self.client_decoder = msgspec.msgpack.Decoder(ClientMessage)
            self.server_decoder = msgspec.msgpack.Decoder(ServerMessage)

    def frame(self, message) -> bytes:
        """``message`` encoded with its length prefix."""
        buffer = bytearray(LENGTH_PREFIX_BYTES)
        self.encoder.encode_into(message, buffer, LENGTH_PREFIX_BYTES)
        buffer[:LENGTH_PREFIX_BYTES] = (len(buffer) - LENGTH_PREFIX_BYTES).to_bytes(LENGTH_PREFIX_BYTES, "big")
        return bytes(buffer)

    def frame_into(self, message, out: bytearray) -> int:
        """Append ``message`` with its length prefix to ``out``; the payload's size."""
        start = len(out)
        self.encoder.encode_into(message, out, start + LENGTH_PREFIX_BYTES)
        size = len(out) - start - LENGTH_PREFIX_BYTES
        out[start:start + LENGTH_PREFIX_BYTES] = size.to_bytes(LENGTH_PREFIX_BYTES, "big")
        return size


CODECS: dict[str, Codec] = {"msgpack": Codec("msgpack"), "json": Codec("json")}


class FrameReader:
    """Split a byte stream into frame payloads; ``feed`` returns the complete ones.

    Raises ``FrameTooLarge`` on a length prefix above ``max_bytes`` (before buffering it).
    """

    __slots__ = ("max_bytes", "_buffer")

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        frames = []
        start = 0
        end = len(buffer)
        while end - start >= LENGTH_PREFIX_BYTES:
            size = int.from_bytes(buffer[start:start + LENGTH_PREFIX_BYTES], "big")
            if size > self.max_bytes:
                raise FrameTooLarge(size, self.max_bytes)
            if end - start - LENGTH_PREFIX_BYTES < size:
                break
            begin = start + LENGTH_PREFIX_BYTES
            frames.append(bytes(buffer[begin:begin + size]))
            start = begin + size
        if start:
            del buffer[:start]
        return frames

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)


class FrameTooLarge(Exception):
    def __init__(self, size: int, max_bytes: int):
        super().__init__(f"frame of {size} bytes; the limit is {max_bytes}")
        self.size = size
        self.max_bytes = max_bytes
