"""A real venue on a temp dir with the TCP gateway on loopback (port 0), an injectable clock,
SDK clients with deterministic keys, and a raw frame-level client for the protocol tests."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field

import pytest
from solders.keypair import Keypair

from protocol import signing, wire
from agents import sdk
from engine import commands as c
from engine.units import USDC_E6
from ledger.journal import JournalReader
from ledger.records import decode_record
from venue.app import Venue
from tests.support import FakeClock, agent_of
from venue.config import load

WAIT_S = 20.0  # the most any test waits for something that must happen (never asserted on)


async def eventually(condition, what: str = "condition") -> None:
    """Wait until ``condition()`` holds (polling; fails after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def journal_records(venue: Venue) -> list:
    return [decode_record(payload) for _, payload in JournalReader(venue.hub.journal_dir).read(from_seq=1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Rig:
    venue: Venue
    clock: FakeClock
    tmp_path: object
    gateway_overrides: dict
    clients: list = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.venue.tcp_port

    async def deposit(self, key: Keypair | str, usdc: int = 100_000) -> None:
        agent = key if isinstance(key, str) else agent_of(key)
        outcome = await self.venue.execute(c.Deposit(agent, usdc * USDC_E6, f"dep-{agent}-{self.clock()}-{usdc}"))
        assert outcome.rejection is None, outcome.rejection

    async def price(self, market: int, usd: float, conf_bps: int = 5) -> None:
        self.clock.advance_ms(1)
        price_e8 = int(usd * 10**8)
        outcome = await self.venue.execute(c.OracleUpdate(market, price_e8, price_e8 * conf_bps // 10_000,
                                                          self.clock(), "test"))
        assert outcome.rejection is None, outcome.rejection

    async def connect(self, key: Keypair | None, encoding="msgpack", **options) -> sdk.Client:
        client = await sdk.connect("127.0.0.1", self.port, key, encoding, **options)
        self.clients.append(client)
        return client

    async def raw(self) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return RawClient(reader, writer)

    async def restart(self) -> None:
        """Stop the venue and start a new one on the same data dir and port."""
        port = self.venue.tcp_port
        await self.venue.stop()
        overrides = dict(self.gateway_overrides, tcp_port=port)
        self.venue = await start_venue(self.tmp_path, self.clock, overrides)


async def start_venue(tmp_path, clock, gateway: dict) -> Venue:
    """A venue with both edges on loopback (any free ports unless ``gateway`` says)."""
    config = load(env={}, overrides={"venue": {"data_dir": str(tmp_path / "data"), "demo": False},
                                     "gateway": {"tcp_port": 0, "http_port": 0, **gateway},
                                     "oracle": {"source": "none"}})
    venue = Venue(config, clock=clock)
    await venue.start(serve=True)
    return venue


@pytest.fixture
def gateway_limits() -> dict:
    """Override in a test module (or parametrize indirectly) to change [gateway] settings."""
    return {}


@pytest.fixture
async def rig(tmp_path, gateway_limits):
    clock = FakeClock()
    venue = await start_venue(tmp_path, clock, gateway_limits)
    rig = Rig(venue, clock, tmp_path, gateway_limits)
    yield rig
    for client in rig.clients:
        await client.disconnect()
    await rig.venue.stop()


class RawClient:
    """Frames by hand: for the protocol's error paths."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, encoding: str = "msgpack"):
        self.reader = reader
        self.writer = writer
        self.codec = wire.CODECS[encoding]

    def use(self, encoding: str) -> None:
        self.codec = wire.CODECS[encoding]

    def send(self, message) -> None:
        self.writer.write(self.codec.frame(message))

    def send_bytes(self, payload: bytes) -> None:
        self.writer.write(len(payload).to_bytes(4, "big") + payload)

    async def recv(self):
        """The next message (None at EOF)."""
        try:
            size = int.from_bytes(await asyncio.wait_for(self.reader.readexactly(4), WAIT_S), "big")
            payload = await asyncio.wait_for(self.reader.readexactly(size), WAIT_S)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return None
        codec = wire.CODECS["json" if wire.is_json(payload) else "msgpack"]  # errors come in the hello's
        return codec.server_decoder.decode(payload)

    async def recv_until_closed(self) -> list:
        messages = []
        while (message := await self.recv()) is not None:
            messages.append(message)
        return messages

    async def login(self, key: Keypair | None, encoding: str = "msgpack", **login) -> wire.Welcome:
        self.use(encoding)
        self.send(wire.Hello(wire.PROTOCOL_VERSION, encoding, agent_of(key) if key else None))
        message = await self.recv()
        if key is not None:
            assert type(message) is wire.Challenge, message
            self.send(wire.Login(sdk.sign(key, signing.login_message(message.nonce, agent_of(key))), **login))
            message = await self.recv()
        assert type(message) is wire.Welcome, message
        return message

    def close(self) -> None:
        self.writer.close()
