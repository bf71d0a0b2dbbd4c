"""The checked-in IDL and the C program agree: discriminators, account sizes, error codes.
(Every instruction in the other tests is built by anchorpy from this IDL.)"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from programs.escrow.localnet import IDL, program

LAYOUT_H = (Path(__file__).resolve().parents[2] / "programs" / "escrow" / "src" / "layout.h").read_text()


def c_constants(prefix: str) -> dict[str, int]:
    return {name: int(value, 16) for name, value in re.findall(rf"#define {prefix}(\w+) 0x([0-9a-f]+)ULL", LAYOUT_H)}


def snake_upper(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def test_instruction_discriminators_match_anchor_and_the_program():
    coder = program().coder.instruction
    constants = c_constants("IX_")
    assert len(constants) == len(IDL.instructions)
    for ix in IDL.instructions:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", ix.name).lower()
        expected = hashlib.sha256(f"global:{snake}".encode()).digest()[:8]
        assert coder.sighashes[snake] == expected
        assert constants[snake.upper()] == int.from_bytes(expected, "little"), ix.name


def test_account_discriminators_and_sizes():
    coder = program().coder.accounts
    constants = c_constants("DISC_")
    sizes = dict(re.findall(r"STATIC_ASSERT\(sizeof\((\w+)\) == (\d+)", LAYOUT_H))
    for account in IDL.accounts:
        disc = hashlib.sha256(f"account:{account.name}".encode()).digest()[:8]
        assert coder.acc_name_to_discriminator[account.name] == disc
        assert constants[snake_upper(account.name)] == int.from_bytes(disc, "little")
        assert 8 + coder._accounts_layout[account.name].sizeof() == int(sizes[account.name]), account.name


def test_error_codes_match_the_program():
    body = LAYOUT_H.split("enum {", 1)[1].split("};", 1)[0]
    c_errors = re.findall(r"^\s*(ERR_\w+)", body, flags=re.M)
    assert [e.code for e in IDL.errors] == list(range(6000, 6000 + len(c_errors)))
    for c_name, idl_error in zip(c_errors, IDL.errors):
        words = c_name[len("ERR_"):].split("_")
        assert snake_upper(idl_error.name).startswith("_".join(words)), (c_name, idl_error.name)
