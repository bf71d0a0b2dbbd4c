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

import multiprocessing
import os
import signal
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
from ledger import snapshots
from ledger.journal import JournalCorrupt
from ledger.recovery import proof_problem
from replay.rebuild import progress_bar, rebuild, records_after
from replay.source import EventRun, ReplayJournal, gc_paused, may_fork_children


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
    stretches: int = 1  # verified at once, each in a process of its own (from seq 1 and from snapshots)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["events_per_s"] = self.events_per_s
        return out


# A stretch verified by a process of its own from a snapshot (``_seams``) holds at least this
# many events: each costs a fork, the snapshot's load and re-hash (tens of ms at thousands of
# open positions) and a state hash at its seam.
STRETCH_EVENTS_MIN = 100_000
# ... and none holds more than this share of the journal's events. One process applies at
# ~0.77x the events/s of one pass reading ahead, and two side by side at ~0.92x that each:
# a stretch of 60% takes ~0.85x the one pass's time; two thirds of a 300 000-event journal
# took 1.27x it (the later events cost more: more open positions).
STRETCH_SHARE_MAX = 0.6
STRETCH_EXIT_WAIT_S = 5.0  # how long a stretch's process gets to exit once it answered


@dataclass
class _Stretch:
    """What verifying one stretch of the journal found: where it ended, the checkpoints it
    checked, the last one that matched (``good_seq``; 0 before any),
    the first failure ``(seq, cmd_id, reason)`` (None while every check passed) and the
    state's hash where it ended (``end_hash``: its seam with the next stretch, or the final
    state's)."""

    good_seq: int = 0
    last_cmd_id: int = 0
    last_seq: int = 0
    seen: int = 0
    invariant_checks: int = 0
    failure: tuple[int, int, str] | None = None
    end_hash: str = ""

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

    def finish(self, state: State, *, last: bool) -> None:
        """Close the stretch: the invariants once more at the journal's end, and the hash."""
        if self.failure is None and last:
            found = invariants.violations(state)
            self.invariant_checks += 1
            if found:
                self.failure = (state.last_seq, self.last_cmd_id, "invariants fail at the end: " + "; ".join(found))
        self.end_hash = state_hash(state)

    def then(self, after: _Stretch) -> _Stretch:
        """This stretch followed by ``after``, the one that starts where it ends."""
        return _Stretch(after.good_seq or self.good_seq, after.last_cmd_id, after.last_seq,
                        self.seen + after.seen, self.invariant_checks + after.invariant_checks,
                        after.failure, after.end_hash)


@dataclass(frozen=True)
class _Seam:
    """A snapshot a stretch starts from: its file, and the state it holds (seq, record, hash)."""

    path: Path
    seq: int
    cmd_id: int
    state_hash: str


def _verify_stretch(journal: ReplayJournal, state: State, *, after_cmd_id: int = 0,
                    through_cmd_id: int | None = None, read_ahead: bool | None = False, bar=None) -> _Stretch:
    """Apply the journal's events after ``state`` (the state after record ``after_cmd_id``)
    through the record ``through_cmd_id`` (None: to the end), checking every checkpoint on
    the way. A run without a checkpoint (most: one falls every checkpoint_every_events) is
    applied in one call (apply_all: compiled, a C loop of C calls to apply)."""
    found = _Stretch(last_cmd_id=after_cmd_id)
    # From seq 0: every record, genesis included; from a state at seq S: from the records
    # ending at S, so that those without events after ``after_cmd_id`` are counted too. Only
    # the events are decoded, a run of records' at a time in one flat list.
    runs = journal.event_runs(state.last_seq, marked=Checkpoint, read_ahead=read_ahead)
    try:
        for run in runs:
            last = run.first_cmd_id + len(run.counts) - 1
            if run.first_cmd_id <= after_cmd_id or (through_cmd_id is not None and last > through_cmd_id):
                run = _records(run, after_cmd_id + 1, last if through_cmd_id is None else min(last, through_cmd_id))
                if not run.counts:
                    continue
            if run.may_hold_marked:
                found.apply_checking(state, run)
            else:
                apply_all(state, run.events)
            # The last record read; on a failure, the record verify stopped in (wherever runs begin).
            found.last_cmd_id = found.failure[1] if found.failure else run.first_cmd_id + len(run.counts) - 1
            if bar is not None:
                bar.update(state.last_seq - bar.n)
            del run  # its events freed before the next run decodes into their memory (source._decoded_batches)
            if found.failure or found.last_cmd_id == through_cmd_id:
                break
    finally:
        runs.close()  # a read-ahead process stops with it
    found.last_seq = state.last_seq
    return found


def _to_the_end(journal: ReplayJournal, state: State, *, after_cmd_id: int = 0, read_ahead: bool | None,
                bar) -> _Stretch:
    """``_verify_stretch`` from ``state`` to the journal's end in this process, closed with the
    invariants and the final hash."""
    found = _verify_stretch(journal, state, after_cmd_id=after_cmd_id, read_ahead=read_ahead, bar=bar)
    found.finish(state, last=True)
    return found


def _records(run: EventRun, first_cmd_id: int, last_cmd_id: int) -> EventRun:
    """The part of ``run`` from record ``first_cmd_id`` through ``last_cmd_id``."""
    first = max(first_cmd_id - run.first_cmd_id, 0)
    end = last_cmd_id - run.first_cmd_id + 1
    return EventRun(run.first_cmd_id + first, run.events[sum(run.counts[:first]):sum(run.counts[:end])],
                    run.counts[first:end], run.may_hold_marked)


def _seams(journal: ReplayJournal, workers: int | None, notes: list[str]) -> list[_Seam]:
    """Where to split the journal into stretches verified in parallel: up to ``workers``
    - 1 snapshots of the data directory (default: one per core) that belong to this journal
    (``ledger.recovery.proof_problem``), nearest to even shares of its events, each stretch
    at least ``STRETCH_EVENTS_MIN`` long, none longer than ``STRETCH_SHARE_MAX`` of them (else
    none: one pass is faster). None when this process cannot fork children. Snapshots are
    picked by the seq in their names and read only when picked (each is a state: megabytes)."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 2 or journal.snapshot_dir is None or not may_fork_children():
        return []
    paths = snapshots.list_snapshots(journal.snapshot_dir)
    end_seq = journal.last_seq_estimate() if paths else 0
    by_seq = {seq: path for seq, path in ((snapshots.snapshot_seq(path), path) for path in paths)
              if STRETCH_EVENTS_MIN <= seq <= end_seq - STRETCH_EVENTS_MIN}
    chosen: list[_Seam] = []
    for share in range(1, workers):
        target_seq = end_seq * share // workers
        for seq in sorted(by_seq, key=lambda seq: abs(seq - target_seq)):
            if any(abs(seq - seam.seq) < STRETCH_EVENTS_MIN for seam in chosen):
                continue
            seam = _proven_seam(by_seq.pop(seq), journal, notes)
            if seam is not None:
                chosen.append(seam)
                break
    chosen.sort(key=lambda seam: seam.seq)
    edges = [0] + [seam.seq for seam in chosen] + [end_seq]
    longest = max(b - a for a, b in zip(edges, edges[1:]))
    if chosen and longest > STRETCH_SHARE_MAX * end_seq:
        notes.append(f"one pass: the snapshot{'s' if len(chosen) > 1 else ''} at seq "
                     f"{', '.join(f'{seam.seq:,}' for seam in chosen)} would leave "
                     f"one stretch {longest / end_seq:.0%} of the journal (one pass is faster above "
                     f"{STRETCH_SHARE_MAX:.0%})")
        return []
    return chosen


def _proven_seam(path: Path, journal: ReplayJournal, notes: list[str]) -> _Seam | None:
    """The snapshot at ``path`` as a seam, if it is whole and belongs to ``journal`` (else
    None, and a note why)."""
    try:
        meta = snapshots.read_meta(path)
        problem = proof_problem(meta, journal.directory, journal.genesis)
    except (snapshots.SnapshotInvalid, JournalCorrupt, OSError) as exc:  # damaged, deleted meanwhile (pruned)
        notes.append(f"snapshot not used: {path}: {exc}")
        return None
    if problem is None and meta.seq != snapshots.snapshot_seq(path):
        problem = f"it holds the state at seq {meta.seq}, not at the seq its name says"
    if problem is not None:
        notes.append(f"snapshot not used: {path}: {problem}")
        return None
    return _Seam(path, meta.seq, meta.cmd_id, meta.state_hash)


def _stretch_process(directory: Path, config: EngineConfig, seam: _Seam, through_cmd_id: int | None, send) -> None:
    """A forked process's stretch: from the snapshot at ``seam`` (loaded, re-hashed) through
    record ``through_cmd_id`` (None: the journal's end, then the invariants once more); sends
    the ``_Stretch`` found, or a line saying why it could not."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        state = _load_seam(seam, config)
        found = _verify_stretch(ReplayJournal(directory), state, after_cmd_id=seam.cmd_id,
                                through_cmd_id=through_cmd_id)
        found.finish(state, last=through_cmd_id is None)
        send.send(found)
    except Exception as exc:  # noqa: BLE001 - any failure here only means: verify this stretch in the parent
        send.send(f"{type(exc).__name__}: {exc}")
    finally:
        send.close()


class _StretchProcess:
    """A stretch verified by a forked process (``_stretch_process``); ``result()`` waits for it."""

    def __init__(self, journal: ReplayJournal, config: EngineConfig, seam: _Seam, through_cmd_id: int | None) -> None:
        context = multiprocessing.get_context("fork")
        self.seam = seam
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_stretch_process, daemon=True, name="agentperp-verify-stretch",
                                        args=(journal.directory, config, seam, through_cmd_id, send))
        self._process.start()
        send.close()  # the child's end: once it exits, a read here ends (EOFError), never hangs
        self._answered = False

    def result(self) -> _Stretch | str:
        try:
            found = self._receive.recv()
        except (EOFError, OSError) as exc:
            self._process.join(STRETCH_EXIT_WAIT_S)
            return f"its process ended without an answer (exit code {self._process.exitcode}; {exc!r})"
        self._answered = True
        return found

    def close(self) -> None:
        """Wait for the process to exit once it answered; stop it at once if it never will be asked."""
        self._receive.close()
        if self._answered:
            self._process.join(STRETCH_EXIT_WAIT_S)
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


@dataclass
class _Verified:
    """What the fast pass found (``found``), in how many stretches, and the seams whose
    snapshot it proved to hold the journal's state there (``proven``: where locating a
    divergence may start)."""

    found: _Stretch
    stretches: int = 1
    proven: list[_Seam] = field(default_factory=list)


def _verify_split(journal: ReplayJournal, config: EngineConfig, seams: list[_Seam], read_ahead: bool | None,
                  bar, notes: list[str]) -> _Verified:
    """Verify the journal in stretches: this process from seq 1 to the first seam, a forked
    process from each seam to the next (to the end for the last), all at once.

    The stretches prove the whole journal as one pass would: a stretch is taken only when
    the one before it ended in the very state its snapshot holds (equal state hashes at the
    seam; the snapshot's own hash is checked as it loads). Where that fails — a snapshot that
    does not hold the state the journal builds, a process that died — this process carries
    on from its own state to the end, and the notes say why."""
    stretches: list[_StretchProcess] = []
    state = State(config)
    try:
        try:
            for seam, after in zip(seams, seams[1:] + [None]):
                stretches.append(_StretchProcess(journal, config, seam, after.cmd_id if after else None))
        except OSError as exc:  # no process or pipe to be had (EAGAIN, ENOMEM, ...): one pass, here
            notes.append(f"one pass: the stretches' processes could not start ({exc})")
            return _Verified(_to_the_end(journal, state, read_ahead=read_ahead, bar=bar))
        found = _verify_stretch(journal, state, through_cmd_id=seams[0].cmd_id, bar=bar)
        if found.failure is not None:
            found.finish(state, last=True)  # the hash of the state it stopped in, as one pass reports it
            return _Verified(found)
        found.finish(state, last=False)
        joined = found
        proven: list[_Seam] = []
        for stretch in stretches:
            if joined.end_hash != stretch.seam.state_hash:
                notes.append(f"snapshot not used: {stretch.seam.path} does not hold the state the journal builds "
                             f"at seq {stretch.seam.seq} ({stretch.seam.state_hash[:16]}… against "
                             f"{joined.end_hash[:16]}…)")
                break
            part = stretch.result()
            if isinstance(part, str):
                notes.append(f"the stretch from the snapshot at seq {stretch.seam.seq} was not verified apart: {part}")
                break
            proven.append(stretch.seam)
            joined = joined.then(part)
            if joined.failure is not None:
                return _Verified(joined, len(proven) + 1, proven)
        else:
            bar.update(joined.last_seq - bar.n)
            notes.append(f"verified in {len(seams) + 1} stretches at once, from seq 1 and from the "
                         f"snapshot{'s' if len(seams) > 1 else ''} at seq " + ", ".join(f"{seam.seq:,}" for seam in seams)
                         + " (each stretch ended in the state the next one's snapshot holds)")
            return _Verified(joined, len(seams) + 1, proven)
    finally:
        for stretch in stretches:
            stretch.close()
    # A link did not hold: on from this process's state at the first seam, in one pass.
    return _Verified(found.then(_to_the_end(journal, state, after_cmd_id=found.last_cmd_id, read_ahead=read_ahead,
                                            bar=bar)))


def verify(path: Path | str, config: EngineConfig | None = None, *, progress: bool | None = False,
           locate: bool = True, read_ahead: bool | None = None, use_snapshots: bool = True,
           workers: int | None = None) -> VerifyResult:
    """Rebuild ``path`` from seq 1, check every checkpoint hash and the invariants.

    ``locate=False`` skips the second pass (the divergence then names the failed checkpoint).
    ``read_ahead``: read the journal in a second process while this one decodes and applies
    (``ReplayJournal.event_runs``); None: when it pays (``ReplayJournal.read_ahead_pays``).
    ``use_snapshots``: verify stretches of the journal at once, each in a process of its
    own, from the data directory's snapshots (``_verify_split``; up to ``workers``
    stretches, default one per core); False: one pass from seq 1.
    """
    journal = ReplayJournal(path)
    config = journal.config(config)  # the journal's own; ``config`` only for one without genesis
    notes: list[str] = []
    started = time.perf_counter()
    with gc_paused(), progress_bar(journal.last_seq, "verify", progress) as bar:
        seams = _seams(journal, workers, notes) if use_snapshots else []
        if seams:
            verified = _verify_split(journal, config, seams, read_ahead, bar, notes)
        else:
            verified = _Verified(_to_the_end(journal, State(config), read_ahead=read_ahead, bar=bar))
    found = verified.found
    seconds = time.perf_counter() - started
    # Records are numbered from 1 without a gap, and every one is read (the genesis too).
    result = VerifyResult(found.failure is None, str(journal.directory), found.last_cmd_id, found.last_seq,
                          found.seen, found.last_seq, found.last_cmd_id, found.end_hash, seconds,
                          invariant_checks=found.invariant_checks, stretches=verified.stretches)
    result.notes.append(journal.config_notice or _config_line(journal, config))
    result.notes += notes
    if found.failure is None:
        if found.seen == 0:
            result.notes.append("the journal has no checkpoint: only the invariants were checked")
        return result
    seq, cmd_id, reason = found.failure
    divergence = None
    if locate:
        # From the last snapshot proven on the way that does not pass the last good checkpoint.
        seam = max((seam for seam in verified.proven if seam.seq <= found.good_seq), key=lambda seam: seam.seq,
                   default=None)
        divergence = locate_divergence(journal, config, found.good_seq, seq, reason, progress=progress,
                                       start=_proven_state(seam, config) if seam is not None else None)
    if divergence is None:
        divergence = Divergence(seq, cmd_id, 0, {}, reason)
        for record in journal.records(seq):
            divergence.ts_ns, divergence.command = record.ts_ns, _plain(record.command)
            break
    result.divergence = divergence
    return result


def _plain(value) -> dict | None:
    """A command, event or rejection as plain data, with its tag under ``type``."""
    if value is None:
        return None
    return {"type": type(value).__struct_config__.tag, **msgspec.to_builtins(msgspec.structs.asdict(value))}


def _load_seam(seam: _Seam, config: EngineConfig) -> State:
    """The state of the snapshot at ``seam`` (loaded and re-hashed), if it still is the one
    picked there; ``SnapshotInvalid`` (or ``OSError``) if not: a venue may have pruned or
    replaced it since."""
    state, meta = snapshots.load_snapshot(seam.path, config)
    if (meta.seq, meta.state_hash) != (seam.seq, seam.state_hash):
        raise snapshots.SnapshotInvalid(f"{seam.path} changed while verify read it")
    return state


def _proven_state(seam: _Seam, config: EngineConfig) -> State | None:
    """``_load_seam``, or None (locating then rebuilds from seq 1)."""
    try:
        return _load_seam(seam, config)
    except (snapshots.SnapshotInvalid, OSError):
        return None


def locate_divergence(journal: ReplayJournal, config: EngineConfig, good_seq: int, failed_seq: int,
                      reason: str, *, progress: bool | None = False, start: State | None = None) -> Divergence | None:
    """Re-decide every command after the checkpoint at ``good_seq`` up to ``failed_seq``;
    return the first event that differs from the journal, or the first command after which
    the invariants fail, or (if none) the failed checkpoint itself. The state at ``good_seq``
    is rebuilt from seq 1, or on from ``start`` (a state the journal is proven to build at its
    seq, not past ``good_seq``; it is changed)."""
    state = rebuild(journal, config, seq=good_seq, progress=progress, start=start)
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
