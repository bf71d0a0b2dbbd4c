"""Report comparison: a ratio is flagged only when its min–max spread left the previous one's."""

from benchmarks import compare
from benchmarks.all import blocks, to_html, to_markdown
from benchmarks.interleave import HIGHER, LOWER


def ratio(median, low, high, better=HIGHER):
    return {"ratio": median, "min": low, "max": high, "pairs": 5, "better": better, "figure": "f", "baseline": "b",
            "ratios": [low, median, high]}


def report(suites, calibration_s=1.0):
    cal = {"median_s": calibration_s, "min_s": calibration_s, "max_s": calibration_s, "runs": 5, "workload": "w"}
    return {"created": "t", "quick": True, "command": "agentperp bench all", "suites": suites, "targets": {},
            "machine": {"cores": 2, "python": "3.11", "commit": "abc", "calibration": cal, "calibration_end": cal}}


def test_overlapping_spreads_are_noise():
    assert compare.verdict(ratio(0.5, 0.4, 0.6), ratio(0.45, 0.35, 0.55)) == compare.NOISE
    assert compare.verdict(ratio(0.5, 0.4, 0.6), ratio(0.3, 0.2, 0.4)) == compare.NOISE  # touching


def test_higher_is_better_regression_and_improvement():
    assert compare.verdict(ratio(0.5, 0.4, 0.6), ratio(0.3, 0.25, 0.39)) == compare.REGRESSED
    assert compare.verdict(ratio(0.5, 0.4, 0.6), ratio(0.8, 0.61, 0.9)) == compare.IMPROVED


def test_lower_is_better_flips_the_verdict():
    before = ratio(5.0, 4.0, 6.0, LOWER)
    assert compare.verdict(before, ratio(8.0, 7.0, 9.0, LOWER)) == compare.REGRESSED
    assert compare.verdict(before, ratio(2.0, 1.0, 3.0, LOWER)) == compare.IMPROVED


def test_compare_ratios_lists_new_and_gone():
    previous = report({"replay": {"replay.verify_ratio_to_read": ratio(0.1, 0.09, 0.11), "old.ratio": ratio(1, 1, 1)}})
    current = report({"replay": {"replay.verify_ratio_to_read": ratio(0.05, 0.04, 0.06), "x.ratio": ratio(2, 2, 2),
                                 "replay.events_per_s": 100.0}})
    changes = {c.key: c.verdict for c in compare.compare_ratios(previous, current)}
    assert changes == {"replay.verify_ratio_to_read": compare.REGRESSED, "x.ratio": compare.NEW,
                       "old.ratio": compare.GONE}
    assert [c.key for c in compare.regressions(compare.compare_ratios(previous, current))] == [
        "replay.verify_ratio_to_read"]


def test_absolute_figures_are_scaled_by_calibration():
    previous = report({"s": {"a.events_per_s": 100.0, "b.p99_ms": 10.0, "c.count": 5}}, calibration_s=1.0)
    current = report({"s": {"a.events_per_s": 50.0, "b.p99_ms": 20.0, "c.count": 5}}, calibration_s=2.0)
    assert compare.calibration_factor(previous, current) == 2.0
    rows = {key: scaled for key, _, _, scaled in compare.compare_absolute(previous, current)}
    # Half the rate and twice the latency on a machine half as fast: no change.
    assert rows == {"a.events_per_s": 0.0, "b.p99_ms": 0.0, "c.count": 0.0}


def test_report_renders_the_regression_in_both_formats(tmp_path):
    previous = report({"gateway": {"gateway.ratio_to_echo": ratio(0.5, 0.45, 0.55)}})
    current = report({"gateway": {"gateway.ratio_to_echo": ratio(0.2, 0.15, 0.25), "gateway.p99_ms": 1.5}})
    current["targets"] = {"gateway": {"gateway.ratio_to_echo": (">=", 0.5)}}
    rendered = blocks(current, previous, tmp_path)
    markdown, page = to_markdown(rendered), to_html(rendered)
    assert "**REGRESSED**" in markdown and "MISSED" in markdown
    assert "REGRESSED</b>" in page and "<table>" in page
    assert (tmp_path / "ratio_pairs.png").exists()
