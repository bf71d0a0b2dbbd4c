"""DESIGN §2's dependency direction, held by parsing every import of every module.

``engine`` imports nothing of ours; ``ledger`` and ``protocol`` (the wire schema, signing,
edge codes and the Strategy interface that both the venue and its agents speak) import
``engine``; ``adapters``, ``replay`` and ``agents`` import those; ``venue`` wires everything.
``programs`` (on-chain code, its IDL, its build) is data to the rest: only ``venue`` (and ops'
``benchmarks``) import it. An arrow the other way is a bug.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"engine", "ledger", "protocol", "adapters", "replay", "agents", "venue", "programs", "benchmarks"}
ALLOWED: dict[str, set[str]] = {
    "engine": set(),
    "ledger": {"engine"},
    "protocol": {"engine"},
    "adapters": {"engine", "ledger", "protocol"},
    "replay": {"engine", "ledger", "protocol"},
    "agents": {"engine", "ledger", "protocol"},
    "programs": set(),
    "venue": OURS - {"benchmarks"},
    "benchmarks": OURS,
}


def imports_of(path: Path) -> set[str]:
    """The top-level packages of ours that ``path`` imports (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in OURS)
    return found


def violations(package: str) -> list[str]:
    allowed = ALLOWED[package] | {package}
    return [f"{path.relative_to(ROOT)} imports {sorted(imports_of(path) - allowed)}"
            for path in sorted((ROOT / package).rglob("*.py")) if imports_of(path) - allowed]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_dependency_direction(package):
    assert violations(package) == []


def test_the_check_sees_a_wrong_arrow(tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text("import numpy\nfrom adapters.gateway import edge\n\ndef f():\n    import replay.verify\n")
    assert imports_of(wrong) == {"adapters", "replay"}
