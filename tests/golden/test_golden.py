"""Golden bytes: one fixed journal frame per command and event tag.

An accidental wire change (a renamed tag, a reordered or retyped field) fails here; an
intended one is a new tag plus an upcaster, and the golden file is regenerated with
``AGENTPERP_UPDATE_GOLDEN=1 pytest tests/golden``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec
import pytest

from engine import commands as cmd
from engine import events as ev
from engine.rejections import Rejected
from ledger.codec import encode_frame
from ledger.records import decode_record, encode_record

GOLDEN = Path(__file__).with_name("frames.json")
ALICE, BOB = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
T = ev.Transfer(ev.FREE, ALICE, ev.HELD, ALICE, 10_050_000, "hold")
M = dict(seq=7, ts_ns=1_767_225_600_000_000_000, cmd_id=3)

COMMANDS = [
    cmd.Deposit(ALICE, 1_000_000_000, "5VERv8NMvzbJMEkV8xnrLkEaWRtSz9CosKDYjCJjBRnb"),
    cmd.Withdraw(ALICE, 5_000_000, "wallet", "w-1"),
    cmd.RequestQuote(ALICE, 0, "long", 100_000_000, 10, 10_000_000, "perpetual", 30_000, "c-1", True, 2_000_000),
    cmd.SubmitQuote(BOB, 1, 5_000_000, 100_000_000, 10_000, "q-1"),
    cmd.CancelQuote(BOB, 1, "q-2"),
    cmd.CancelRfq(ALICE, 1, "c-2"),
    cmd.AcceptQuote(ALICE, 1, cmd.BEST_QUOTE, "3sig", "c-3"),
    cmd.ClosePosition(ALICE, 1, 2_500, "c-4"),
    cmd.Liquidate(BOB, 1, "k-1"),
    cmd.AddMargin(ALICE, 1, 5_000_000, "m-1"),
    cmd.RemoveMargin(ALICE, 1, 5_000_000, "m-2"),
    cmd.OracleUpdate(0, 10_000_000_000_000, 1_000_000_000, 1_767_225_599_000_000_000, "pyth", "e62d" * 16,
                     ["pyth"], 3, 9_999_000_000_000),
    cmd.Tick(),
    cmd.CancelAgentQuotes(BOB),
    cmd.SwitchOracleSource(0, "pyth", "ccxt", "stale"),
]

EVENTS = [
    ev.Deposited(**M, agent=ALICE, amount_e6=1, ref="r", transfers=[T]),
    ev.Withdrawn(**M, agent=ALICE, amount_e6=1, destination="d", client_id="c", transfers=[T]),
    ev.RfqOpened(**M, rfq_id=1, trader=ALICE, market=0, side="long", size_e6=100_000_000, leverage=10,
                 max_funding_rate_e9=10_000_000, duration="1h", expires_ns=9, margin_e6=10_000_000, fee_e6=50_000,
                 auto_accept=False, target_rate_e9=None, client_id="c", transfers=[T]),
    ev.QuoteSubmitted(**M, quote_id=1, rfq_id=1, maker=BOB, funding_rate_e9=-5, collateral_e6=5, fee_e6=0,
                      expires_ns=9, client_id="", transfers=[T]),
    ev.QuoteReleased(**M, quote_id=1, rfq_id=1, maker=BOB, reason="expired", client_id="", transfers=[T]),
    ev.RfqClosed(**M, rfq_id=1, trader=ALICE, reason="cancelled", client_id="c", transfers=[T]),
    ev.PositionOpened(**M, position_id=1, rfq_id=1, quote_id=2, market=0, long_agent=ALICE, short_agent=BOB,
                      taker_side="long", size_e6=100_000_000, entry_price_e8=10_000_000_000_000,
                      oracle_conf_e8=1_000, oracle_publish_ns=5, funding_rate_e9=5_000_000, margin_long_e6=10_000_000,
                      margin_short_e6=100_000_000, taker_fee_e6=50_000, maker_fee_e6=0, duration="perpetual",
                      expires_ns=0, signature="3sig", auto_accepted=False, released_quote_ids=[3], client_id="c",
                      transfers=[T]),
    ev.FundingSettled(**M, boundary_ns=1_767_254_400_000_000_000, position_ids=[1, 2], long_to_short_e6=[62_500, -1],
                      shortfall_e6=0),
    ev.PositionClosed(**M, position_id=1, agent=ALICE, reason="close", fraction_bps=2_500, price_e8=1, conf_e8=0,
                      publish_ns=1, closed_size_e6=25, remaining_size_e6=75, funding_long_to_short_e6=-3,
                      pnl_long_e6=500_000, insurance_e6=0, bad_debt_e6=0, client_id="c", transfers=[T]),
    ev.PositionLiquidated(**M, position_id=1, side="long", keeper=BOB, price_e8=1, publish_ns=1, oracle_stale=True,
                          funding_long_to_short_e6=0, pnl_long_e6=-5_300_000, insurance_e6=0, bad_debt_e6=0,
                          reward_e6=235_000, client_id="", transfers=[T], oracle_validity="stale_for_margin"),
    ev.MarginChanged(**M, position_id=1, agent=ALICE, side="short", delta_e6=-5, client_id="m", transfers=[T]),
    ev.OracleUpdated(**M, market=2, price_e8=20_000_000_000, conf_e8=0, publish_ns=1, source="ccxt",
                     feed_id="SOL/USDT", sources=["binance", "okx", "bybit"], spread_bps=4, ema_price_e8=19_990_000_000),
    ev.LiquidationWatch(**M, market=0, flagged=[1], cleared=[2, 3]),
    ev.Checkpoint(**M, state_hash="ab" * 32),
    ev.OracleSourceSwitched(**M, market=1, from_source="ccxt", to_source="pyth", reason="recovered"),
]


def _frames() -> dict[str, str]:
    """tag -> hex of the journal frame of a record carrying that command or event."""
    frames = {}
    for command in COMMANDS:
        tag = type(command).__struct_config__.tag
        frames[tag] = encode_frame(encode_record(3, M["ts_ns"], command, [], 6)).hex()
    tick = cmd.Tick()
    for event in EVENTS:
        tag = type(event).__struct_config__.tag
        frames[tag] = encode_frame(encode_record(3, M["ts_ns"], tick, [event], 6)).hex()
    frames["rejected.v1"] = encode_frame(encode_record(
        3, M["ts_ns"], tick, Rejected("OUT_OF_RANGE", "m", {"field": "size_e6", "min": 1, "max": 2}), 6)).hex()
    return frames


def test_every_tag_has_a_golden_frame():
    covered = {type(c).__struct_config__.tag for c in COMMANDS} | {type(e).__struct_config__.tag for e in EVENTS}
    assert covered == {t.__struct_config__.tag for t in cmd.COMMAND_TYPES + ev.EVENT_TYPES}


def test_frames_match_the_golden_bytes():
    frames = _frames()
    if os.environ.get("AGENTPERP_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(frames, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    changed = sorted(tag for tag in golden.keys() | frames.keys() if golden.get(tag) != frames.get(tag))
    assert not changed, f"wire format changed for {changed}: a new tag plus an upcaster, or regenerate on purpose"


@pytest.mark.parametrize("tag", sorted(json.loads(GOLDEN.read_text()) if GOLDEN.exists() else []))
def test_golden_frames_still_decode(tag):
    """Old bytes must keep decoding to the same values."""
    frame = bytes.fromhex(json.loads(GOLDEN.read_text())[tag])
    record = decode_record(frame[8:])
    assert record.cmd_id == 3 and record.ts_ns == M["ts_ns"]
    by_tag = {type(x).__struct_config__.tag: x for x in COMMANDS + EVENTS}
    if tag == "rejected.v1":
        assert record.rejection.code == "OUT_OF_RANGE"
    elif tag in {type(c).__struct_config__.tag for c in COMMANDS}:
        assert record.command == by_tag[tag]
    else:
        assert record.events == [by_tag[tag]]


# Frames written before fields were appended to a tag (with defaults, DESIGN §5): they must
# keep decoding, to the golden value with those fields at their defaults.
LEGACY = {
    Path(__file__).with_name("frames_before_oracle_provenance.json"): {
        "oracle_update.v1": dict(feed_id="", sources=[], spread_bps=0, ema_price_e8=0),
        "oracle_updated.v1": dict(feed_id="", sources=[], spread_bps=0, ema_price_e8=0),
        "position_liquidated.v1": dict(oracle_validity=""),
    },
}


@pytest.mark.parametrize("path,tag", [(path, tag) for path, tags in LEGACY.items() for tag in tags],
                         ids=lambda x: x if isinstance(x, str) else x.stem)
def test_frames_from_before_appended_fields_still_decode(path, tag):
    frame = bytes.fromhex(json.loads(path.read_text())[tag])
    record = decode_record(frame[8:])
    golden = {type(x).__struct_config__.tag: x for x in COMMANDS + EVENTS}[tag]
    expected = msgspec.structs.replace(golden, **LEGACY[path][tag])
    if tag == "oracle_updated.v1":  # the older golden event had another source
        expected = msgspec.structs.replace(expected, source="dev")
    decoded = record.command if tag in {type(c).__struct_config__.tag for c in COMMANDS} else record.events[0]
    assert decoded == expected
