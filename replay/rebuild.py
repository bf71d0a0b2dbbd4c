"""Rebuild the state from a journal: every event through ``engine.apply.apply``, the one
writer of the state (no rule is re-implemented here)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

from engine.apply import apply, apply_all
from engine.markets import EngineConfig, default_config
from engine.state import State
from replay.source import ReplayJournal, gc_paused


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
            ts_ns: int | None = None, progress: bool | None = False, start: State | None = None) -> State:
    """The state after every event up to ``seq`` (inclusive), or after every record stamped
    at or before ``ts_ns``, or after the whole journal: from seq 1, or on from ``start`` (a
    state the journal is known to build at its ``last_seq``, which must not pass ``seq``)."""
    state = start if start is not None else State(config or default_config())
    if seq is not None and seq <= state.last_seq:
        if start is not None and seq < start.last_seq:
            raise ValueError(f"cannot rebuild to seq {seq} from a state at seq {start.last_seq}")
        return state
    total = seq if seq is not None else journal.last_seq
    with gc_paused(), progress_bar(total, "rebuild", progress) as bar:
        # verify's runs (events only, read ahead when it pays): an event carries its record's
        # ts_ns, so the records stamped after ``ts_ns`` are those of the first event after it.
        for run in journal.event_runs(state.last_seq + 1 if state.last_seq else 0, read_ahead=None):
            done = _apply_run(state, run.events, seq, ts_ns)
            bar.update(state.last_seq - bar.n)
            del run  # freed before the next run decodes (replay.source._decoded_batches)
            if done:
                break
    return state


def _apply_run(state: State, events: list, seq: int | None, ts_ns: int | None) -> bool:
    """Apply ``events``; True once the target is reached (nothing after it applied)."""
    if events and (seq is None or events[-1].seq <= seq) and (ts_ns is None or events[-1].ts_ns <= ts_ns):
        apply_all(state, events)  # the whole run comes before the target (seqs and stamps only grow)
        return False
    for event in events:
        if (seq is not None and event.seq > seq) or (ts_ns is not None and event.ts_ns > ts_ns):
            return True
        apply(state, event)
    return False


def records_after(journal: ReplayJournal, state: State) -> Iterator:
    """The fully decoded records after ``state`` (which must end at a record's last event),
    event-less ones included: what re-deciding from a rebuilt state needs."""
    for record in journal.records(state.last_seq):
        if record.first_seq > state.last_seq:
            yield record
