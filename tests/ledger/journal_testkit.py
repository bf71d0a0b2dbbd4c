"""Synthetic records for the journal tests: deterministic from cmd_id, so a reader can
verify any record it finds without knowing what was written."""

from __future__ import annotations

import hashlib

import msgspec

_encoder = msgspec.msgpack.Encoder()


def events_count_of(cmd_id: int) -> int:
    """0..3 events, so records without events occur every fourth command."""
    return cmd_id % 4


def make_payload(cmd_id: int, first_seq: int) -> bytes:
    """Return the record payload for `cmd_id` starting at `first_seq` (60..300 bytes)."""
    last_seq = first_seq + events_count_of(cmd_id) - 1
    digest = hashlib.blake2b(cmd_id.to_bytes(8, "little"), digest_size=60).digest()
    blob = (digest * 5)[: 40 + (cmd_id * 7919) % 200]
    return _encoder.encode([cmd_id, first_seq, last_seq, blob])


class Records:
    """A source of consecutive valid record payloads."""

    def __init__(self, last_cmd_id: int = 0, last_seq: int = 0) -> None:
        self.next_cmd_id = last_cmd_id + 1
        self.next_seq = last_seq + 1

    def batch(self, records_count: int) -> list[bytes]:
        payloads = []
        for _ in range(records_count):
            payloads.append(make_payload(self.next_cmd_id, self.next_seq))
            self.next_seq += events_count_of(self.next_cmd_id)
            self.next_cmd_id += 1
        return payloads


def expected_records(last_cmd_id: int) -> list[tuple[int, int, int, bytes]]:
    """Return `(cmd_id, first_seq, last_seq, payload)` of records 1..last_cmd_id."""
    out = []
    seq = 1
    for cmd_id in range(1, last_cmd_id + 1):
        n = events_count_of(cmd_id)
        out.append((cmd_id, seq, seq + n - 1, make_payload(cmd_id, seq)))
        seq += n
    return out


def assert_intact(records: list, last_cmd_id_min: int) -> None:
    """Assert `records` ((header, payload) pairs) are 1..N contiguous, N >= last_cmd_id_min,
    each payload exactly what was written."""
    assert len(records) >= last_cmd_id_min
    seq = 1
    for i, (header, payload) in enumerate(records, start=1):
        assert header.cmd_id == i
        assert header.first_seq == seq
        assert payload == make_payload(i, seq), f"record {i} differs"
        seq = header.last_seq + 1
