"""Build the escrow program: C -> BPF objects (clang's BPF backend from the ``ziglang``
wheel, or Debian's clang-19) -> SBPF v0 shared object (``programs/escrow/link.py``).

``build()`` rebuilds only when a source (``src/*``, this file, the linker) is newer than the
output, so tests and the CLI can call it freely.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from programs.escrow.link import LinkError, link

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
REPO = HERE.parent.parent
PROGRAM_NAME = "agentperp_escrow.so"

# -mcpu=v2 only: v3/alu32 emit instructions (JMP32, 32-bit ALU with zero-extension, ...)
# that SBPF v0 lacks or executes differently. SBF frames are 4 KiB, upstream assumes 512 B.
CFLAGS = ["-mcpu=v2", "-O2", "-fno-builtin", "-ffreestanding", "-nostdinc", "-fno-stack-protector",
          "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-mllvm", "-bpf-stack-size=4096", "-c"]


class BuildError(Exception):
    """The compiler or the linker refused the program; the message carries their output."""


def compiler() -> list[str]:
    """The C compiler command: ``python -m ziglang cc`` if the wheel is installed, else
    clang-19/clang on PATH (``AGENTPERP_BPF_CC`` overrides, e.g. ``clang-19``)."""
    override = os.environ.get("AGENTPERP_BPF_CC")
    if override:
        return [override, "-target", "bpfel"]
    try:
        import ziglang  # noqa: F401  (only probing that the wheel is there)
        return [sys.executable, "-m", "ziglang", "cc", "-target", "bpfel-freestanding-none"]
    except ImportError:
        pass
    for name in ("clang-19", "clang"):
        path = shutil.which(name)
        if path:
            return [path, "-target", "bpfel"]
    raise BuildError("no BPF-capable C compiler: pip install ziglang (or apt-get install clang-19)")


def sources() -> list[Path]:
    return sorted(SRC.glob("*.c"))


def _inputs() -> list[Path]:
    return sorted(SRC.glob("*.[ch]")) + [HERE / "build.py", HERE / "link.py"]


def up_to_date(output: Path) -> bool:
    if not output.exists():
        return False
    built = output.stat().st_mtime_ns
    return all(p.stat().st_mtime_ns <= built for p in _inputs())


def build(out_dir: str | os.PathLike = "build/escrow", force: bool = False) -> Path:
    """Compile and link the program; return the path of the ``.so``.

    ``out_dir`` is relative to the repository root unless absolute. Nothing is rebuilt if
    the output is newer than every source.
    """
    out = Path(out_dir)
    if not out.is_absolute():
        out = REPO / out
    output = out / PROGRAM_NAME
    if not force and up_to_date(output):
        return output
    out.mkdir(parents=True, exist_ok=True)
    cc = compiler()
    objects = []
    for src in sources():
        obj = out / (src.stem + ".o")
        cmd = [*cc, *CFLAGS, f"-I{SRC}", str(src), "-o", str(obj)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"compiling {src.name} failed:\n{done.stderr.strip()}")
        objects.append(obj)
    try:
        link(objects, output)
    except LinkError as exc:
        raise BuildError(f"linking failed: {exc}") from exc
    return output


def main(argv: list[str] | None = None) -> int:
    """``agentperp escrow build [--out DIR] [--force]``: print the path of the built program."""
    parser = argparse.ArgumentParser(prog="agentperp escrow build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/escrow", help="output directory (default: build/escrow)")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    try:
        path = build(args.out, force=args.force)
    except BuildError as exc:
        print(f"escrow build failed: {exc}", file=sys.stderr)
        return 1
    print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
