"""Hermes payloads -> engine units: exact, or dropped with a reason (never rounded, never a
crash). Table-driven over a captured-shape payload and hostile variants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.oracle import pyth_parse as p
from adapters.oracle.sse import EventTooLarge, SseEvent, SseParser
from engine.units import PRICE_E8_MAX
from venue.config import PYTH_FEED_IDS

BTC, ETH, SOL = (PYTH_FEED_IDS[s] for s in ("BTC-PERP", "ETH-PERP", "SOL-PERP"))
MARKETS = {BTC: 0, ETH: 1, SOL: 2}
CAPTURED = (Path(__file__).parent / "payloads" / "latest_btc_eth.json").read_bytes()


def test_captured_payload_converts_exactly_with_provenance():
    prices, drops = p.parse_update(CAPTURED, MARKETS)
    assert drops == []
    assert prices == [
        p.PythPrice(BTC, 0, 10_432_150_512_345, 4_133_581_216, 1_767_250_800 * 10**9, 10_430_012_000_000),
        p.PythPrice(ETH, 1, 389_012_345_678, 201_234_567, 1_767_250_800 * 10**9, 388_990_000_000),
    ]
    assert p.source_of(BTC) == f"pyth:{BTC}"


@pytest.mark.parametrize("mantissa, expo, e8", [
    (123, -8, 123), (123, -6, 12_300), (5, 2, 50_000_000_000), (12_300, -10, 123),
    (123, -10, None), (1, -9, None), (10**18, -18, 10**8),
])
def test_to_e8_exact_or_none(mantissa, expo, e8):
    assert p.to_e8(mantissa, expo) == e8


def feed(price="6500000000000", conf="100000000", expo=-8, publish_time=1_767_250_800, feed_id=BTC):
    rpc = {"price": price, "conf": conf, "expo": expo, "publish_time": publish_time}
    return {"id": feed_id, "price": rpc, "ema_price": rpc, "metadata": {"slot": 1}}


def body(*feeds, **top) -> bytes:
    return json.dumps({"binary": {"encoding": "hex", "data": ["00"]}, "parsed": list(feeds), **top}).encode()


@pytest.mark.parametrize("payload, reason", [
    (b"{not json", p.MALFORMED),
    (b"[]", p.MALFORMED),
    (json.dumps({"binary": {"encoding": "hex", "data": []}}).encode(), p.MALFORMED),  # parsed=false
    (body(feed(price=6500000000000)), p.MALFORMED),  # a number where Hermes sends a string
    (body(feed(price="65e3")), p.MALFORMED),
    (body(feed(expo="-8")), p.MALFORMED),
    (body(feed(feed_id="xyz")), p.MALFORMED),
    (body(feed(feed_id="00" * 32)), p.UNKNOWN_FEED),
    (body(feed(price="0")), p.NON_POSITIVE),
    (body(feed(price="-6500000000000")), p.NON_POSITIVE),
    (body(feed(conf="-1")), p.MALFORMED),
    (body(feed(expo=400)), p.EXPO_OUT_OF_RANGE),
    (body(feed(expo=-19)), p.EXPO_OUT_OF_RANGE),
    (body(feed(price="123", expo=-10)), p.INEXACT),
    (body(feed(price=str(PRICE_E8_MAX + 1))), p.OUT_OF_BOUNDS),
    (body(feed(price=str(2**63))), p.OUT_OF_BOUNDS),
    (body(feed(publish_time=0)), p.OUT_OF_BOUNDS),
    (body(feed(publish_time=2**62)), p.OUT_OF_BOUNDS),
])
def test_hostile_payloads_are_dropped_with_a_reason(payload, reason):
    prices, drops = p.parse_update(payload, MARKETS)
    assert prices == [] and [d.reason for d in drops] == [reason], drops


def test_one_bad_feed_does_not_drop_the_others_and_ids_are_normalized():
    prices, drops = p.parse_update(body(feed(price="0"), feed(feed_id="0x" + ETH.upper())), MARKETS)
    assert [x.market for x in prices] == [1] and [d.reason for d in drops] == [p.NON_POSITIVE]


def test_an_ema_that_does_not_convert_keeps_the_price():
    f = feed()
    f["ema_price"] = {**f["ema_price"], "price": "123", "expo": -10}
    prices, _ = p.parse_update(body(f), MARKETS)
    assert prices[0].price_e8 == 6_500_000_000_000 and prices[0].ema_price_e8 is None


def lines(text: str) -> list[bytes]:
    return [line.encode() + b"\n" for line in text.split("\n")]


def test_sse_framing_comments_named_events_multiline_data():
    parser = SseParser()
    stream = ":\n\n: No update available\n\ndata: {\"a\":\ndata: 1}\n\nevent: error\ndata: Error receiving update\n\n"
    events = [e for line in lines(stream) if (e := parser.feed_line(line)) is not None]
    assert events == [SseEvent("message", '{"a":\n1}'), SseEvent("error", "Error receiving update")]
    assert parser.comments == 2


def test_sse_event_above_the_limit_is_refused():
    parser = SseParser(data_bytes_max=100)
    with pytest.raises(EventTooLarge):
        parser.feed_line(b"data: " + b"x" * 200 + b"\n")
    assert parser.feed_line(b"data: ok\n") is None and parser.feed_line(b"\n") == SseEvent("message", "ok")
