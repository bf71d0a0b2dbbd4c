"""Pyth Hermes wire types (v2 REST and Server-Sent Events), with Hermes' own field names.

``GET /v2/updates/price/latest?ids[]=<hex>&parsed=true`` answers one ``PriceUpdate``;
``GET /v2/updates/price/stream?ids[]=...`` sends one ``PriceUpdate`` per SSE ``data:``
event (shapes from pyth-crosschain ``apps/hermes/server/src/api/types.rs``): integers that
do not fit a JSON double (``price`` i64, ``conf`` u64) travel as decimal strings; ``expo``
is an i32; ``publish_time`` is Unix seconds.
"""

from __future__ import annotations

import msgspec


class RpcPrice(msgspec.Struct, frozen=True, gc=False):
    price: str  # i64 mantissa, decimal string
    conf: str  # u64 mantissa, decimal string
    expo: int  # value = mantissa * 10**expo
    publish_time: int  # Unix seconds


class RpcPriceFeedMetadata(msgspec.Struct, frozen=True, gc=False):
    slot: int | None = None
    proof_available_time: int | None = None
    prev_publish_time: int | None = None


class ParsedPriceUpdate(msgspec.Struct, frozen=True, gc=False):
    id: str  # the feed id, 64 hex digits without 0x
    price: RpcPrice
    ema_price: RpcPrice | None = None
    metadata: RpcPriceFeedMetadata | None = None


class BinaryUpdate(msgspec.Struct, frozen=True, gc=False):
    encoding: str  # hex | base64
    data: list[str]  # the signed update (VAA); we read only the parsed prices


class PriceUpdate(msgspec.Struct, frozen=True, gc=False):
    binary: BinaryUpdate
    parsed: list[ParsedPriceUpdate] | None = None  # present with parsed=true (the stream's default)


DECODER = msgspec.json.Decoder(PriceUpdate)
ENCODER = msgspec.json.Encoder()
