"""Post-linker: BPF relocatable objects (clang, ``-mcpu=v2``) -> an SBPF v0 shared object.

Upstream ``ld.lld`` refuses ``EM_BPF``, so this module does the little that Solana's
loader needs (see ``shared/notes/solana-sbf.md``):

* one ``.text`` (every executable input section, concatenated) and one ``.rodata``
  (every allocated read-only input section); debug, BTF, addrsig and ``.eh_frame`` dropped;
* each section's address equal to its file offset (the v0 loader treats relocation
  offsets as file offsets and maps the file at ``MM_PROGRAM_START + address``);
* link-time relocations: ``R_BPF_64_64`` (``lddw`` of a read-only address),
  ``R_BPF_64_ABS64`` (pointers inside read-only data) and ``R_BPF_64_32`` calls to
  functions defined in the program (turned into pc-relative instruction counts);
* calls to undefined symbols (the syscalls) keep ``imm = -1`` and get dynamic
  ``R_BPF_64_32`` relocations, with ``.dynsym``/``.dynstr``/``.rel.dyn``/``.dynamic`` and a
  ``PT_DYNAMIC`` header, so the loader binds each by the murmur3 hash of its name;
* instructions that SBPF v0 lacks are refused with a message naming the offending one.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

EM_BPF = 247
MM_PROGRAM_START = 0x1_0000_0000

R_BPF_NONE = 0
R_BPF_64_64 = 1
R_BPF_64_ABS64 = 2
R_BPF_64_32 = 10

SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC, SHT_REL, SHT_DYNSYM = 1, 3, 6, 9, 11
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4
PT_LOAD, PT_DYNAMIC = 1, 2
PF_X, PF_W, PF_R = 1, 2, 4
DT_NULL, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 5, 6, 10, 11
DT_REL, DT_RELSZ, DT_RELENT, DT_TEXTREL, DT_FLAGS = 17, 18, 19, 22, 30
DF_TEXTREL = 4

# The syscalls a program may import; anything else undefined is a link error.
SYSCALLS = frozenset({
    "abort", "sol_panic_", "sol_log_", "sol_log_64_", "sol_log_compute_units_", "sol_log_pubkey",
    "sol_log_data", "sol_create_program_address", "sol_try_find_program_address", "sol_sha256",
    "sol_keccak256", "sol_invoke_signed_c", "sol_invoke_signed_rust", "sol_memcpy_", "sol_memmove_",
    "sol_memset_", "sol_memcmp_", "sol_get_clock_sysvar", "sol_get_rent_sysvar",
    "sol_get_epoch_schedule_sysvar", "sol_set_return_data", "sol_get_return_data",
    "sol_get_stack_height", "sol_remaining_compute_units",
})

# Sections that carry nothing the loader wants.
DROPPED_PREFIXES = (".debug", ".BTF", ".eh_frame", ".rel.eh_frame", ".llvm", ".comment", ".note")


class LinkError(Exception):
    """The objects cannot become an SBPF v0 program; the message says why."""


@dataclass
class _Input:
    path: Path
    elf: ELFFile
    placed: dict[int, int] = field(default_factory=dict)  # input section index -> output address


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def check_instructions(text: bytes, where: str = ".text") -> None:
    """Refuse any instruction SBPF v0 lacks (JMP32, atomics, sign-extending loads and
    moves, bswap, signed division, callx, legacy packet loads, 32-bit ALU)."""
    i = 0
    while i < len(text):
        op, regs, off, imm = struct.unpack_from("<BBhi", text, i)
        cls = op & 0x07
        what = None
        if op == 0x18:  # lddw takes two slots
            i += 16
            continue
        if cls == 0x00:
            what = "legacy packet load (BPF_LD ABS/IND)"
        elif cls == 0x06:
            what = "JMP32 instruction (needs -mcpu=v3)"
        elif cls == 0x01 and op & 0xE0 == 0x80:
            what = "sign-extending load (BPF_MEMSX)"
        elif cls == 0x03 and op & 0xE0 == 0xC0:
            what = "atomic instruction"
        elif cls == 0x04 and op not in (0xD4, 0xDC):
            what = "32-bit ALU instruction (SBPF v0 sign-extends where eBPF zero-extends; build without alu32)"
        elif cls == 0x07:
            code = op >> 4
            if op == 0xD7:
                what = "bswap"
            elif code == 0xB and off != 0:
                what = "sign-extending move (movsx)"
            elif code in (0x3, 0x9) and off != 0:
                what = "signed division or modulo"
        elif op == 0x8D:
            what = "callx (function pointers are not allowed)"
        elif op == 0x85 and (regs >> 4) == 2:
            what = "kfunc call"
        if what is not None:
            raise LinkError(f"{where}: instruction #{i // 8} ({text[i:i + 8].hex()}) is a {what}, which SBPF v0 lacks")
        i += 8


def link(objects: list[Path], output: Path, entry: str = "entrypoint") -> Path:
    """Link ``objects`` into the SBPF v0 shared object ``output``; return ``output``."""
    inputs = [_Input(Path(p), ELFFile(open(p, "rb"))) for p in objects]  # noqa: SIM115 - closed below
    try:
        return _link(inputs, output, entry)
    finally:
        for inp in inputs:
            inp.elf.stream.close()


def _link(inputs: list[_Input], output: Path, entry: str) -> Path:
    for inp in inputs:
        h = inp.elf.header
        if h["e_machine"] != "EM_BPF" or inp.elf.elfclass != 64 or not inp.elf.little_endian:
            raise LinkError(f"{inp.path}: not a 64-bit little-endian BPF object")
        if h["e_type"] != "ET_REL":
            raise LinkError(f"{inp.path}: not a relocatable object")

    # 1. Collect the text and read-only input sections.
    texts, rodatas = [], []
    for inp in inputs:
        for idx, sec in enumerate(inp.elf.iter_sections()):
            name, flags = sec.name, sec["sh_flags"]
            if not flags & SHF_ALLOC or name.startswith(DROPPED_PREFIXES) or sec["sh_size"] == 0:
                continue
            if flags & SHF_WRITE or sec["sh_type"] == "SHT_NOBITS":
                raise LinkError(f"{inp.path}: writable section {name} (no writable globals in a Solana program)")
            (texts if flags & SHF_EXECINSTR else rodatas).append((inp, idx, sec))

    # 2. Lay the file out: header, program headers, .text, .rodata, dynamic tables.
    n_phdrs = 4
    cursor = 64 + 56 * n_phdrs
    text_addr = cursor = _align(cursor, 8)
    for inp, idx, sec in texts:
        cursor = _align(cursor, 8)
        inp.placed[idx] = cursor
        cursor += sec["sh_size"]
    text_end = cursor
    rodata_addr = cursor = _align(cursor, 8)
    for inp, idx, sec in rodatas:
        cursor = _align(cursor, max(1, sec["sh_addralign"]))
        inp.placed[idx] = cursor
        cursor += sec["sh_size"]
    rodata_end = cursor

    image = bytearray(rodata_end)
    for inp, idx, sec in texts + rodatas:
        data = sec.data()
        image[inp.placed[idx]:inp.placed[idx] + len(data)] = data

    # 3. Symbols: defined ones get output addresses; globals are shared between objects.
    globals_: dict[str, int] = {}
    for inp in inputs:
        for sym in inp.elf.get_section_by_name(".symtab").iter_symbols():
            shndx = sym["st_shndx"]
            if sym["st_info"]["bind"] != "STB_LOCAL" and isinstance(shndx, int) and shndx in inp.placed:
                if sym.name in globals_:
                    raise LinkError(f"duplicate symbol {sym.name}")
                globals_[sym.name] = inp.placed[shndx] + sym["st_value"]

    def address_of(inp: _Input, sym) -> int | None:
        shndx = sym["st_shndx"]
        if isinstance(shndx, int) and shndx in inp.placed:
            return inp.placed[shndx] + sym["st_value"]
        if shndx == "SHN_UNDEF" and sym.name in globals_:
            return globals_[sym.name]
        return None

    # 4. Relocations.
    dyn_relocs: list[tuple[int, str]] = []  # (call instruction file offset, syscall name)
    for inp in inputs:
        symtab = inp.elf.get_section_by_name(".symtab")
        for rel_sec in inp.elf.iter_sections():
            if rel_sec["sh_type"] != "SHT_REL":
                continue
            target_idx = rel_sec["sh_info"]
            if target_idx not in inp.placed:
                continue  # relocations of a dropped section
            base = inp.placed[target_idx]
            is_text = inp.elf.get_section(target_idx)["sh_flags"] & SHF_EXECINSTR
            for rel in rel_sec.iter_relocations():
                kind, off = rel["r_info_type"], base + rel["r_offset"]
                sym = symtab.get_symbol(rel["r_info_sym"])
                addr = address_of(inp, sym)
                if kind == R_BPF_64_64:
                    if addr is None:
                        raise LinkError(f"{inp.path}: undefined data symbol {sym.name}")
                    addend = struct.unpack_from("<i", image, off + 4)[0]
                    value = MM_PROGRAM_START + addr + addend
                    struct.pack_into("<I", image, off + 4, value & 0xFFFFFFFF)
                    struct.pack_into("<I", image, off + 12, value >> 32)
                elif kind == R_BPF_64_ABS64:
                    if is_text:
                        raise LinkError(f"{inp.path}: R_BPF_64_ABS64 inside code")
                    if addr is None:
                        raise LinkError(f"{inp.path}: undefined data symbol {sym.name}")
                    addend = struct.unpack_from("<q", image, off)[0]
                    struct.pack_into("<Q", image, off, MM_PROGRAM_START + addr + addend)
                elif kind == R_BPF_64_32:
                    if image[off] != 0x85:
                        raise LinkError(f"{inp.path}: R_BPF_64_32 on a non-call instruction at {off:#x}")
                    imm = struct.unpack_from("<i", image, off + 4)[0]
                    image[off + 1] &= 0x0F  # clear src (upstream marks pseudo-calls with 1)
                    if addr is None:
                        if sym.name not in SYSCALLS:
                            raise LinkError(f"{inp.path}: undefined symbol {sym.name!r} (not a known syscall; "
                                            "no compiler-rt or libc here)")
                        struct.pack_into("<i", image, off + 4, -1)
                        dyn_relocs.append((off, sym.name))
                    else:
                        target = addr + (imm + 1) * 8
                        struct.pack_into("<i", image, off + 4, (target - off - 8) // 8)
                elif kind != R_BPF_NONE:
                    raise LinkError(f"{inp.path}: unsupported relocation type {kind} at {off:#x}")

    # Pseudo-calls resolved by the compiler itself (static functions) carry src=1 too.
    for inp, idx, _sec in texts:
        start, end = inp.placed[idx], inp.placed[idx] + _sec["sh_size"]
        i = start
        while i < end:
            if image[i] == 0x18:
                i += 16
                continue
            if image[i] == 0x85 and image[i + 1] >> 4 == 1:
                image[i + 1] &= 0x0F
            i += 8
    check_instructions(bytes(image[text_addr:text_end]))

    if entry not in globals_:
        raise LinkError(f"no global function {entry!r}")
    entry_addr = globals_[entry]
    if not text_addr <= entry_addr < text_end:
        raise LinkError(f"{entry} is not in .text")

    # 5. Dynamic tables.
    names = sorted({name for _off, name in dyn_relocs})
    dynstr = bytearray(b"\0")
    name_off = {}
    for name in names:
        name_off[name] = len(dynstr)
        dynstr += name.encode() + b"\0"
    sym_index = {name: i + 1 for i, name in enumerate(names)}
    dynsym = bytearray(24)
    for name in names:  # global, STT_NOTYPE, undefined
        dynsym += struct.pack("<IBBHQQ", name_off[name], 0x10, 0, 0, 0, 0)
    reldyn = bytearray()
    for off, name in sorted(dyn_relocs):
        reldyn += struct.pack("<QQ", off, (sym_index[name] << 32) | R_BPF_64_32)

    cursor = _align(rodata_end, 8)
    dynamic_addr = cursor
    n_dyn = 9
    cursor += 16 * n_dyn
    dynsym_addr = cursor = _align(cursor, 8)
    cursor += len(dynsym)
    dynstr_addr = cursor
    cursor += len(dynstr)
    reldyn_addr = cursor = _align(cursor, 8)
    cursor += len(reldyn)
    dyn_end = cursor
    dynamic = b"".join(struct.pack("<qQ", tag, val) for tag, val in (
        (DT_REL, reldyn_addr), (DT_RELSZ, len(reldyn)), (DT_RELENT, 16),
        (DT_SYMTAB, dynsym_addr), (DT_SYMENT, 24), (DT_STRTAB, dynstr_addr), (DT_STRSZ, len(dynstr)),
        (DT_FLAGS, DF_TEXTREL), (DT_NULL, 0)))
    assert len(dynamic) == 16 * n_dyn

    shstrtab = bytearray(b"\0")
    sections = [  # name, type, flags, addr, size, link, info, align, entsize
        (".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text_addr, text_end - text_addr, 0, 0, 8, 0),
        (".rodata", SHT_PROGBITS, SHF_ALLOC, rodata_addr, rodata_end - rodata_addr, 0, 0, 8, 0),
        (".dynamic", SHT_DYNAMIC, SHF_ALLOC | SHF_WRITE, dynamic_addr, len(dynamic), 5, 0, 8, 16),
        (".dynsym", SHT_DYNSYM, SHF_ALLOC, dynsym_addr, len(dynsym), 5, 1, 8, 24),
        (".dynstr", SHT_STRTAB, SHF_ALLOC, dynstr_addr, len(dynstr), 0, 0, 1, 0),
        (".rel.dyn", SHT_REL, SHF_ALLOC, reldyn_addr, len(reldyn), 4, 0, 8, 16),
    ]
    if rodata_end == rodata_addr:
        sections.pop(1)  # no read-only data; keep the section indices of the links right
        sections = [(n, t, f, a, s, (lk - 1 if lk else 0), info, al, es)
                    for (n, t, f, a, s, lk, info, al, es) in sections]
    shstrtab_addr = dyn_end
    name_offsets = []
    for sec in sections + [(".shstrtab",)]:
        name_offsets.append(len(shstrtab))
        shstrtab += sec[0].encode() + b"\0"
    shoff = _align(shstrtab_addr + len(shstrtab), 8)

    out = bytearray(shoff)
    out[:len(image)] = image
    out[dynamic_addr:dynamic_addr + len(dynamic)] = dynamic
    out[dynsym_addr:dynsym_addr + len(dynsym)] = dynsym
    out[dynstr_addr:dynstr_addr + len(dynstr)] = dynstr
    out[reldyn_addr:reldyn_addr + len(reldyn)] = reldyn
    out[shstrtab_addr:shstrtab_addr + len(shstrtab)] = shstrtab

    shdrs = bytearray(64)  # the null section header
    for (name, typ, flags, addr, size, lk, info, al, es), noff in zip(sections, name_offsets):
        shdrs += struct.pack("<IIQQQQIIQQ", noff, typ, flags, addr, addr, size, lk, info, al, es)
    shstrndx = len(sections) + 1
    shdrs += struct.pack("<IIQQQQIIQQ", name_offsets[-1], SHT_STRTAB, 0, 0, shstrtab_addr, len(shstrtab),
                         0, 0, 1, 0)
    out += shdrs

    phdrs = b"".join(struct.pack("<IIQQQQQQ", typ, flags, off, off, off, size, size, al) for typ, flags, off, size, al in (
        (PT_LOAD, PF_R | PF_X, text_addr, text_end - text_addr, 0x1000),
        (PT_LOAD, PF_R, rodata_addr, rodata_end - rodata_addr, 0x1000),
        (PT_LOAD, PF_R, dynamic_addr, dyn_end - dynamic_addr, 0x1000),
        (PT_DYNAMIC, PF_R | PF_W, dynamic_addr, len(dynamic), 8),
    ))
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, EM_BPF, 1, entry_addr, 64, shoff, 0, 64, 56, n_phdrs,
                                 64, len(sections) + 2, shstrndx)
    out[:64] = header
    out[64:64 + len(phdrs)] = phdrs

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_bytes(bytes(out))
    tmp.replace(output)
    return output


def main(argv: list[str] | None = None) -> int:
    """``python -m programs.escrow.link OUT.so IN.o...``"""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: link.py OUT.so IN.o [IN.o ...]", file=sys.stderr)
        return 2
    try:
        link([Path(a) for a in args[1:]], Path(args[0]))
    except LinkError as exc:
        print(f"link error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
