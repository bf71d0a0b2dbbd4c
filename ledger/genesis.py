"""The genesis record: a journal carries the engine configuration it was written with
(DESIGN §7).

- **Writing.** The first record of every journal the venue starts (``ledger.recovery``) or
  ``journal generate`` writes is a ``Genesis`` (``ledger.records``): cmd_id 1, no events,
  the whole ``EngineConfig`` (markets and every risk parameter) and a random ``journal_id``.
- **A changed configuration at a restart is refused**, never applied silently: the venue
  stops with ``ConfigChanged``, which lists every field that differs (journal value, new
  value) and says how to proceed — restore those settings, or start the new configuration
  in a new data directory. We chose refusal over journaling a configuration change: every
  reader (verify, what-if, backtest, projections, reconcile) would otherwise have to switch
  rules mid-journal, and a change such as removing a market with open positions has no
  meaning; a journal is decided by one set of rules from its first record to its last.
- **Reading.** Every reader takes the configuration from the journal (``journal_config``).
  A journal without a genesis record (written before this version) is still read, with the
  configuration the caller assumes (``default_config()`` unless told otherwise) and a
  notice saying so (``JournalConfig.notice``, logged as a warning).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import msgspec

from engine.markets import EngineConfig, default_config
from ledger.journal import Journal, JournalReader
from ledger.records import GENESIS_CMD_ID, Genesis, JournalRecord, decode_record, encode_genesis

log = logging.getLogger("agentperp.ledger.genesis")

JOURNAL_ID_BYTES = 16


class ConfigChanged(Exception):
    """A configuration differs from the one the journal was written with.

    ``changes`` lists each difference as text, field by field.
    """

    def __init__(self, journal_dir: Path | str, changes: list[str], what: str, hint: str) -> None:
        self.journal_dir = Path(journal_dir)
        self.changes = changes
        lines = "\n".join(f"  - {change}" for change in changes)
        super().__init__(f"{what} differs from the one the journal {self.journal_dir} was written with "
                         f"(its genesis record):\n{lines}\n{hint}")


RESTART_HINT = (
    "A journal is decided by one configuration from its first record to its last, so a "
    "changed configuration is refused, not applied. To proceed, either put these settings "
    "back to the journal's values (the venue's TOML [engine] / [[markets]] or AGENTPERP_* "
    "variables), or start the new configuration in a new data directory (venue.data_dir); "
    "`agentperp journal info DIR` shows the journal's configuration.")

READER_HINT = (
    "The journal carries its own configuration: drop the configuration you passed (a "
    "what-if takes its changes with --set / overrides).")


def new_genesis(config: EngineConfig) -> Genesis:
    """A genesis for a new journal written under ``config`` (validated), with a fresh id."""
    config.validate()
    return Genesis(secrets.token_hex(JOURNAL_ID_BYTES), config)


def write_genesis(journal: Journal, config: EngineConfig, ts_ns: int) -> Genesis:
    """Make ``config`` the first, durable record of the empty ``journal``; return it."""
    if journal.last_cmd_id != 0:
        raise ValueError(f"a genesis record starts a journal; {journal.directory} already holds "
                         f"{journal.last_cmd_id} records")
    genesis = new_genesis(config)
    journal.append_batch([encode_genesis(genesis, ts_ns)])
    return genesis


def read_genesis_record(journal_dir: Path | str) -> JournalRecord | None:
    """The genesis record of the journal in ``journal_dir``, whole (what a publisher sends
    on); None if its first record is not one (a journal written before genesis records) or
    it has no record yet."""
    # from_seq 0: the genesis record has no events (seqs 1..0), so a read from seq 1 skips it.
    for header, payload in JournalReader(journal_dir).read(from_seq=0):
        if header.cmd_id != GENESIS_CMD_ID:
            return None
        record = decode_record(payload)
        return record if type(record.command) is Genesis else None
    return None


def read_genesis(journal_dir: Path | str) -> Genesis | None:
    """The genesis of the journal in ``journal_dir`` (``read_genesis_record``'s command)."""
    record = read_genesis_record(journal_dir)
    return None if record is None else record.command


def config_changes(journal: EngineConfig, other: EngineConfig) -> list[str]:
    """Every difference between two configurations, field by field, as text
    (``markets[1] ETH-PERP.leverage_max: journal 20, now 10``); empty when equal."""
    changes: list[str] = []
    _diff("", msgspec.to_builtins(journal), msgspec.to_builtins(other), changes)
    return changes


def _label(path: str, index: int, item) -> str:
    symbol = item.get("symbol") if isinstance(item, dict) else None
    return f"{path}[{index}]" + (f" {symbol}" if symbol else "")


def _diff(path: str, old, new, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            where = f"{path}.{key}" if path else key
            if key not in new:
                out.append(f"{where}: journal {old[key]!r}, now absent")
            elif key not in old:
                out.append(f"{where}: absent in the journal, now {new[key]!r}")
            else:
                _diff(where, old[key], new[key], out)
    elif isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        for index in range(max(len(old), len(new))):
            if index >= len(new):
                out.append(f"{_label(path, index, old[index])}: in the journal, now removed")
            elif index >= len(old):
                out.append(f"{_label(path, index, new[index])}: not in the journal, now added")
            elif isinstance(old[index], dict) and isinstance(new[index], dict):
                _diff(_label(path, index, old[index]), old[index], new[index], out)
            else:
                _diff(f"{path}[{index}]", old[index], new[index], out)
    elif old != new:
        out.append(f"{path}: journal {old!r}, now {new!r}")


def check_unchanged(journal_dir: Path | str, genesis: Genesis, config: EngineConfig, *,
                    what: str = "the venue's engine configuration", hint: str = RESTART_HINT) -> None:
    """Raise ``ConfigChanged`` (every difference listed) unless ``config`` is the genesis'."""
    if config != genesis.config:
        raise ConfigChanged(journal_dir, config_changes(genesis.config, config) or ["(unequal)"], what, hint)


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """The configuration to read a journal with: from its genesis record, or (``genesis``
    None) assumed, with ``notice`` saying so."""

    config: EngineConfig
    genesis: Genesis | None
    notice: str = ""


def journal_config(journal_dir: Path | str, assumed: EngineConfig | None = None) -> JournalConfig:
    """The configuration of the journal in ``journal_dir``.

    With a genesis record: its configuration; an ``assumed`` one that differs raises
    ``ConfigChanged`` (the journal's own is the truth). Without (an older journal):
    ``assumed`` or ``default_config()``, and a notice, also logged as a warning.
    """
    return config_of(read_genesis(journal_dir), journal_dir, assumed)


def config_of(genesis: Genesis | None, where: Path | str, assumed: EngineConfig | None = None) -> JournalConfig:
    """``journal_config`` for a genesis read elsewhere (a journal on a stream, say): ``where``
    names the journal in messages."""
    if genesis is not None:
        if assumed is not None:
            check_unchanged(where, genesis, assumed, what="the configuration given", hint=READER_HINT)
        return JournalConfig(genesis.config, genesis)
    config = assumed or default_config()
    symbols = ", ".join(m.symbol for m in config.markets)
    notice = (f"{where} has no genesis record (written before journals carried their "
              f"configuration): read with {'the given' if assumed else 'the default'} engine "
              f"configuration ({symbols}; checkpoints every {config.checkpoint_every_events} "
              f"events). If it was written with another, pass that one.")
    log.warning("%s", notice)
    return JournalConfig(config, None, notice)
