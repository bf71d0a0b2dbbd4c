"""Real journals for the replay tests, written by a simulated live session."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.markets import EngineConfig, default_config
from ledger.journal import Journal, JournalReader
from replay.generate import Generated, generate

CONFIG = default_config(checkpoint_every_events=500)
EVENTS = 4_000  # ~570 rounds: crosses the 08:00 funding boundary, jumps make liquidations


@dataclass(frozen=True)
class Session:
    data_dir: Path
    config: EngineConfig
    live: Generated


@pytest.fixture(scope="session")
def session_journal(tmp_path_factory) -> Session:
    """A live session (funding boundary, keeper and engine liquidations, checkpoints every
    500 events) journaled to a data directory. Read-only: copy it before damaging it."""
    data_dir = tmp_path_factory.mktemp("live")
    live = generate(data_dir, EVENTS, seed=11, config=CONFIG, progress=False, jump_probability=0.02)
    return Session(data_dir, CONFIG, live)


def copy_journal(session: Session, target: Path) -> Path:
    shutil.copytree(session.data_dir, target)
    return target


def rewrite_journal(source: Path, target: Path, change) -> None:
    """Write a new journal at ``target/journal`` whose records are ``change(record)`` of the
    records of ``source`` (a data dir); framing and crcs are the ledger's own."""
    import msgspec

    from ledger.records import JournalRecord

    decoder = msgspec.msgpack.Decoder(JournalRecord)
    encoder = msgspec.msgpack.Encoder()
    payloads = [encoder.encode(change(decoder.decode(p))) for _, p in JournalReader(source / "journal").read(0)]
    with Journal.open(target / "journal") as journal:
        for start in range(0, len(payloads), 500):
            journal.append_batch(payloads[start:start + 500])
