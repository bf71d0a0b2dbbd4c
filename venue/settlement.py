"""The escrow program's files, handed to the settlement adapter (DESIGN §2: ``adapters``
never import ``programs``; ``venue`` wires everything).

``programs/escrow`` owns the program: its IDL (checked in), its build (the ``.so``) and the
LiteSVM world that loads it. ``adapters/solana`` is given them as data: an ``EscrowProgram``
(program id + IDL), a world, and the dev oracle's account bytes.
"""

from __future__ import annotations

from pathlib import Path

from anchorpy import Idl
from solders.keypair import Keypair
from solders.litesvm import LiteSVM

from adapters.solana.backend_litesvm import LiteSvmBackend
from adapters.solana.escrow import EscrowProgram, load_idl
from programs.escrow import localnet


def escrow_idl() -> Idl:
    """The escrow program's IDL (``programs/escrow/idl.json``)."""
    return load_idl(localnet.IDL_PATH)


def escrow_program(program_id=localnet.PROGRAM_ID) -> EscrowProgram:
    """Instruction builders for the escrow program deployed at ``program_id``."""
    return EscrowProgram(program_id, escrow_idl())


def dev_price_account(market: int, price_e8: int, publish_ns: int, conf_e8: int = 0) -> bytes | None:
    """The embedded chain's PriceUpdateV2 account of ``market`` (None: no dev feed for it)."""
    if market >= len(localnet.FEEDS):
        return None
    return localnet.price_update_bytes(localnet.FEEDS[market], price_e8, conf_e8, -8, publish_ns // 1_000_000_000)


def litesvm_backend(program_path: Path | None = None, *, keyring: dict[str, Keypair] | None = None,
                    sigverify: bool = False, cls: type[LiteSvmBackend] = LiteSvmBackend) -> LiteSvmBackend:
    """A fresh embedded chain with the built program (``program_path``; built now when None)
    loaded and its config initialized."""
    if program_path is None:
        from programs.escrow.build import build
        program_path = build()
    world = localnet.World(program_path, svm=LiteSVM().with_sigverify(sigverify))
    return cls(world, escrow_program(), dev_price_account, keyring)
