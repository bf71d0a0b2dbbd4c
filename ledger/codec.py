"""Journal frames: `[u32 length][u32 crc32c][payload]`, little-endian header.

The codec knows nothing about what a payload means beyond its first three integers
(`RecordHeader`): the engine owns the record schema, the ledger owns the bytes.

A scan over a buffer ends in one of three ways (`ScanStop`):
- `END`: every byte belonged to a valid frame;
- `TORN`: the damage is at the very end — an incomplete header, a frame that runs past the
  end, a bad crc on the last frame, or a bad frame followed only by zero bytes (a file
  extended by the kernel whose data never reached the disk). A crash mid-write looks
  exactly like this, so the journal may cut it off;
- `CORRUPT`: a bad frame with non-zero bytes after it. No crash produces that, so it is
  never repaired automatically.
"""

from __future__ import annotations

import enum
import struct
import threading
from dataclasses import dataclass, field

import crc32c as _crc32c
import numpy as np
import msgspec

HEADER = struct.Struct("<II")
HEADER_SIZE_BYTES = HEADER.size  # 8

# Largest payload a frame may carry. A record is one command with its events; the largest
# expected is a Tick that liquidates or expires thousands of positions (~200 B per event).
# 4 MiB leaves ample room for that and bounds what a garbage length can make a reader
# allocate. Enforced on write (ValueError) and on read (the frame is invalid).
PAYLOAD_SIZE_BYTES_MAX = 4 * 1024 * 1024
FRAME_SIZE_BYTES_MAX = HEADER_SIZE_BYTES + PAYLOAD_SIZE_BYTES_MAX

# An empty payload is refused: crc32c(b"") == 0, so an all-zero header would otherwise be
# a valid frame and a zero-filled tail would read as a stream of empty records.
PAYLOAD_SIZE_BYTES_MIN = 1

crc32c = _crc32c.crc32c


class RecordHeader(msgspec.Struct, array_like=True, frozen=True):
    """The prefix every record payload starts with: `[cmd_id, first_seq, last_seq, ...]`.

    `last_seq == first_seq - 1` for a record with no events.
    """

    cmd_id: int
    first_seq: int
    last_seq: int


# Reused decoder: msgspec ignores the trailing array elements past the three fields.
_header_decoder = msgspec.msgpack.Decoder(RecordHeader)
decode_header = _header_decoder.decode


class ScanStop(enum.Enum):
    """Why a frame scan stopped."""

    END = "end"
    TORN = "torn"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class Scan:
    """The result of scanning a buffer: valid payloads up to `end_offset`, then `stop`.

    `payloads[i]` started at `offsets[i]`; `end_offset` is where the valid prefix ends (the
    offset of the bad frame when `stop` is not END); `reason` says what was wrong.
    """

    payloads: list[bytes]
    offsets: list[int]
    end_offset: int
    stop: ScanStop
    reason: str


@dataclass(frozen=True, slots=True)
class PayloadSpans:
    """Payloads lying in one read buffer: payload i is `buffer[starts[i]:ends[i]]`, in
    buffer order (`starts[i + 1] >= ends[i]`).

    What a bulk reader gets instead of a bytes object per payload (`JournalReader.read_spans`):
    `msgpack_array` then lays a run of them end to end as one msgpack array, for one decoder
    call, without a copy of each payload in between.
    """

    buffer: bytes
    starts: np.ndarray  # int64, offsets into buffer
    ends: np.ndarray  # int64
    view: np.ndarray = field(init=False, repr=False, compare=False)  # buffer as uint8, for the kernels

    def __post_init__(self) -> None:
        object.__setattr__(self, "view", np.frombuffer(self.buffer, np.uint8))

    def __len__(self) -> int:
        return len(self.starts)

    def payloads(self, first: int = 0, last: int | None = None) -> list[bytes]:
        """Payloads `first..last-1` as bytes."""
        buffer = self.buffer
        return [buffer[start:end] for start, end in
                zip(self.starts[first:last].tolist(), self.ends[first:last].tolist())]

    def msgpack_array(self, first: int, last: int) -> bytes | np.ndarray:
        """Payloads `first..last-1` as one msgpack array (`[payload, payload, ...]`): a fresh
        buffer (a decoder's `msgspec.Raw` fields may point into it for as long as they live).

        The numba kernel `gather_payloads` when numba's JIT is enabled; its reference
        (`msgpack_array_header(n) + b"".join(...)`) is held identical by
        tests/ledger/test_ledger_kernel.py."""
        kernels = gather_kernel()
        if kernels is None:
            return msgpack_array_header(last - first) + b"".join(self.payloads(first, last))
        # Room for the header and every byte from the first payload to the last (the frame
        # headers between them too: an upper bound got without a pass over the spans).
        out = np.empty(ARRAY32_HEADER_SIZE_BYTES + int(self.ends[last - 1]) - int(self.starts[first]), np.uint8)
        return out[:kernels[0](self.view, self.starts, self.ends, first, last, out)]

    def msgpack_items(self, first: int, last: int, element: int) -> tuple[bytes | np.ndarray, np.ndarray]:
        """The items of element `element` of payloads `first..last-1` (each payload a msgpack
        array, that element an array too) as one flat msgpack array, and how many came from
        each payload (int64, `last - first` of them): `([*payload[element], ...], counts)`,
        a fresh buffer as `msgpack_array`'s.

        The numba kernel `gather_items` when numba's JIT is enabled; its reference
        (`_reference_items`) is held identical by tests/ledger/test_ledger_kernel.py and
        judges what the kernel hands back (raising `msgspec.DecodeError`)."""
        kernels = gather_kernel()
        if kernels is None:
            return self._reference_items(first, last, element)
        out = np.empty(ARRAY32_HEADER_SIZE_BYTES + int(self.ends[last - 1]) - int(self.starts[first]), np.uint8)
        counts = np.empty(last - first, np.int64)
        done, size_bytes = kernels[1](self.view, self.starts, self.ends, first, last, element, out, counts)
        if done < last - first:
            return self._reference_items(first, last, element)
        return out[:size_bytes], counts

    def _reference_items(self, first: int, last: int, element: int) -> tuple[bytes, np.ndarray]:
        fields = [_raw_items.decode(payload) for payload in self.payloads(first, last)]
        if any(len(f) <= element for f in fields):
            raise msgspec.DecodeError(f"a payload is an array of {element} elements or fewer")
        items = [_raw_items.decode(bytes(f[element])) for f in fields]
        flat = [bytes(item) for each in items for item in each]
        return msgpack_array_header(len(flat)) + b"".join(flat), np.array([len(each) for each in items], np.int64)


_raw_items = msgspec.msgpack.Decoder(list[msgspec.Raw])


ARRAY32_HEADER_SIZE_BYTES = 5  # msgpack array 32: 0xdd, then the element count (u32 big-endian)


def msgpack_array_header(count: int) -> bytes:
    """The msgpack header of an array of `count` elements (always the 5-byte array 32 form)."""
    return b"\xdd" + count.to_bytes(4, "big")


class FrameTooLarge(ValueError):
    """A payload is larger than PAYLOAD_SIZE_BYTES_MAX (or empty)."""


def check_payload_size(payload: bytes) -> None:
    """Raise FrameTooLarge unless MIN <= len(payload) <= PAYLOAD_SIZE_BYTES_MAX."""
    size_bytes = len(payload)
    if not PAYLOAD_SIZE_BYTES_MIN <= size_bytes <= PAYLOAD_SIZE_BYTES_MAX:
        raise FrameTooLarge(
            f"payload of {size_bytes} bytes outside "
            f"[{PAYLOAD_SIZE_BYTES_MIN}, {PAYLOAD_SIZE_BYTES_MAX}]"
        )


def encode_frame(payload: bytes) -> bytes:
    """Return one frame for `payload`."""
    check_payload_size(payload)
    return HEADER.pack(len(payload), crc32c(payload)) + payload


def encode_frames(payloads: list[bytes]) -> bytes:
    """Return the frames of `payloads` concatenated into one buffer (one write)."""
    pack = HEADER.pack
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        size_bytes = len(payload)
        if not PAYLOAD_SIZE_BYTES_MIN <= size_bytes <= PAYLOAD_SIZE_BYTES_MAX:
            check_payload_size(payload)  # raises with the message
        append(pack(size_bytes, crc32c(payload)))
        append(payload)
    return b"".join(parts)


def _all_zero(buf: bytes | memoryview, start: int, end: int) -> bool:
    # count() on bytes is C speed; an all-zero span has no other byte value.
    span = bytes(buf[start:end])
    return span.count(0) == len(span)


def find_valid_frame(buf: bytes | memoryview, start: int, end: int) -> int | None:
    """Return the first offset in `[start, end)` where a whole valid frame starts, or None.

    Slow (tries every byte); used only to judge damage, never on the happy path.
    """
    view = memoryview(buf)
    unpack_from = HEADER.unpack_from
    for offset in range(start, end - HEADER_SIZE_BYTES):
        size_bytes, crc_expected = unpack_from(view, offset)
        body_end = offset + HEADER_SIZE_BYTES + size_bytes
        if not PAYLOAD_SIZE_BYTES_MIN <= size_bytes <= PAYLOAD_SIZE_BYTES_MAX or body_end > end:
            continue
        if crc32c(view[offset + HEADER_SIZE_BYTES:body_end]) == crc_expected:
            return offset
    return None


def _classify_bad(view: memoryview, offset: int, size_bytes: int, end: int,
                  at_eof: bool, why: str) -> tuple[ScanStop, str]:
    """Decide whether the bad frame at `offset` is a torn tail or corruption.

    `size_bytes < 0` means the length itself is invalid: then only the bytes after the
    header tell. A torn tail has nothing but zeros after the frame's declared end, and no
    valid frame starts anywhere after it (a length flipped mid-segment can swallow the rest
    of the file and would otherwise pass for a torn tail).
    """
    frame_end = offset + HEADER_SIZE_BYTES + max(size_bytes, 0)
    if frame_end < end and not _all_zero(view, frame_end, end):
        return ScanStop.CORRUPT, why
    if not at_eof:
        return ScanStop.TORN, why  # the caller reads more and asks again
    # Up to the end of the file, not the bad frame's declared end: a valid frame that starts
    # inside the damaged one may run past it (only zeros follow the declared end: cheap).
    found = find_valid_frame(view, offset + 1, end)
    if found is not None:
        return ScanStop.CORRUPT, f"{why}; a valid frame follows at offset {found}"
    return ScanStop.TORN, why


def scan_frames(
    buf: bytes | bytearray | memoryview, start: int = 0, end: int | None = None,
    *, at_eof: bool = True,
) -> Scan:
    """Scan `buf[start:end]` frame by frame, validating length and crc.

    Payloads are returned as `bytes` copies; offsets are relative to `buf`. With
    `at_eof=False` the buffer is a chunk of a longer file: a stop as TORN then means "read
    more and scan again from `end_offset`", and only a scan with `at_eof=True` gives the
    final verdict between TORN and CORRUPT.
    """
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    if end is None:
        end = len(buf)
    # Hot loop: locals only, slices of bytes (cheaper than memoryview round trips).
    unpack_from = HEADER.unpack_from
    checksum = crc32c
    header_size = HEADER_SIZE_BYTES
    size_min = PAYLOAD_SIZE_BYTES_MIN
    size_max = PAYLOAD_SIZE_BYTES_MAX
    payloads: list[bytes] = []
    offsets: list[int] = []
    add_payload = payloads.append
    add_offset = offsets.append
    offset = start
    stop_reason = ""
    while offset < end:
        if end - offset < header_size:
            return Scan(payloads, offsets, offset, ScanStop.TORN, "incomplete header")
        size_bytes, crc_expected = unpack_from(buf, offset)
        body_end = offset + header_size + size_bytes
        if size_bytes < size_min or size_bytes > size_max:
            stop_reason = f"invalid length {size_bytes}"
            size_bytes = -1
            break
        if body_end > end:
            stop_reason = f"frame of {size_bytes} bytes runs past the end"
            break
        payload = buf[offset + header_size:body_end]
        if checksum(payload) != crc_expected:
            stop_reason = "crc32c mismatch"
            break
        add_payload(payload)
        add_offset(offset)
        offset = body_end
    else:
        return Scan(payloads, offsets, offset, ScanStop.END, "")
    stop, why = _classify_bad(memoryview(buf), offset, size_bytes, end, at_eof, stop_reason)
    return Scan(payloads, offsets, offset, stop, why)


# ---------------------------------------------------------------------------------------
# Accelerated walk (numba). `scan_frames` + `decode_header` are the reference; the kernel
# only ever stops earlier than they would, never later: at the first frame that is not
# whole, fails its crc, has a header prefix it does not parse (anything but a msgpack array
# of >= 3 non-negative ints below 2**63) or breaks continuity. The caller then continues
# with the reference path from there, which judges the frame. The kernel does not validate
# the payload past its first three integers (msgspec does): the journal's contract is the
# prefix; the consumer's decoder validates the rest.

# Below this many bytes a scan is not worth loading numba for (start-up of small tools).
KERNEL_SCAN_BYTES_MIN = 256 * 1024

_CRC32C_POLY_REFLECTED = 0x82F63B78


def crc32c_tables():
    """Return the slicing-by-8 crc32c tables as a uint32 array of shape (8, 256)."""
    import numpy as np

    tables = np.zeros((8, 256), dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC32C_POLY_REFLECTED if crc & 1 else crc >> 1
        tables[0, byte] = crc
    for k in range(1, 8):
        for byte in range(256):
            previous = int(tables[k - 1, byte])
            tables[k, byte] = (previous >> 8) ^ int(tables[0, previous & 0xFF])
    return tables


def crc32c_span(buf, start, end, tables):
    """Return crc32c of `buf[start:end]` (uint8 array), slicing by 8."""
    crc = np.int64(0xFFFFFFFF)
    pos = start
    while end - pos >= 8:
        one = crc ^ (np.int64(buf[pos]) | (np.int64(buf[pos + 1]) << 8)
                     | (np.int64(buf[pos + 2]) << 16) | (np.int64(buf[pos + 3]) << 24))
        two = (np.int64(buf[pos + 4]) | (np.int64(buf[pos + 5]) << 8)
               | (np.int64(buf[pos + 6]) << 16) | (np.int64(buf[pos + 7]) << 24))
        crc = (np.int64(tables[7, one & 0xFF]) ^ np.int64(tables[6, (one >> 8) & 0xFF])
               ^ np.int64(tables[5, (one >> 16) & 0xFF]) ^ np.int64(tables[4, (one >> 24) & 0xFF])
               ^ np.int64(tables[3, two & 0xFF]) ^ np.int64(tables[2, (two >> 8) & 0xFF])
               ^ np.int64(tables[1, (two >> 16) & 0xFF]) ^ np.int64(tables[0, (two >> 24) & 0xFF]))
        pos += 8
    while pos < end:
        crc = np.int64(tables[0, (crc ^ np.int64(buf[pos])) & 0xFF]) ^ (crc >> 8)
        pos += 1
    return crc ^ 0xFFFFFFFF


def parse_prefix(buf, start, end, fields):
    """Parse `[cmd_id, first_seq, last_seq, ...]` at `buf[start:end]` into `fields`.

    Return False for anything but a msgpack array of >= 3 elements starting with three
    unsigned ints below 2**63 (the reference decoder then has the last word).
    """
    pos = start
    if pos >= end:
        return False
    marker = np.int64(buf[pos])
    if 0x93 <= marker <= 0x9F:
        pos += 1
    elif marker == 0xDC and end - pos >= 3 and (
            (np.int64(buf[pos + 1]) << 8) | np.int64(buf[pos + 2])) >= 3:
        pos += 3
    else:
        return False
    for parsed in range(3):
        if pos >= end:
            return False
        marker = np.int64(buf[pos])
        width = 0
        value = marker
        if marker >= 0x80:
            if marker == 0xCC:
                width = 1
            elif marker == 0xCD:
                width = 2
            elif marker == 0xCE:
                width = 4
            elif marker == 0xCF:
                width = 8
            else:
                return False
            if end - pos < 1 + width or (width == 8 and buf[pos + 1] >= 0x80):
                return False
            value = np.int64(0)
            for k in range(width):
                value = (value << 8) | np.int64(buf[pos + 1 + k])
        fields[parsed] = value
        pos += 1 + width
    return True


def walk_frames(buf, start, end, tables, next_cmd_id, next_seq, cmd_id_max, out):
    """Walk whole valid frames of `buf[start:end]` (uint8 array) whose headers continue
    `next_cmd_id` / `next_seq` and stay <= `cmd_id_max`; write each frame's
    (offset, body_end, cmd_id, first_seq, last_seq) into column i of `out` (int64, 5 x cap)
    and return how many. Compiled with numba by `frame_kernel()`; plain Python otherwise."""
    count = 0
    offset = start
    capacity = out.shape[1]
    fields = np.zeros(3, np.int64)
    while count < capacity and end - offset >= 8:
        size = (np.int64(buf[offset]) | (np.int64(buf[offset + 1]) << 8)
                | (np.int64(buf[offset + 2]) << 16) | (np.int64(buf[offset + 3]) << 24))
        crc_expected = (np.int64(buf[offset + 4]) | (np.int64(buf[offset + 5]) << 8)
                        | (np.int64(buf[offset + 6]) << 16) | (np.int64(buf[offset + 7]) << 24))
        body = offset + 8
        body_end = body + size
        if size < 1 or size > 4 * 1024 * 1024 or body_end > end:
            break
        if crc32c_span(buf, body, body_end, tables) != crc_expected:
            break
        if not parse_prefix(buf, body, body_end, fields):
            break
        cmd_id, first_seq, last_seq = fields[0], fields[1], fields[2]
        if (cmd_id != next_cmd_id or first_seq != next_seq or last_seq < first_seq - 1
                or cmd_id > cmd_id_max):
            break
        out[0, count] = offset
        out[1, count] = body_end
        out[2, count] = cmd_id
        out[3, count] = first_seq
        out[4, count] = last_seq
        count += 1
        next_cmd_id = cmd_id + 1
        next_seq = last_seq + 1
        offset = body_end
    return count


def frame_batch(joined, lengths, tables, next_cmd_id, next_seq, frames, meta):
    """Frame the payloads laid end to end in `joined` (uint8; `lengths[i]` bytes each) into
    `frames` (uint8, len(joined) + 8 per payload), checking that their headers continue
    `next_cmd_id` / `next_seq`; write (frame_end, cmd_id, first_seq, last_seq) per payload
    into `meta` (int64, 4 x n). Return how many were framed: fewer than n means payload
    [count] needs the reference path (which explains what is wrong with it)."""
    fields = np.zeros(3, np.int64)
    source = 0
    target = 0
    for i in range(lengths.shape[0]):
        size = lengths[i]
        if size < 1 or size > 4 * 1024 * 1024:
            return i
        if not parse_prefix(joined, source, source + size, fields):
            return i
        cmd_id, first_seq, last_seq = fields[0], fields[1], fields[2]
        if cmd_id != next_cmd_id or first_seq != next_seq or last_seq < first_seq - 1:
            return i
        crc = crc32c_span(joined, source, source + size, tables)
        for k in range(4):
            frames[target + k] = (size >> (8 * k)) & 0xFF
            frames[target + 4 + k] = (crc >> (8 * k)) & 0xFF
        frames[target + 8:target + 8 + size] = joined[source:source + size]
        source += size
        target += 8 + size
        meta[0, i] = target
        meta[1, i] = cmd_id
        meta[2, i] = first_seq
        meta[3, i] = last_seq
        next_cmd_id = cmd_id + 1
        next_seq = last_seq + 1
    return lengths.shape[0]


def array32_header(out, count):
    """Write the msgpack array 32 header of `count` elements into `out[:5]` (what
    `msgpack_array_header` returns, in a kernel); return its size in bytes."""
    out[0] = 0xDD
    for k in range(4):
        out[1 + k] = (count >> (8 * (3 - k))) & 0xFF
    return ARRAY32_HEADER_SIZE_BYTES


def gather_payloads(buf, starts, ends, first, last, out):
    """Write the msgpack array 32 header of `last - first` elements into `out[:5]`, then
    `buf[starts[i]:ends[i]]` for i in `first..last-1`, end to end; return the bytes written.
    Compiled with numba by `gather_kernel()`; `PayloadSpans.msgpack_array` is its caller."""
    target = array32_header(out, last - first)
    for i in range(first, last):
        size = ends[i] - starts[i]
        out[target:target + size] = buf[starts[i]:ends[i]]
        target += size
    return target


def msgpack_skip(buf, pos, end):
    """Return where the msgpack value at `buf[pos]` ends (the values of an array or map
    included), or -1 when it does not end by `end` or is not msgpack (0xC1)."""
    pending = 1  # values still to skip: an array or a map adds its elements
    while pending > 0:
        if pos >= end:
            return -1
        marker = np.int64(buf[pos])
        pending -= 1
        if marker <= 0x7F or marker >= 0xE0 or marker == 0xC0 or marker == 0xC2 or marker == 0xC3:
            pos += 1  # fixints, nil, false, true
        elif marker <= 0x8F:
            pending += 2 * (marker & 0x0F)  # fixmap
            pos += 1
        elif marker <= 0x9F:
            pending += marker & 0x0F  # fixarray
            pos += 1
        elif marker <= 0xBF:
            pos += 1 + (marker & 0x1F)  # fixstr
        elif marker == 0xC1:
            return -1
        elif marker >= 0xCA and marker <= 0xD8:
            # float 32/64, uint and int 8..64, fixext 1..16: sizes fixed by the marker
            pos += (5, 9, 2, 3, 5, 9, 2, 3, 5, 9, 3, 4, 6, 10, 18)[marker - 0xCA]
        else:
            # bin, ext, str, array and map with a 1-, 2- or 4-byte big-endian length
            width = 1
            if marker == 0xC5 or marker == 0xC8 or marker == 0xDA or marker == 0xDC or marker == 0xDE:
                width = 2
            elif marker == 0xC6 or marker == 0xC9 or marker == 0xDB or marker == 0xDD or marker == 0xDF:
                width = 4
            if end - pos < 1 + width:
                return -1
            length = np.int64(0)
            for k in range(width):
                length = (length << 8) | np.int64(buf[pos + 1 + k])
            pos += 1 + width
            if marker == 0xDC or marker == 0xDD:
                pending += length  # array 16/32
            elif marker == 0xDE or marker == 0xDF:
                pending += 2 * length  # map 16/32
            elif marker >= 0xC7 and marker <= 0xC9:
                pos += 1 + length  # ext 8/16/32: a type byte, then the data
            else:
                pos += length  # bin and str 8/16/32
    return pos if pos <= end else -1


def array_header(buf, pos, end):
    """Return `(elements, items_start)` of the msgpack array whose header is at `buf[pos]`
    (fixarray, array 16 or array 32), or `(-1, -1)` when no whole array header is there."""
    if pos >= end:
        return -1, -1
    marker = np.int64(buf[pos])
    if 0x90 <= marker <= 0x9F:
        return marker & 0x0F, pos + 1
    if (marker == 0xDC and end - pos >= 3) or (marker == 0xDD and end - pos >= 5):
        width = 2 if marker == 0xDC else 4
        elements = np.int64(0)
        for k in range(width):
            elements = (elements << 8) | np.int64(buf[pos + 1 + k])
        return elements, pos + 1 + width
    return -1, -1


def element_bounds(buf, pos, end, element):
    """Return `(start, stop)` of element `element` of the payload `buf[pos:end]`, or
    `(-1, -1)` unless the payload is one whole msgpack array of more than `element` elements
    and nothing else (the elements after it are skipped too: the reference judges anything
    else, as a decoder of the whole record would)."""
    elements, pos = array_header(buf, pos, end)
    if elements <= element:
        return -1, -1
    for _ in range(element):
        pos = msgpack_skip(buf, pos, end)
        if pos < 0:
            return -1, -1
    value_end = msgpack_skip(buf, pos, end)
    if value_end < 0:
        return -1, -1
    rest = value_end
    for _ in range(elements - element - 1):
        rest = msgpack_skip(buf, rest, end)
        if rest < 0:
            return -1, -1
    if rest != end:
        return -1, -1
    return pos, value_end


def gather_items(buf, starts, ends, first, last, element, out, counts):
    """Write the items of element `element` of each payload `buf[starts[i]:ends[i]]` (an
    array in a msgpack array) for i in `first..last-1`, end to end after `out[:5]`, and
    there the msgpack array 32 header of them all: one flat array of every payload's items.
    `counts[i - first]` gets payload i's item count. Return `(done, size_bytes)`: `done <
    last - first` when payload [first + done] is not one whole msgpack array of more than
    `element` elements whose element `element` is an array (the reference then judges it)."""
    target = ARRAY32_HEADER_SIZE_BYTES
    total = 0
    for i in range(first, last):
        start, stop = element_bounds(buf, starts[i], ends[i], element)
        if start < 0:
            return i - first, target
        items, start = array_header(buf, start, stop)
        if items < 0:
            return i - first, target
        out[target:target + stop - start] = buf[start:stop]
        target += stop - start
        counts[i - first] = items
        total += items
    array32_header(out, total)
    return last - first, target


_kernel_state: dict = {}
_kernel_lock = threading.Lock()  # projections on their own threads ask for the kernel at once


def frame_kernel():
    """Return `(walk, frame, tables)`: `walk_frames` and `frame_batch` compiled by numba
    (cached on disk), or None when numba's JIT is disabled (NUMBA_DISABLE_JIT=1): the
    reference path is then used."""
    with _kernel_lock:  # a second thread would wrap the already-jitted helpers again (TypeError)
        return _frame_kernel_once()


def gather_kernel():
    """Return `(gather_payloads, gather_items)` compiled by numba (cached on
    disk), or None when numba's JIT is disabled (the reference join is then used)."""
    with _kernel_lock:
        if "gather" not in _kernel_state:
            import numba

            if numba.config.DISABLE_JIT:
                _kernel_state["gather"] = None
            else:
                jit = numba.njit(cache=True, nogil=True)
                globals()["msgpack_skip"] = jit(msgpack_skip)  # resolved as globals, compiled first
                globals()["array32_header"] = jit(array32_header)
                globals()["array_header"] = jit(array_header)
                globals()["element_bounds"] = jit(element_bounds)  # after the two it calls
                _kernel_state["gather"] = (jit(gather_payloads), jit(gather_items))
        return _kernel_state["gather"]


def _frame_kernel_once():
    if "kernel" not in _kernel_state:
        import numba

        if numba.config.DISABLE_JIT:
            _kernel_state["kernel"] = None
        else:
            jit = numba.njit(cache=True, nogil=True)
            # The helpers are compiled first: the kernels resolve them as globals.
            globals()["crc32c_span"] = jit(crc32c_span)
            globals()["parse_prefix"] = jit(parse_prefix)
            _kernel_state["kernel"] = (jit(walk_frames), jit(frame_batch), crc32c_tables())
    return _kernel_state["kernel"]
