"""Rebuild the state from a journal: every event through ``engine.apply.apply``, the one
writer of the state (no rule is re-implemented here)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from engine.apply import apply
from engine.markets import EngineConfig, default_config
from engine.state import State
from replay.source import EventRecord, ReplayJournal, gc_paused


def progress_bar(total: int | Callable[[], int], desc: str, enabled: bool | None):
    """A tqdm bar on stderr: ``enabled=None`` shows it only on a terminal. ``total`` may be
    a function (``ReplayJournal.last_seq``): it is called only when the bar is shown, as
    finding the journal's end scans its last segment."""
    from tqdm import tqdm

    shown = sys.stderr.isatty() if enabled is None else enabled
    if callable(total):
        total = total() if shown else 0
    return tqdm(total=total, unit="ev", unit_scale=True, desc=desc, file=sys.stderr,
                disable=not shown, mininterval=0.5)


def rebuild(journal: ReplayJournal, config: EngineConfig | None = None, *, seq: int | None = None,
            ts_ns: int | None = None, progress: bool | None = False) -> State:
    """The state after every event up to ``seq`` (inclusive), or after every record stamped
    at or before ``ts_ns``, or after the whole journal."""
    state = State(config or default_config())
    if seq is not None and seq <= 0:
        return state
    total = seq if seq is not None else journal.last_seq
    with gc_paused(), progress_bar(total, "rebuild", progress) as bar:
        for batch in journal.event_record_batches():
            done = _apply_batch(state, batch, seq, ts_ns)
            bar.update(state.last_seq - bar.n)
            del batch  # freed before the next batch decodes (replay.source._decoded_batches)
            if done:
                break
    return state


def _apply_batch(state: State, batch: list[EventRecord], seq: int | None, ts_ns: int | None) -> bool:
    """Apply ``batch``; True once the target is reached (nothing after it applied)."""
    for record in batch:
        if ts_ns is not None and record.ts_ns > ts_ns:
            return True
        for event in record.events:
            if seq is not None and event.seq > seq:
                return True
            apply(state, event)
    return False


def records_after(journal: ReplayJournal, state: State) -> Iterator:
    """The fully decoded records after ``state`` (which must end at a record's last event),
    event-less ones included: what re-deciding from a rebuilt state needs."""
    for record in journal.records(state.last_seq):
        if record.first_seq > state.last_seq:
            yield record
