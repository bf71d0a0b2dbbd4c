"""The numba frame walk agrees with the reference path (scan_frames + decode_header)."""

from __future__ import annotations

import shutil

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journal_testkit import Records, assert_intact

from ledger import codec
from ledger.journal import Journal, JournalCorrupt, JournalReader, list_segments
from ledger.journal.index import index_path


def walker():
    """The compiled kernel, or the plain-Python walk when the JIT is disabled."""
    loaded = codec.frame_kernel()
    return (loaded[0], loaded[2]) if loaded is not None else (codec.walk_frames,
                                                               codec.crc32c_tables())


def walk(buffer: bytes, next_cmd_id=1, next_seq=1, cmd_id_max=(1 << 63) - 1):
    kernel, tables = walker()
    out = np.empty((5, len(buffer) // 9 + 1), np.int64)
    count = kernel(np.frombuffer(buffer, np.uint8), 0, len(buffer), tables, next_cmd_id,
                   next_seq, cmd_id_max, out)
    return [tuple(column) for column in out[:, :count].T.tolist()]


def reference(buffer: bytes):
    scan = codec.scan_frames(buffer)
    rows = []
    for offset, payload in zip(scan.offsets, scan.payloads):
        h = codec.decode_header(payload)
        rows.append((offset, offset + 8 + len(payload), h.cmd_id, h.first_seq, h.last_seq))
    return rows


def test_crc_tables_match_crc32c():
    tables = codec.crc32c_tables()
    assert int(tables[0, 1]) == 0xF26B8303  # the first entry of the standard crc32c table


header_ints = st.one_of(st.integers(0, 127), st.integers(128, 2**16), st.integers(2**16, 2**40))


@given(st.lists(st.tuples(st.integers(0, 3), st.binary(max_size=300), st.booleans()),
                min_size=1, max_size=20), header_ints)
@settings(max_examples=60, deadline=None)
def test_walk_agrees_with_the_reference_on_valid_records(specs, start):
    payloads, cmd_id, seq = [], start + 1, start + 1
    for events, blob, as_array16 in specs:
        fields = [cmd_id, seq, seq + events - 1, blob] + ([0] * 16 if as_array16 else [])
        payloads.append(msgspec.msgpack.encode(fields))
        cmd_id, seq = cmd_id + 1, seq + events
    buffer = codec.encode_frames(payloads)
    assert walk(buffer, start + 1, start + 1) == reference(buffer)


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_walk_stops_no_later_than_the_reference_on_damage(data):
    buffer = bytearray(codec.encode_frames(Records().batch(data.draw(st.integers(1, 12)))))
    cut = data.draw(st.integers(0, len(buffer)))
    buffer = buffer[:cut]
    if buffer:
        buffer[data.draw(st.integers(0, len(buffer) - 1))] ^= data.draw(st.integers(1, 255))
    walked, expected = walk(bytes(buffer)), reference(bytes(buffer))
    assert walked == expected[:len(walked)]


def test_walk_hands_unusual_headers_to_the_reference():
    odd = [msgspec.msgpack.encode([1, 1, 0, "x"]), msgspec.msgpack.encode([2, 1, -5])]
    assert len(walk(codec.encode_frames(odd))) == 1  # negative last_seq: not walked
    assert len(walk(codec.encode_frames(odd[:1]), cmd_id_max=0)) == 0


def test_reader_with_the_kernel_reads_the_same_and_refuses_the_same(tmp_path):
    journal = Journal.open(tmp_path / "j", segment_size_bytes_max=64 * 1024)
    records = Records()
    for size in (50, 120, 7, 200, 90):
        journal.append_batch(records.batch(size))
    journal.close()
    fast = JournalReader(tmp_path / "j", kernel_scan_bytes_min=0, read_chunk_bytes=4096)
    slow = JournalReader(tmp_path / "j", kernel_scan_bytes_min=1 << 40, read_chunk_bytes=4096)
    assert_intact(list(fast.read(1)), journal.last_cmd_id)
    for from_seq in (1, 2, 77, 300, journal.last_seq):
        assert [h for h, _ in fast.read(from_seq)] == [h for h, _ in slow.read(from_seq)]
    first = list_segments(tmp_path / "j")[0]
    data = bytearray(first.path.read_bytes())
    data[1000] ^= 0x10
    first.path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as fast_error:
        list(JournalReader(tmp_path / "j", kernel_scan_bytes_min=0).read(1))
    with pytest.raises(JournalCorrupt) as slow_error:
        list(JournalReader(tmp_path / "j", kernel_scan_bytes_min=1 << 40).read(1))
    assert (fast_error.value.path, fast_error.value.offset) == (
        slow_error.value.path, slow_error.value.offset)


def test_batched_reads_yield_the_records_of_read_and_build_the_same_index(tmp_path):
    journal = Journal.open(tmp_path / "j", segment_size_bytes_max=64 * 1024)
    records = Records()
    for size in (50, 120, 7, 200, 90, 300):
        journal.append_batch(records.batch(size))
    journal.close()
    for segment in list_segments(tmp_path / "j"):
        index_path(segment).unlink(missing_ok=True)  # each reader builds its index as it reads
    shutil.copytree(tmp_path / "j", tmp_path / "k")  # its own copy: a reader saves the index it built
    readers = {name: JournalReader(tmp_path / folder, kernel_scan_bytes_min=scan_min, read_chunk_bytes=4096,
                                   index_stride_bytes=1024)
               for name, folder, scan_min in (("kernel", "k", 0), ("reference", "j", 1 << 40))}
    for from_seq in (1, 2, 77, 300, journal.last_seq, journal.last_seq + 1):
        expected = [payload for _, payload in readers["reference"].read(from_seq)]
        for reader in readers.values():
            batches = [spans.payloads() for spans in reader.read_spans(from_seq)]
            assert all(batches), "no empty batch"
            assert [payload for batch in batches for payload in batch] == expected
    segments = list_segments(tmp_path / "j")
    assert len(segments) > 1
    for segment, twin in zip(segments, list_segments(tmp_path / "k")):  # bisected entries = per-record ones
        kernel_index = readers["kernel"]._index(twin)
        reference_index = readers["reference"]._index(segment)
        assert kernel_index.entries == reference_index.entries and len(kernel_index.entries) > 3


def test_batched_reads_stop_at_damage_like_read(tmp_path):
    journal = Journal.open(tmp_path / "j", segment_size_bytes_max=64 * 1024)
    records = Records()
    for size in (50, 120, 7, 200, 90):
        journal.append_batch(records.batch(size))
    journal.close()
    first = list_segments(tmp_path / "j")[0]
    data = bytearray(first.path.read_bytes())
    data[5000] ^= 0x10
    first.path.write_bytes(bytes(data))
    for scan_min in (0, 1 << 40):
        seen: list[bytes] = []
        with pytest.raises(JournalCorrupt) as batched_error:
            for spans in JournalReader(tmp_path / "j", kernel_scan_bytes_min=scan_min,
                                       read_chunk_bytes=4096).read_spans(1):
                seen += spans.payloads()
        per_record: list[bytes] = []
        with pytest.raises(JournalCorrupt) as read_error:
            for _, payload in JournalReader(tmp_path / "j", kernel_scan_bytes_min=scan_min,
                                            read_chunk_bytes=4096).read(1):
                per_record.append(payload)
        assert seen == per_record and seen
        assert (batched_error.value.path, batched_error.value.offset) == (
            read_error.value.path, read_error.value.offset)


def test_batch_framing_writes_the_same_bytes_on_both_paths(tmp_path):
    """... and indexes them alike: the kernel's columns are int64 arrays, the index holds
    Python ints (it is encoded into the index file)."""
    payloads = Records().batch(300)
    indexed = {}
    for name, sizes in (("framed", [300]), ("reference", [30] * 10)):
        journal = Journal.open(tmp_path / name, index_stride_bytes=1_024)
        for start in range(0, 300, sizes[0]):
            journal.append_batch(payloads[start:start + sizes[0]])
        index = journal._index
        indexed[name] = (index.entries, index.covered_bytes, index.next_cmd_id, index.next_seq,
                         journal.last_cmd_id, journal.last_seq)
        journal.close()
    assert indexed["framed"] == indexed["reference"] and len(indexed["framed"][0]) > 10
    assert {type(value) for entry in indexed["framed"][0] for value in entry} == {int}
    assert {type(value) for value in indexed["framed"][1:]} == {int}
    framed = [s.path.read_bytes() for s in list_segments(tmp_path / "framed")]
    assert framed == [s.path.read_bytes() for s in list_segments(tmp_path / "reference")]
    assert framed[0] == codec.encode_frames(payloads)


def test_batch_framing_refuses_what_the_reference_refuses(tmp_path):
    journal = Journal.open(tmp_path / "j")
    payloads = Records().batch(100)
    with pytest.raises(ValueError, match="does not follow"):
        journal.append_batch(payloads[:99] + payloads[99:] * 2)
    with pytest.raises(ValueError):
        journal.append_batch(payloads[:99] + [b""])
    journal.append_batch(payloads)
    journal.close()
    assert_intact(list(JournalReader(tmp_path / "j").read(1)), 100)


def test_frame_kernel_loads_once_under_concurrent_first_calls():
    """Projections on their own threads ask for the kernel at the same moment: every thread
    gets the one kernel (a second load wrapped the already-jitted helpers: TypeError)."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent("""
        import threading
        from ledger import codec
        threads, results, errors = 8, [], []
        barrier = threading.Barrier(threads)
        def load():
            barrier.wait()
            try:
                results.append(codec.frame_kernel())
            except Exception as error:
                errors.append(repr(error))
        pool = [threading.Thread(target=load) for _ in range(threads)]
        for t in pool: t.start()
        for t in pool: t.join()
        assert not errors, errors
        assert len({id(r) for r in results}) == 1, results
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def gatherers():
    """The compiled gathers, or the plain-Python ones when the JIT is disabled."""
    return codec.gather_kernel() or (codec.gather_payloads, codec.gather_items)


def spans_of(payloads: list[bytes]) -> codec.PayloadSpans:
    """The spans of `payloads` framed end to end (each follows its 8-byte frame header)."""
    sizes = np.array([len(p) for p in payloads], np.int64)
    starts = np.cumsum(sizes + 8) - sizes
    return codec.PayloadSpans(codec.encode_frames(payloads), starts, starts + sizes)


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=40), st.data())
@settings(max_examples=60, deadline=None)
def test_gathered_payloads_are_the_reference_join(payloads, data):
    buffer = codec.encode_frames(payloads)
    sizes = np.array([len(p) for p in payloads], np.int64)
    starts = np.cumsum(sizes + 8) - sizes  # each payload follows its 8-byte frame header
    spans = codec.PayloadSpans(buffer, starts, starts + sizes)
    first = data.draw(st.integers(0, len(payloads) - 1))
    last = data.draw(st.integers(first + 1, len(payloads)))
    reference = codec.msgpack_array_header(last - first) + b"".join(payloads[first:last])
    out = np.empty(len(reference), np.uint8)
    assert gatherers()[0](np.frombuffer(buffer, np.uint8), starts, starts + sizes, first, last, out) == len(reference)
    assert out.tobytes() == reference
    assert bytes(spans.msgpack_array(first, last)) == reference
    assert spans.payloads(first, last) == payloads[first:last]


def test_gathered_payloads_decode_as_one_array():
    payloads = [msgspec.msgpack.encode([i, i, i - 1, "x" * i]) for i in range(1, 70)]
    spans = spans_of(payloads)
    assert msgspec.msgpack.decode(spans.msgpack_array(3, 69)) == [msgspec.msgpack.decode(p) for p in payloads[3:69]]


# Every msgpack form: msgspec encodes each value in its smallest form, so sizes past 15, 31,
# 255 and 65 535 reach the 8/16/32-bit length forms (the long ones drawn from constants: cheap
# to generate); Ext covers fixext and ext 8/16/32.
LONG = (lambda: "s" * 300, lambda: "m" * 70_000, lambda: b"b" * 300, lambda: b"B" * 70_000,
        lambda: msgspec.msgpack.Ext(3, b"e" * 300), lambda: msgspec.msgpack.Ext(-4, b"E" * 70_000),
        lambda: list(range(70_000)))
long_values = st.integers(0, len(LONG) - 1).map(lambda i: LONG[i]())
msgpack_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
              st.text(max_size=40), st.binary(max_size=40), long_values,
              # Every ext type but -1: msgpack's timestamp, which msgspec decodes into a datetime
              # and rejects unless its bytes are one (the comparison's decode would fail, not the kernel).
              st.builds(msgspec.msgpack.Ext, st.integers(-128, 127).filter(lambda code: code != -1),
                        st.binary(max_size=20))),
    lambda inner: st.one_of(st.lists(inner, max_size=20), st.dictionaries(st.integers(0, 99), inner, max_size=18)),
    max_leaves=25)


def test_gathered_items_of_damaged_or_wider_payloads():
    """Wider length forms are read; a payload damaged anywhere (before, in or after the
    element gathered, or a byte past its array) stops the kernel there, and the reference
    raises."""
    encode = msgspec.msgpack.encode
    wide = [b"\xdc\x00\x03" + encode(1) + b"\x91\xca\x00\x00\x80\x3f" + encode("z"),  # array 16, float 32
            b"\xdd\x00\x00\x00\x02" + b"\xd4\x01\x07" + b"\x91\xc4\x01q"]  # array 32, fixext 1, bin 8
    gathered, counts = spans_of(wide).msgpack_items(0, 2, 1)
    assert [bytes(r) for r in msgspec.msgpack.decode(gathered, type=list[msgspec.Raw])] == [
        b"\xca\x00\x00\x80\x3f", b"\xc4\x01q"] and counts.tolist() == [1, 1]
    gather = gatherers()[1]
    for damaged in (encode([1, [2]])[:-1] + b"\xc1", encode([1, ["abc"]])[:-1], b"\xa1x", encode([1, [2, 3]])[:-1],
                    encode([1, [2], 3])[:-1] + b"\xc1",  # a bad element after the one gathered
                    encode([1, 2]),  # the element is no array
                    encode([1, [2]]) + b"\x00"):  # a byte after the array
        spans = spans_of([encode([0, [0]]), damaged])
        out, counts = np.empty(64, np.uint8), np.empty(2, np.int64)
        assert gather(spans.view, spans.starts, spans.ends, 0, 2, 1, out, counts)[0] == 1
        with pytest.raises(msgspec.DecodeError):
            spans.msgpack_items(0, 2, 1)


@given(st.lists(st.lists(st.one_of(st.lists(msgpack_values, max_size=6), msgpack_values), max_size=7),
                min_size=1, max_size=12), st.integers(0, 5), st.data())
@settings(max_examples=100, deadline=None)
def test_gathered_items_are_the_reference_items(records, element, data):
    """`gather_items` (verify's flat events): the items of each payload's array element, end to
    end under one array header, with each payload's count; it stops at the first payload
    without such an element, and the reference raises there."""
    spans = spans_of([msgspec.msgpack.encode(fields) for fields in records])
    first = data.draw(st.integers(0, len(records) - 1))
    last = data.draw(st.integers(first + 1, len(records)))
    out = np.empty(5 + int(spans.ends[last - 1] - spans.starts[first]), np.uint8)
    counts = np.full(last - first, -1, np.int64)
    done, size_bytes = gatherers()[1](spans.view, spans.starts, spans.ends, first, last, element, out, counts)
    whole = next((i for i in range(first, last)
                  if len(records[i]) <= element or not isinstance(records[i][element], list)), last) - first
    assert done == whole
    if whole < last - first:
        with pytest.raises(msgspec.DecodeError):
            spans.msgpack_items(first, last, element)
        return
    items = [item for fields in records[first:last] for item in fields[element]]
    reference = codec.msgpack_array_header(len(items)) + b"".join(msgspec.msgpack.encode(i) for i in items)
    assert out[:size_bytes].tobytes() == reference
    assert counts.tolist() == [len(fields[element]) for fields in records[first:last]]
    gathered, got_counts = spans.msgpack_items(first, last, element)
    assert bytes(gathered) == reference and got_counts.tolist() == counts.tolist()
    assert msgspec.msgpack.decode(gathered) == msgspec.msgpack.decode(reference)
