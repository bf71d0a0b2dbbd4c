"""The Cython declarations that augment the engine's state classes (``engine/state.pxd``)
name every attribute the classes set: the compiled engine makes them extension types, which
refuse an undeclared attribute (AttributeError) where the interpreted engine would not. The
columns' views are typed memoryviews, whose item type must be the column's dtype."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np

from engine.state import AGENT_COLUMNS, POSITION_COLUMNS

ENGINE = Path(__file__).resolve().parents[2] / "engine"
COLUMNS = set(AGENT_COLUMNS) | set(POSITION_COLUMNS)  # set by name (setattr) on Table and _Views


def declared_types(pxd: Path) -> dict[str, dict[str, str]]:
    """Class name -> {attribute: declared type} of its ``cdef public`` lines."""
    classes: dict[str, dict[str, str]] = {}
    current = None
    for line in pxd.read_text().splitlines():
        match = re.match(r"cdef class (\w+)", line)
        if match:
            current = classes.setdefault(match.group(1), {})
            continue
        match = re.match(r"\s+cdef public ([\w\[\]:]+) (.+)", line)
        if match and current is not None:
            current.update((name.strip(), match.group(1)) for name in match.group(2).split(","))
    return classes


def declared(pxd: Path) -> dict[str, set[str]]:
    """Class name -> the attribute names its ``cdef public`` lines declare."""
    return {name: set(attributes) for name, attributes in declared_types(pxd).items()}


def assigned(source: Path) -> dict[str, set[str]]:
    """Class name -> the ``self.<name>`` attributes its methods assign."""
    classes: dict[str, set[str]] = {}
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.ClassDef):
            names = classes.setdefault(node.name, set())
            for sub in ast.walk(node):
                targets = sub.targets if isinstance(sub, ast.Assign) else (
                    [sub.target] if isinstance(sub, (ast.AnnAssign, ast.AugAssign)) else [])
                for target in targets:
                    for leaf in ast.walk(target):
                        if (isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name)
                                and leaf.value.id == "self"):
                            names.add(leaf.attr)
    return classes


def test_state_pxd_declares_every_attribute_the_state_classes_set():
    declarations = declared(ENGINE / "state.pxd")
    sources = assigned(ENGINE / "state.py")
    assert set(declarations) == {"_Views", "Table", "Quote", "Rfq", "Oracle", "State"}
    for name, attributes in declarations.items():
        expected = sources[name] | (COLUMNS if name in ("Table", "_Views") else set())
        assert attributes == expected, (name, sorted(attributes ^ expected))


def test_column_views_are_typed_with_the_columns_dtypes():
    views = declared_types(ENGINE / "state.pxd")["_Views"]
    for name, dtype in (AGENT_COLUMNS | POSITION_COLUMNS).items():
        assert views[name] == f"{np.dtype(dtype).name}_t[:]", (name, views[name], dtype)


def test_settlement_pxd_declares_every_slot_of_close_out():
    from engine.risk.settlement import CloseOut

    assert declared(ENGINE / "risk" / "settlement.pxd")["CloseOut"] == set(CloseOut.__slots__)


def test_context_pxd_declares_every_slot_of_ctx():
    from engine.context import Ctx

    assert declared(ENGINE / "context.pxd")["Ctx"] == set(Ctx.__slots__)
