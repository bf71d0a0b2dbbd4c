"""The embedded deposit watcher end to end, margin changes mirrored, what is not mirrored
(and that reconcile shows it), and the reconcile command."""

from __future__ import annotations

import asyncio

from solders.message import Message
from solders.transaction import Transaction

from adapters.solana.backend import read_positions
from venue.settlement import escrow_idl, litesvm_backend
from adapters.solana.checkpoint import CheckpointStore
from adapters.solana.projection import SettlementProjection
from adapters.solana.reconcile import main, reconcile
from adapters.solana.watcher import LiteSvmDepositWatcher, to_command
from engine import commands as cmd
from tests.settlement.journal import BASE_NS, H, S, USDC, JournalBuilder, usd


def test_on_chain_deposit_becomes_a_command_and_is_not_mirrored_twice(program_path, tmp_path):
    backend = litesvm_backend(program_path, sigverify=True)
    world = backend.world
    agent = world.new_agent(300 * USDC)  # an agent with its own USDC on the embedded chain
    backend.svm.expire_blockhash()
    bh = backend.svm.latest_blockhash()
    tx = Transaction([agent.keypair], Message.new_with_blockhash([world.deposit_ix(agent, 120 * USDC)], agent.key, bh),
                     bh)
    assert backend.send_external(tx).ok
    watcher = LiteSvmDepositWatcher(backend)
    seen = asyncio.run(watcher.poll())
    assert [(s.owner, s.amount_e6, s.signature) for s in seen] == [(str(agent.key), 120 * USDC, str(tx.signatures[0]))]
    assert asyncio.run(watcher.poll()) == []  # the cursor moved on

    # the venue journals it (and a faucet credit); the projection mirrors only the faucet one
    j = JournalBuilder(tmp_path / "journal")
    j.must(BASE_NS, to_command(seen[0]))
    again = j.run(BASE_NS, to_command(seen[0]))  # delivered twice: the engine credits a ref once
    assert again.code == "DUPLICATE"
    j.must(BASE_NS + S, cmd.Deposit(str(agent.key), 30 * USDC, "faucet:1"))
    j.close()
    backend.keyring[str(agent.key)] = agent.keypair
    stats = asyncio.run(SettlementProjection(backend, CheckpointStore(tmp_path / "cp.json"), on_unmirrorable="halt")
                        .run(tmp_path / "journal"))
    assert stats.transactions == 1  # the faucet deposit only
    assert asyncio.run(watcher.poll()) == []  # the projection's mirror is not an agent's deposit
    report = reconcile(j.state, backend)
    assert report.ok, report.differences
    assert report.vault_balance_e6 == 150 * USDC


def test_margin_changes_are_mirrored_and_reconcile_agrees(program_path, tmp_path):
    j = JournalBuilder(tmp_path / "journal")
    a, b = j.agent("a"), j.agent("b")
    j.must(BASE_NS, cmd.Deposit(a, 500 * USDC, "f:a"))
    j.must(BASE_NS, cmd.Deposit(b, 500 * USDC, "f:b"))
    t = BASE_NS + H
    j.oracle(t, usd(65_000))
    pid = j.open(t, a, b)  # a long 100 USDC, b short 100 USDC
    j.must(t + S, cmd.AddMargin(a, pid, 20 * USDC))
    j.must(t + 2 * S, cmd.AddMargin(b, pid, 40 * USDC))
    j.must(t + 3 * S, cmd.RemoveMargin(b, pid, 25 * USDC))
    j.must(t + 4 * S, cmd.RemoveMargin(a, pid, 20 * USDC))
    too_much = j.run(t + 5 * S, cmd.RemoveMargin(a, pid, 1))  # back at the initial requirement
    assert too_much.code == "INSUFFICIENT_MARGIN"
    j.close()
    backend = litesvm_backend(program_path, keyring=j.keys, sigverify=True)
    projection = SettlementProjection(backend, CheckpointStore(tmp_path / "cp.json"), on_unmirrorable="halt")
    stats = asyncio.run(projection.run(tmp_path / "journal"))
    assert stats.unmirrored == 0 and stats.transactions == 7  # 2 deposits, 1 lock, 4 margin changes
    report = reconcile(j.state, backend)
    assert report.ok, "\n".join(map(str, report.differences))
    chain = asyncio.run(read_positions(backend, [pid]))[0]
    assert (chain.margin_long_e6, chain.margin_short_e6) == (100 * USDC, 115 * USDC)

    # the whole journal again from seq 0 on the settled chain: every change is already applied
    again = SettlementProjection(backend, CheckpointStore(tmp_path / "cp2.json"), on_unmirrorable="halt")
    stats = asyncio.run(again.run(tmp_path / "journal"))
    assert stats.unmirrored == 0 and stats.already_applied == 7
    assert reconcile(j.state, backend).ok


def reconcile_command(argv: list[str]) -> int:
    """``agentperp escrow reconcile`` as venue/cli.py wires it."""
    return main(argv, idl=escrow_idl(), litesvm_backend=litesvm_backend)


def test_reconcile_command(lifecycle_journal, tmp_path, capsys):
    journal_dir, _ = lifecycle_journal
    assert reconcile_command(["--journal", str(journal_dir)]) == 0
    assert "ok: no difference" in capsys.readouterr().out
    j = JournalBuilder(tmp_path / "data" / "journal")
    a, b = j.agent("a"), j.agent("b")
    j.must(BASE_NS, cmd.Deposit(a, 500 * USDC, "f:a"))
    j.must(BASE_NS, cmd.Deposit(b, 500 * USDC, "f:b"))
    j.oracle(BASE_NS + H, usd(65_000))
    pid = j.open(BASE_NS + H, a, b)
    j.must(BASE_NS + H + S, cmd.AddMargin(b, pid, 10 * USDC))  # mirrored
    j.must(BASE_NS + H + 2 * S, cmd.Deposit("not-a-solana-key", 5 * USDC, "f:x"))  # cannot be
    j.close()
    assert reconcile_command(["--data-dir", str(tmp_path / "data"), "--json"]) == 1
    assert '"ok": false' in capsys.readouterr().out
