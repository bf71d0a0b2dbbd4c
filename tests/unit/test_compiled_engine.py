"""The compiled engine (Cython) and the interpreted one decide the same thing, and each
process runs the one it was asked for (ledger/compiled.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import msgspec

from ledger import compiled

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 400  # RFQs, quotes, fills, closes, ticks, liquidations and a funding boundary


def digest_of_mix(rounds: int) -> dict:
    """Run the engine benchmark's seeded mix: a hash of every outcome and the state hash."""
    from benchmarks.engine import build_mix
    from engine.core import execute
    from engine.markets import default_config
    from engine.state import State, state_hash

    mix = build_mix(rounds)
    state = State(default_config())
    outcomes = hashlib.blake2b(digest_size=16)
    for cmd_id, (command, ts_ns) in enumerate(mix, 1):
        outcomes.update(msgspec.msgpack.encode(execute(state, command, ts_ns, cmd_id)))
    return {"commands": len(mix), "outcomes": outcomes.hexdigest(), "state": state_hash(state),
            "compiled": compiled.engine_is_compiled()}


def digest_in_subprocess(engine_mode: str) -> dict:
    code = ("from ledger import compiled; compiled.prepare(); import json; "
            f"from tests.unit.test_compiled_engine import digest_of_mix; print(json.dumps(digest_of_mix({ROUNDS})))")
    env = dict(os.environ, AGENTPERP_ENGINE=engine_mode)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def has_c_compiler() -> bool:
    return shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) is not None


def test_this_process_runs_the_engine_it_asked_for():
    if os.environ.get(compiled.ENGINE_ENV) == "python":
        assert not compiled.engine_is_compiled()
    elif has_c_compiler():
        # `make test` built it: a broken build must fail here, not quietly run interpreted.
        assert compiled.engine_is_compiled(), "the compiled engine is missing or stale: `make native`"


def test_compiled_and_interpreted_engines_decide_the_same_events():
    interpreted = digest_in_subprocess("python")
    assert interpreted["compiled"] is False
    here = digest_of_mix(ROUNDS)
    assert here["commands"] > 7 * ROUNDS
    if not here["compiled"]:
        here = digest_in_subprocess("compiled")
    if here["compiled"]:
        assert {k: here[k] for k in ("outcomes", "state")} == {k: interpreted[k] for k in ("outcomes", "state")}


def test_a_compiled_module_older_than_its_source_is_stale(tmp_path):
    suffix = compiled.machinery.EXTENSION_SUFFIXES[0]
    (tmp_path / "rfq").mkdir()
    for name, source_mtime, module_mtime in (("fresh", 100, 200), ("rfq/edited", 300, 200)):
        source, module = tmp_path / f"{name}.py", tmp_path / f"{name}{suffix}"
        source.write_text("")
        module.write_bytes(b"")
        os.utime(source, (source_mtime, source_mtime))
        os.utime(module, (module_mtime, module_mtime))
    (tmp_path / f"orphan{suffix}").write_bytes(b"")
    assert compiled.stale_modules(tmp_path) == ["orphan.py", "rfq/edited.py"]
    declarations = tmp_path / "fresh.pxd"  # the Cython declarations augmenting fresh.py
    declarations.write_text("")
    os.utime(declarations, (150, 150))
    assert compiled.stale_modules(tmp_path) == ["orphan.py", "rfq/edited.py"]
    os.utime(declarations, (250, 250))
    assert compiled.stale_modules(tmp_path) == ["fresh.py", "orphan.py", "rfq/edited.py"]


def test_a_module_written_in_cython_is_stale_when_its_pyx_is_newer(tmp_path):
    """``formula_calls.pyx``: compiled from its .pyx (and .pxd); its .py is the interpreted one."""
    suffix = compiled.machinery.EXTENSION_SUFFIXES[0]
    module = tmp_path / f"calls{suffix}"
    module.write_bytes(b"")
    os.utime(module, (200, 200))
    for extension in (".py", ".pyx", ".pxd"):
        (tmp_path / f"calls{extension}").write_text("")
        os.utime(tmp_path / f"calls{extension}", (100, 100))
    assert compiled.stale_modules(tmp_path) == []
    os.utime(tmp_path / "calls.pyx", (300, 300))
    assert compiled.stale_modules(tmp_path) == ["calls.py"]
    os.utime(tmp_path / "calls.pyx", (100, 100))
    (tmp_path / "calls.py").unlink()  # the interpreted engine would have nothing to import
    assert compiled.stale_modules(tmp_path) == ["calls.py"]
