"""The journal record: one journaled command with its events or its rejection.

A record's payload is the msgpack array ``[cmd_id, first_seq, last_seq, ts_ns, command,
events, rejection]``; the journal reads the first three fields without decoding the rest
(see ``ledger/journal.py``). ``last_seq = first_seq - 1`` when the command caused no event.
"""

from __future__ import annotations

import msgspec

from engine.commands import Command
from engine.events import Event
from engine.rejections import Rejected


class JournalRecord(msgspec.Struct, frozen=True, array_like=True):
    cmd_id: int
    first_seq: int
    last_seq: int
    ts_ns: int
    command: Command
    events: list[Event]
    rejection: Rejected | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(JournalRecord)


def encode_record(cmd_id: int, ts_ns: int, command, outcome, seq_before: int) -> bytes:
    """The payload for one executed command; ``seq_before`` is the last seq before it."""
    if isinstance(outcome, Rejected):
        record = JournalRecord(cmd_id, seq_before + 1, seq_before, ts_ns, command, [], outcome)
    else:
        record = JournalRecord(cmd_id, seq_before + 1, seq_before + len(outcome), ts_ns, command, outcome)
    return _encoder.encode(record)


def decode_record(payload: bytes) -> JournalRecord:
    return _decoder.decode(payload)
