"""Build of the engine's compiled modules (Cython), the rest of the metadata being in
pyproject.toml.

The engine's hot path (decide, apply and the rules they call) is plain Python that Cython
compiles as it is, with Python semantics (Python ints, no C types), so the compiled and
the interpreted engine decide the same events bit for bit; the suite runs on both
(docs/engine.md, "Compiled engine"). The extensions are optional: without a C compiler
the engine runs interpreted. ``make native`` rebuilds what changed, in place.
"""

import hashlib
import sys
from pathlib import Path

from setuptools import setup

# The modules every command runs through. Not compiled: the numba kernels and the
# formulas they inline (numba compiles those), and the modules of msgspec structs and of
# cold paths, which gain nothing. One is Cython source, not a .py: ``formula_calls.pyx``
# takes the place of ``formula_calls.py`` (the interpreted engine's) to call numba's
# machine code of the formulas directly.
NATIVE_MODULES = [
    "engine/accounts.py", "engine/apply.py", "engine/context.py", "engine/core.py", "engine/decide.py",
    "engine/lifecycles.py", "engine/oracle.py", "engine/positions.py", "engine/state.py", "engine/tick.py", "engine/units.py",
    "engine/rfq/lifecycle.py",
    "engine/risk/bands.py", "engine/risk/formula_calls.pyx", "engine/risk/funding.py", "engine/risk/liquidation.py",
    "engine/risk/margin.py", "engine/risk/settlement.py",
]


# Python semantics exactly: annotations are documentation, never C types or exact-type
# checks (Cython would otherwise refuse a bool where ``int`` is annotated, and make a
# ``float`` parameter a C double).
DIRECTIVES = {"language_level": 3, "annotation_typing": False}


def write_struct_declarations() -> None:
    """Write engine/structs.pxd (the msgspec structs' layout, for the compiled modules that
    read their fields) when the structs changed, so that Cython rebuilds what cimports it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # a PEP 517 build does not put the tree there
    from ledger.compiled import ENGINE, STRUCTS_PXD, struct_declarations

    path = ENGINE / STRUCTS_PXD
    text = struct_declarations()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def native_extensions() -> list:
    try:
        import Cython
        from Cython.Build import cythonize
    except ImportError:  # an install without the build requirements: interpreted engine
        return []
    write_struct_declarations()
    # The generated C depends on the directives and Cython's version too: a folder per both.
    flavour = hashlib.blake2b(repr((sorted(DIRECTIVES.items()), Cython.__version__)).encode(), digest_size=4)
    extensions = cythonize(NATIVE_MODULES, build_dir=f"build/cython-{flavour.hexdigest()}", quiet=True,
                           compiler_directives=DIRECTIVES)
    for extension in extensions:
        extension.optional = True  # no C compiler: a warning, and the engine runs interpreted
    return extensions


setup(ext_modules=native_extensions())
