"""`python -m benchmarks.tick`: the Ticks it times do the work the sequencer would have them do."""

from __future__ import annotations

from benchmarks import tick


def test_bounded_ticks_slice_the_expiries_and_each_side_empties_the_book():
    figures = tick.measure(due=600, pairs=1)
    assert figures["tick.events_max"] == 256
    assert figures["tick.bounded_ticks"] == 3  # 256 + 256 + 88 RFQs closed (one RfqClosed each)
    for key in ("tick.longest_ms", "tick.all_ms"):
        assert figures[key]["pairs"] == 1 and figures[key]["better"] == "lower"
