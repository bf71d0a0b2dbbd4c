"""Every scenario file under cases/ runs line by line (see dsl.py)."""

from pathlib import Path

import pytest

from tests.scenarios import dsl

CASES = sorted((Path(__file__).parent / "cases").glob("*.scn"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_scenario(path: Path) -> None:
    dsl.run_file(path)


def test_a_wrong_expectation_fails() -> None:
    """The runner itself can fail: a wrong amount is reported with its line."""
    text = "@00:00:00 deposit agent=a amount=5 ref=r => deposited{amount_e6=6}\n"
    with pytest.raises(dsl.ScenarioError, match="amount_e6 is 5000000"):
        dsl.run(text)
