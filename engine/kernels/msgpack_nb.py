"""msgpack written by numba for ``state_hash``: bytes equal to msgspec's, without a Python
object per item. Twin: ``msgspec.msgpack.encode`` itself (tests/unit/test_closed_rfqs_hash.py)."""

import numba as nb

# The longest msgpack item ``id_str_pairs_nb`` writes for one pair, less its str: the 2-array
# marker, and an int's marker and 8 bytes (uint64).
PAIR_BYTES_MAX_BEFORE_STR = 1 + 1 + 8
# msgpack's marker of an unsigned int by its width in bytes: uint8, uint16, uint32, uint64.
_UINT_MARKERS = (0, 0xCC, 0xCD, 0, 0xCE, 0, 0, 0, 0xCF)


@nb.njit(cache=True, nogil=True)
def id_str_pairs_nb(ids, codes, strs, str_starts, out):
    """Write the msgpack items ``[ids[i], S[codes[i]]]`` one after the other into ``out``;
    return the bytes written. ``ids`` are non-negative; ``S[c]``, the c-th str, is already
    encoded: ``strs[str_starts[c]:str_starts[c + 1]]``. Each id in msgspec's form for a
    non-negative int: the smallest of fixint, uint8, uint16, uint32, uint64, big-endian."""
    at = 0
    for i in range(ids.shape[0]):
        out[at] = 0x92  # an array of 2
        at += 1
        value = ids[i]
        if value < 128:  # a positive fixint: the value is its own byte
            out[at] = value
            at += 1
            width = 0
        elif value < 1 << 8:
            width = 1
        elif value < 1 << 16:
            width = 2
        elif value < 1 << 32:
            width = 4
        else:
            width = 8
        if width:
            out[at] = _UINT_MARKERS[width]
            for k in range(width):
                out[at + 1 + k] = (value >> (8 * (width - 1 - k))) & 0xFF
            at += 1 + width
        code = codes[i]
        for k in range(str_starts[code], str_starts[code + 1]):
            out[at] = strs[k]
            at += 1
    return at
