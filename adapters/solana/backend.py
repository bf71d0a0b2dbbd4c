"""The one interface the settlement projection, the deposit watcher and reconcile talk to;
``backend_litesvm.LiteSvmBackend`` (embedded) and ``backend_rpc.RpcBackend`` (a cluster)
implement it.

Sending is split in two so the projection can record a transaction's signature durably
before the transaction can land (``build`` signs, ``submit`` sends and confirms).
Transient trouble (network, rate limits, an expired blockhash) raises ``TransientError``;
everything the program or runtime refuses comes back as a failed ``TxOutcome`` — those are
deterministic and retrying them cannot help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from adapters.solana.escrow import ChainAgent, ChainConfig, ChainPosition, EscrowProgram


class TransientError(Exception):
    """Worth retrying with back-off: nothing was decided by the chain."""


class Unmirrorable(Exception):
    """This event cannot be reproduced on this chain (say why); see README "not mirrored"."""


@dataclass(frozen=True)
class Built:
    """A signed transaction ready to submit. ``last_valid_block_height`` None: the
    backend has no expiry (LiteSVM)."""

    tx: Transaction
    signature: Signature
    last_valid_block_height: int | None = None


@dataclass(frozen=True)
class TxOutcome:
    signature: str
    ok: bool
    error: str = ""  # the runtime's error, as text
    custom_code: int | None = None  # the program's error code when the failure is one
    logs: list[str] = field(default_factory=list)
    compute_units: int = 0


@dataclass(frozen=True)
class DepositSeen:
    """An escrow ``deposit`` found on chain: who, how much, and its signature."""

    signature: str
    owner: str
    amount_e6: int
    slot: int


_CUSTOM = re.compile(r"Custom\((?:InstructionErrorCustom\()?(\d+)\)")


def custom_code_of(error_text: str) -> int | None:
    """The program's custom error code inside a runtime error's text, if any."""
    found = _CUSTOM.search(error_text)
    return int(found.group(1)) if found else None


class SignatureStatus:
    LANDED_OK = "landed_ok"
    LANDED_FAILED = "landed_failed"
    NEVER = "never"  # not found and can no longer land: safe to send again
    UNKNOWN = "unknown"  # not found yet, might still land


class Backend(Protocol):
    escrow: EscrowProgram
    authority: Keypair  # the venue's settlement key (config.authority)
    payer: Keypair  # pays transaction fees and rent for position PDAs' system transfers
    vault: Pubkey

    async def chain_id(self) -> str:
        """An identity of the chain instance (a checkpoint from another chain is void)."""

    def signer_for(self, owner: Pubkey) -> Keypair | None:
        """The agent's keypair when the venue holds it (dev keyring), else None."""

    async def build(self, ixs: list[Instruction], signers: list[Keypair],
                    unsigned: list[Pubkey] = ()) -> Built: ...

    async def submit(self, built: Built) -> TxOutcome: ...

    async def signature_status(self, signature: str, last_valid_block_height: int | None) -> str: ...

    async def set_time(self, ts_ns: int) -> None:
        """Embedded chain: move its clock to the event's time. A cluster: nothing."""

    async def get_raw_accounts(self, keys: list[Pubkey]) -> list[tuple[Pubkey, bytes] | None]:
        """(owner, data) of each account, None where it does not exist."""

    async def token_balance(self, key: Pubkey) -> int: ...

    async def deposit_on_chain(self, ref: str) -> bool:
        """True if ``ref`` is the signature of a successful escrow deposit on this chain."""

    async def dev_deposit_landed(self, seq: int) -> bool:
        """True if the mirrored deposit of the journal event ``seq`` is on chain."""

    async def dev_deposit(self, owner: Pubkey, amount_e6: int, seq: int) -> tuple[list[Instruction],
                                                                                  list[Keypair], list[Pubkey]]:
        """Instructions (and signers, and signers the venue lacks) that mirror a deposit
        the chain never saw (a faucet credit), marked with ``seq``; raise Unmirrorable
        where impossible."""

    async def withdraw_destination(self, owner: Pubkey, destination: str) -> tuple[Pubkey, list[Instruction]]:
        """The token account a withdrawal pays into, and instructions that create it."""

    async def post_price(self, market: int, price_e8: int, conf_e8: int, publish_ns: int) -> None:
        """Keep ``market``'s oracle account at the venue's oracle price (embedded chain);
        a cluster's Pyth push oracle does it there (nothing)."""

    async def price_account(self, market: int, price_e8: int, publish_ns: int) -> Pubkey:
        """The Pyth PriceUpdateV2 account the program reads for ``market``."""

    # A dev chain's (LiteSVM, an RPC dev chain): the demo agents' own deposits.
    async def dev_fund(self, owner: Pubkey, amount_e6: int) -> Pubkey:
        """The dev chain's faucet: SOL for ``owner``'s fees and rent and ``amount_e6`` of test
        USDC minted into its token account (returned)."""

    async def send_as(self, ixs: list[Instruction], payer: Keypair) -> TxOutcome:
        """A transaction of ``payer``'s own (signed and paid by it), sent and confirmed."""


async def read_agents(backend: Backend, owners: list[Pubkey]) -> list[ChainAgent | None]:
    keys = [backend.escrow.agent_pda(o) for o in owners]
    out: list[ChainAgent | None] = []
    for raw in await backend.get_raw_accounts(keys):
        out.append(None if raw is None or raw[0] != backend.escrow.program_id else backend.escrow.decode_agent(raw[1]))
    return out


async def read_positions(backend: Backend, position_ids: list[int]) -> list[ChainPosition | None]:
    keys = [backend.escrow.position_pda(p) for p in position_ids]
    out: list[ChainPosition | None] = []
    for raw in await backend.get_raw_accounts(keys):
        out.append(None if raw is None or raw[0] != backend.escrow.program_id
                   else backend.escrow.decode_position(raw[1]))
    return out


async def read_config(backend: Backend) -> ChainConfig | None:
    raw = (await backend.get_raw_accounts([backend.escrow.config]))[0]
    return None if raw is None else backend.escrow.decode_config(raw[1])
