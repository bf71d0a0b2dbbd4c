"""Every reader takes the engine configuration from the journal's genesis record.

A venue started with its own ``[[markets]]`` (a fourth market with max leverage 50, another
with max leverage 5, checkpoints every 10 events) writes a journal that ``replay verify``,
``state``, ``export``, ``whatif`` and ``journal info`` read without being told anything;
the defaults would not rebuild it. A restart with a changed configuration is refused, field
by field, and writes nothing. A journal written before genesis records is still read, with
the defaults and a notice.
"""

from __future__ import annotations

import asyncio
import textwrap

import pyarrow.parquet as pq
import pytest

from engine import commands as c
from engine.markets import default_config
from engine.state import state_hash
from ledger import inspect
from ledger.genesis import ConfigChanged, journal_config, read_genesis
from ledger.journal import Journal
from replay import cli
from replay.errors import ConfigMismatch
from replay.export import export
from replay.state_at import state_at
from replay.verify import verify
from replay.whatif import whatif
from tests.support import FakeClock
from venue.app import Venue
from venue.config import load

USDC = 1_000_000
PRICE_E8 = 30 * 100_000_000  # 30 USD

VENUE_TOML = """
[venue]
data_dir = "{data_dir}"
demo = false
snapshot_every_commands = 0

[oracle]
source = "none"

[engine]
checkpoint_every_events = 10

[[markets]]
symbol = "BTC-PERP"

[[markets]]
symbol = "ETH-PERP"
leverage_max = 5

[[markets]]
symbol = "SOL-PERP"

[[markets]]
symbol = "AVAX-PERP"
leverage_max = 50
taker_fee_bps = 3
"""


def _config(tmp_path, toml: str = VENUE_TOML):
    path = tmp_path / "venue.toml"
    path.write_text(textwrap.dedent(toml).format(data_dir=tmp_path / "data"))
    return load(path, env={})


async def _session(venue: Venue, clock: FakeClock, rounds: int) -> None:
    """Deposits, then RFQ rounds on AVAX-PERP at leverage 50 (refused under the defaults)."""
    for agent in ("trader", "maker-a", "maker-b"):
        assert (await venue.execute(c.Deposit(agent, 1_000_000 * USDC, f"dep-{agent}"))).rejection is None
    for i in range(rounds):
        clock.advance_ms(1_000)
        await venue.execute(c.OracleUpdate(3, PRICE_E8 + i * 1_000_000, 1_000_000, clock(), "test"))
        opened = await venue.execute(c.RequestQuote("trader", 3, "long" if i % 2 else "short", 500 * USDC, 50,
                                                    10_000_000, client_id=f"rfq-{i}"))
        assert opened.rejection is None, opened.rejection
        rfq_id = opened.events[0].rfq_id
        await venue.execute(c.SubmitQuote("maker-a", rfq_id, 2_000_000, 500 * USDC))
        await venue.execute(c.SubmitQuote("maker-b", rfq_id, 1_000_000, 500 * USDC))
        filled = await venue.execute(c.AcceptQuote("trader", rfq_id))
        assert filled.rejection is None, filled.rejection


@pytest.fixture
def written(tmp_path):
    """A data directory written by a venue with its own markets; its live state hash."""
    config = _config(tmp_path)
    clock = FakeClock()

    async def run() -> str:
        venue = Venue(config, clock=clock)
        await venue.start(serve=False)
        await _session(venue, clock, rounds=12)
        live_hash = state_hash(venue.state)
        await venue.stop()
        return live_hash

    return tmp_path / "data", config, asyncio.run(run())


def test_the_journal_carries_the_venue_configuration(written):
    data_dir, config, _ = written
    genesis = read_genesis(data_dir / "journal")
    assert genesis is not None and genesis.config == config.engine_config()
    assert [m.symbol for m in genesis.config.markets] == ["BTC-PERP", "ETH-PERP", "SOL-PERP", "AVAX-PERP"]
    assert genesis.config.markets[3].leverage_max == 50 and genesis.config.checkpoint_every_events == 10
    text = inspect.format_info(inspect.info(data_dir / "journal"))
    assert genesis.journal_id in text and "AVAX-PERP" in text and "leverage_max=50" in text


def test_every_reader_takes_the_configuration_from_the_journal(written, tmp_path, capsys):
    data_dir, _, live_hash = written
    result = verify(data_dir)  # no configuration given
    assert result.ok, result.divergence
    assert result.checkpoints >= 3 and result.state_hash == live_hash
    assert any("genesis record" in note and "AVAX-PERP" in note for note in result.notes)
    assert cli.main(["verify", str(data_dir), "--quiet"]) == 0

    state, _ = state_at(data_dir)
    assert state_hash(state) == live_hash and len(state.config.markets) == 4
    assert cli.main(["state", str(data_dir), "--quiet"]) == 0
    assert "AVAX-PERP" in capsys.readouterr().out

    export(data_dir, tmp_path / "out", tables=("positions",))
    positions = pq.read_table(tmp_path / "out" / "positions.parquet").to_pydict()
    assert set(positions["market_symbol"]) == {"AVAX-PERP"} and len(positions["position_id"]) == 12

    same = whatif(data_dir, [])
    assert same.identical, same.first_difference
    capped = whatif(data_dir, ["markets.AVAX-PERP.leverage_max=20"])
    assert not capped.identical  # leverage 50 is refused under the changed parameter


def test_a_configuration_given_for_a_journal_with_its_own_is_refused(written):
    data_dir, _, _ = written
    with pytest.raises(ConfigMismatch, match=r"markets\[3\] AVAX-PERP: in the journal, now removed"):
        verify(data_dir, default_config())
    assert cli.main(["verify", str(data_dir), "--checkpoint-every", "100000", "--quiet"]) == 2


def test_a_restart_with_a_changed_configuration_is_refused_field_by_field(written, tmp_path):
    data_dir, _, _ = written
    before = Journal.open(data_dir / "journal")
    last_cmd_id = before.last_cmd_id
    before.close()
    changed = _config(tmp_path, VENUE_TOML.replace("leverage_max = 50", "leverage_max = 40")
                      .replace("checkpoint_every_events = 10", "checkpoint_every_events = 80"))

    async def start() -> None:
        venue = Venue(changed, clock=FakeClock())
        await venue.start(serve=False)

    with pytest.raises(ConfigChanged) as refused:
        asyncio.run(start())
    assert refused.value.changes == ["markets[3] AVAX-PERP.leverage_max: journal 50, now 40",
                                     "checkpoint_every_events: journal 10, now 80"]
    message = str(refused.value)
    assert "new data directory" in message and "back to the journal's values" in message
    after = Journal.open(data_dir / "journal")
    assert after.last_cmd_id == last_cmd_id  # nothing was written
    after.close()


def test_a_journal_without_genesis_is_read_with_the_defaults_and_a_notice(tmp_path):
    from benchmarks.sessions import write_session
    from tests.recovery.session import CONFIG, commands

    live = write_session(tmp_path, commands(40), CONFIG)  # writes records only, no genesis
    found = journal_config(tmp_path / "journal", CONFIG)
    assert found.genesis is None and found.config == CONFIG and "no genesis record" in found.notice
    result = verify(tmp_path, CONFIG)
    assert result.ok and result.state_hash == state_hash(live)
    assert any("no genesis record" in note for note in result.notes)
