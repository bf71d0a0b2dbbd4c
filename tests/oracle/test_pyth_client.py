"""The real Pyth client against a Hermes server on loopback: latest, the SSE stream, and
every fault the venue must ride out (429, malformed payloads, error events, dropped
connections, a stream of keep-alives only) — it reconnects and goes on."""

from __future__ import annotations

from adapters.oracle import pyth_client as pc
from adapters.oracle import pyth_parse as parse
from tests.oracle.conftest import BTC, ETH, SOL, Collect, running, settings


async def test_latest_then_stream_exact_with_provenance(hermes):
    sink = Collect()
    source = pc.PythSource(settings(hermes.url))
    async with running(source, sink):
        await sink.until(lambda: len(sink.updates) == 3)  # the latest answer, at once
        await hermes.wait_for(lambda: hermes.stream_count == 1)
        hermes.set_price(BTC, 6_512_345_678_901)
        hermes.publish([BTC])
        await sink.until(lambda: len(sink.updates) == 4)
    first = {u.market: u for u in sink.updates[:3]}
    assert first[1].price_e8 == 320_000_000_000 and first[2].conf_e8 == 5_000_000
    last = sink.updates[-1]
    assert (last.market, last.price_e8, last.source) == (0, 6_512_345_678_901, parse.source_of(BTC))
    assert (last.feed_id, last.ema_price_e8, last.sources) == (BTC, 6_512_345_678_901, [])  # the sim's EMA = price
    assert last.publish_ns == hermes.publish_time[BTC] * 10**9
    assert hermes.requests["latest"] == 1 and hermes.requests["stream"] == 1


async def test_keepalives_errors_and_malformed_payloads_do_not_stop_the_stream(hermes):
    hermes.keepalive_s = 0.01
    sink = Collect()
    async with running(pc.PythSource(settings(hermes.url)), sink):
        await hermes.wait_for(lambda: hermes.stream_count == 1)
        hermes.send_raw('{"binary": {"encoding": "hex", "data": []}, "parsed": [{"id": 3}]}')
        hermes.send_raw("not json at all")
        hermes.send_error("Error receiving update: Lagged(3)")
        hermes.publish([ETH])
        await sink.until(lambda: any(u.market == 1 and u.publish_ns == hermes.publish_time[ETH] * 10**9
                                     for u in sink.updates[3:]))
    assert [reason for reason, _ in sink.drops] == [parse.MALFORMED, parse.MALFORMED]
    assert sink.notes == [pc.ERROR_EVENT] and hermes.requests["stream"] == 1


async def test_dropped_connection_reconnects_with_backoff(hermes):
    sink = Collect()
    async with running(pc.PythSource(settings(hermes.url)), sink):
        await hermes.wait_for(lambda: hermes.stream_count == 1)
        hermes.drop_streams()
        await hermes.wait_for(lambda: hermes.requests["stream"] == 2 and hermes.stream_count == 1)
        hermes.publish([SOL])
        await sink.until(lambda: len(sink.updates) == 4)
    assert pc.RECONNECT in sink.notes and sink.updates[-1].market == 2


async def test_429_backs_off_then_recovers(hermes):
    hermes.rate_limit(3)
    sink = Collect()
    async with running(pc.PythSource(settings(hermes.url)), sink):
        await hermes.wait_for(lambda: hermes.stream_count == 1)
        hermes.publish([BTC])
        await sink.until(lambda: len(sink.updates) >= 1)
    assert hermes.requests["429"] == 3 and sink.notes.count(pc.RATE_LIMITED) == 3


async def test_a_stream_of_keepalives_only_is_stale_and_reconnected(hermes):
    hermes.keepalive_s = 0.01
    sink = Collect()
    async with running(pc.PythSource(settings(hermes.url, stream_stale_s=0.2)), sink):
        await hermes.wait_for(lambda: hermes.requests["stream"] >= 2)
    assert pc.RECONNECT in sink.notes


async def test_api_key_header_and_poll_mode(hermes):
    hermes.require_key = ("x-api-key", "s3cret")
    sink = Collect()
    async with running(pc.PythSource(settings(hermes.url, mode="poll", api_key="s3cret")), sink):
        await sink.until(lambda: len(sink.updates) >= 6)
    assert hermes.requests["latest"] >= 2 and hermes.requests["stream"] == 0
    assert all(h.get("x-api-key") == "s3cret" for h in hermes.headers_seen)


async def test_wrong_key_is_retried_not_fatal(hermes):
    hermes.require_key = ("x-api-key", "right")
    sink = Collect()
    async with running(pc.PythSource(settings(hermes.url, api_key="wrong")), sink):
        await hermes.wait_for(lambda: hermes.requests["stream"] >= 2)
    assert sink.updates == [] and pc.RECONNECT in sink.notes


async def test_request_budget_holds_requests_back(hermes):
    hermes.rate_limit(1_000)  # every request fails at once: only the budget paces them
    sink = Collect()
    source = pc.PythSource(settings(hermes.url, rate_limited_s=0.0, budget_requests=5, budget_window_s=60))
    async with running(source, sink):
        await hermes.wait_for(lambda: hermes.requests["429"] == 5)
        await sink.until(lambda: len(sink.notes) == 5)
        assert source.budget.wait_s() > 0  # the sixth request waits for the window
    assert hermes.requests["429"] == 5
