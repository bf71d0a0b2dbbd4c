"""The build and the post-linker: the output is the ELF Solana's v0 loader expects, the build
is incremental, and instructions SBPF v0 lacks are refused with a clear message."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from programs.escrow import build as build_mod
from programs.escrow.link import LinkError, check_instructions, link


def test_output_is_an_sbpf_v0_shared_object(program_path):
    with open(program_path, "rb") as f:
        elf = ELFFile(f)
        h = elf.header
        assert (h["e_type"], h["e_machine"], h["e_flags"]) == ("ET_DYN", "EM_BPF", 0)
        names = [s.name for s in elf.iter_sections()]
        assert names[0] == "" and names.count(".text") == 1
        assert not any(n.startswith((".debug", ".BTF", ".eh_frame", ".data", ".bss")) for n in names)
        offsets = []
        for s in elf.iter_sections():
            if s["sh_type"] != "SHT_NULL" and s["sh_addr"]:
                assert s["sh_addr"] == s["sh_offset"], s.name  # address == file offset
                offsets.append(s["sh_offset"])
        assert offsets == sorted(offsets)
        text = elf.get_section_by_name(".text")
        assert text["sh_addr"] <= h["e_entry"] < text["sh_addr"] + text["sh_size"]
        assert any(seg["p_type"] == "PT_DYNAMIC" for seg in elf.iter_segments())
        syscalls = {sym.name for sym in elf.get_section_by_name(".dynsym").iter_symbols() if sym.name}
        assert {"sol_invoke_signed_c", "sol_try_find_program_address", "sol_get_clock_sysvar"} <= syscalls
        check_instructions(text.data())  # nothing SBPF v0 lacks


def test_build_is_incremental(program_path):
    before = program_path.stat().st_mtime_ns
    assert build_mod.build() == program_path
    assert program_path.stat().st_mtime_ns == before  # nothing newer: nothing rebuilt


def test_build_main_prints_the_path(capsys, program_path):
    assert build_mod.main([]) == 0
    assert str(program_path) in capsys.readouterr().out


def test_build_reports_compile_errors(tmp_path, monkeypatch):
    bad = tmp_path / "src"
    bad.mkdir()
    (bad / "broken.c").write_text("int entrypoint(void) { return undeclared; }\n")
    monkeypatch.setattr(build_mod, "SRC", bad)
    with pytest.raises(build_mod.BuildError, match="undeclared"):
        build_mod.build(tmp_path / "out")


@pytest.mark.parametrize("insn, what", [
    (bytes([0x16, 0x01, 0, 0, 0, 0, 0, 0]), "JMP32"),             # if w1 == 0 (jeq32)
    (bytes([0xdb, 0x21, 0, 0, 0, 0, 0, 0]), "atomic"),             # lock *(u64 *)(r1) += r2
    (bytes([0x91, 0x21, 0, 0, 0, 0, 0, 0]), "sign-extending load"),  # r1 = *(s8 *)(r2)
    (bytes([0xbf, 0x21, 8, 0, 0, 0, 0, 0]), "movsx"),              # r1 = (s8) r2
    (bytes([0x3f, 0x21, 1, 0, 0, 0, 0, 0]), "signed division"),    # r1 s/= r2
    (bytes([0xd7, 0x01, 0, 0, 64, 0, 0, 0]), "bswap"),
    (bytes([0x04, 0x01, 0, 0, 1, 0, 0, 0]), "32-bit ALU"),         # w1 += 1
    (bytes([0x8d, 0x01, 0, 0, 0, 0, 0, 0]), "callx"),
])
def test_instructions_sbpf_v0_lacks_are_refused(insn, what):
    ok = bytes([0xb7, 0x00, 0, 0, 0, 0, 0, 0])  # r0 = 0
    with pytest.raises(LinkError, match=what) as exc:
        check_instructions(ok + insn + bytes([0x95, 0, 0, 0, 0, 0, 0, 0]))
    assert "#1" in str(exc.value)


def _compile(tmp_path, source: str, cpu: str = "v2"):
    src = tmp_path / "t.c"
    src.write_text(source)
    obj = tmp_path / "t.o"
    flags = [f if f != "-mcpu=v2" else f"-mcpu={cpu}" for f in build_mod.CFLAGS if f not in ("-Werror",)]
    subprocess.run([*build_mod.compiler(), *flags, str(src), "-o", str(obj)], check=True, capture_output=True)
    return obj


def test_v3_code_is_refused_by_the_linker(tmp_path):
    obj = _compile(tmp_path, "unsigned int f(unsigned int a, unsigned int b) { return a > b ? a - b : b * a; }\n"
                             "unsigned long long entrypoint(const unsigned char *p) { return f(p[0], p[1]); }\n",
                   cpu="v3")
    with pytest.raises(LinkError, match="SBPF v0 lacks"):
        link([obj], tmp_path / "t.so")


def test_undefined_functions_are_refused(tmp_path):
    obj = _compile(tmp_path, "extern unsigned long long helper(unsigned long long);\n"
                             "unsigned long long entrypoint(const unsigned char *p) { return helper(p[0]); }\n")
    with pytest.raises(LinkError, match="helper"):
        link([obj], tmp_path / "t.so")


def test_writable_globals_are_refused(tmp_path):
    obj = _compile(tmp_path, "unsigned long long counter;\n"
                             "unsigned long long entrypoint(const unsigned char *p) { return ++counter; }\n")
    with pytest.raises(LinkError, match="writable"):
        link([obj], tmp_path / "t.so")


def test_linked_relocations_run(tmp_path, program_path):
    """A small program with read-only data, a pointer table, an internal call and a syscall:
    each relocation kind the linker resolves, checked by running it."""
    from solders.instruction import Instruction
    from solders.keypair import Keypair

    from programs.escrow.localnet import World
    obj = _compile(tmp_path, """
        extern void sol_log_(const char *, unsigned long long);
        static const char a[] = "first";
        static const char b[] = "second";
        static const char *const table[2] = {a, b};
        __attribute__((noinline)) unsigned long long pick(unsigned long long i) { return i & 1; }
        unsigned long long entrypoint(const unsigned char *input) {
          unsigned long long i = pick(input[0] + 1);
          sol_log_(table[i], i ? 6 : 5);
          return 0;
        }
    """)
    so = link([obj], tmp_path / "t.so")
    world = World(program_path, initialize=False)
    pid = Keypair().pubkey()
    world.svm.add_program(pid, so.read_bytes())
    world.send([Instruction(pid, b"", [])], [])
    assert "Program log: second" in world.last_logs
    assert struct.unpack_from("<H", so.read_bytes(), 16)[0] == 3  # ET_DYN
    assert os.path.getsize(so) < 4096
