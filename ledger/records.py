"""The journal record: one journaled command with its events or its rejection.

A record's payload is the msgpack array ``[cmd_id, first_seq, last_seq, ts_ns, command,
events, rejection]``; the journal reads the first three fields without decoding the rest
(see ``ledger/journal``). ``last_seq = first_seq - 1`` when the command caused no event.

The journal's first record (cmd_id 1, no events) is its **genesis record**: its ``command``
is a ``Genesis`` (tag ``genesis.v1``) carrying the engine configuration the journal was
written with and a random ``journal_id``. ``Genesis`` is the ledger's own record kind, not
an engine command: nothing executes it; readers take the configuration from it
(``ledger.genesis``). Journals written before genesis records existed start with an engine
command at cmd_id 1 (see ``ledger.genesis`` for how they are read).
"""

from __future__ import annotations

import msgspec

from engine.commands import Command
from engine.events import Event
from engine.markets import EngineConfig
from engine.rejections import Rejected

GENESIS_TAG = "genesis.v1"
GENESIS_CMD_ID = 1


class Genesis(msgspec.Struct, frozen=True, array_like=True, tag=GENESIS_TAG, gc=False):
    """The journal's first record: what the journal is and the configuration it was written
    with. ``config`` is encoded as msgspec encodes the struct (a map per struct, field
    names as keys), so fields appended with defaults to ``EngineConfig`` / ``Market`` need
    no new tag: old genesis records decode with the defaults. New fields of ``Genesis``
    itself are appended with defaults."""

    journal_id: str  # 32 hex digits, random: names this journal (snapshots carry it)
    config: EngineConfig


# What a record's ``command`` may be: an engine command, or the ledger's genesis.
RecordCommand = Command | Genesis


# Where a record's events are in its payload array (what ``PayloadSpans.msgpack_items`` gathers
# for a replay that needs nothing else: ``replay.source.ReplayJournal.event_runs``).
EVENTS_FIELD = 5


class JournalRecord(msgspec.Struct, frozen=True, array_like=True):
    cmd_id: int
    first_seq: int
    last_seq: int
    ts_ns: int
    command: RecordCommand
    events: list[Event]
    rejection: Rejected | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(JournalRecord)


def make_record(cmd_id: int, ts_ns: int, command, outcome, seq_before: int) -> JournalRecord:
    """The record of one executed command (its events, or its ``Rejected``); ``seq_before``
    is the last seq before it."""
    if isinstance(outcome, Rejected):
        return JournalRecord(cmd_id, seq_before + 1, seq_before, ts_ns, command, [], outcome)
    return JournalRecord(cmd_id, seq_before + 1, seq_before + len(outcome), ts_ns, command, outcome)


def encode_record(cmd_id: int, ts_ns: int, command, outcome, seq_before: int) -> bytes:
    """The payload for one executed command; ``seq_before`` is the last seq before it."""
    return encode(make_record(cmd_id, ts_ns, command, outcome, seq_before))


def encode(record: JournalRecord) -> bytes:
    """The journal payload of ``record``."""
    return _encoder.encode(record)


def encode_genesis(genesis: Genesis, ts_ns: int) -> bytes:
    """The payload of the genesis record: cmd_id 1, no events (seqs 1..0), stamped ``ts_ns``."""
    return _encoder.encode(JournalRecord(GENESIS_CMD_ID, 1, 0, ts_ns, genesis, []))


def decode_record(payload: bytes) -> JournalRecord:
    return _decoder.decode(payload)
