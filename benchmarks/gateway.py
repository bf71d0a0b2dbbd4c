"""`agentperp bench gateway`: the running venue under load from separate client processes
over loopback TCP (msgpack), journal fsync `batch`, against a baseline measured in the same
run: a minimal framed echo server (``benchmarks.echo``) driven by the same load generators.

- ``gateway.ratio_to_echo``: throughput, venue / echo, interleaved (venue, echo, venue, …,
  ``PAIRS_MIN`` pairs; ``benchmarks.interleave``). Each client process holds several
  logged-in agents, each keeping a window of requests in flight (RequestQuote, and CancelRfq
  of its own acknowledged RFQs — always when another RFQ could pass the engine's
  open_rfqs_per_agent_max, so the venue accepts the load), for a fixed time; answers per
  second over the run. ``gateway.answers``: what the venue answered (acks, rejections by code).
  Target >= 0.5.
- ``gateway.p99_ratio_to_echo``: ack p99 of the venue / the echo's, both at the same offered
  load — ``ECHO_LOAD_FRACTION`` (25%) of the echo's measured capacity — open loop (requests
  go out on their schedule whatever the answers do, so a stall shows as latency), interleaved.
  Latency counts from the request's write to its answer's read. Target <= 5.
- ``gateway.p50_ms / p99_ms / p999_ms``, ``echo.*``: the pooled latencies of those runs.
- ``gateway.cpu_us_per_command`` / ``echo.cpu_us_per_command``: where the CPU of the
  throughput runs went, per answered command (median over the runs): the server's main
  thread, its other threads, its child processes, and the load generators' processes — the
  server's counted until the venue's projections have caught up with the run (the SQL
  process runs at a lower priority and defers work past a run on a busy machine).
  ``gateway.cpu_ratio_to_echo``: the echo's total over the venue's, pairwise — the throughput
  ratio the machine's cores would allow were both servers CPU-bound on every core (the
  ceiling of ``gateway.ratio_to_echo`` for the venue's code as it is, whatever its threads).
- PNGs next to the JSON: latency CDFs (venue and echo), throughput over time.

After each run its load generators wait for every answer still owed (up to ``DRAIN_S_MAX``;
the rest is reported as unanswered), so an overloaded run's slowest answers are counted, not
dropped; then the next run waits until the venue's projections have caught up with the
journal (``IDLE_WAIT_S_MAX``; the longest wait is ``gateway.idle_wait_s_max``), so every run
of either server starts on an idle machine.

The venue runs as its own process (`agentperp run --no-demo --dev --oracle none`); demo
agents are off; the dev faucet funds the benchmark's agents. Everything else runs as
`agentperp run` configures it — the escrow settlement and the hedger follow the journal on
the same process and the same GIL, the SQL read models from their own process (on the same
two cores here): ``gateway.venue_projections``
names them (from ``/health``), and ``gateway.projection_lag_seq_max`` is the furthest any of
them was behind the journal when a run ended (work deferred past the run, not avoided).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, deque
from pathlib import Path

import numpy as np
import psutil

from benchmarks.report import emit

RESULTS_DIR = Path(__file__).parent / "results"
AGENT_SEED_BASE = 0xBE7C4  # benchmark agents' keypairs derive from this
FUNDS_USDC = 1_000_000
SIZE_E6 = 10_000_000  # the smallest RFQ (10 USDC): holds 1 USDC + fee at 10x
RFQ_LIFETIME_MS = 1_000  # RFQs that are not cancelled expire within the second
# An agent's RFQ counts as open (against the engine's open_rfqs_per_agent_max) this long past
# its lifetime: the venue expires it at its next Tick, later under a saturating load.
RFQ_EXPIRY_MARGIN_S = 1.0
CANCEL_SHARE = 0.2  # of the requests while below the limit: CancelRfq of an open RFQ
# Requests each agent keeps in flight in the throughput run: enough to fill a group commit
# while the previous one is being fsynced (throughput <= window / fsync time).
WINDOW_PER_AGENT = 256
BIN_S = 0.1  # throughput over time: answers per bin of this many seconds
DRAIN_S_MAX = 30.0  # after a run, how long its load generators wait for answers still owed
SETTLE_S = 0.5  # pause after each run (RFQ expiry ticks, writeback) before the next one
# Before each run (of either server), wait until the venue's projections have caught up with
# its journal, at most this long: a run never shares the machine with the previous run's
# backlog (the venue's own catch-up would slow its latency runs, or the echo's next run).
IDLE_WAIT_S_MAX = 60.0
IDLE_POLL_S = 0.1
ECHO_LOAD_FRACTION = 0.25  # the latency runs' offered load: this fraction of the echo's capacity


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _agent_keypair(index: int):
    from solders.keypair import Keypair

    return Keypair.from_seed((AGENT_SEED_BASE + index).to_bytes(32, "little"))


# -- the client side (runs in its own processes) ---------------------------------------------------

class Client:
    """One logged-in agent connection with a lean, blocking-socket request loop."""

    def __init__(self, port: int, index: int):
        from engine.markets import default_config
        from protocol import signing, wire

        self.wire = wire
        self.codec = wire.CODECS["msgpack"]
        self.reader = wire.FrameReader(wire.SERVER_FRAME_BYTES_MAX)
        keypair = _agent_keypair(index)
        self.agent = str(keypair.pubkey())
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send(wire.Hello(version=wire.PROTOCOL_VERSION, encoding="msgpack", agent=self.agent))
        challenge = self._receive_one()
        signature = keypair.sign_message(signing.login_message(challenge.nonce, self.agent))
        self._send(wire.Login(signature=str(signature)))
        welcome = self._receive_one()
        assert type(welcome) is wire.Welcome, welcome
        self.next_req_id = 1
        self.sent_at: dict[int, float] = {}  # req_id -> when it was written to the socket
        self.unsent: list[int] = []
        self.rfqs: deque[tuple[int, float]] = deque()  # acknowledged open RFQs: (rfq_id, counted until)
        self.quotes_in_flight: set[int] = set()  # req_ids of RequestQuotes not answered yet
        self.answers: Counter[str] = Counter()  # "ack" or the rejection's code -> how many
        self.open_rfqs_max = default_config().open_rfqs_per_agent_max
        self.outbox = bytearray()
        self.rng = np.random.default_rng(index)

    def _send(self, message) -> None:
        self.sock.sendall(self.codec.frame(message))

    def _receive_one(self):
        while True:
            frames = self.reader.feed(self.sock.recv(65536))
            if frames:
                return self.codec.server_decoder.decode(frames[0])

    def queue_request(self) -> None:
        """Append the next command to the outbox; its latency counts from the flush.

        A RequestQuote, or a CancelRfq of the agent's newest open RFQ (the furthest from
        expiring): ``CANCEL_SHARE`` of the time, and always when another RFQ could pass the
        engine's open_rfqs_per_agent_max — the load is commands the venue accepts, not its
        LIMIT_REACHED path (over half of the answers before session 16)."""
        from engine import commands as c

        rfqs = self.rfqs
        now = time.perf_counter()
        while rfqs and rfqs[0][1] <= now:
            rfqs.popleft()
        at_limit = len(rfqs) + len(self.quotes_in_flight) >= self.open_rfqs_max
        req_id = self.next_req_id
        if rfqs and (at_limit or self.rng.random() < CANCEL_SHARE):
            command = c.CancelRfq(self.agent, rfqs.pop()[0])
        else:
            command = c.RequestQuote(self.agent, int(self.rng.integers(0, 3)), "long", SIZE_E6, 10, 10_000_000,
                                     expires_in_ms=RFQ_LIFETIME_MS)
            self.quotes_in_flight.add(req_id)
        self.next_req_id += 1
        self.unsent.append(req_id)
        self.codec.frame_into(self.wire.Request(req_id=req_id, command=self.wire.command_to_wire(command)),
                              self.outbox)

    def flush(self) -> None:
        if self.outbox:
            now = time.perf_counter()
            for req_id in self.unsent:
                self.sent_at[req_id] = now
            self.unsent.clear()
            self.sock.sendall(self.outbox)
            self.outbox.clear()

    def on_readable(self, latencies: list[float]) -> int:
        """Read what arrived; record each answer's latency; how many answers."""
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the venue closed the connection")
        now = time.perf_counter()
        answered = 0
        for frame in self.reader.feed(data):
            message = self.codec.server_decoder.decode(frame)
            req_id = getattr(message, "req_id", -1)
            due = self.sent_at.pop(req_id, None)
            if due is None:
                continue
            answered += 1
            latencies.append(now - due)
            self.quotes_in_flight.discard(req_id)
            acked = type(message) is self.wire.Ack
            answer = "ack" if acked else getattr(message, "code", type(message).__name__)
            self.answers[answer] += 1
            if acked:
                for event in message.events:
                    if type(event).__name__ == "WireRfqOpened":
                        self.rfqs.append((event.rfq_id, now + RFQ_LIFETIME_MS / 1_000 + RFQ_EXPIRY_MARGIN_S))
        return answered


def _client_process(port: int, first_index: int, agents: int, mode: str, rate_per_s: float, seconds: float,
                    window: int, out) -> None:
    clients = [Client(port, first_index + i) for i in range(agents)]
    selector = selectors.DefaultSelector()
    for client in clients:
        selector.register(client.sock, selectors.EVENT_READ, client)
    latencies: list[float] = []
    answered = 0
    start = time.perf_counter()
    end = start + seconds
    bins = np.zeros(int(seconds / BIN_S) + 1, np.int64)  # answers per BIN_S: throughput over time
    sent = 0
    cpu_started_s = time.process_time()
    if mode == "throughput":
        for client in clients:
            for _ in range(window):
                client.queue_request()
            client.flush()
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if mode == "latency":
            due_count = int((now - start) * rate_per_s) - sent
            for _ in range(due_count):  # open loop: every request that is due goes now
                clients[sent % len(clients)].queue_request()
                sent += 1
            for client in clients:
                client.flush()
            timeout = max(0.0, start + (sent + 1) / rate_per_s - time.perf_counter())
        else:
            timeout = 0.05
        for key, _ in selector.select(timeout):
            client = key.data
            got = client.on_readable(latencies)
            answered += got
            bins[min(int((time.perf_counter() - start) / BIN_S), len(bins) - 1)] += got
            if mode == "throughput":
                for _ in range(got):
                    client.queue_request()
                client.flush()
    elapsed = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_started_s
    # Drain: wait for the answers still owed, so the server is idle when the next run starts
    # and an open-loop run's slowest answers are counted, not dropped.
    in_window = len(latencies)
    drain_end = time.perf_counter() + DRAIN_S_MAX
    while any(c.sent_at for c in clients) and time.perf_counter() < drain_end:
        for key, _ in selector.select(0.05):
            key.data.on_readable(latencies)
    if mode == "throughput":
        latencies = latencies[:in_window]  # the throughput run's latencies are not a figure
    out.send({"answered": answered, "elapsed_s": elapsed, "latencies_s": latencies, "bins": bins,
              "unanswered": sum(len(c.sent_at) for c in clients), "cpu_s": cpu_s,
              "answers": sum((c.answers for c in clients), Counter())})


def _run_clients(port: int, processes: int, agents_per_process: int, mode: str, rate_per_s: float,
                 seconds: float, window: int) -> dict:
    """Run the load generators against ``port``: ``answered``, ``elapsed_s``, ``latencies_s``
    (an array), ``bins`` (answers per ``BIN_S``), ``unanswered`` (after the drain)."""
    context = mp.get_context("spawn")
    pipes, workers = [], []
    for p in range(processes):
        receive, send = context.Pipe(duplex=False)
        worker = context.Process(target=_client_process, args=(
            port, p * agents_per_process, agents_per_process, mode, rate_per_s / processes, seconds, window, send))
        worker.start()
        pipes.append(receive)
        workers.append(worker)
    results = [pipe.recv() for pipe in pipes]
    for worker in workers:
        worker.join()
    return {"answered": sum(r["answered"] for r in results),
            "elapsed_s": max(r["elapsed_s"] for r in results),
            "latencies_s": np.concatenate([np.asarray(r["latencies_s"]) for r in results]),
            "bins": np.sum([r["bins"] for r in results], axis=0),
            "unanswered": sum(r["unanswered"] for r in results),
            "clients_cpu_s": sum(r["cpu_s"] for r in results),
            "answers": sum((r["answers"] for r in results), Counter())}


# -- where the CPU goes --------------------------------------------------------------------------------

def server_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of a server process: its main thread, its other
    threads, and its child processes (the SQL read models' own process)."""
    root = psutil.Process(pid)
    threads = {thread.id: thread.user_time + thread.system_time for thread in root.threads()}
    children = 0.0
    for child in root.children(recursive=True):
        try:
            children += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:  # ended (a restarted projection child): its time is gone with it
            pass
    main = threads.pop(pid, 0.0)
    return {"main_thread": main, "other_threads": sum(threads.values()), "child_processes": children}


def caught_up_cpu_s(server) -> dict[str, float]:
    """``server_cpu_s`` once a venue's projections have caught up with the run (the work a
    projection deferred past the run is the run's too); an echo's at once."""
    if isinstance(server, VenueProcess):
        server.wait_idle()
    return server_cpu_s(server.process.pid)


def cpu_us_per_command(before: dict[str, float], after: dict[str, float], clients_cpu_s: float,
                       answered: int) -> dict[str, float]:
    """Each part's CPU per answered command over one run, and the total (clients included)."""
    per = {part: (after[part] - before[part]) * 1e6 / answered for part in after}
    per["clients"] = clients_cpu_s * 1e6 / answered
    per["total"] = sum(per.values())
    return per


# -- the venue side --------------------------------------------------------------------------------

class VenueProcess:
    """`agentperp run` in its own process; ``root``: run that source tree's venue instead of
    this one's (``benchmarks.gateway_ab``), with ``flags`` added to its command line."""

    def __init__(self, data_dir: Path, fsync: str = "batch", root: Path | None = None, flags: tuple[str, ...] = ()):
        self.tcp_port, self.http_port = _free_port(), _free_port()
        self.projection_lag_seq_max = 0  # the furthest behind any projection was when a run ended
        tree = {"PYTHONPATH": str(root)} if root is not None else {}
        env = {**os.environ, **tree, "AGENTPERP_VENUE_STATUS_INTERVAL_S": "0",
               "AGENTPERP_GATEWAY_REQUESTS_PER_S": "1e9", "AGENTPERP_GATEWAY_REQUEST_BURST": "1000000000",
               "AGENTPERP_GATEWAY_OUTBOUND_QUEUE_MAX": "1000000", "AGENTPERP_VENUE_FSYNC": fsync,
               "AGENTPERP_VENUE_SNAPSHOT_EVERY_COMMANDS": "0"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "venue.cli", "run", "--no-demo", "--dev", "--oracle", "none",
             "--data", str(data_dir), "--port", str(self.tcp_port), "--http-port", str(self.http_port), *flags],
            env=env, cwd=root, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120  # first start may compile the kernels
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("the venue process exited during start-up")
                time.sleep(0.2)
        raise RuntimeError("the venue did not start")

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=10) as answer:
            return json.loads(answer.read())

    def wait_idle(self) -> float:
        """Wait until no projection lags the journal (at most IDLE_WAIT_S_MAX); the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < IDLE_WAIT_S_MAX:
            health = self.health()
            lag_seq = max((p["lag_seq"] for p in health["projections"]), default=0)
            self.projection_lag_seq_max = max(self.projection_lag_seq_max, lag_seq)
            if health["queue_depth"] == 0 and not lag_seq:
                break
            time.sleep(IDLE_POLL_S)
        return time.monotonic() - started

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def fund(self, agents: int) -> None:
        for index in range(agents):
            self.post("/dev/faucet", {"agent_id": str(_agent_keypair(index).pubkey()), "amount_usdc": FUNDS_USDC})
        for symbol, price in (("BTC-PERP", 65_000), ("ETH-PERP", 3_200), ("SOL-PERP", 150)):
            self.post("/dev/oracle", {"market": symbol, "price": price})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


class EchoProcess:
    """The baseline server (``benchmarks.echo``) in its own process, like the venue."""

    def __init__(self):
        self.tcp_port = _free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.echo", str(self.tcp_port)],
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the echo server did not start: {line!r}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def measure(quick: bool = False, out_dir: Path | None = None) -> dict:
    """The gateway's figures as ratios to the echo server's, interleaved (see the module doc)."""
    from benchmarks import plots
    from benchmarks.interleave import LOWER, PAIRS_MIN, interleave, ratio_summary

    processes = 2
    agents_per_process = 4 if quick else 8
    throughput_s = 1.5 if quick else 5.0
    latency_s = 2.0 if quick else 5.0
    settle_s = SETTLE_S if quick else 2 * SETTLE_S
    out_dir = Path(out_dir) if out_dir else RESULTS_DIR
    last: dict[str, dict] = {}  # the last run of each kind, for the plots
    latency_ms: dict[str, list[np.ndarray]] = {"venue": [], "echo": []}
    unanswered = {"venue": 0, "echo": 0}

    cpu_us: dict[str, list[dict]] = {"venue": [], "echo": []}  # per throughput run
    venue_answers = {"throughput": Counter(), "latency": Counter()}  # ack / rejection code -> count

    def throughput(server, label: str):
        def run() -> float:
            before = server_cpu_s(server.process.pid)
            result = _run_clients(server.tcp_port, processes, agents_per_process, "throughput", 0, throughput_s,
                                  WINDOW_PER_AGENT)
            cpu_us[label].append(cpu_us_per_command(before, caught_up_cpu_s(server), result["clients_cpu_s"],
                                                    result["answered"]))
            last[f"{label} throughput"] = result
            if label == "venue":
                venue_answers["throughput"] += result["answers"]
            return result["answered"] / result["elapsed_s"]
        return run

    def p99_at(server, label: str, offered_per_s: float):
        def run() -> float:
            result = _run_clients(server.tcp_port, processes, agents_per_process, "latency", offered_per_s,
                                  latency_s, 0)
            latency_ms[label].append(result["latencies_s"] * 1e3)
            unanswered[label] += result["unanswered"]
            if label == "venue":
                venue_answers["latency"] += result["answers"]
            return float(np.percentile(result["latencies_s"], 99)) * 1e3
        return run

    with tempfile.TemporaryDirectory(prefix="agentperp-bench-gateway-") as tmp:
        venue = VenueProcess(Path(tmp) / "data")
        echo = None
        try:
            echo = EchoProcess()
            venue.fund(processes * agents_per_process)
            for server in (venue, echo):  # warm-up: JIT, page cache, connection set-up paths
                _run_clients(server.tcp_port, processes, agents_per_process, "throughput", 0, 1.0, WINDOW_PER_AGENT)
            idle_waits_s: list[float] = []

            def pause() -> None:
                time.sleep(settle_s)  # RFQ expiry ticks journaled, then their projection
                idle_waits_s.append(venue.wait_idle())

            pause()
            ratio_tp = interleave(throughput(venue, "venue"), throughput(echo, "echo"), pairs=PAIRS_MIN,
                                  figure="gateway.commands_per_s", baseline="echo.commands_per_s",
                                  label="gateway throughput", between=pause)
            # Let the throughput runs' open RFQs expire before the latency runs.
            time.sleep(RFQ_LIFETIME_MS / 1_000)
            pause()
            offered_per_s = ECHO_LOAD_FRACTION * ratio_tp["baseline_spread"]["median"]
            ratio_p99 = interleave(p99_at(venue, "venue", offered_per_s), p99_at(echo, "echo", offered_per_s),
                                   pairs=PAIRS_MIN, figure="gateway.p99_ms", baseline="echo.p99_ms", better=LOWER,
                                   label="gateway p99 at 25% of echo", between=pause)
            projections = venue.health()["projections"]
        finally:
            venue.stop()
            if echo is not None:
                echo.stop()

    venue_ms = np.concatenate(latency_ms["venue"])
    echo_ms = np.concatenate(latency_ms["echo"])
    plot_paths = [
        plots.latency_cdf({"venue": venue_ms, "echo": echo_ms}, out_dir / "gateway_latency_cdf.png",
                          f"ack latency at {offered_per_s:,.0f}/s offered ({ECHO_LOAD_FRACTION:.0%} of echo)"),
        plots.throughput_over_time({k: v["bins"][:-1] for k, v in last.items()}, BIN_S,  # the last bin: the tail past the end
                                   out_dir / "gateway_throughput_over_time.png",
                                   "throughput over the last interleaved run of each server"),
    ]
    figures = {
        "gateway.ratio_to_echo": ratio_tp,
        "gateway.p99_ratio_to_echo": ratio_p99,
        "gateway.commands_per_s": round(ratio_tp["figure_spread"]["median"]),
        "echo.commands_per_s": round(ratio_tp["baseline_spread"]["median"]),
        "gateway.offered_per_s": round(offered_per_s),
        "gateway.p50_ms": round(float(np.percentile(venue_ms, 50)), 3),
        "gateway.p99_ms": round(float(np.percentile(venue_ms, 99)), 3),
        "gateway.p999_ms": round(float(np.percentile(venue_ms, 99.9)), 3),
        "echo.p50_ms": round(float(np.percentile(echo_ms, 50)), 3),
        "echo.p99_ms": round(float(np.percentile(echo_ms, 99)), 3),
        "gateway.latency_commands": int(len(venue_ms)),
        "gateway.unanswered_after_drain": unanswered["venue"], "echo.unanswered_after_drain": unanswered["echo"],
        # What the venue answered, over all its runs of each kind: acks, and rejections by code.
        "gateway.answers": {kind: dict(sorted(counts.items())) for kind, counts in venue_answers.items()},
        "gateway.cpu_us_per_command": _median_parts(cpu_us["venue"]),
        "echo.cpu_us_per_command": _median_parts(cpu_us["echo"]),
        # What the cores allow: were both CPU-bound on every core, throughput would be
        # cores / total CPU per command, so their ratio could not exceed this one.
        "gateway.cpu_ratio_to_echo": ratio_summary(
            [1 / run["total"] for run in cpu_us["venue"]], [1 / run["total"] for run in cpu_us["echo"]],
            figure="1 / gateway.cpu_us_per_command.total", baseline="1 / echo.cpu_us_per_command.total"),
        "gateway.fsync": "batch",
        "gateway.venue_projections": [p["name"] for p in projections],
        "gateway.projection_lag_seq_max": venue.projection_lag_seq_max,
        "gateway.idle_wait_s_max": round(max(idle_waits_s), 3),
        "gateway.client_processes": processes, "gateway.agents": processes * agents_per_process,
        "gateway.throughput_run_s": throughput_s, "gateway.latency_run_s": latency_s,
        "gateway.plots": [str(p) for p in plot_paths],
        "machine.cores": os.cpu_count(),
    }
    return figures


def _median_parts(runs: list[dict]) -> dict[str, float]:
    return {part: round(float(np.median([run[part] for run in runs])), 2) for part in runs[0]}


TARGETS = {"gateway.ratio_to_echo": (">=", 0.5), "gateway.p99_ratio_to_echo": ("<=", 5.0)}


def main(json_path: str | None = None, quick: bool = False) -> int:
    out_dir = Path(json_path).parent if json_path else RESULTS_DIR
    return emit(measure(quick, out_dir), TARGETS, json_path)
