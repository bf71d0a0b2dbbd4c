"""The gateway benchmark's baseline: a minimal framed echo server.

It speaks the venue's TCP framing (``protocol.wire``: a u32 big-endian length, one msgpack
map) on the same asyncio machinery as ``adapters/gateway/tcp.py`` (one ``asyncio.Protocol``
per connection, answers gathered in a buffer and written once per read), and does nothing
else: each frame is decoded with the venue's client decoder and answered with an encoded
frame — Hello with a Challenge, Login with a Welcome (no signature check), a Request with
an ``Ack(req_id, seq, [])``. No engine, no journal, no fsync: what the socket, the framing
and msgspec cost on this machine, driven by the very load generators of `bench gateway`.

Run: ``python -m benchmarks.echo PORT``; prints ``ready`` when it listens.
"""

from __future__ import annotations

import asyncio
import sys

from protocol import wire


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
        for payload in self.reader.feed(data):
            message = codec.client_decoder.decode(payload)
            kind = type(message)
            if kind is wire.Request:
                self.counter[0] += 1
                codec.frame_into(wire.Ack(message.req_id, self.counter[0], []), out)
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
