"""Frames: round trips, size limits, and torn-versus-corrupt judgement."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.codec import (HEADER_SIZE_BYTES, PAYLOAD_SIZE_BYTES_MAX, FrameTooLarge, ScanStop,
                          decode_header, encode_frame, encode_frames, scan_frames)

payload_lists = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=30)


@given(payload_lists)
@settings(max_examples=150, deadline=None)
def test_frames_round_trip(payloads):
    buffer = encode_frames(payloads)
    assert buffer == b"".join(encode_frame(p) for p in payloads)
    scan = scan_frames(buffer)
    assert scan.stop is ScanStop.END
    assert scan.payloads == payloads
    assert scan.end_offset == len(buffer)


def test_frame_layout_is_little_endian_length_then_crc32c():
    frame = encode_frame(b"abc")
    assert frame[:4] == (3).to_bytes(4, "little")
    assert frame[4:8] == codec.crc32c(b"abc").to_bytes(4, "little")
    assert frame[8:] == b"abc"
    # crc32c("123456789") is the standard check value 0xE3069283.
    assert codec.crc32c(b"123456789") == 0xE3069283


def test_payload_limits_enforced_on_write():
    encode_frame(b"x")
    encode_frame(bytes(PAYLOAD_SIZE_BYTES_MAX))
    with pytest.raises(FrameTooLarge):
        encode_frame(b"")
    with pytest.raises(FrameTooLarge):
        encode_frames([b"ok", bytes(PAYLOAD_SIZE_BYTES_MAX + 1)])


def test_payload_limits_enforced_on_read():
    max_frame = encode_frame(bytes(PAYLOAD_SIZE_BYTES_MAX))
    assert scan_frames(max_frame).payloads == [bytes(PAYLOAD_SIZE_BYTES_MAX)]
    oversize = struct.pack("<II", PAYLOAD_SIZE_BYTES_MAX + 1, 0)
    good = encode_frame(b"after")
    scan = scan_frames(encode_frame(b"before") + oversize + good)
    assert scan.stop is ScanStop.CORRUPT and "invalid length" in scan.reason
    assert scan.payloads == [b"before"]
    # An empty frame is invalid too: an all-zero header must not read as a record.
    scan = scan_frames(encode_frame(b"before") + bytes(8) + good)
    assert scan.stop is ScanStop.CORRUPT


@given(payload_lists, st.data())
@settings(max_examples=150, deadline=None)
def test_any_truncation_reads_as_a_prefix_then_torn(payloads, data):
    buffer = encode_frames(payloads)
    cut = data.draw(st.integers(0, len(buffer)))
    scan = scan_frames(buffer[:cut])
    boundaries = [0]
    for p in payloads:
        boundaries.append(boundaries[-1] + HEADER_SIZE_BYTES + len(p))
    whole = max(i for i, b in enumerate(boundaries) if b <= cut)
    assert scan.payloads == payloads[:whole]
    assert scan.end_offset == boundaries[whole]
    assert scan.stop is (ScanStop.END if cut == boundaries[whole] else ScanStop.TORN)


@given(payload_lists.filter(lambda ps: len(ps) >= 2), st.data())
@settings(max_examples=200, deadline=None)
def test_a_flipped_byte_before_the_last_frame_is_corrupt(payloads, data):
    buffer = bytearray(encode_frames(payloads))
    last_frame_at = len(buffer) - HEADER_SIZE_BYTES - len(payloads[-1])
    position = data.draw(st.integers(0, last_frame_at - 1))
    buffer[position] ^= data.draw(st.integers(1, 255))
    scan = scan_frames(bytes(buffer))
    assert scan.stop is ScanStop.CORRUPT
    assert scan.end_offset <= position


def test_a_grown_length_whose_next_frame_runs_past_it_is_corrupt():
    # Found by CI: frame 1's length grown by 8 ends inside frame 2, whose bytes there are zeros;
    # frame 2 is whole and valid but ends past the damaged frame's declared end.
    buffer = bytearray(encode_frames([b"\x00", b"\x00"]))
    buffer[0] ^= 8
    assert scan_frames(bytes(buffer)).stop is ScanStop.CORRUPT


def test_bad_crc_on_the_last_frame_is_torn():
    buffer = bytearray(encode_frames([b"one", b"two", b"three"]))
    buffer[-1] ^= 0xFF
    scan = scan_frames(bytes(buffer))
    assert scan.stop is ScanStop.TORN and scan.payloads == [b"one", b"two"]


def test_zero_filled_tail_is_torn():
    # A crash can leave the file longer than what reached the disk, padded with zeros.
    buffer = encode_frames([b"one", b"two"])
    scan = scan_frames(buffer + bytes(4096))
    assert scan.stop is ScanStop.TORN and scan.end_offset == len(buffer)
    half_written = bytearray(encode_frame(b"three" * 20))
    half_written[30:] = bytes(len(half_written) - 30)
    scan = scan_frames(buffer + bytes(half_written) + bytes(100))
    assert scan.stop is ScanStop.TORN and scan.payloads == [b"one", b"two"]


def test_length_flipped_to_swallow_the_rest_is_corrupt_not_torn():
    payloads = [b"a" * 50, b"b" * 50, b"c" * 50]
    buffer = bytearray(encode_frames(payloads))
    struct.pack_into("<I", buffer, 0, len(buffer) + 100)  # runs past the end
    assert scan_frames(bytes(buffer)).stop is ScanStop.CORRUPT
    struct.pack_into("<I", buffer, 0, len(buffer) - HEADER_SIZE_BYTES)  # ends exactly at end
    assert scan_frames(bytes(buffer)).stop is ScanStop.CORRUPT


def test_chunk_scan_defers_the_verdict():
    buffer = encode_frames([b"one", b"two"]) + encode_frame(b"three")[:5]
    scan = scan_frames(buffer, at_eof=False)
    assert scan.stop is ScanStop.TORN and scan.payloads == [b"one", b"two"]


def test_header_prefix_decodes_and_ignores_the_rest():
    import msgspec

    payload = msgspec.msgpack.encode([7, 10, 12, "rfq_opened.v1", [[1, 2], [3, 4]]])
    header = decode_header(payload)
    assert (header.cmd_id, header.first_seq, header.last_seq) == (7, 10, 12)
