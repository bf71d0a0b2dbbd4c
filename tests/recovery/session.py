"""The recovery tests' session: the bench's seeded mix, checkpoints every 500 events."""

from __future__ import annotations

from pathlib import Path

from benchmarks import sessions
from benchmarks.engine import build_mix
from engine.markets import default_config
from engine.state import State

CONFIG = default_config(checkpoint_every_events=500)


def commands(n_rounds: int = 300) -> list[tuple[object, int]]:
    """Deposits, RFQ rounds, oracle moves, closes and ticks across funding boundaries."""
    return build_mix(n_rounds)


def write(data_dir: Path, mix, **options) -> State:
    return sessions.write_session(data_dir, mix, CONFIG, **options)


def replay_fresh(mix, n_commands: int) -> State:
    return sessions.execute_fresh(mix, n_commands, CONFIG)
