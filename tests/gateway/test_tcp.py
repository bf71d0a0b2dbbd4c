"""The TCP protocol on a real socket: handshake in both encodings, observers, every limit and
its code, maker quotes at session end, duplicate client_ids, and the frame fuzz."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import codes, signing, wire
from agents import sdk
from engine import commands as c
from engine import events as ev
from engine import invariants, views
from engine.units import USDC_E6
from tests.gateway.conftest import eventually, journal_records
from tests.support import agent_of, keypair

RQ = dict(market=0, side="long", size_e6=100 * USDC_E6, leverage=10, max_funding_rate_e9=10_000_000)


def request_quote(key, **fields) -> dict:
    return {"type": "request_quote.v1", "trader": agent_of(key), **RQ, **fields}


@pytest.mark.parametrize("encoding", ["msgpack", "json"])
async def test_handshake_request_and_subscribe(rig, encoding):
    key = keypair(1)
    await rig.deposit(key)
    raw = await rig.raw()
    welcome = await raw.login(key, encoding)
    assert welcome.agent == agent_of(key) and welcome.last_seq == rig.venue.state.last_seq
    assert [m.symbol for m in welcome.markets] == rig.venue.symbols
    assert welcome.limits["max_frame_bytes"] == 64 * 1024
    raw.send(wire.Subscribe(1, ["rfqs", "account"], from_seq=1))
    ack = await raw.recv()
    assert type(ack) is wire.Ack and ack.req_id == 1 and ack.events == []
    backfill = await raw.recv()
    assert type(backfill) is wire.Events and [type(e).__name__ for e in backfill.events] == ["WireDeposited"]
    raw.send(wire.Request(2, wire.command_to_wire(c.RequestQuote(agent_of(key), 0, "long", 100 * USDC_E6, 10,
                                                                 10_000_000, client_id="x1"))))
    answers = [await raw.recv(), await raw.recv()]
    ack = next(m for m in answers if type(m) is wire.Ack)
    live = next(m for m in answers if type(m) is wire.Events)
    opened = wire.event_from_wire(ack.events[0])
    assert type(opened) is ev.RfqOpened and opened.client_id == "x1" and ack.seq == opened.seq
    assert wire.event_from_wire(live.events[0]) == opened
    raw.send(wire.Ping(42))
    pong = await raw.recv()
    assert type(pong) is wire.Pong and pong.nonce == 42 and pong.server_time_ns == rig.clock()
    # A JSON session really is JSON on the wire, a msgpack one msgpack.
    raw.send(wire.Ping(1))
    head = await raw.reader.readexactly(5)
    assert (head[4:5] == b"{") == (encoding == "json")
    raw.close()


async def test_json_by_hand(rig):
    """A client that writes JSON by hand (no SDK) is served."""
    key = keypair(2)
    await rig.deposit(key)
    raw = await rig.raw()
    raw.send_bytes(b'{"type": "hello", "version": 1, "encoding": "json", "agent": null}')
    raw.use("json")
    welcome = await raw.recv()
    assert type(welcome) is wire.Welcome and welcome.agent is None
    raw.send_bytes(b'{"type": "subscribe", "req_id": 5, "streams": ["oracle"]}')
    assert (await raw.recv()) == wire.Ack(5, rig.venue.state.last_seq, [])
    await rig.price(0, 65_000)
    events = await raw.recv()
    assert type(events) is wire.Events and events.sub == 5 and events.events[0].price_e8 == 6_500_000_000_000
    raw.close()


async def test_observer_reads_public_streams_only(rig):
    key = keypair(3)
    raw = await rig.raw()
    await raw.login(None)
    raw.send(wire.Request(1, wire.command_to_wire(c.CancelRfq(agent_of(key), 1))))
    rejected = await raw.recv()
    assert type(rejected) is wire.Rejected and rejected.code == codes.NOT_AUTHENTICATED
    raw.send(wire.Subscribe(2, ["account"]))
    assert (await raw.recv()).code == codes.NOT_AUTHENTICATED
    raw.send(wire.Subscribe(3, ["nope"]))
    rejected = await raw.recv()
    assert rejected.code == codes.UNKNOWN_STREAM and "oracle" in rejected.detail["streams"]
    raw.send(wire.Unsubscribe(4, 99))
    assert (await raw.recv()).code == codes.UNKNOWN_SUBSCRIPTION
    raw.send(wire.Subscribe(5, ["fills", "oracle"]))
    assert type(await raw.recv()) is wire.Ack
    raw.close()


async def test_edge_rejections_keep_the_connection(rig):
    alice, bob = keypair(4), keypair(5)
    await rig.deposit(alice)
    raw = await rig.raw()
    await raw.login(alice)
    # Another agent's id: FORBIDDEN. A command agents may not send: FORBIDDEN. Accept with a bad signature.
    raw.send(wire.Request(1, wire.command_to_wire(c.RequestQuote(agent_of(bob), 0, "long", 100 * USDC_E6, 10, 1))))
    raw.send(wire.Request(2, wire.command_to_wire(c.Deposit(agent_of(alice), 10**12, "free money"))))
    raw.send(wire.Request(3, wire.command_to_wire(c.AcceptQuote(agent_of(alice), 1, 0, "not-a-signature"))))
    raw.send(wire.Request(4, wire.command_to_wire(c.RequestQuote(agent_of(alice), 7, "long", 100 * USDC_E6, 10, 1))))
    raw.send(wire.Request(5, wire.command_to_wire(c.RequestQuote(agent_of(alice), 0, "long", 100 * USDC_E6, 10**6, 1))))
    answers = {m.req_id: m for m in [await raw.recv() for _ in range(5)]}
    assert answers[1].code == codes.FORBIDDEN and answers[1].detail["field"] == "trader"
    assert answers[2].code == codes.FORBIDDEN and "request_quote.v1" in answers[2].detail["allowed"]
    assert answers[3].code == codes.BAD_SIGNATURE and answers[3].detail["message"] == "accept:1:best"
    assert answers[4].code == "UNKNOWN_MARKET"
    assert answers[5].code == "OUT_OF_RANGE" and answers[5].detail["field"] == "leverage"
    # Only the venue's oracle feed journals a switch of source (and prices): an agent may not.
    raw.send(wire.Request(6, wire.command_to_wire(c.SwitchOracleSource(0, "pyth", "synthetic", "stale"))))
    raw.send(wire.Request(8, wire.command_to_wire(c.OracleUpdate(0, 1, 0, rig.clock(), "me"))))
    answers = {m.req_id: m for m in [await raw.recv() for _ in range(2)]}
    assert answers[6].code == codes.FORBIDDEN and "switch_oracle_source.v1" not in answers[6].detail["allowed"]
    assert answers[6].message == "agents may not send SwitchOracleSource"
    assert answers[8].code == codes.FORBIDDEN
    raw.send(wire.Ping(7))
    assert (await raw.recv()) == wire.Pong(7, rig.clock())
    raw.close()


async def test_commands_before_login_and_bad_login(rig):
    key = keypair(6)
    raw = await rig.raw()
    raw.send(wire.Hello(wire.PROTOCOL_VERSION, "msgpack", agent_of(key)))
    challenge = await raw.recv()
    assert type(challenge) is wire.Challenge and len(challenge.nonce) == 32
    raw.send(wire.Request(1, wire.command_to_wire(c.CancelRfq(agent_of(key), 1))))
    assert (await raw.recv()).code == codes.NOT_AUTHENTICATED
    # A signature over another nonce does not log in.
    raw.send(wire.Login(sdk.sign(key, signing.login_message(b"x" * 32, agent_of(key)))))
    error, *rest = await raw.recv_until_closed()
    assert type(error) is wire.Error and error.code == codes.BAD_SIGNATURE and rest == []

    raw = await rig.raw()  # a request as the first frame
    raw.send(wire.Request(1, wire.command_to_wire(c.CancelRfq(agent_of(key), 1))))
    # (not an error of form: answered, and the session still needs its Hello)
    assert (await raw.recv()).code == codes.NOT_AUTHENTICATED
    raw.send(wire.Login("x"))
    assert (await raw.recv_until_closed())[0].code == codes.PROTOCOL_ERROR

    for hello in (wire.Hello(99, "msgpack", None), wire.Hello(1, "msgpack", "not base58 !")):
        raw = await rig.raw()
        raw.send(hello)
        error = (await raw.recv_until_closed())[0]
        assert error.code == (codes.UNSUPPORTED_VERSION if hello.version == 99 else codes.BAD_AGENT)

    raw = await rig.raw()
    await raw.login(key)
    raw.send(wire.Hello(1, "msgpack", None))
    assert (await raw.recv_until_closed())[0].code == codes.PROTOCOL_ERROR


async def test_frame_too_large_closes(rig):
    raw = await rig.raw()
    await raw.login(None)
    raw.writer.write((64 * 1024 + 1).to_bytes(4, "big") + b"\x00" * 100)
    error, *rest = await raw.recv_until_closed()
    assert error.code == codes.FRAME_TOO_LARGE and error.detail["max_bytes"] == 64 * 1024 and rest == []


async def test_duplicate_client_id_answers_the_first_result(rig):
    key = keypair(7)
    await rig.deposit(key)
    client = await rig.connect(key)
    command = c.RequestQuote(client.agent, 0, "long", 100 * USDC_E6, 10, 10_000_000, client_id="once")
    first = await client.execute(command)
    again = await client.execute(command)
    assert again.duplicate and again.events == first.events and again.seq == first.seq
    assert len(views.rfqs(rig.venue.state)) == 1


@pytest.mark.parametrize("gateway_limits", [{"requests_per_s": 0.001, "request_burst": 5}])
async def test_rate_limit_is_per_agent_across_connections(rig):
    key = keypair(8)
    await rig.deposit(key)
    one, two = await rig.connect(key), await rig.connect(key)
    results = [await one.send(c.CancelRfq(one.agent, 1)) for _ in range(3)]
    results += [await two.send(c.CancelRfq(two.agent, 1)) for _ in range(3)]
    found = [r.code for r in results]
    assert found == ["UNKNOWN_RFQ"] * 5 + [codes.RATE_LIMITED]
    assert results[-1].detail["retry_after_ms"] > 0
    assert one.connected and two.connected  # the connection stays
    other = await rig.connect(keypair(9))  # another agent has its own budget
    assert (await other.send(c.CancelRfq(other.agent, 1))).code == "UNKNOWN_RFQ"


@pytest.mark.parametrize("gateway_limits", [{"connections_per_agent": 2}])
async def test_connection_limit(rig):
    key = keypair(10)
    first, second = await rig.connect(key), await rig.connect(key)
    assert rig.venue.metrics.connections._value.get() == 2
    with pytest.raises(sdk.ConnectionClosed) as refused:
        await rig.connect(key)
    assert refused.value.code == codes.TOO_MANY_CONNECTIONS and refused.value.detail["max"] == 2
    await first.disconnect()
    await eventually(lambda: rig.venue.metrics.connections._value.get() == 1, "the gauge to drop")
    third = await rig.connect(key)
    assert third.connected and second.connected


@pytest.mark.parametrize("gateway_limits", [{"login_timeout_s": 0.2, "idle_timeout_s": 1.0}])
async def test_login_and_idle_timeouts(rig):
    raw = await rig.raw()
    raw.send(wire.Hello(1, "msgpack", agent_of(keypair(11))))
    challenge, error = await raw.recv_until_closed()
    assert type(challenge) is wire.Challenge and error.code == codes.LOGIN_TIMEOUT
    silent = await rig.raw()
    assert (await silent.recv_until_closed())[0].code == codes.LOGIN_TIMEOUT  # not even a Hello

    # The idle session logs in after the pinging one, so the venue's idle check of the pinging
    # session falls due first: once the idle one is closed, the pinging one was checked and kept.
    pinging = await rig.connect(keypair(12), ping_interval_s=0.1)
    idle = await rig.raw()
    await idle.login(None)
    assert (await idle.recv_until_closed())[0].code == codes.IDLE_TIMEOUT
    assert pinging.connected and pinging.reconnects == 0
    await eventually(lambda: rig.venue.metrics.connections._value.get() == 1, "the idle session to end")
    assert pinging.connected and pinging.reconnects == 0  # the one left is the pinging session


async def maker_quote(rig, trader, maker_client) -> int:
    ack = await trader.request_quote(0, "long", 100 * USDC_E6, 10, 10_000_000)
    rfq_id = ack.first(ev.RfqOpened).rfq_id
    await maker_client.submit_quote(rfq_id, 1_000_000, 100 * USDC_E6)
    return rfq_id


async def test_maker_quotes_cancelled_when_its_last_session_ends(rig):
    trader_key, maker_key, patient_key = keypair(13), keypair(14), keypair(15)
    for key in (trader_key, maker_key, patient_key):
        await rig.deposit(key)
    trader = await rig.connect(trader_key)
    maker, maker_again = await rig.connect(maker_key), await rig.connect(maker_key)
    patient = await rig.connect(patient_key, cancel_quotes_on_disconnect=False)
    rfq_id = await maker_quote(rig, trader, maker)
    await patient.submit_quote(rfq_id, 2_000_000, 100 * USDC_E6)
    live = lambda: {q.maker for q in views.quotes(rig.venue.state, rfq_id)}  # noqa: E731
    assert live() == {maker.agent, patient.agent}
    await maker.disconnect()
    await eventually(lambda: rig.venue.metrics.connections._value.get() == 3, "the session to end")
    # Commands are decided in order: once a later one is acknowledged, any release the ended
    # session caused would be in the state.
    await trader.send(c.CancelRfq(trader.agent, rfq_id + 1_000))
    assert live() == {maker.agent, patient.agent}  # its other session is still open
    await maker_again.disconnect()
    await patient.disconnect()
    await eventually(lambda: live() == {patient.agent}, "the maker's quote to be released")
    # The state is decided up to one batch ahead of the disk: wait for the release to be durable.
    await eventually(lambda: rig.venue.hub.last_seq == rig.venue.state.last_seq, "the batch to be durable")
    released = [e for r in journal_records(rig.venue) for e in r.events if type(e) is ev.QuoteReleased]
    assert [(e.maker, e.reason) for e in released] == [(maker.agent, "session_ended")]
    assert views.account(rig.venue.state, maker.agent).held_e6 == 0


@pytest.mark.parametrize("gateway_limits", [{"outbound_queue_max": 100}])
async def test_slow_consumer_is_disconnected_and_the_venue_is_not_slowed(rig, monkeypatch):
    from adapters.gateway import tcp
    monkeypatch.setattr(tcp, "WRITE_BUFFER_HIGH_BYTES", 8 * 1024)
    slow = await rig.raw()
    await slow.login(None)
    slow.send(wire.Subscribe(1, ["oracle"]))
    assert type(await slow.recv()) is wire.Ack
    healthy = await rig.connect(None)
    subscription = await healthy.subscribe(["oracle"])
    first_seq = rig.venue.state.last_seq + 1
    # Far more than the socket buffers, the transport's high-water mark and 100 frames hold;
    # the slow client reads nothing meanwhile.
    updates = 6_000
    for i in range(updates // 500):
        await asyncio.gather(*[rig.price(1, 3_000 + (i * 500 + k) % 7) for k in range(500)])
    outcomes_seq = rig.venue.state.last_seq
    assert outcomes_seq - first_seq + 1 == updates
    received = []
    while len(received) < updates:
        received.append(await subscription.get())
    assert [e.seq for e in received] == list(range(first_seq, outcomes_seq + 1))
    messages = await slow.recv_until_closed()
    assert messages and type(messages[-1]) is wire.Error and messages[-1].code == codes.SLOW_CONSUMER
    delivered = sum(len(m.events) for m in messages if type(m) is wire.Events)
    assert delivered < updates
    assert healthy.connected


# -- fuzz -------------------------------------------------------------------------------------------

_I64 = st.integers(-(2**63), 2**63 - 1)
_FIELDS = {"market": _I64, "size_e6": _I64, "leverage": _I64, "max_funding_rate_e9": _I64,
           "expires_in_ms": _I64, "target_rate_e9": st.none() | _I64, "client_id": st.text(max_size=80)}


@pytest.fixture
async def fuzz_rig(rig):
    """One venue for every example of a fuzz test, a funded fuzzing agent, and a witness
    session that must keep being served throughout."""
    key = keypair(20)
    await rig.deposit(key, 1_000_000_000)
    await rig.price(0, 65_000)
    rig.fuzz_key = key
    rig.witness = await rig.connect(keypair(21))
    return rig


def _settings(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


async def _witness_still_served(rig) -> None:
    ack = await rig.witness.subscribe(["oracle"], from_seq=1)
    await ack.close()


@_settings(60)
@given(payload=st.binary(min_size=1, max_size=300), logged_in=st.booleans())
async def test_fuzz_random_bytes(fuzz_rig, payload, logged_in):
    rig = fuzz_rig
    raw = await rig.raw()
    try:
        if logged_in:
            await raw.login(rig.fuzz_key)
        raw.send_bytes(payload)
        messages = await raw.recv_until_closed()
    finally:
        raw.close()
    assert messages, payload
    error = messages[-1]
    assert type(error) is wire.Error and error.code in (codes.MALFORMED, codes.PROTOCOL_ERROR), error
    if error.code == codes.MALFORMED:
        assert "hint" in error.detail
    await _witness_still_served(rig)


@_settings(60)
@given(fields=st.fixed_dictionaries({}, optional=_FIELDS), encoding=st.sampled_from(["msgpack", "json"]))
async def test_fuzz_out_of_range_values(fuzz_rig, fields, encoding):
    """Any int64 in any field: an Ack or a Rejected with a stable code; the session stays."""
    rig = fuzz_rig
    raw = await rig.raw()
    try:
        await raw.login(rig.fuzz_key, encoding)
        body = request_quote(rig.fuzz_key, **fields)
        raw.send_bytes(raw.codec.encoder.encode({"type": "request", "req_id": 1, "command": body}))
        answer = await raw.recv()
        raw.send(wire.Ping(3))
        pong = await raw.recv()
    finally:
        raw.close()
    if type(answer) is wire.Ack:  # durable: in the journal as acknowledged
        on_disk = {e.seq: e for r in journal_records(rig.venue) for e in r.events}
        assert all(on_disk[e.seq] == wire.event_from_wire(e) for e in answer.events)
    else:
        assert type(answer) is wire.Rejected and answer.code.isupper(), answer
    assert type(pong) is wire.Pong


@_settings(40)
@given(field=st.sampled_from(sorted(_FIELDS) + ["side", "duration", "auto_accept", "trader"]),
       value=st.one_of(st.text(max_size=5), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2),
                       st.integers(2**63, 2**80), st.integers(-(2**80), -(2**63) - 1)),
       encoding=st.sampled_from(["msgpack", "json"]))
async def test_fuzz_wrong_types_close_with_malformed(fuzz_rig, field, value, encoding):
    rig = fuzz_rig
    body = request_quote(rig.fuzz_key, **{field: value})
    try:
        msgspec.convert(body, wire.WIRE_COMMAND[c.RequestQuote])
        return  # the value happens to be valid for this field (e.g. a text client_id)
    except msgspec.ValidationError:
        pass
    try:
        payload = wire.CODECS[encoding].encoder.encode({"type": "request", "req_id": 1, "command": body})
    except OverflowError:
        return  # msgpack cannot carry ints beyond [-2**63, 2**64 - 1]
    raw = await rig.raw()
    try:
        await raw.login(rig.fuzz_key, encoding)
        raw.send_bytes(payload)
        error, *rest = await raw.recv_until_closed()
    finally:
        raw.close()
    assert error.code == codes.MALFORMED and field in error.message and rest == [], error
    await _witness_still_served(rig)


async def test_fuzz_truncated_frames_and_the_journal_afterwards(fuzz_rig):
    rig = fuzz_rig
    client = await rig.connect(rig.fuzz_key)
    acked = [await client.request_quote(0, "long", 100 * USDC_E6, 10, 10_000_000) for _ in range(3)]
    for cut in (1, 3, 4, 10):
        raw = await rig.raw()
        await raw.login(rig.fuzz_key)
        frame = raw.codec.frame(wire.Request(1, wire.command_to_wire(
            c.RequestQuote(client.agent, 0, "long", 100 * USDC_E6, 10, 10_000_000))))
        raw.writer.write(frame[:cut])  # the rest never comes
        await raw.writer.drain()
        raw.close()
    # A frame whose length is right but whose content is cut short: MALFORMED.
    raw = await rig.raw()
    await raw.login(rig.fuzz_key)
    payload = raw.codec.encoder.encode(wire.Request(1, wire.command_to_wire(c.CancelRfq(client.agent, 1))))
    raw.send_bytes(payload[:-3])
    assert (await raw.recv_until_closed())[0].code == codes.MALFORMED
    acked.append(await client.request_quote(0, "short", 100 * USDC_E6, 10, 10_000_000))
    on_disk = {e.seq: e for r in journal_records(rig.venue) for e in r.events}
    for ack in acked:
        for event in ack.events:
            assert on_disk[event.seq] == event
    assert len(views.rfqs(rig.venue.state)) == 4
    invariants.check(rig.venue.state)
