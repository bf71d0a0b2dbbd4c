"""``agentperp run --settlement rpc`` against the RPC peer (issue 13): LiteSVM with the escrow
program served as a Solana JSON-RPC node on loopback, the venue talking to it through the real
solana-py ``AsyncClient``. The demo agents fund themselves on that dev chain (SOL by airdrop,
test USDC by a real ``mint_to``, their own ``deposit``), the RPC deposit watcher journals the
deposits, the venue keeps the program's oracle accounts (``surfnet_setAccount``), and the live
chain reconciles with the engine. The watcher's durable cursor survives a restart: nothing
lost, nothing delivered twice; a crash before the cursor is stored redelivers, harmlessly."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from solders.keypair import Keypair

from adapters.solana.backend_litesvm import oracle_key
from adapters.solana.rpc_peer import write_settings
from adapters.solana.watcher import CursorStore, RpcDepositWatcher, WatchCursor
from engine import events as ev
from engine import views
from engine.units import FUNDING_INTERVAL_NS
from programs.escrow import localnet
from tests.settlement.conftest import program_path  # noqa: F401  (fixture: builds the program once)
from tests.settlement.test_rpc_peer import deposit_on_chain, served_chain
from venue.app import Venue
from venue.config import DEFAULT_SYMBOLS, load
from venue.settlement import DEPOSIT_CURSOR_FILE, SETTLEMENT_NAME, escrow_program

USDC = 1_000_000
S = 10**9
WAIT_S = 180  # a generous bound on any one wait (a slow shared machine); the waits are on events
BOUNDARY_AFTER_S = 12  # the venue's clock starts this long before a funding boundary


@pytest.fixture
async def node(program_path, tmp_path):  # noqa: F811
    """(world, peer, client, settings file): a fresh dev chain on a free loopback port and the
    ``[settlement]`` table ``agentperp escrow rpc-peer`` would write for it."""
    async with served_chain(program_path) as (world, peer, url, client):
        oracles = {symbol: oracle_key(market) for market, symbol in enumerate(DEFAULT_SYMBOLS)}
        settings = write_settings(tmp_path / "peer", url=url, program_id=localnet.PROGRAM_ID, vault=world.vault,
                                  mint=world.mint, authority=world.authority, mint_authority=world.mint_authority,
                                  oracle_accounts=oracles)
        yield world, peer, client, settings


def venue_config(data_dir, settings, *, demo: bool, **settlement):
    import tomllib
    table = tomllib.loads(settings.read_text())["settlement"]
    return load(env={}, overrides={
        "venue": {"data_dir": str(data_dir), "demo": demo, "dev": True, "status_interval_s": 0},
        "gateway": {"tcp_port": 0, "http_port": 0},
        "projections": {"sql": False, "retry_backoff_s_min": 0.01, "retry_backoff_s_max": 0.1},
        "hedging": {"enabled": "off"},
        "settlement": {**table, **settlement},
    })


class Seen:
    """Counts of durable events by type (a hub listener); ``reached(predicate)`` waits on them."""

    def __init__(self, venue: Venue):
        self.counts: dict[type, int] = {}
        self.refs: list[str] = []
        self.changed = asyncio.Event()
        venue.hub.listen(self)

    def __call__(self, events: list) -> None:
        for event in events:
            self.counts[type(event)] = self.counts.get(type(event), 0) + 1
            if type(event) is ev.Deposited:
                self.refs.append(event.ref)
        self.changed.set()

    def __getitem__(self, kind: type) -> int:
        return self.counts.get(kind, 0)

    async def reached(self, predicate) -> None:
        async def wait():
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), WAIT_S)


async def settled(venue: Venue) -> None:
    await asyncio.wait_for(venue.projections.runner.wait_for_seq(SETTLEMENT_NAME, venue.hub.last_seq), WAIT_S)


def before_a_funding_boundary(lead_s: int):
    """A venue clock that reads ``lead_s`` before the next funding boundary at start, then runs."""
    now = time.time_ns()
    boundary = (now // FUNDING_INTERVAL_NS + 1) * FUNDING_INTERVAL_NS
    offset = boundary - lead_s * S - now
    return lambda: time.time_ns() + offset


# ---------------------------------------------------------------------- the demo, end to end over RPC
async def test_the_demo_venue_settles_on_the_rpc_peer_and_reconciles(node, tmp_path):
    world, peer, client, settings = node
    from agents import demo

    venue = Venue(venue_config(tmp_path / "data", settings, demo=True),
                  clock=before_a_funding_boundary(BOUNDARY_AFTER_S))
    await venue.start()
    seen = Seen(venue)
    try:
        settlement = venue.projections.settlement
        assert settlement.on_chain_deposits and "RPC http://127.0.0.1:" in settlement.describe()
        for task in await demo.start(venue):  # each demo agent deposits on chain, then trades over TCP
            venue.add_task(task)
        agents = len(demo.roles(venue.config.demo.traders))
        assert seen[ev.Deposited] == agents and all(ref.count(":") == 0 for ref in seen.refs)  # refs: signatures
        await seen.reached(lambda s: s[ev.PositionOpened] >= 3 and s[ev.PositionClosed] >= 1
                           and s[ev.FundingSettled] >= 1)
        await settled(venue)

        report = await settlement.reconcile()
        assert report["ok"], report["differences"]
        assert report["unmirrored"] == [] and report["agents_checked"] == agents
        assert report["positions_checked"] >= 3 and report["backend"] == "rpc"
        assert report["vault_balance_e6"] == agents * venue.config.demo.faucet_usdc * USDC  # all came on chain
        figures = settlement.figures()
        assert figures["deposits_seen"] == agents and figures["settled_events"] >= 4
        assert figures["unmirrored"] == 0 and figures["oracle_rewrites"] == 0  # every price was posted in order
        assert "settlement lag" in venue.projections.status_text()
        # the deposit cursor is on disk, and it names this chain
        cursor = json.loads((tmp_path / "data" / DEPOSIT_CURSOR_FILE).read_text())
        assert cursor["chain_id"].startswith(f"rpc:{peer.genesis_hash}:") and cursor["done"] is not None
    finally:
        await venue.stop()
    # Stopped, settled to its last seq: each market's oracle account holds the engine's last price.
    backend, oracle = venue.projections.settlement.backend, venue.state.oracle
    assert peer.accounts_set > 0 and venue.projections.runner.status[SETTLEMENT_NAME].seq == venue.hub.last_seq
    for market in range(len(venue.symbols)):  # PriceUpdateV2: feed id at 41, price at 73, publish time at 93
        data = bytes((await client.get_account_info(backend.oracle_accounts[market])).value.data)
        assert data[41:73] == localnet.FEEDS[market]
        assert int.from_bytes(data[73:81], "little") == oracle.price_e8[market]
        assert int.from_bytes(data[93:101], "little") == oracle.publish_ns[market] // S


def free_e6(venue: Venue, agents: list[Keypair]) -> list[int]:
    return [views.account(venue.state, str(a.pubkey())).free_e6 for a in agents]


# ---------------------------------------------------------------------- the durable cursor across restarts
async def test_the_deposit_cursor_survives_restarts_nothing_lost_nothing_twice(node, tmp_path):
    world, peer, client, settings = node
    escrow = escrow_program(localnet.PROGRAM_ID)
    agents = [Keypair() for _ in range(5)]
    amounts = [(i + 1) * 100 * USDC for i in range(5)]
    data = tmp_path / "data"
    # Only explicit polls (watch_once), so each test step knows exactly what a poll delivers.
    config = venue_config(data, settings, demo=False, watch_interval_ms=3_600_000)

    async def started() -> tuple[Venue, Seen]:
        venue = Venue(config)
        await venue.start(serve=False)
        return venue, Seen(venue)

    signatures = [await deposit_on_chain(client, world, escrow, agents[i], amounts[i]) for i in range(3)]
    venue, seen = await started()
    try:
        assert await venue.projections.settlement.watch_once() == 3
        assert seen.refs == signatures and await venue.projections.settlement.watch_once() == 0
    finally:
        await venue.stop()
    stored = (data / DEPOSIT_CURSOR_FILE).read_bytes()

    # Two more while the venue is down: the restarted venue reads from its stored cursor.
    signatures += [await deposit_on_chain(client, world, escrow, agents[i], amounts[i]) for i in (3, 4)]
    venue, seen = await started()
    try:
        settlement = venue.projections.settlement
        assert await settlement.watch_once() == 2 and seen.refs == signatures[3:]
        assert settlement.deposits_seen == 2
        assert free_e6(venue, agents) == amounts
        await settled(venue)
        assert (await settlement.reconcile())["ok"]
    finally:
        await venue.stop()

    # A crash after the commands were accepted but before the cursor was stored: the file still
    # holds the earlier cursor. The restart delivers those two again; the engine refuses each
    # repeated ref (DUPLICATE), so no balance moves and nothing is journaled twice.
    (data / DEPOSIT_CURSOR_FILE).write_bytes(stored)
    venue, seen = await started()
    try:
        settlement = venue.projections.settlement
        assert await settlement.watch_once() == 2
        assert settlement.deposits_seen == 0 and seen[ev.Deposited] == 0
        assert free_e6(venue, agents) == amounts
        await settled(venue)
        assert (await settlement.reconcile())["ok"]
        assert json.loads((data / DEPOSIT_CURSOR_FILE).read_text())["done"] == signatures[-1]
    finally:
        await venue.stop()


# ---------------------------------------------------------------------- bounded polls, through the real client
async def test_bounded_polls_deliver_every_deposit_once_across_a_restart(node, tmp_path):
    world, peer, client, settings = node
    escrow = escrow_program(localnet.PROGRAM_ID)
    agents = [Keypair() for _ in range(9)]
    store = CursorStore(tmp_path / "cursor.json")

    def watcher(cursor: WatchCursor) -> RpcDepositWatcher:  # at most 3 signatures a poll, pages of 2
        return RpcDepositWatcher(client, localnet.PROGRAM_ID, cursor, address=world.vault, page_max=2,
                                 per_poll_max=3)

    sent = [await deposit_on_chain(client, world, escrow, agents[i], (i + 1) * USDC) for i in range(7)]
    w = watcher(WatchCursor())
    delivered = [d.signature for d in await w.poll()]
    assert delivered == sent[4:7] and w.cursor.resume == sent[4]  # the newest three; the rest is left to walk
    store.save("chain", w.cursor)
    sent += [await deposit_on_chain(client, world, escrow, agents[i], (i + 1) * USDC) for i in (7, 8)]
    w = watcher(store.load("chain"))  # a restart in the middle of the walk
    while batch := await w.poll():
        delivered += [d.signature for d in batch]
        store.save("chain", w.cursor)
        w = watcher(store.load("chain"))
    assert sorted(delivered) == sorted(sent) and len(delivered) == len(sent)  # every one, exactly once
    assert w.cursor == WatchCursor(done=sent[-1])
    assert store.load("another chain") == WatchCursor()  # a cursor of another chain is void


# ---------------------------------------------------------------------- one chain, one journal
async def test_a_second_data_dir_on_the_same_chain_halts_settlement_naming_why(node, tmp_path):
    """Position ids start at 1 in every journal: a second data dir settling onto a chain that
    already holds another journal's position 1 must not take it for its own (PositionExists
    means "already done" only for the same position)."""
    from engine import commands as cmd

    world, peer, client, settings = node
    escrow = escrow_program(localnet.PROGRAM_ID)

    async def one_position(data_dir) -> Venue:
        trader, maker = Keypair(), Keypair()
        for agent in (trader, maker):
            await deposit_on_chain(client, world, escrow, agent, 1_000 * USDC)
        venue = Venue(venue_config(data_dir, settings, demo=False, watch_interval_ms=3_600_000),
                      clock=time.time_ns)
        venue.config.oracle.source = "none"
        await venue.start(serve=False)
        await venue.projections.settlement.watch_once()
        t, m = str(trader.pubkey()), str(maker.pubkey())
        for command in (cmd.OracleUpdate(0, 65_000 * 10**8, 10**8, time.time_ns(), "test"),
                        cmd.RequestQuote(t, 0, "long", 1_000 * USDC, 10, 10**8)):
            outcome = await venue.execute(command)
            assert outcome.rejection is None, outcome.rejection
        rfq = outcome.events[0].rfq_id
        for command in (cmd.SubmitQuote(m, rfq, 5_000_000, 100 * USDC), cmd.AcceptQuote(t, rfq)):
            outcome = await venue.execute(command)
            assert outcome.rejection is None, outcome.rejection
        return venue

    first = await one_position(tmp_path / "first")
    try:
        await settled(first)
        assert (await first.projections.settlement.reconcile())["ok"]
    finally:
        await first.stop()
    second = await one_position(tmp_path / "second")
    try:
        runner = second.projections.runner
        await asyncio.wait_for(runner.until(lambda: runner.status[SETTLEMENT_NAME].retry_attempt >= 1), WAIT_S)
        item = next(p for p in second.projections.summary() if p["name"] == SETTLEMENT_NAME)
        assert item["state"] == "retrying" and "position 1 on chain is another journal's" in item["last_error"]
        assert item["already_applied"] == 0  # the other journal's position was not taken for this one's
    finally:
        await second.stop()


# ---------------------------------------------------------------------- the dev chain's cheat code
async def test_surfnet_set_account_writes_what_the_client_reads_and_refuses_bad_input(node):
    import httpx

    from adapters.solana.backend_rpc import DevChain
    from adapters.solana.escrow import PYTH_RECEIVER_ID

    world, peer, client, settings = node
    import tomllib
    dev = DevChain(tomllib.loads(settings.read_text())["settlement"]["rpc_url"])
    key, data = Keypair().pubkey(), localnet.price_update_bytes(localnet.FEEDS[1], 3_000 * 10**8, 10**7, -8, 1_234)
    try:
        await dev.set_account(key, data, PYTH_RECEIVER_ID, 5_000_000)
        got = (await client.get_account_info(key)).value
        assert (bytes(got.data), got.owner, got.lamports, got.executable) == (data, PYTH_RECEIVER_ID, 5_000_000, False)
        # a partial update keeps the other fields (surfpool's semantics)
        await dev.call("surfnet_setAccount", [str(key), {"lamports": 7_000_000}])
        got = (await client.get_account_info(key)).value
        assert (bytes(got.data), got.owner, got.lamports) == (data, PYTH_RECEIVER_ID, 7_000_000)
        for bad in ([str(key), {"data": "zz"}], [str(key), {"lamports": -1}], [str(key), {"executable": "yes"}],
                    [str(key), "not an object"], ["not a key", {}]):
            with pytest.raises(RuntimeError, match="Invalid params"):
                await dev.call("surfnet_setAccount", bad)
        async with httpx.AsyncClient() as http:  # over the body limit: refused before parsing
            body = {"jsonrpc": "2.0", "id": 1, "method": "surfnet_setAccount",
                    "params": [str(key), {"data": "00" * (1 << 20)}]}
            resp = await http.post(dev.url, content=json.dumps(body))
            assert resp.status_code == 413
        assert peer.accounts_set == 2
    finally:
        await dev.close()


def test_rpc_settlement_with_demo_agents_needs_a_dev_chain(tmp_path):
    """A real cluster cannot fund the demo agents: the venue refuses to start and says what to set."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "venue.cli", "run", "--data", str(tmp_path / "data"), "--port", "0",
                           "--http-port", "0", "--no-sql", "--settlement", "rpc", "--rpc-url", "http://127.0.0.1:9",
                           "--duration", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "the venue did not start" in done.stderr and "dev_chain = true" in done.stderr and "--no-demo" in done.stderr
