"""`agentperp bench gateway`: the running venue under load from separate client processes
over loopback TCP (msgpack), journal fsync `batch`.

- ``gateway.commands_per_s``: sustained throughput. Each client process holds several
  logged-in agents, each keeping a window of requests in flight (RequestQuote, and
  CancelRfq of its own acknowledged RFQs), for a fixed time; acks per second over the run.
- ``gateway.p50_ms / p99_ms / p999_ms``: ack latency at a fixed offered load (10 000
  commands/s by default, open loop: requests go out on their schedule whatever the answers
  do, so a stall of the venue shows as latency, not as a lower load). Latency counts from
  the moment the request is written to the socket to the moment its answer is read: the
  client's own wake-up jitter (epoll sleeps in whole milliseconds) is not the venue's.
- a PNG plot of the latency distribution next to the JSON (or in benchmarks/results/).

The venue runs as its own process (`agentperp run --no-demo --dev --oracle none`); demo
agents are off; the dev faucet funds the benchmark's agents.
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
from collections import deque
from pathlib import Path

import numpy as np

from benchmarks.report import emit

RESULTS_DIR = Path(__file__).parent / "results"
AGENT_SEED_BASE = 0xBE7C4  # benchmark agents' keypairs derive from this
FUNDS_USDC = 1_000_000
SIZE_E6 = 10_000_000  # the smallest RFQ (10 USDC): holds 1 USDC + fee at 10x
RFQ_LIFETIME_MS = 1_000  # RFQs that are not cancelled expire within the second
# Requests each agent keeps in flight in the throughput run: enough to fill a group commit
# while the previous one is being fsynced (throughput <= window / fsync time).
WINDOW_PER_AGENT = 256


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
        self.rfqs: deque[int] = deque()
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
        """Append the next command to the outbox; its latency counts from the flush."""
        from engine import commands as c

        if self.rfqs and self.rng.random() < 0.2:
            command = c.CancelRfq(self.agent, self.rfqs.popleft())
        else:
            command = c.RequestQuote(self.agent, int(self.rng.integers(0, 3)), "long", SIZE_E6, 10, 10_000_000,
                                     expires_in_ms=RFQ_LIFETIME_MS)
        req_id = self.next_req_id
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
            due = self.sent_at.pop(getattr(message, "req_id", -1), None)
            if due is None:
                continue
            answered += 1
            latencies.append(now - due)
            if type(message) is self.wire.Ack:
                for event in message.events:
                    if type(event).__name__ == "WireRfqOpened":
                        self.rfqs.append(event.rfq_id)
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
    sent = 0
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
            if mode == "throughput":
                for _ in range(got):
                    client.queue_request()
                client.flush()
    elapsed = time.perf_counter() - start
    out.send({"answered": answered, "elapsed_s": elapsed, "latencies_s": latencies})


def _run_clients(port: int, processes: int, agents_per_process: int, mode: str, rate_per_s: float,
                 seconds: float, window: int) -> tuple[int, float, np.ndarray]:
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
    answered = sum(r["answered"] for r in results)
    elapsed = max(r["elapsed_s"] for r in results)
    latencies = np.concatenate([np.asarray(r["latencies_s"]) for r in results]) if results else np.zeros(0)
    return answered, elapsed, latencies


# -- the venue side --------------------------------------------------------------------------------

class VenueProcess:
    def __init__(self, data_dir: Path, fsync: str = "batch"):
        self.tcp_port, self.http_port = _free_port(), _free_port()
        env = {**os.environ, "AGENTPERP_VENUE_STATUS_INTERVAL_S": "0",
               "AGENTPERP_GATEWAY_REQUESTS_PER_S": "1e9", "AGENTPERP_GATEWAY_REQUEST_BURST": "1000000000",
               "AGENTPERP_GATEWAY_OUTBOUND_QUEUE_MAX": "1000000", "AGENTPERP_VENUE_FSYNC": fsync,
               "AGENTPERP_VENUE_SNAPSHOT_EVERY_COMMANDS": "0"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "venue.cli", "run", "--no-demo", "--dev", "--oracle", "none",
             "--data", str(data_dir), "--port", str(self.tcp_port), "--http-port", str(self.http_port)],
            env=env, stdout=subprocess.DEVNULL)
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


def _plot(latencies_s: np.ndarray, path: Path, rate_per_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = latencies_s * 1e3
    fig, (hist, tail) = plt.subplots(1, 2, figsize=(11, 4))
    hist.hist(ms, bins=np.logspace(np.log10(max(ms.min(), 1e-3)), np.log10(ms.max() + 1e-3), 80))
    hist.set_xscale("log")
    hist.set_xlabel("ack latency (ms, log)")
    hist.set_ylabel("commands")
    hist.set_title(f"{len(ms):,} commands at {rate_per_s:,.0f}/s offered")
    quantiles = np.linspace(0, 0.9999, 2000)
    tail.plot(1 / (1 - quantiles), np.quantile(ms, quantiles))
    tail.set_xscale("log")
    tail.set_xlabel("1 / (1 - quantile)  (10 = p90, 100 = p99, 1000 = p99.9)")
    tail.set_ylabel("ms")
    tail.set_title("latency by quantile")
    for q in (0.5, 0.99, 0.999):
        tail.axvline(1 / (1 - q), color="grey", lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(json_path: str | None = None, quick: bool = False) -> int:
    processes = 2
    agents_per_process = 4 if quick else 8
    seconds = 3.0 if quick else 10.0
    offered_per_s = 10_000.0
    with tempfile.TemporaryDirectory(prefix="agentperp-bench-gateway-") as tmp:
        venue = VenueProcess(Path(tmp) / "data")
        try:
            venue.fund(processes * agents_per_process)
            warm_up_s = 1.0
            _run_clients(venue.tcp_port, processes, agents_per_process, "throughput", 0, warm_up_s, WINDOW_PER_AGENT)
            answered, elapsed, _ = _run_clients(venue.tcp_port, processes, agents_per_process, "throughput", 0,
                                                seconds, WINDOW_PER_AGENT)
            throughput = answered / elapsed
            # Let the throughput run's backlog drain (its in-flight windows, and the tens of
            # thousands of RFQs it left open, which expire within RFQ_LIFETIME_MS): the
            # latency run measures 10 000/s offered to a venue in a steady state.
            time.sleep(RFQ_LIFETIME_MS / 1_000 + 2.0)
            _, _, latencies = _run_clients(venue.tcp_port, processes, agents_per_process, "latency", offered_per_s,
                                           seconds, 0)
        finally:
            venue.stop()
    plot_path = Path(json_path).with_suffix(".png") if json_path else RESULTS_DIR / "gateway_latency.png"
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    _plot(latencies, plot_path, offered_per_s)
    p50, p99, p999 = (round(float(np.percentile(latencies, q)) * 1e3, 3) for q in (50, 99, 99.9))
    figures = {
        "gateway.commands_per_s": round(throughput),
        "gateway.p50_ms": p50, "gateway.p99_ms": p99, "gateway.p999_ms": p999,
        "gateway.latency_commands": int(len(latencies)),
        "gateway.offered_per_s": offered_per_s,
        "gateway.client_processes": processes, "gateway.agents": processes * agents_per_process,
        "gateway.seconds": seconds, "gateway.plot": str(plot_path),
        "machine.cores": os.cpu_count(),
    }
    targets = {"gateway.commands_per_s": (">=", 50_000), "gateway.p99_ms": ("<=", 2.0)}
    return emit(figures, targets, json_path)
