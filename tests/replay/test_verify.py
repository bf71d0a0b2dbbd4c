"""verify: replay = live, and a divergence is found at its first seq with its command."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys

import msgspec
import pytest

from engine import events as ev
from engine.state import state_hash
from replay import cli
from replay.rebuild import rebuild
from replay.source import ReplayJournal
from replay.verify import verify
from venue.cli import EXIT_BROKEN_PIPE
from tests.replay.conftest import rewrite_journal


@pytest.mark.parametrize("read_ahead", [False, True])
def test_replay_equals_live(session_journal, read_ahead):
    s = session_journal
    result = verify(s.data_dir, s.config, read_ahead=read_ahead)
    assert result.ok, result.divergence
    assert result.state_hash == s.live.state_hash  # the live state's hash, from the session itself
    assert result.events == s.live.events and result.records == s.live.records
    written = sum(type(e) is ev.Checkpoint for e in ReplayJournal(s.data_dir).events())
    assert result.checkpoints == written >= 7  # one per 500 events (each takes a seq of its own)
    # The session is the kind the issue asks for: funding boundaries and liquidations.
    assert s.live.funding_boundaries >= 1 and s.live.liquidations >= 3


def test_rebuild_hash_equals_verify(session_journal):
    s = session_journal
    state = rebuild(ReplayJournal(s.data_dir), s.config)
    assert state_hash(state) == s.live.state_hash


@pytest.mark.parametrize("read_ahead", [False, True])
def test_checkpoint_with_a_wrong_hash_fails_at_its_seq(session_journal, tmp_path, read_ahead):
    s = session_journal
    bad = {}

    def change(record):
        events = []
        for e in record.events:
            if type(e) is ev.Checkpoint and not bad:
                bad["seq"], bad["cmd_id"] = e.seq, record.cmd_id
                e = msgspec.structs.replace(e, state_hash="0" * 64)
            events.append(e)
        return msgspec.structs.replace(record, events=events)

    rewrite_journal(s.data_dir, tmp_path, change)
    result = verify(tmp_path, s.config, read_ahead=read_ahead)
    # verify stopped reading at the failed checkpoint: a read-ahead process is gone with it.
    assert not multiprocessing.active_children()
    assert not result.ok
    d = result.divergence
    # Every command re-decides to the journaled events up to the checkpoint, whose own
    # hash is what differs: the checkpoint event is the first divergent seq.
    assert (d.seq, d.cmd_id) == (bad["seq"], bad["cmd_id"])
    assert d.journaled["state_hash"] == "0" * 64


def test_a_changed_event_is_located_with_its_command(session_journal, tmp_path):
    s = session_journal
    target = {}

    def change(record):
        # Deposit a little more than asked, consistently (the books still balance): only
        # the checkpoint hash and the re-decision can tell.
        if record.cmd_id == 30:
            e = record.events[0]
            assert type(e) is ev.Deposited
            target["seq"] = e.seq
            transfer = msgspec.structs.replace(e.transfers[0], amount_e6=e.amount_e6 + 1)
            e = msgspec.structs.replace(e, amount_e6=e.amount_e6 + 1, transfers=[transfer])
            return msgspec.structs.replace(record, events=[e])
        return record

    rewrite_journal(s.data_dir, tmp_path, change)
    result = verify(tmp_path, s.config)
    assert not result.ok
    d = result.divergence
    assert d.seq == target["seq"] and d.cmd_id == 30
    assert d.command["type"] == "deposit.v1"
    assert d.journaled["amount_e6"] == d.decided["amount_e6"] + 1


def test_cli_exit_status_and_json(session_journal, tmp_path, capsys):
    s = session_journal
    assert cli.main(["verify", str(s.data_dir), "--checkpoint-every", "500", "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["state_hash"] == s.live.state_hash
    assert cli.main(["verify", str(s.data_dir), "--one-process", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["state_hash"] == s.live.state_hash
    rewrite_journal(s.data_dir, tmp_path, lambda r: msgspec.structs.replace(
        r, events=[msgspec.structs.replace(e, state_hash="f" * 64) if type(e) is ev.Checkpoint else e
                   for e in r.events]))
    assert cli.main(["verify", str(tmp_path), "--checkpoint-every", "500", "--quiet"]) == 1
    assert "DIVERGENCE" in capsys.readouterr().out


def test_cli_output_into_a_closed_pipe_ends_quietly(session_journal):
    """`agentperp replay verify DIR | head -0`: the reader left before the report; the tool
    ends with the shell's SIGPIPE status and no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails (EPIPE)
    try:
        done = subprocess.run([sys.executable, "-m", "venue.cli", "replay", "verify", str(session_journal.data_dir),
                               "--quiet"], stdout=write_end, stderr=subprocess.PIPE, timeout=300)
    finally:
        os.close(write_end)
    assert done.returncode == EXIT_BROKEN_PIPE == 141
    assert b"Traceback" not in done.stderr
