"""The Cython declarations that augment the engine's state classes (``engine/state.pxd``)
name every attribute the classes set: the compiled engine makes them extension types, which
refuse an undeclared attribute (AttributeError) where the interpreted engine would not. The
columns' views are typed memoryviews, whose item type must be the column's dtype."""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
from pathlib import Path

import numpy as np

from engine.state import AGENT_COLUMNS, POSITION_COLUMNS, POSITION_DERIVED_COLUMNS
from ledger import compiled, layout_probes

ENGINE = Path(__file__).resolve().parents[2] / "engine"
# set by name (setattr) on Table and _Views
COLUMNS = set(AGENT_COLUMNS) | set(POSITION_COLUMNS) | set(POSITION_DERIVED_COLUMNS)


def declared_types(pxd: Path) -> dict[str, dict[str, str]]:
    """Class name -> {attribute: declared type} of its ``cdef public`` lines."""
    classes: dict[str, dict[str, str]] = {}
    current = None
    for line in pxd.read_text().splitlines():
        match = re.match(r"cdef class (\w+)", line)
        if match:
            current = classes.setdefault(match.group(1), {})
            continue
        match = re.match(r"\s+cdef public ([\w\[\]:.]+) (.+)", line)
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
    for name, dtype in POSITION_DERIVED_COLUMNS.items():
        assert views[name] == {np.float64: "double[:]"}[dtype], (name, views[name], dtype)


def test_settlement_pxd_declares_every_slot_of_close_out():
    from engine.risk.settlement import CloseOut

    assert declared(ENGINE / "risk" / "settlement.pxd")["CloseOut"] == set(CloseOut.__slots__)


def test_context_pxd_declares_every_slot_of_ctx():
    from engine.context import Ctx

    assert declared(ENGINE / "context.pxd")["Ctx"] == set(Ctx.__slots__)



def test_structs_pxd_lays_out_every_struct_as_its_slots():
    """engine/structs.pxd is what setup.py writes from the structs' sources, and the slot
    order it reads there is where CPython put each field: every offset checked against the
    type's member descriptor (a compiled read at a wrong offset would be another field)."""
    assert (ENGINE / compiled.STRUCTS_PXD).read_text() == compiled.struct_declarations(), "run `make native`"
    for module_name, names in compiled.DECLARED_STRUCTS.items():
        module = importlib.import_module(f"engine.{module_name}")
        source = (ENGINE / f"{module_name}.py").read_text()
        for name in names:
            kind = getattr(module, name)
            fields = compiled.slot_order(source, name)
            assert sorted(fields) == sorted(kind.__struct_fields__), name
            assert compiled.laid_out_as(kind, fields), (name, compiled.member_offsets(kind))


def test_the_layout_rule_is_checked_at_start_and_can_fail():
    """What the venue checks at every start on its probes holds for the installed msgspec,
    and the check tells a struct laid out otherwise (fields in another order) apart."""
    assert compiled.layout_rule_holds()
    probe = layout_probes.LayoutProbe
    fields = compiled.slot_order(Path(layout_probes.__file__).read_text(), "LayoutProbe")
    assert fields == ["alpha", "zeta", "beta", "omega"]  # the base's first, each class's sorted by name
    assert compiled.laid_out_as(probe, fields)
    assert not compiled.laid_out_as(probe, list(probe.__struct_fields__))  # declaration order is not memory order
    assert not compiled.laid_out_as(probe, fields[:-1])


def test_structs_pxd_out_of_date_makes_the_engine_stale(tmp_path):
    """A struct's new field (or a hand-edited structs.pxd) makes every compiled module stale
    until setup.py rewrites the declarations and Cython rebuilds what cimports them."""
    for module_name in compiled.DECLARED_STRUCTS:
        shutil.copy(ENGINE / f"{module_name}.py", tmp_path / f"{module_name}.py")
    (tmp_path / compiled.STRUCTS_PXD).write_text(compiled.struct_declarations(tmp_path))
    suffix = compiled.machinery.EXTENSION_SUFFIXES[0]
    for name, declarations in (("reader", "cimport engine.structs as structs\n"), ("other", "")):
        (tmp_path / f"{name}.py").write_text("")
        (tmp_path / f"{name}.pxd").write_text(declarations)
        (tmp_path / f"{name}{suffix}").write_bytes(b"")
    for path in tmp_path.iterdir():
        os.utime(path, (100, 100) if path.suffix != ".so" else (200, 200))
    assert compiled.stale_modules(tmp_path) == []
    events = tmp_path / "events.py"
    transfer_tail = "    amount_e6: int\n    kind: Literal[TRANSFER_KINDS]\n"  # Transfer's last fields
    assert transfer_tail in events.read_text()
    events.write_text(events.read_text().replace(transfer_tail, transfer_tail + "    aardvark: int = 0\n"))
    assert compiled.stale_modules(tmp_path) == [compiled.STRUCTS_PXD]
    (tmp_path / compiled.STRUCTS_PXD).write_text(compiled.struct_declarations(tmp_path))  # what setup.py does
    os.utime(tmp_path / compiled.STRUCTS_PXD, (300, 300))
    assert compiled.stale_modules(tmp_path) == ["reader.py"]  # until rebuilt; `other` does not read structs


def test_a_pxd_reached_through_another_makes_its_users_stale(tmp_path):
    """A C signature changed in units.pxd reaches decide through rfq/lifecycle.pxd: decide is
    stale until rebuilt (built against the old signature it would fail its import), and
    setup.py regenerates what stale_modules names."""
    (tmp_path / "rfq").mkdir()
    suffix = compiled.machinery.EXTENSION_SUFFIXES[0]
    declarations = {"units": "", "rfq/lifecycle": "from engine.units cimport div_ceil\n",
                    "decide": "from engine.rfq cimport lifecycle\n", "other": ""}
    for name, text in declarations.items():
        (tmp_path / f"{name}.py").write_text("")
        (tmp_path / f"{name}.pxd").write_text(text)
        (tmp_path / f"{name}{suffix}").write_bytes(b"")
    for path in [*tmp_path.iterdir(), *(tmp_path / "rfq").iterdir()]:
        if path.is_file():
            os.utime(path, (100, 100) if path.suffix != ".so" else (200, 200))
    assert compiled.stale_modules(tmp_path) == []
    os.utime(tmp_path / "units.pxd", (300, 300))  # a changed signature
    assert sorted(compiled.stale_modules(tmp_path)) == ["decide.py", "rfq/lifecycle.py", "units.py"]
