"""Schemathesis against a running venue: the OpenAPI document tells the truth.

A real venue (``--dev``, the real clock) serves HTTP on a loopback socket from its own thread
and loop; schemathesis loads ``/openapi.json`` from it like any client and runs every one of
its checks on every operation, signing each request in its auth hook exactly as DESIGN §8
says (Ed25519 of the agent's keypair over ``"{timestamp}\\n{METHOD}\\n{path}\\n" + body``).

One setting is not a default: ``positive_data_acceptance`` also accepts 422. A schema can say
what a well-formed request is, not whether the agent's balance covers it or the RFQ it names is
still open; 422 is the venue's answer for exactly that (``docs/http.md``, status table). Every
400 for a request the schema calls valid is still a failure.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import threading
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from protocol import signing
from tests.support import keypair
from venue.app import Venue
from venue.config import load

pytestmark = pytest.mark.slow  # ~30 s; about the HTTP edge, not the kernels: once per CI run (the JIT pass)

MAX_EXAMPLES = 25  # per operation and phase: about a minute for the whole API on one core
AGENT = keypair(41)
ACCEPTED_FOR_VALID_DATA = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]


class VenueThread:
    """A venue on its own loop in a daemon thread; ``base_url`` once it serves."""

    def __init__(self, data_dir):
        self.config = load(env={}, overrides={
            "venue": {"data_dir": str(data_dir), "demo": False, "dev": True},
            "gateway": {"tcp_port": 0, "http_port": 0},
            "oracle": {"source": "none"},
        })
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.venue: Venue | None = None
        self.stopped: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="venue", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        self.venue = Venue(self.config)
        await self.venue.start()
        self.ready.set()
        await self.stopped.wait()
        await self.venue.stop()

    def start(self) -> str:
        self.thread.start()
        assert self.ready.wait(30), "the venue did not start"
        return f"http://127.0.0.1:{self.venue.http_port}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(30)


@pytest.fixture(scope="module")
def venue_url(tmp_path_factory):
    venue = VenueThread(tmp_path_factory.mktemp("schemathesis"))
    base_url = venue.start()
    try:
        # Money and a price, so that generated requests reach the engine's own checks.
        agent = str(AGENT.pubkey())
        for path, body in (("/dev/faucet", {"agent_id": agent, "amount_usdc": 1_000_000}),
                           ("/dev/oracle", {"market": "BTC-PERP", "price": 65_000})):
            assert requests.post(base_url + path, json=body, timeout=10).status_code == 200
        yield base_url
    finally:
        venue.stop()


@pytest.fixture(scope="module")
def api(venue_url):
    config = SchemathesisConfig.from_dict({
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_FOR_VALID_DATA}},
    })
    return schemathesis.openapi.from_url(venue_url + "/openapi.json", config=config)


# A WebSocket upgrade is not a request schemathesis can make (tests/http/test_ws.py covers /ws).
schema = schemathesis.pytest.from_fixture("api").exclude(path="/ws")

_timestamps = itertools.count()


def _body_bytes(kwargs: dict) -> bytes:
    """The exact bytes ``requests`` will send for these transport arguments."""
    if "json" in kwargs and kwargs["json"] is not None:
        return json.dumps(kwargs["json"], allow_nan=False).encode()
    data = kwargs.get("data")
    if data is None:
        return b""
    return data if isinstance(data, bytes) else str(data).encode()


@schema.auth()
class SignedRequests:
    """DESIGN §8 signing: a fresh X-Timestamp for every request (the venue refuses a replayed
    signature), then the agent's signature over what is actually sent."""

    def get(self, case, ctx):
        return AGENT

    def set(self, case, key, ctx):
        base = time.time_ns() // 1_000_000
        timestamp_ms = base + next(_timestamps) % 1_000  # distinct within any second, inside the window
        kwargs = case.as_transport_kwargs(base_url="http://x")
        path = requests.Request(case.method, kwargs["url"], params=kwargs.get("params")).prepare().path_url
        case.headers = {**(case.headers or {}), **signing.http_headers(
            key, timestamp_ms, case.method.upper(), path, _body_bytes(kwargs))}


STATUSES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=MAX_EXAMPLES, derandomize=True)
def test_the_api_is_what_openapi_says(case):
    response = case.call_and_validate()
    STATUSES[f"{case.method} {case.path}"][response.status_code] += 1


def test_signed_requests_reached_the_engine():
    """The run above authenticated: every signed operation had answers past the signature
    check, and opening an RFQ (the one operation that needs no prior state) succeeded."""
    assert STATUSES, "run with test_the_api_is_what_openapi_says"
    for operation, statuses in STATUSES.items():
        if operation.startswith("POST /trade/") or operation == "POST /account/withdraw":
            assert set(statuses) - {401}, (operation, statuses)
    assert STATUSES["POST /trade/request"][200] > 0, STATUSES["POST /trade/request"]
