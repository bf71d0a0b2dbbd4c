"""The escrow live in the running venue (issue 13): ``agentperp run``'s default settles every
durable event into an in-process LiteSVM on the projection runner. A venue trades (deposits
made on chain and turned into ``Deposit`` by the watcher, opens, a funding boundary, a partial
close, a keeper's and the engine's liquidation, a withdrawal) and the live chain reconciles
with the engine; a program error halts settlement at its seq while trading goes on, and it
catches up once the fault is gone; a restart rebuilds the chain from the journal."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from solders.keypair import Keypair

from adapters.gateway import http
from adapters.solana.backend import TxOutcome
from adapters.solana.backend_litesvm import LiteSvmBackend
from adapters.solana.runner_sink import SETTLE_COALESCE_S
from engine import commands as cmd
from engine import events as ev
from tests.settlement.conftest import program_path  # noqa: F401  (fixture: builds the program once)
from tests.support import FakeClock
from venue.app import Venue
from venue.config import load

USDC = 1_000_000
S = 10**9
H = 3_600 * S
BASE_NS = 1_767_225_600 * S  # 2026-01-01T00:00:00Z, a funding boundary
SETTLEMENT = "settlement"


def usd(x: float) -> int:
    return int(round(x * 10**8))


class FaultyChain(LiteSvmBackend):
    """While ``armed``, the program refuses every ``close_position`` (as a program that
    disagrees with the venue would): a fault injected through the backend interface."""

    armed = False
    refused = 0

    async def submit(self, built):
        names = [self.escrow.instruction_name(bytes(ix.data)) for ix in built.tx.message.instructions]
        if self.armed and "close_position" in names:
            self.refused += 1
            code = self.escrow.errors["InvalidArgument"]
            return TxOutcome(str(built.signature), False, f"Error processing Instruction 0: custom program error: "
                             f"Custom({code})", code, ["Program log: injected fault"])
        return await super().submit(built)


def config(data_dir):
    return load(env={}, overrides={
        # Snapshots every few commands: a reconcile's replica starts from one (and a restart too).
        "venue": {"data_dir": str(data_dir), "demo": False, "dev": True, "snapshot_every_commands": 4},
        "gateway": {"tcp_port": 0, "http_port": 0},
        "oracle": {"source": "none"},
        "projections": {"sql": False, "retry_backoff_s_min": 0.01, "retry_backoff_s_max": 0.1},
        "settlement": {"backend": "litesvm"},
    })


async def start(data_dir, clock, backend_cls=None) -> Venue:
    venue = Venue(config(data_dir), clock=clock)
    if backend_cls is not None:
        venue.projections.settlement_backend_cls = backend_cls
    await venue.start(serve=False)
    return venue


class Trading:
    """Commands through the venue, at the fake clock's time."""

    def __init__(self, venue: Venue, clock: FakeClock):
        self.venue, self.clock = venue, clock

    async def must(self, command):
        outcome = await self.venue.execute(command)
        assert outcome.rejection is None, f"{command}: {outcome.rejection}"
        return outcome.events

    async def at(self, ts_ns: int, command):
        self.clock.now_ns = max(self.clock.now_ns, ts_ns)
        return await self.must(command)

    async def oracle(self, ts_ns: int, price_e8: int, market: int = 0):
        self.clock.now_ns = max(self.clock.now_ns, ts_ns)
        return await self.must(cmd.OracleUpdate(market, price_e8, price_e8 // 10_000, self.clock.now_ns, "test"))

    async def open(self, trader: str, maker: str, *, side="long", size_e6=1_000 * USDC, leverage=10,
                   rate_e9=5_000_000, collateral_e6=100 * USDC) -> int:
        rfq = (await self.must(cmd.RequestQuote(trader, 0, side, size_e6, leverage, 10**8)))[0]
        await self.must(cmd.SubmitQuote(maker, rfq.rfq_id, rate_e9, collateral_e6))
        events = await self.must(cmd.AcceptQuote(trader, rfq.rfq_id))
        return next(e.position_id for e in events if type(e) is ev.PositionOpened)


async def settled(venue: Venue) -> None:
    await asyncio.wait_for(venue.projections.runner.wait_for_seq(SETTLEMENT, venue.hub.last_seq), 60)


def status(venue: Venue) -> dict:
    return next(item for item in venue.projections.summary() if item["name"] == SETTLEMENT)


async def lifecycle(venue: Venue, clock: FakeClock, agents: dict[str, Keypair]) -> None:
    """Deposits on chain, opens, a funding boundary, margin moves, partial and full closes, a
    keeper's and the engine's liquidation, a withdrawal."""
    t = Trading(venue, clock)
    settlement = venue.projections.settlement
    for name, amount in (("trader", 1_000), ("maker", 2_000), ("keeper", 10), ("c", 500), ("d", 500),
                         ("e", 500), ("f", 500)):
        agents[name] = Keypair()
        await settlement.deposit(agents[name], amount * USDC)  # on chain; the watcher journals it
    a = {name: str(kp.pubkey()) for name, kp in agents.items()}
    await t.oracle(BASE_NS + 7 * H, usd(65_000))
    p1 = await t.open(a["trader"], a["maker"])
    await t.at(BASE_NS + 7 * H + S, cmd.AddMargin(a["trader"], p1, 30 * USDC))
    await t.oracle(BASE_NS + 8 * H + S, usd(65_100))  # the batch carries the boundary's Tick: funding
    await t.oracle(BASE_NS + 9 * H, usd(66_000))
    await t.at(BASE_NS + 9 * H + S // 2, cmd.RemoveMargin(a["trader"], p1, 10 * USDC))
    await t.at(BASE_NS + 9 * H + S, cmd.ClosePosition(a["trader"], p1, 4_000))  # partial
    await t.oracle(BASE_NS + 9 * H + 2 * S, usd(64_000))
    await t.must(cmd.ClosePosition(a["maker"], p1))
    await t.oracle(BASE_NS + 10 * H, usd(65_000))
    p2 = await t.open(a["c"], a["d"], leverage=20, rate_e9=1_000_000)
    await t.oracle(BASE_NS + 10 * H + S, usd(63_000))
    await t.at(BASE_NS + 10 * H + S + S // 2, cmd.Liquidate(a["keeper"], p2))  # the keeper's
    await t.oracle(BASE_NS + 11 * H, usd(65_000))
    await t.open(a["e"], a["f"], leverage=20, rate_e9=0)
    await t.oracle(BASE_NS + 11 * H + S, usd(63_000))
    await t.oracle(BASE_NS + 11 * H + 4 * S, usd(63_000))  # its Tick: the engine liquidates e
    await t.at(BASE_NS + 11 * H + 5 * S, cmd.Withdraw(a["trader"], 500 * USDC, a["trader"]))


def kinds(venue: Venue) -> set[str]:
    """The event types in the venue's journal."""
    from pathlib import Path

    from ledger.journal import JournalReader
    from ledger.records import decode_record
    from ledger.recovery import JOURNAL_DIR
    found = set()
    for _, payload in JournalReader(Path(venue.config.venue.data_dir) / JOURNAL_DIR).read(from_seq=1):
        found |= {type(e).__name__ for e in decode_record(payload).events}
    return found


async def test_a_trading_venue_reconciles_with_its_live_chain_and_after_a_restart(program_path, tmp_path):  # noqa: F811
    clock = FakeClock(BASE_NS + S)
    venue = await start(tmp_path / "data", clock)
    agents: dict[str, Keypair] = {}
    try:
        await lifecycle(venue, clock, agents)
        await settled(venue)
        report = await venue.projections.settlement.reconcile()
        assert report["ok"], report["differences"]
        assert report["seq"] == venue.hub.last_seq and report["unmirrored"] == []
        assert report["vault_balance_e6"] == (5_010 - 500) * USDC  # deposits on chain - the withdrawal
        found = kinds(venue)
        assert {"FundingSettled", "PositionClosed", "PositionLiquidated", "Withdrawn", "MarginChanged"} <= found
        item = status(venue)
        assert item["state"] == "live" and item["lag_seq"] == 0 and item["settled_events"] > 10
        assert venue.projections.runner.projections[0].coalesce_s == SETTLE_COALESCE_S  # the runner sees it
        assert item["deposits_seen"] == 7 and item["oracle_rewrites"] == 0  # liquidations read the posted price
        # A later reconcile brings the engine's replica on from where the first one left it.
        await venue.projections.settlement.deposit(Keypair(), 100 * USDC)
        await settled(venue)
        again = await venue.projections.settlement.reconcile()
        assert again["ok"], again["differences"]
        assert again["seq"] == venue.hub.last_seq > report["seq"]
        assert again["vault_balance_e6"] == (5_010 - 500 + 100) * USDC
        last_seq = venue.hub.last_seq
    finally:
        await venue.stop()

    # The embedded chain died with the process: the next start rebuilds it from the journal.
    restarted = await start(tmp_path / "data", clock)
    try:
        await settled(restarted)
        report = await restarted.projections.settlement.reconcile()
        assert report["ok"], report["differences"]
        assert report["seq"] == last_seq
    finally:
        await restarted.stop()


async def test_a_program_error_halts_settlement_at_its_seq_trading_goes_on_then_it_catches_up(program_path, tmp_path):  # noqa: F811
    clock = FakeClock(BASE_NS + S)
    venue = await start(tmp_path / "data", clock, backend_cls=FaultyChain)
    server, port = await http.serve(venue)
    session = aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}")
    t = Trading(venue, clock)
    try:
        chain: FaultyChain = venue.projections.settlement.backend
        trader, maker = Keypair(), Keypair()
        await venue.projections.settlement.deposit(trader, 1_000 * USDC)
        await venue.projections.settlement.deposit(maker, 1_000 * USDC)
        await t.oracle(BASE_NS + 7 * H, usd(65_000))
        pid = await t.open(str(trader.pubkey()), str(maker.pubkey()))
        await settled(venue)
        chain.armed = True
        closed = await t.must(cmd.ClosePosition(str(trader.pubkey()), pid))
        close_seq = next(e.seq for e in closed if type(e) is ev.PositionClosed)
        runner = venue.projections.runner
        await asyncio.wait_for(runner.until(lambda: runner.status[SETTLEMENT].retry_attempt >= 2), 30)
        health = await (await session.get("/health")).json()
        item = next(p for p in health["projections"] if p["name"] == SETTLEMENT)
        assert item["state"] == "retrying" and item["failing_seq"] == close_seq
        assert f"seq {close_seq} close_position {pid}" in item["last_error"]
        assert "InvalidArgument" in item["last_error"]
        # Trading goes on; settlement stays at the seq before the close, nothing skipped.
        pid2 = await t.open(str(trader.pubkey()), str(maker.pubkey()), size_e6=200 * USDC)
        assert pid2 == pid + 1 and venue.hub.last_seq > close_seq
        assert status(venue)["seq"] == close_seq - 1
        assert "RETRYING@" in venue.projections.status_text()
        metrics = await (await session.get("/metrics")).text()
        assert 'agentperp_projection_lag_seq{projection="settlement"}' in metrics
        assert "agentperp_settlement_settled_events_total" in metrics
        chain.armed = False
        await settled(venue)
        assert status(venue)["state"] == "live" and status(venue)["last_error"] == ""
        report = await (await session.get("/escrow/reconcile")).json()
        assert report["ok"], report["differences"]
    finally:
        await session.close()
        await server.cleanup()
        await venue.stop()


@pytest.mark.parametrize("backend", ["none"])
async def test_settlement_none_runs_no_chain(tmp_path, backend):
    c = config(tmp_path / "data")
    c.settlement.backend = backend
    venue = Venue(c, clock=FakeClock(BASE_NS))
    await venue.start(serve=False)
    try:
        assert venue.projections.settlement is None and venue.projections.summary() == []
    finally:
        await venue.stop()
