"""Golden bytes of the journal's genesis record (tag ``genesis.v1``, ``ledger.records``).

The genesis carries the whole ``EngineConfig``, encoded as msgspec encodes the struct (a map
per struct). Fields appended to ``EngineConfig`` / ``Market`` with defaults are the schema
evolution we allow without a new tag, so the check is exact on every byte the golden frame
holds and tolerant only of that: the new encoding must equal the golden one except for
fields appended at the end of a config map, and the golden bytes must still decode to the
same configuration (the appended fields taking their defaults). Regenerate on purpose with
``AGENTPERP_UPDATE_GOLDEN=1 pytest tests/golden``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

from engine.markets import EngineConfig, Market, default_config
from ledger.codec import encode_frame
from ledger.records import GENESIS_CMD_ID, Genesis, decode_record, encode_genesis

GOLDEN = Path(__file__).with_name("genesis.json")
TS_NS = 1_767_225_600_000_000_000
JOURNAL_ID = "0123456789abcdef0123456789abcdef"


def golden_config() -> EngineConfig:
    """Not the defaults: a fourth market and changed risk parameters."""
    base = default_config(checkpoint_every_events=1_000)
    markets = list(base.markets)
    markets[1] = msgspec.structs.replace(markets[1], leverage_max=10, taker_fee_bps=7)
    markets.append(Market(market_id=3, symbol="AVAX-PERP", leverage_max=5, maintenance_of_initial_bps=6_000,
                          oracle_age_ns_max=10_000_000_000))
    return msgspec.structs.replace(base, markets=tuple(markets), auto_liquidate_after_ms=5_000)


def _frame() -> str:
    return encode_frame(encode_genesis(Genesis(JOURNAL_ID, golden_config()), TS_NS)).hex()


def _only_appended(golden, new, where: str = "genesis") -> list[str]:
    """Where ``new`` differs from ``golden`` other than by map keys appended at the end."""
    if isinstance(golden, dict) and isinstance(new, dict):
        if list(new)[:len(golden)] != list(golden):
            return [f"{where}: keys {list(golden)} became {list(new)} (renamed, removed or reordered)"]
        return [p for key in golden for p in _only_appended(golden[key], new[key], f"{where}.{key}")]
    if isinstance(golden, list) and isinstance(new, list):
        if len(golden) != len(new):
            return [f"{where}: {len(golden)} items became {len(new)}"]
        return [p for i, (g, n) in enumerate(zip(golden, new)) for p in _only_appended(g, n, f"{where}[{i}]")]
    return [] if golden == new and type(golden) is type(new) else [f"{where}: {golden!r} became {new!r}"]


def test_genesis_frame_matches_the_golden_bytes():
    frame = _frame()
    if os.environ.get("AGENTPERP_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({"genesis.v1": frame}, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())["genesis.v1"]
    if frame == golden:
        return
    # Only fields appended with defaults to EngineConfig / Market may make it differ.
    decode = msgspec.msgpack.decode
    changed = _only_appended(decode(bytes.fromhex(golden)[8:]), decode(bytes.fromhex(frame)[8:]))
    assert not changed, f"genesis.v1 wire format changed: {changed}: a new tag plus an upcaster"


def test_golden_genesis_still_decodes_to_its_configuration():
    frame = bytes.fromhex(json.loads(GOLDEN.read_text())["genesis.v1"])
    record = decode_record(frame[8:])
    assert (record.cmd_id, record.first_seq, record.last_seq, record.ts_ns) == (GENESIS_CMD_ID, 1, 0, TS_NS)
    assert record.events == [] and record.rejection is None
    assert record.command == Genesis(JOURNAL_ID, golden_config())
