"""``execute``: decide a command, apply its events, and emit checkpoints — the one loop
that the live sequencer and every replay tool drive."""

from __future__ import annotations

from engine.commands import Tick
from engine.events import Checkpoint, Event
from engine.apply import apply
from engine.decide import decide
from engine.rejections import Rejected
from engine.state import State, state_hash

TICK_ROUNDS_MAX = 1_000_000  # a Tick that needs more rounds than this is a bug, not load


def execute(state: State, command, ts_ns: int, cmd_id: int) -> list[Event] | Rejected:
    """Decide ``command`` against ``state`` and apply what it causes; return the events
    (possibly none) or the rejection, which changes nothing."""
    result = decide(state, command, ts_ns, cmd_id)
    if type(result) is Rejected:
        return result
    events = result
    for event in events:
        apply(state, event)
    if type(command) is Tick and events:
        _finish_tick(state, command, ts_ns, cmd_id, events)
    if state.last_seq - state.last_checkpoint_seq >= state.config.checkpoint_every_events:
        checkpoint = Checkpoint(state.last_seq + 1, ts_ns, cmd_id, state_hash=state_hash(state))
        apply(state, checkpoint)
        events.append(checkpoint)
    return events


def tick_stopped_at_bound(config, events: list) -> bool:
    """Whether a Tick's ``events`` reached ``config.tick_events_max``: work may still be due,
    for the next Tick (which the sequencer injects in its next round)."""
    return bool(config.tick_events_max) and len(events) >= config.tick_events_max


def _finish_tick(state: State, command: Tick, ts_ns: int, cmd_id: int, events: list) -> None:
    for _ in range(TICK_ROUNDS_MAX):
        if tick_stopped_at_bound(state.config, events):
            return  # the rest is decided by the next Tick
        more = decide(state, command, ts_ns, cmd_id)
        if not more:
            return
        for event in more:
            apply(state, event)
        events.extend(more)
    raise AssertionError(f"Tick at {ts_ns} did not settle in {TICK_ROUNDS_MAX} rounds")
