"""The whole lifecycle (margin added and removed included), produced by the engine and
journaled, mirrored onto the real program in LiteSVM; afterwards the chain and the engine
agree to the micro-USDC."""

from __future__ import annotations

import asyncio

from solders.pubkey import Pubkey

from adapters.solana.backend import read_config, read_positions
from venue.settlement import litesvm_backend
from adapters.solana.checkpoint import CheckpointStore
from adapters.solana.escrow import STATUS_CLOSED, STATUS_LIQUIDATED, STATUS_OPEN
from adapters.solana.projection import SettlementProjection
from adapters.solana.reconcile import reconcile
from engine import events as ev


def settle(backend, store, journal_dir, **kw):
    projection = SettlementProjection(backend, store, on_unmirrorable="halt", **kw)
    return projection, asyncio.run(projection.run(journal_dir))


def test_lifecycle_mirrored_with_agent_signatures(program_path, lifecycle_journal, tmp_path):
    journal_dir, j = lifecycle_journal
    deltas = [e.delta_e6 for e in j.events if isinstance(e, ev.MarginChanged)]
    assert any(d > 0 for d in deltas) and any(d < 0 for d in deltas)  # margin added and removed
    backend = litesvm_backend(program_path, keyring=j.keys, sigverify=True)
    projection, stats = settle(backend, CheckpointStore(tmp_path / "cp.json"), journal_dir)
    assert stats.last_seq == j.state.last_seq
    assert stats.unmirrored == 0 and stats.already_applied == 0
    assert sum(type(e) is ev.OracleSourceSwitched for e in j.events) == 1  # read, passed by, not unmirrored

    report = reconcile(j.state, backend)
    assert report.ok, "\n".join(map(str, report.differences))
    assert report.agents_checked == 7 and report.positions_checked == 4
    cfg = asyncio.run(read_config(backend))
    vault = asyncio.run(backend.token_balance(backend.vault))
    assert vault == report.chain_held_e6 == cfg.total_deposited_e6 - cfg.total_withdrawn_e6
    assert cfg.fees_e6 == j.state.fees_e6 > 0 and cfg.insurance_e6 == j.state.insurance_e6 > 0
    statuses = [p.status for p in asyncio.run(read_positions(backend, [1, 2, 3, 4]))]
    assert statuses == [STATUS_CLOSED, STATUS_OPEN, STATUS_LIQUIDATED, STATUS_LIQUIDATED]
    # the withdrawal reached the trader's own (associated) token account
    trader_token = backend.token_account_of(Pubkey.from_string(j.trader))
    assert asyncio.run(backend.token_balance(trader_token)) == 500_000_000
    print(stats)
