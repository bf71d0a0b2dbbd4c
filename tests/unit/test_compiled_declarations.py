"""The Cython declarations that augment the engine's state classes (``engine/state.pxd``)
name every attribute the classes set: the compiled engine makes them extension types, which
refuse an undeclared attribute (AttributeError) where the interpreted engine would not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from engine.state import AGENT_COLUMNS, POSITION_COLUMNS

ENGINE = Path(__file__).resolve().parents[2] / "engine"
COLUMNS = set(AGENT_COLUMNS) | set(POSITION_COLUMNS)  # set by name (setattr) on Table and _Views


def declared(pxd: Path) -> dict[str, set[str]]:
    """Class name -> the attribute names its ``cdef public`` lines declare."""
    classes: dict[str, set[str]] = {}
    current = None
    for line in pxd.read_text().splitlines():
        match = re.match(r"cdef class (\w+)", line)
        if match:
            current = classes.setdefault(match.group(1), set())
            continue
        match = re.match(r"\s+cdef public \w+ (.+)", line)
        if match and current is not None:
            current.update(name.strip() for name in match.group(1).split(","))
    return classes


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


def test_context_pxd_declares_every_slot_of_ctx():
    from engine.context import Ctx

    assert declared(ENGINE / "context.pxd")["Ctx"] == set(Ctx.__slots__)
