"""``verify``: rebuild a journal from seq 1 and prove it against its own checkpoints.

The fast pass applies every journaled event with ``engine.apply.apply`` and, at each
``Checkpoint``, compares ``engine.state.state_hash`` with the hash the live engine wrote and
runs ``engine.invariants`` (they scan the whole state, so they run at every checkpoint and
at the end, not after every event: a violation is caught at the next checkpoint).

When a checkpoint or the invariants fail, a second pass finds the *first divergent seq*:
it rebuilds the state up to the last checkpoint that matched and re-decides every command
after it with ``engine.core.execute`` (the live venue's loop), comparing each outcome with
the journal and checking the invariants after each command. The first event that differs
(or the first command after which the invariants fail) is reported with its command. If
every command re-decides identically up to the failed checkpoint, the events are right but
applying them no longer builds the state that was hashed (``apply`` or the hash changed).

The config is the one the journal was written with, from its genesis record
(``checkpoint_every_events`` decides where checkpoints fall; the market parameters decide
the re-decided outcomes); a journal without one is read with the config given (default
``default_config()``) and the result carries a notice saying so.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec

from engine import invariants
from engine.apply import apply, apply_all
from engine.core import execute
from engine.events import Checkpoint
from engine.markets import EngineConfig
from engine.rejections import Rejected
from engine.state import State, state_hash
from replay.rebuild import progress_bar, rebuild, records_after
from replay.source import EventRun, ReplayJournal, gc_paused


@dataclass
class Divergence:
    """Where the journal and the engine part ways."""

    seq: int  # the first divergent seq (for an invariant failure: the last seq of the command)
    cmd_id: int
    ts_ns: int
    command: dict  # the command behind it, as plain data with its tag
    reason: str
    journaled: dict | None = None  # the journal's event (or rejection) at that point
    decided: dict | None = None  # what the engine decides there now


@dataclass
class VerifyResult:
    ok: bool
    directory: str
    records: int
    events: int
    checkpoints: int
    last_seq: int
    last_cmd_id: int
    state_hash: str
    seconds: float
    divergence: Divergence | None = None
    invariant_checks: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["events_per_s"] = self.events_per_s
        return out


@dataclass
class _Checkpoints:
    """What the fast pass has checked so far: the last checkpoint that matched, the counts,
    and the first failure ``(seq, cmd_id, reason)`` (None while every check passed)."""

    good_seq: int = 0
    seen: int = 0
    invariant_checks: int = 0
    failure: tuple[int, int, str] | None = None

    def apply_checking(self, state: State, run: EventRun) -> None:
        """Apply ``run`` event by event; before each ``Checkpoint``, compare the state hash
        with the journal's and run the invariants. Stops at the first failure (the
        checkpoint that failed is not applied)."""
        for cmd_id, events in run.by_record():
            for event in events:
                if type(event) is Checkpoint:
                    self.seen += 1
                    actual = state_hash(state)
                    if actual != event.state_hash:
                        self.failure = (event.seq, cmd_id, f"state hash {actual[:16]}… differs "
                                        f"from the journal's checkpoint {event.state_hash[:16]}… at seq {event.seq}")
                        return
                    found = invariants.violations(state)
                    self.invariant_checks += 1
                    if found:
                        self.failure = (state.last_seq, cmd_id, "invariants fail: " + "; ".join(found))
                        return
                    self.good_seq = event.seq
                apply(state, event)


def _plain(value) -> dict | None:
    """A command, event or rejection as plain data, with its tag under ``type``."""
    if value is None:
        return None
    return {"type": type(value).__struct_config__.tag, **msgspec.to_builtins(msgspec.structs.asdict(value))}


def verify(path: Path | str, config: EngineConfig | None = None, *, progress: bool | None = False,
           locate: bool = True, read_ahead: bool | None = None) -> VerifyResult:
    """Rebuild ``path`` from seq 1, check every checkpoint hash and the invariants.

    ``locate=False`` skips the second pass (the divergence then names the failed checkpoint).
    ``read_ahead``: read the journal in a second process while this one decodes and applies
    (``ReplayJournal.event_runs``); None: when it pays (``ReplayJournal.read_ahead_pays``).
    """
    journal = ReplayJournal(path)
    config = journal.config(config)  # the journal's own; ``config`` only for one without genesis
    state = State(config)
    records = last_cmd_id = 0
    checked = _Checkpoints()
    started = time.perf_counter()
    with gc_paused(), progress_bar(journal.last_seq, "verify", progress) as bar:
        # From seq 0: every record, genesis included. Only the events are decoded, a run of
        # records' at a time in one flat list. A run without a checkpoint (most: one falls
        # every checkpoint_every_events) is applied in one call (apply_all: compiled, a C loop
        # of C calls to apply).
        for run in journal.event_runs(0, marked=Checkpoint, read_ahead=read_ahead):
            if run.may_hold_marked:
                checked.apply_checking(state, run)
            else:
                apply_all(state, run.events)
            records += len(run.counts)
            last_cmd_id = run.first_cmd_id + len(run.counts) - 1
            bar.update(state.last_seq - bar.n)
            del run  # its events freed before the next run decodes into their memory (source._decoded_batches)
            if checked.failure:
                break
    failure, checkpoints, good_seq = checked.failure, checked.seen, checked.good_seq
    checks = checked.invariant_checks
    if failure is None:
        found = invariants.violations(state)
        checks += 1
        if found:
            failure = (state.last_seq, last_cmd_id, "invariants fail at the end: " + "; ".join(found))
    seconds = time.perf_counter() - started
    result = VerifyResult(failure is None, str(journal.directory), records, state.last_seq, checkpoints,
                          state.last_seq, last_cmd_id, state_hash(state), seconds, invariant_checks=checks)
    result.notes.append(journal.config_notice or _config_line(journal, config))
    if failure is None:
        if checkpoints == 0:
            result.notes.append("the journal has no checkpoint: only the invariants were checked")
        return result
    seq, cmd_id, reason = failure
    divergence = None
    if locate:
        divergence = locate_divergence(journal, config, good_seq, seq, reason, progress=progress)
    if divergence is None:
        divergence = Divergence(seq, cmd_id, 0, {}, reason)
        for record in journal.records(seq):
            divergence.ts_ns, divergence.command = record.ts_ns, _plain(record.command)
            break
    result.divergence = divergence
    return result


def locate_divergence(journal: ReplayJournal, config: EngineConfig, good_seq: int, failed_seq: int,
                      reason: str, *, progress: bool | None = False) -> Divergence | None:
    """Re-decide every command after the checkpoint at ``good_seq`` up to ``failed_seq``;
    return the first event that differs from the journal, or the first command after which
    the invariants fail, or (if none) the failed checkpoint itself."""
    state = rebuild(journal, config, seq=good_seq)
    with gc_paused():
        for record in records_after(journal, state):
            outcome = execute(state, record.command, record.ts_ns, record.cmd_id)
            journaled = record.rejection if record.rejection is not None else record.events
            if outcome != journaled:
                return _first_difference(record, outcome)
            found = invariants.violations(state)
            if found:
                return Divergence(record.last_seq, record.cmd_id, record.ts_ns, _plain(record.command),
                                  "invariants fail after this command: " + "; ".join(found))
            if record.last_seq >= failed_seq:
                break
    cmd_record = next((r for r in journal.records(failed_seq)), None)
    if cmd_record is None:
        return None
    return Divergence(failed_seq, cmd_record.cmd_id, cmd_record.ts_ns, _plain(cmd_record.command),
                      reason + "; every command re-decides to the journaled events, so applying them no "
                      "longer builds the hashed state (engine.apply or state_hash changed)")


def _first_difference(record, outcome) -> Divergence:
    command = _plain(record.command)
    if isinstance(outcome, Rejected) or record.rejection is not None:
        journaled = record.rejection if record.rejection is not None else (record.events[0] if record.events else None)
        decided = outcome if isinstance(outcome, Rejected) else (outcome[0] if outcome else None)
        return Divergence(record.first_seq, record.cmd_id, record.ts_ns, command,
                          "the journal and the engine disagree on whether this command is rejected",
                          _plain(journaled), _plain(decided))
    for index in range(max(len(outcome), len(record.events))):
        journaled = record.events[index] if index < len(record.events) else None
        decided = outcome[index] if index < len(outcome) else None
        if journaled != decided:
            return Divergence(record.first_seq + index, record.cmd_id, record.ts_ns, command,
                              "the engine decides a different event here than the journal holds",
                              _plain(journaled), _plain(decided))
    raise AssertionError("outcomes differ but no event does")


def _config_line(journal: ReplayJournal, config: EngineConfig) -> str:
    symbols = ", ".join(f"{m.symbol} (max leverage {m.leverage_max})" for m in config.markets)
    return (f"configuration from the genesis record (journal {journal.genesis.journal_id}): {symbols}; "
            f"checkpoints every {config.checkpoint_every_events:,} events")


def format_result(result: VerifyResult) -> str:
    """Render a verify result for a terminal; the first line says PASS or FAIL."""
    lines = [f"{'PASS' if result.ok else 'FAIL'}  {result.directory}",
             f"records     {result.records:,} (last cmd_id {result.last_cmd_id})",
             f"events      {result.events:,} (last seq {result.last_seq})",
             f"checkpoints {result.checkpoints} verified" if result.ok else f"checkpoints {result.checkpoints} seen",
             f"invariants  checked {result.invariant_checks} times (at each checkpoint and at the end)",
             f"state hash  {result.state_hash}",
             f"time        {result.seconds:.2f} s ({result.events_per_s:,.0f} events/s)"]
    lines += [f"note        {note}" for note in result.notes]
    d = result.divergence
    if d is not None:
        lines.append(f"DIVERGENCE  at seq {d.seq}, cmd_id {d.cmd_id}, ts_ns {d.ts_ns}: {d.reason}")
        lines.append(f"  command   {d.command}")
        if d.journaled is not None or d.decided is not None:
            lines.append(f"  journal   {d.journaled}")
            lines.append(f"  engine    {d.decided}")
    return "\n".join(lines)
