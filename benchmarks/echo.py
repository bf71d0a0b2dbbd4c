"""The gateway benchmark's baseline: a minimal framed echo server.

It speaks the venue's TCP framing (``protocol.wire``: a u32 big-endian length, one msgpack
map) on the same asyncio machinery as ``adapters/gateway/tcp.py`` (one ``asyncio.Protocol``
per connection, answers gathered in a buffer and written once per read), and does nothing
else: each frame is decoded with the venue's client decoder and answered with an encoded
frame — Hello with a Challenge, Login with a Welcome (no signature check), a Request with
an ``Ack`` of the venue's shape: a ``request_quote`` is answered with an ``rfq_opened``
event and a ``cancel_rfq`` with an ``rfq_closed``, built from the command's fields
(``answer_events``), so the echo encodes answers as large as the venue's (≈ 500 bytes, not
an empty Ack's 46) and the load generators send it the same mix (they cancel the RFQs the
answers name). No engine, no journal, no fsync: what the socket, the framing and msgspec
cost on this machine, driven by the very load generators of `bench gateway`.

Run: ``python -m benchmarks.echo PORT``; prints ``ready`` when it listens.
"""

from __future__ import annotations

import asyncio
import sys
import time

from engine import commands as cmd
from engine import events as ev
from protocol import wire

RFQ_LIFETIME_NS = 1_000_000_000  # the stand-in expiry of an echoed rfq_opened
HOLD_E6, FEE_E6 = 1_000_000, 5_000  # stand-in amounts (the venue's for a 10 USDC RFQ at 10x)


def answer_events(command, seq: int, ts_ns: int) -> list:
    """The events the venue's Ack carries for ``command`` (a wire command), as the venue
    shapes them; the decisions (ids, amounts) are stand-ins: the echo decides nothing."""
    kind = type(command)
    if kind is wire.WIRE_COMMAND[cmd.RequestQuote]:
        hold = wire.WireTransfer(ev.FREE, command.trader, ev.HELD, command.trader, HOLD_E6 + FEE_E6, "hold")
        return [wire.WIRE_EVENT[ev.RfqOpened](
            seq, ts_ns, seq, seq, command.trader, command.market, command.side, command.size_e6, command.leverage,
            command.max_funding_rate_e9, command.duration, ts_ns + RFQ_LIFETIME_NS, HOLD_E6, FEE_E6,
            command.auto_accept, command.target_rate_e9, command.client_id, [hold])]
    if kind is wire.WIRE_COMMAND[cmd.CancelRfq]:
        release = wire.WireTransfer(ev.HELD, command.trader, ev.FREE, command.trader, HOLD_E6 + FEE_E6, "release")
        return [wire.WIRE_EVENT[ev.RfqClosed](seq, ts_ns, seq, command.rfq_id, command.trader, "cancelled",
                                              command.client_id, [release])]
    return []


class EchoConnection(asyncio.Protocol):
    def __init__(self, counter: list[int]):
        self.codec = wire.CODECS["msgpack"]
        self.reader = wire.FrameReader(wire.SERVER_FRAME_BYTES_MAX)
        self.out = bytearray()
        self.counter = counter  # [last seq], shared by all connections, like the venue's
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        codec, out = self.codec, self.out
        ts_ns = time.time_ns()  # one stamp per read, as the sequencer stamps per batch
        for payload in self.reader.feed(data):
            message = codec.client_decoder.decode(payload)
            kind = type(message)
            if kind is wire.Request:
                self.counter[0] += 1
                seq = self.counter[0]
                codec.frame_into(wire.Ack(message.req_id, seq, answer_events(message.command, seq, ts_ns)),
                                 out)
            elif kind is wire.Hello:
                codec.frame_into(wire.Challenge(bytes(32)), out)
            elif kind is wire.Login:
                codec.frame_into(wire.Welcome("echo", 0, self.counter[0]), out)
            elif kind is wire.Ping:
                codec.frame_into(wire.Pong(message.nonce, 0), out)
        if out:
            self.transport.write(bytes(out))
            out.clear()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    counter = [0]
    server = await loop.create_server(lambda: EchoConnection(counter), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
