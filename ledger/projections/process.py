"""A projection in its own process: off the venue's GIL, following the same journal.

The SQL read models turn every event into rows and write them: ~20 us of CPU an event, more
than the engine spends deciding it. On the venue's process that work shares the GIL with
the sequencer and the gateways; here it runs in a child process (``python -m
ledger.projections.process``) with its own runner, reading the journal from its checkpoint
(the page cache holds what the venue just wrote) — so on a machine with a core to spare the
venue's acks never wait on SQL, and a read model being rebuilt never slows trading.

The parent (``ProjectionProcess``, on the venue's loop) and the child speak over the child's
stdin and stdout in frames (a 4-byte big-endian length, then msgpack), at most
``FRAME_BYTES_MAX`` bytes:

- parent -> child: ``{"spec": {...}}`` first (what to open: ``open_projection``), then
  ``{"tail": [seq, ts_ns]}`` whenever the durable tail moved (only the newest counts: the
  parent writes the latest one once the previous has left its buffer), ``{"stop": seq}``
  at the end (catch up to ``seq``, at most ``stop_catch_up_s`` seconds, then exit 0);
- child -> parent: ``{"status": {...}}`` at every status change of its runner (the fields
  of ``ProjectionStatus``), which the parent mirrors for ``/health``, ``/metrics`` and waits.

The child exits when its stdin closes (the venue is gone). If it dies (killed, crashed),
the parent restarts it after the runner's retry backoff and reports the exit in the
projection's status: exactly once still holds, because the SQL sink commits its rows with
its checkpoint (``ledger.projections.sql``) and a new child starts from that checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import threading
from dataclasses import asdict, fields
from pathlib import Path

import msgspec

from ledger.gc_policy import tune_gc
from ledger.projections.runner import (ERROR_TEXT_MAX, HubTail, MovingTail, ProjectionStatus, RetryPolicy, Runner,
                                      StatusBoard)

log = logging.getLogger("agentperp.projections")

FRAME_BYTES_MAX = 1 << 20  # one frame either way; a status is ~300 bytes, a spec ~1 KB
LENGTH_BYTES = 4
# The child runs on the CPU the machine leaves idle (Linux's SCHED_IDLE class): trading preempts
# the read models at once, and they catch up in the gaps — their lag grows under a load the
# machine cannot carry, the acks' latency and the venue's throughput do not (at saturation,
# 1.08 - 1.16x the commands/s of nice +10, which still took ~0.7 of a core: docs/benchmarks.md).
# Where the OS has no such class, nice +NICE_INCREMENT (~1/10 of the venue's share).
NICE_INCREMENT = 10
# The durable tail goes to the child at most this often (the newest one each time): one frame
# per group commit cost the venue's loop ~4% of its time under load, and the child batches
# its work over ``projections.sql_coalesce_ms`` anyway.
TAIL_FRAME_INTERVAL_S = 0.005
EXIT_WAIT_S_MAX = 10.0  # after its catch-up at stop, how long the child gets to exit before it is killed
_COUNTERS = ("failures", "events_applied", "batches_applied")  # per child: the parent adds them up


# What a child's status frame carries into the venue's mirror (checked on arrival against
# ProjectionStatus's own annotations): every field but the name and the in-process extras.
_MIRRORED = tuple(f.name for f in fields(ProjectionStatus) if f.name not in ("name", "extra"))
_PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the child runs this same tree's code

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(dict)


class FrameError(Exception):
    """A frame that breaks the protocol (too long, not a msgpack map)."""


def encode_frame(message: dict) -> bytes:
    body = _encoder.encode(message)
    if len(body) > FRAME_BYTES_MAX:
        raise FrameError(f"a frame of {len(body)} bytes is over FRAME_BYTES_MAX ({FRAME_BYTES_MAX})")
    return len(body).to_bytes(LENGTH_BYTES, "big") + body


def frame_length(header: bytes) -> int:
    length = int.from_bytes(header, "big")
    if length > FRAME_BYTES_MAX:
        raise FrameError(f"a frame of {length} bytes is over FRAME_BYTES_MAX ({FRAME_BYTES_MAX})")
    return length


def decode_frame(body: bytes) -> dict:
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as error:
        raise FrameError(f"a frame that is not a msgpack map: {error}") from None


def open_projection(spec: dict):
    """The projection a spec names (the child's side; only ``sql`` runs in a process today)."""
    if spec["kind"] != "sql":
        raise ValueError(f"no projection kind {spec['kind']!r} runs in a process")
    from ledger.projections.sql.model import SqlProjection

    # The parent migrated the schema before starting the child (it serves the reads).
    return SqlProjection(spec["url"], symbols=spec["symbols"], name=spec["name"], migrate=False,
                         coalesce_s=spec.get("coalesce_s", 0.0))


# -- the parent's side ----------------------------------------------------------------------------

class ProjectionProcess(StatusBoard):
    """One projection run by a child process, as the venue sees it: the child's status
    mirrored (lag against the venue's own durable tail), restarted after the retry backoff
    when it dies. ``spec``: what the child opens (``open_projection``) and how it runs
    (``journal_dir``, ``batch_events``, ``retry``)."""

    CHILD = (sys.executable, "-m", "ledger.projections.process")  # what runs the child

    def __init__(self, spec: dict, hub, last_ts_ns: int, child: tuple[str, ...] = CHILD) -> None:
        """``child``: the command of the child process (tests: another program speaking the frames)."""
        self.name = spec["name"]
        self.child = child
        super().__init__([self.name], HubTail(hub, last_ts_ns))
        self.spec = {**spec, "journal_dir": str(Path(spec["journal_dir"]).resolve())}
        self.retry = RetryPolicy(**spec["retry"])  # the child's, for restarting it
        self.pid: int | None = None
        self.exits = 0  # the child's unexpected exits (each followed by a restart)
        self._rng = random.Random()
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task | None = None
        self._stopping = False
        self._started = asyncio.Event()  # set once the first child reported
        self._counted = dict.fromkeys(_COUNTERS, 0)  # the counters of the children before this one

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"projection-process:{self.name}")
        await self._started.wait()  # the child opened its projection and read its checkpoint (or failed)

    async def stop(self, last_seq: int, catch_up_s: float) -> None:
        """Ask the child to catch up to ``last_seq`` (at most ``catch_up_s``) and exit; kill it
        if it does not within ``EXIT_WAIT_S_MAX`` more."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            try:
                process.stdin.write(encode_frame({"stop": last_seq, "catch_up_s": catch_up_s}))
                await process.stdin.drain()
                await asyncio.wait_for(process.wait(), catch_up_s + EXIT_WAIT_S_MAX)
            except (ConnectionError, TimeoutError):
                process.kill()
                await process.wait()
        elif self._supervisor is not None:
            self._supervisor.cancel()  # waiting to restart a child: nothing to stop
        if self._supervisor is not None:  # reads the child's last statuses, then ends
            await asyncio.gather(self._supervisor, return_exceptions=True)
        self.status[self.name].state = "stopped"

    def summary(self) -> list[dict]:
        items = super().summary()
        for item in items:
            item.update(process_id=self.pid, process_exits=self.exits)
        return items

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                code, progressed = await self._run_child()
            except OSError as error:  # the child could not even be started (e.g. no such executable)
                self.status[self.name].last_error = f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
                self._started.set()
                code, progressed = None, False
            if self._stopping:
                break
            attempt = 1 if progressed else attempt + 1
            self._exited(code, attempt)
            await self._notify()
            await asyncio.sleep(self.retry.delay_s(attempt, self._rng))

    def _exited(self, code, attempt: int) -> None:
        status = self.status[self.name]
        self.exits += 1
        status.failures += 1
        status.retry_attempt = attempt
        status.failing_seq = status.seq + 1
        status.state = "retrying"
        if not status.last_error:
            status.last_error = f"the projection's process exited with code {code}"
        log.error("projection %s: its process exited (code %s) at seq %d; restarting it (attempt %d)",
                  self.name, code, status.seq, attempt)

    async def _run_child(self) -> tuple[int | None, bool]:
        """Start a child, feed it the tail, mirror its statuses until it exits: (its exit
        code, whether it applied anything)."""
        self.status[self.name].last_error = ""
        tail = self.tail
        spec = {**self.spec, "tail": [tail.last_seq, tail.last_ts_ns]}  # where the journal ends now
        process = self._process = await asyncio.create_subprocess_exec(
            *self.child, cwd=_PROJECT_ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self.pid = process.pid
        status = self.status[self.name]
        self._counted = {key: getattr(status, key) for key in _COUNTERS}
        sender = asyncio.create_task(self._send_tail(process.stdin))
        try:
            process.stdin.write(encode_frame({"spec": spec}))
            await self._mirror(process.stdout)
        except (FrameError, asyncio.IncompleteReadError, ConnectionError) as error:
            if not isinstance(error, asyncio.IncompleteReadError):  # EOF: it exited, the code says why
                self.status[self.name].last_error = f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
                process.kill()
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self._started.set()
        code = await process.wait()
        return code, status.events_applied > self._counted["events_applied"]

    async def _send_tail(self, stdin: asyncio.StreamWriter) -> None:
        """The newest durable (seq, ts_ns) whenever it moved, at most every
        ``TAIL_FRAME_INTERVAL_S``. Bounded: past the transport's high-water mark (asyncio's
        64 KiB, ~2 700 frames) ``drain`` pauses this sender, which then sends only the newest
        tail — a slow child gets the latest, not a backlog."""
        sent = -1
        try:
            while True:
                await self.tail.wait_beyond(sent)
                sent = self.tail.last_seq
                stdin.write(encode_frame({"tail": [sent, self.tail.last_ts_ns]}))
                await stdin.drain()
                await asyncio.sleep(TAIL_FRAME_INTERVAL_S)
        except ConnectionError:
            return  # the child is gone: its exit is reported by _run_child

    async def _mirror(self, stdout: asyncio.StreamReader) -> None:
        status = self.status[self.name]
        while True:
            body = await stdout.readexactly(frame_length(await stdout.readexactly(LENGTH_BYTES)))
            try:
                reported = msgspec.convert(decode_frame(body).get("status"), ProjectionStatus)
            except msgspec.ValidationError as error:
                raise FrameError(f"a frame from the projection's process that is not a status: {error}") from None
            for key in _MIRRORED:
                value = getattr(reported, key)
                setattr(status, key, value + self._counted[key] if key in _COUNTERS else value)
            self._started.set()
            await self._notify()


# -- the child's side ------------------------------------------------------------------------------

def _read_frame(stream) -> dict | None:
    """One frame from a blocking binary stream; None at its end."""
    header = stream.read(LENGTH_BYTES)
    if len(header) < LENGTH_BYTES:
        return None
    length = frame_length(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    return decode_frame(body)


async def _child(spec: dict, stdin, out) -> int:
    loop = asyncio.get_running_loop()
    tail = MovingTail(*spec["tail"])  # moved by the parent's frames
    stop_at: asyncio.Future = loop.create_future()  # (seq, catch_up_s) | None (the parent is gone)

    def read_frames() -> None:  # a thread: blocking reads of the parent's frames
        try:
            while (message := _read_frame(stdin)) is not None:
                if "tail" in message:
                    loop.call_soon_threadsafe(tail.move, *message["tail"])
                elif "stop" in message:
                    loop.call_soon_threadsafe(_resolve, stop_at, (message["stop"], message["catch_up_s"]))
                    return
        except FrameError as error:
            log.error("projection process: %s from the venue; stopping", error)
        loop.call_soon_threadsafe(_resolve, stop_at, None)

    projection = open_projection(spec)
    retry = RetryPolicy(**spec["retry"])
    runner: Runner

    def report() -> None:
        status = asdict(runner.status[projection.name])
        status.pop("extra")
        try:
            out.write(encode_frame({"status": status}))
            out.flush()
        except BrokenPipeError:
            pass  # the venue is gone: its stdin's end stops this process

    runner = Runner(spec["journal_dir"], [projection], tail=tail, batch_events=spec["batch_events"], retry=retry,
                    on_change=report)
    threading.Thread(target=read_frames, name="projection-stdin", daemon=True).start()
    tune_gc()  # the venue's policy: CPython's default cost ~20% more CPU an event
    await runner.start()
    stop = await stop_at
    if stop is not None:
        last_seq, catch_up_s = stop
        tail.move(last_seq, tail.last_ts_ns)
        status = runner.status[projection.name]
        if status.retry_attempt == 0:
            try:
                await asyncio.wait_for(runner.wait_for_seq(projection.name, last_seq), catch_up_s)
            except TimeoutError:
                pass  # it resumes from its checkpoint at the next start
    await runner.stop()
    projection.close()
    report()
    return 0


def _resolve(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _yield_the_cpu() -> None:
    """SCHED_IDLE for every thread of this process — those its imports started (OpenBLAS's
    workers) and, inherited, those to come — else nice +NICE_INCREMENT."""
    try:
        for thread_id in os.listdir("/proc/self/task"):
            try:
                os.sched_setscheduler(int(thread_id), os.SCHED_IDLE, os.sched_param(0))
            except ProcessLookupError:
                continue  # the thread ended meanwhile
    except (AttributeError, OSError):  # not Linux, or refused
        os.nice(NICE_INCREMENT)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s[process]: %(message)s")
    _yield_the_cpu()
    stdin = sys.stdin.buffer
    # Frames go to the original stdout; anything else printed goes to stderr (a stray print
    # must never corrupt a frame).
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    first = _read_frame(stdin)
    if first is None or "spec" not in first:
        log.error("projection process: the first frame must be the spec")
        return 2
    return asyncio.run(_child(first["spec"], stdin, out))


if __name__ == "__main__":
    sys.exit(main())
