"""Compiled code that must never run stale rules: numba's kernel cache and the engine's
Cython modules. Call ``prepare()`` in a process before anything imports ``engine`` or
``numba``: every entry point does (``venue.cli``, the test suite), and so does every Dask
worker of ``replay tournament`` (``replay.workers``). It lives in ``ledger``, the lowest
package that may touch files and the environment (``engine`` may not), so that both
``venue`` and ``replay`` can call it (DESIGN §2).

- numba invalidates a cached kernel only when the kernel's own file changes, not when a
  function it inlines (``engine/risk/formulas.py``) does. Keying the cache folder on a hash
  of every source the kernels compile makes any change start a fresh cache.
- The engine's hot modules are compiled in place by Cython (``setup.py``, ``make native``);
  a compiled module older than its source would run old rules, so if any is, the whole
  engine runs interpreted, with a warning. ``AGENTPERP_ENGINE=python`` asks for the
  interpreted engine (the test suite's second pass; debugging with tracebacks and pdb).
- The compiled engine reads the msgspec structs (commands, events, markets) as external
  extension types laid out in ``engine/structs.pxd``, which ``setup.py`` writes from their
  sources (``struct_declarations``). Declarations that no longer match the structs, or
  modules built against older ones, would read the wrong fields: stale as well. So would
  an installed msgspec that lays out a struct's fields otherwise than ``slot_order``
  assumes (checked at every start on a probe struct: ``layout_rule_holds``).
"""

from __future__ import annotations

import ast
import ctypes
import hashlib
import importlib.machinery as machinery
import os
import re
import sys
import warnings
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"
KERNEL_SOURCES = ("risk/formulas.py", "units.py", "state.py", "kernels/*.py")  # what kernels compile in
ENGINE_ENV = "AGENTPERP_ENGINE"  # "python": interpreted; anything else: compiled when fresh

prepared = False  # whether this process ran prepare() (a Dask worker reports it)

# The msgspec structs the compiled engine reads at their slots' offsets (engine/structs.pxd),
# by module (a file of the engine folder).
DECLARED_STRUCTS = {
    "commands": ("AcceptQuote", "AddMargin", "CancelAgentQuotes", "CancelQuote", "CancelRfq", "ClosePosition", "Deposit",
                 "Liquidate", "OracleUpdate", "RemoveMargin", "RequestQuote", "SubmitQuote", "SwitchOracleSource",
                 "Withdraw"),
    "events": ("_Event", "Checkpoint", "Deposited", "FundingSettled", "LiquidationWatch", "MarginChanged", "OracleSourceSwitched",
               "OracleUpdated", "PositionClosed", "PositionLiquidated", "PositionOpened", "QuoteReleased",
               "QuoteSubmitted", "RfqClosed", "RfqOpened", "Transfer", "Withdrawn"),
    "markets": ("EngineConfig", "Market"),
}
STRUCTS_PXD = "structs.pxd"
POINTER_BYTES = ctypes.sizeof(ctypes.c_void_p)  # a field's slot: one PyObject pointer



def prepare() -> None:
    global prepared
    configure_numba_cache()
    select_engine()
    prepared = True


def sources_digest() -> str:
    digest = hashlib.blake2b(digest_size=8)
    for pattern in KERNEL_SOURCES:
        for path in sorted(ENGINE.glob(pattern)):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def configure_numba_cache() -> None:
    """Set NUMBA_CACHE_DIR (unless the user chose one) to a folder per kernel-source hash."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentperp" / "numba"
        os.environ["NUMBA_CACHE_DIR"] = str(base / sources_digest())


def compiled_modules(engine_dir: Path = ENGINE) -> list[Path]:
    """The engine's compiled module files (``engine/**/NAME.cpython-*.so``)."""
    return sorted({path for suffix in machinery.EXTENSION_SUFFIXES for path in engine_dir.rglob(f"*{suffix}")})


def slot_order(source: str, name: str) -> list[str]:
    """The fields of the struct ``name`` defined in ``source`` (a module's text), in the order
    of its slots: CPython lays out a class's own ``__slots__`` sorted by name, after its
    bases' (msgspec makes a struct's fields slots). Read from the source, not imported: this
    runs before anything imports ``engine`` (and in ``setup.py``)."""
    classes = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}
    fields: list[str] = []

    def add(node: ast.ClassDef) -> None:
        for base in node.bases:  # a base of the same module first (msgspec.Struct adds nothing)
            if isinstance(base, ast.Name) and base.id in classes:
                add(classes[base.id])
        fields.extend(sorted(statement.target.id for statement in node.body
                             if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)))

    add(classes[name])
    return fields


def struct_declarations(engine_dir: Path = ENGINE) -> str:
    """The text of ``engine/structs.pxd``: each of DECLARED_STRUCTS as an external extension
    type, its fields in slot order (``setup.py`` writes it; ``stale_modules`` compares)."""
    lines = ["# WRITTEN by setup.py (ledger.compiled.struct_declarations) from the structs' sources: do",
             "# not edit. The msgspec structs the compiled engine reads (commands, events, markets),",
             "# declared to Cython as external extension types with their slots in memory order, so",
             "# that a variable typed as one (``structs.Transfer t``) has its fields read at their",
             "# offsets instead of by a generic attribute lookup (~20 ns). Read only (the structs are",
             "# frozen). Cython checks each type's size at import; tests/unit/test_compiled_declarations.py",
             "# checks every field's offset against the type's member descriptor.",
             "",
             "cdef extern from *:",
             '    """']
    classes = []
    for module, names in DECLARED_STRUCTS.items():
        source = (engine_dir / f"{module}.py").read_text()
        for name in names:
            fields = slot_order(source, name)
            c_name = f"agentperp_{module}_{name}"
            lines.append(f"    typedef struct {{ PyObject_HEAD PyObject *{', *'.join(fields)}; }} {c_name};"
                         if fields else f"    typedef struct {{ PyObject_HEAD }} {c_name};")
            classes.append(f"    ctypedef class engine.{module}.{name} [object {c_name}]:")
            classes += [f"        cdef readonly object {field}" for field in fields] or ["        pass"]
    lines.append('    """')
    return "\n".join(lines + classes) + "\n"


class _MemberDef(ctypes.Structure):  # CPython's PyMemberDef (its first three fields)
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_int), ("offset", ctypes.c_ssize_t)]


# A member descriptor (PyMemberDescrObject) is PyDescr_COMMON (the object's head, d_type,
# d_name, d_qualname), then its PyMemberDef pointer.
_MEMBER_DEF_AT = object.__basicsize__ + 3 * POINTER_BYTES


def member_offsets(kind: type) -> dict[str, int]:
    """Each field of the msgspec struct ``kind`` and its byte offset in an instance, as
    CPython's member descriptors say (a field that is no member descriptor is left out)."""
    offsets = {}
    for field in kind.__struct_fields__:
        descriptor = next(level.__dict__[field] for level in kind.__mro__ if field in level.__dict__)
        if type(descriptor).__name__ == "member_descriptor":
            member = _MemberDef.from_address(ctypes.c_void_p.from_address(id(descriptor) + _MEMBER_DEF_AT).value)
            offsets[member.name.decode()] = member.offset
    return offsets


def laid_out_as(kind: type, fields: list[str]) -> bool:
    """Whether an instance of ``kind`` is the object's head and then one pointer per field,
    in the order of ``fields`` (what ``structs.pxd`` declares)."""
    head = object.__basicsize__
    return (kind.__basicsize__ == head + POINTER_BYTES * len(fields)
            and member_offsets(kind) == {field: head + POINTER_BYTES * i for i, field in enumerate(fields)})


def layout_rule_holds() -> bool:
    """Whether the installed msgspec lays out structs as ``slot_order`` reads them from a
    source (checked on ``ledger.layout_probes``: a msgspec upgrade that changed it would make
    every compiled read of a field another field's). Imported here, not at the top: setup.py
    imports this module where msgspec is not installed."""
    from ledger import layout_probes

    source = Path(layout_probes.__file__).read_text()
    return all(laid_out_as(kind, slot_order(source, kind.__name__)) for kind in layout_probes.PROBES)


def _cimported(pxd: Path, engine_dir: Path) -> set[Path]:
    """The engine's ``.pxd`` files that ``pxd`` cimports, directly or not."""
    found: set[Path] = set()
    todo = [pxd]
    while todo:
        text = todo.pop().read_text()
        cimports = re.findall(r"^from (engine[\w.]*) cimport ([\w, ]+)", text, re.M)
        cimports += [(module, "") for module in re.findall(r"^cimport (engine[\w.]*)", text, re.M)]
        for module, names in cimports:
            path = engine_dir.joinpath(*module.split(".")[1:])
            candidates = [path.with_suffix(".pxd")] if path.with_suffix(".pxd").exists() else [
                path / f"{name.strip()}.pxd" for name in names.split(",")]  # from a package cimport modules
            for candidate in candidates:
                if candidate.exists() and candidate not in found:
                    found.add(candidate)
                    todo.append(candidate)
    return found


def stale_modules(engine_dir: Path = ENGINE) -> list[str]:
    """Sources (relative to the engine folder) changed since they were compiled, or gone.

    A module's sources are its ``.py`` and, if it has one, the ``.pxd`` of Cython
    declarations that augments it (``engine/state.pxd``); a module written in Cython
    (``engine/risk/formula_calls.pyx``) has its ``.pyx`` and ``.pxd``, and its ``.py`` is
    the interpreted engine's version, which must exist as well. Every engine ``.pxd`` its
    declarations (or its ``.pyx``) cimport, directly or not, is a source too: the structs'
    layout (``structs.pxd``) and the C signatures of the functions it calls are compiled into
    it (a module built against an older ``units.pxd`` fails its import: "has wrong
    signature"). If ``structs.pxd`` no longer matches the structs' sources
    (``struct_declarations``), it is stale itself."""
    stale = []
    structs = engine_dir / STRUCTS_PXD
    if structs.exists() and structs.read_text() != struct_declarations(engine_dir):
        stale.append(STRUCTS_PXD)
    for module in compiled_modules(engine_dir):
        source = module.with_name(module.name.split(".")[0] + ".py")
        sources = [source, source.with_suffix(".pyx"), source.with_suffix(".pxd")]
        for own in sources[1:]:
            if own.exists():
                sources += _cimported(own, engine_dir)
        changed = [path for path in sources if path.exists() and path.stat().st_mtime > module.stat().st_mtime]
        if not source.exists() or changed:
            stale.append(source.relative_to(engine_dir).as_posix())
    return stale


def select_engine() -> None:
    """Use the compiled engine modules, unless asked not to or any is stale: then make the
    import system see only the engine's sources."""
    if not compiled_modules():
        return
    if os.environ.get(ENGINE_ENV) != "python":
        stale = stale_modules()
        if not stale and layout_rule_holds():
            return
        reason = (f"the compiled engine is older than engine/{', engine/'.join(stale)}" if stale else
                  f"the installed msgspec lays out structs otherwise than engine/{STRUCTS_PXD} assumes")
        warnings.warn(f"{reason}: running it interpreted; `make native` rebuilds it", stacklevel=2)
        os.environ[ENGINE_ENV] = "python"  # so that child processes agree
    if _engine_sources_only in sys.path_hooks:
        return  # prepared already (the CLI imported by a test, say)
    if any(name == "engine" or name.startswith("engine.") for name in sys.modules):
        raise RuntimeError("select_engine() must run before anything imports engine")
    sys.path_hooks.insert(0, _engine_sources_only)
    sys.path_importer_cache.clear()


def _engine_sources_only(path: str):
    """A path hook: for the engine's folders, a finder that knows no extension modules."""
    if not Path(path).resolve().is_relative_to(ENGINE):
        raise ImportError("not an engine folder")  # the next hook takes it
    return machinery.FileFinder(path, (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES),
                                (machinery.SourcelessFileLoader, machinery.BYTECODE_SUFFIXES))


def engine_is_compiled() -> bool:
    """Whether this process runs the compiled engine (after ``engine`` was imported)."""
    import engine.apply

    return Path(engine.apply.__file__).suffix != ".py"
