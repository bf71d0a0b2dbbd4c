"""A real venue on a temp dir with the HTTP API on loopback (port 0), an injectable clock, and
a client that signs like an agent would."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import aiohttp
import pytest
from solders.keypair import Keypair

from adapters.gateway import http
from protocol import signing
from venue.app import Venue
from tests.support import NS_PER_MS, FakeClock, agent_of, keypair
from venue.config import load

WAIT_S = 20.0  # the most a test waits for an event that must come (never asserted on)


@dataclass
class Response:
    status: int
    body: dict | list

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


@dataclass
class Rig:
    venue: Venue
    clock: FakeClock
    session: aiohttp.ClientSession
    port: int
    runner: object = None
    keys: dict = field(default_factory=dict)

    def signed_headers(self, key: Keypair, method: str, path: str, body: bytes, *,
                       timestamp_ms: int | None = None) -> dict[str, str]:
        if timestamp_ms is None:
            # Identical requests signed in the same millisecond are one request (a replay):
            # a real client's clock moves; the fake one is nudged.
            self.clock.advance_ms(1)
            timestamp_ms = self.clock() // NS_PER_MS
        timestamp = str(timestamp_ms)
        signature = key.sign_message(signing.http_message(timestamp, method, path, body))
        return {"X-Agent": agent_of(key), "X-Timestamp": timestamp, "X-Signature": str(signature),
                "Content-Type": "application/json"}

    async def raw(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> Response:
        async with self.session.request(method, path, data=body, headers=headers or {}) as response:
            text = await response.text()
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = {"text": text}
            return Response(response.status, parsed)

    async def post(self, path: str, body, key: Keypair | None = None, **sign) -> Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = self.signed_headers(key, "POST", path, raw, **sign) if key is not None else \
            {"Content-Type": "application/json"}
        return await self.raw("POST", path, raw, headers)

    async def get(self, path: str) -> Response:
        return await self.raw("GET", path)

    async def ok(self, path: str, body, key: Keypair | None = None) -> dict:
        response = await self.post(path, body, key)
        assert response.status == 200, (path, response.status, response.body)
        return response.body

    async def faucet(self, key: Keypair, amount_usdc=1000) -> dict:
        return await self.ok("/dev/faucet", {"agent_id": agent_of(key), "amount_usdc": amount_usdc})

    async def oracle(self, market: str, price) -> dict:
        return await self.ok("/dev/oracle", {"market": market, "price": price})

    async def account(self, key: Keypair) -> dict:
        response = await self.get(f"/accounts/{agent_of(key)}")
        assert response.status == 200, response.body
        return response.body

    async def events(self, from_seq: int = 1) -> list[dict]:
        found = []
        while True:
            page = (await self.get(f"/events?from_seq={from_seq}&limit=1000")).body
            found.extend(page["events"])
            if page["next_from_seq"] > page["last_seq"]:
                return found
            from_seq = page["next_from_seq"]

    async def wait_for_event(self, event_type: str, from_seq: int = 1) -> dict:
        """The first event of ``event_type`` at or after ``from_seq``, as ``GET /events`` gives
        it: looked for again each time the venue publishes a durable batch (waits for ticks)."""
        durable = self.venue.hub.subscribe(from_seq, lambda event: True, queue_max=1_000_000)
        try:
            async with asyncio.timeout(WAIT_S):
                async for _ in durable.batches():
                    for event in await self.events(from_seq):
                        if event["type"] == event_type:
                            return event
        finally:
            durable.close()


def venue_config(tmp_path, **venue_overrides):
    return load(env={}, overrides={
        "venue": {"data_dir": str(tmp_path), "demo": False, "dev": True, **venue_overrides},
        "gateway": {"tcp_port": 0, "http_port": 0},
        "oracle": {"source": "none"},
        "settlement": {"backend": "none"},  # the gateway's tests; the escrow live: tests/settlement/test_venue_live.py
    })


async def start_rig(tmp_path, **venue_overrides) -> Rig:
    return await start_rig_with(venue_config(tmp_path, **venue_overrides))


async def start_rig_with(config) -> Rig:
    """A venue on ``config`` with a fake clock, its HTTP gateway served, a session to it."""
    clock = FakeClock()
    venue = Venue(config, clock=clock)
    await venue.start(serve=False)
    runner, port = await http.serve(venue)
    session = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}")
    return Rig(venue, clock, session, port, runner)


async def stop_rig(rig: Rig) -> None:
    await rig.session.close()
    await rig.runner.cleanup()
    await rig.venue.stop()


@pytest.fixture
async def rig(tmp_path):
    rig = await start_rig(tmp_path)
    try:
        yield rig
    finally:
        await stop_rig(rig)


@pytest.fixture
async def fuzz_rig(tmp_path):
    """A venue with funded agents, a price, and one open RFQ with a quote: fuzzed requests
    reach deep into the engine's checks instead of stopping at the first."""
    rig = await start_rig(tmp_path)
    try:
        trader, maker = keypair(1), keypair(2)
        await rig.faucet(trader, 10_000)
        await rig.faucet(maker, 10_000)
        await rig.oracle("BTC-PERP", 100_000)
        request = await rig.ok("/trade/request", {"market": "BTC-PERP", "side": "long", "size_usdc": 100,
                                                  "leverage": 10, "max_funding_rate": 0.01}, trader)
        await rig.ok("/trade/quote", {"request_id": request["request_id"], "funding_rate": 0.001,
                                      "collateral_usdc": 100}, maker)
        yield rig
    finally:
        await stop_rig(rig)
