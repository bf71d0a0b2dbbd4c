"""The escrow program as seen from the venue: addresses (PDAs), instructions built by
anchorpy from the program's IDL, and account decoding.

Pure: nothing here talks to a chain. ``EscrowProgram(program_id, idl)`` works for any
deployment (the embedded LiteSVM one or a cluster's); the backends in
``adapters.solana.backend_*`` send what it builds. The IDL is data the adapter is given
(``venue.settlement`` reads the checked-in one of ``programs/escrow``): adapters never import
``programs`` (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from anchorpy import Context, Idl, Program, Provider, Wallet
from solana.rpc.async_api import AsyncClient
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
PYTH_RECEIVER_ID = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")

# Errors of the program the projection acts on, by their IDL names (codes: ``EscrowProgram.errors``).
ALREADY_APPLIED = "AlreadyApplied"
POSITION_EXISTS = "PositionExists"
POSITION_NOT_OPEN = "PositionNotOpen"


def load_idl(path: Path | str) -> Idl:
    """The program's IDL (anchor JSON) from ``path``."""
    return Idl.from_json(Path(path).read_text())

SIDE_LONG = 1  # the program's `side` argument of liquidate and adjust_margin
SIDE_SHORT = 2
STATUS_OPEN = 1
STATUS_CLOSED = 2
STATUS_LIQUIDATED = 3
STATUS_EMERGENCY_CLOSED = 4


@dataclass(frozen=True)
class ChainAgent:
    owner: Pubkey
    free_e6: int
    locked_e6: int
    last_withdraw_seq: int
    open_positions: int


@dataclass(frozen=True)
class ChainPosition:
    position_id: int
    long_owner: Pubkey
    short_owner: Pubkey
    market: int
    size_e6: int
    entry_price_e8: int
    margin_long_e6: int
    margin_short_e6: int
    last_seq: int
    last_funding_ns: int
    status: int
    last_settled_ts: int = 0  # chain time (s) the venue last touched it: the escape hatch's clock
    funding_rate_e9: int = 0
    taker_is_long: bool = True


@dataclass(frozen=True)
class ChainConfig:
    authority: Pubkey
    usdc_mint: Pubkey
    vault: Pubkey
    fees_e6: int
    insurance_e6: int
    bad_debt_e6: int
    total_deposited_e6: int
    total_withdrawn_e6: int
    escape_delay_s: int = 0  # venue silence after which a party may act alone
    oracle_max_age_s: int = 0


def decode_price_update(data: bytes) -> tuple[int, int, int, int]:
    """(price, conf, exponent, publish_time_s) of a Pyth ``PriceUpdateV2`` account (the
    receiver's layout: discriminator, write authority, verification level — 1 byte when
    full, 2 when partial — then the price feed message)."""
    import struct

    at = 8 + 32
    at += 1 if data[at] == 1 else 2
    price, conf, exponent, publish_time = struct.unpack_from("<qQiq", data, at + 32)
    return price, conf, exponent, publish_time


def pubkey_of(agent: str) -> Pubkey:
    """An engine agent id (base58 Solana pubkey) as a Pubkey; ValueError if it is not one."""
    return Pubkey.from_string(agent)


class EscrowProgram:
    """Instruction builders and decoders for one deployment of the escrow program."""

    def __init__(self, program_id: Pubkey, idl: Idl):
        self.program_id = program_id
        self.idl = idl
        self.errors: dict[str, int] = {e.name: e.code for e in idl.errors}
        self.error_names: dict[int, str] = {code: name for name, code in self.errors.items()}
        # anchorpy wants a provider; it is never used (we only build and decode).
        self._program = Program(idl, program_id, Provider(AsyncClient("http://127.0.0.1:1"), Wallet(Keypair())))
        self._ix = self._program.instruction
        self._coder = self._program.coder.accounts
        self.config = Pubkey.find_program_address([b"config"], program_id)[0]
        self._agent_pda = lru_cache(maxsize=65_536)(self._find_agent)
        self._position_pda = lru_cache(maxsize=65_536)(self._find_position)

    # ------------------------------------------------------------------ addresses
    def _find_agent(self, owner: Pubkey) -> Pubkey:
        return Pubkey.find_program_address([b"agent", bytes(owner)], self.program_id)[0]

    def _find_position(self, position_id: int) -> Pubkey:
        return Pubkey.find_program_address([b"position", position_id.to_bytes(8, "little")], self.program_id)[0]

    def agent_pda(self, owner: Pubkey) -> Pubkey:
        return self._agent_pda(owner)

    def position_pda(self, position_id: int) -> Pubkey:
        return self._position_pda(position_id)

    # ------------------------------------------------------------------ instructions
    def deposit(self, owner: Pubkey, owner_token: Pubkey, vault: Pubkey, amount_e6: int) -> Instruction:
        return self._ix["deposit"](amount_e6, ctx=Context(accounts={
            "owner": owner, "config": self.config, "agent": self.agent_pda(owner), "owner_token": owner_token,
            "vault": vault, "token_program": TOKEN_PROGRAM_ID, "system_program": SYSTEM_PROGRAM_ID}))

    def withdraw(self, authority: Pubkey, owner: Pubkey, vault: Pubkey, destination: Pubkey, seq: int,
                 amount_e6: int) -> Instruction:
        return self._ix["withdraw"](seq, amount_e6, ctx=Context(accounts={
            "owner": owner, "authority": authority, "config": self.config, "agent": self.agent_pda(owner),
            "vault": vault, "destination": destination, "token_program": TOKEN_PROGRAM_ID}))

    def lock_position(self, authority: Pubkey, *, position_id: int, seq: int, market: int, taker_is_long: bool,
                      long_owner: Pubkey, short_owner: Pubkey, size_e6: int, entry_price_e8: int,
                      margin_long_e6: int, margin_short_e6: int, fee_e6: int, funding_rate_e9: int,
                      opened_ns: int) -> Instruction:
        return self._ix["lock_position"](
            position_id, seq, market, taker_is_long, size_e6, entry_price_e8, margin_long_e6, margin_short_e6,
            fee_e6, funding_rate_e9, opened_ns,
            ctx=Context(accounts={"authority": authority, "config": self.config,
                                  "position": self.position_pda(position_id),
                                  "long_agent": self.agent_pda(long_owner), "short_agent": self.agent_pda(short_owner),
                                  "system_program": SYSTEM_PROGRAM_ID}))

    def _position_accounts(self, authority: Pubkey, position_id: int, long_owner: Pubkey, short_owner: Pubkey):
        return {"authority": authority, "config": self.config, "position": self.position_pda(position_id),
                "long_agent": self.agent_pda(long_owner), "short_agent": self.agent_pda(short_owner)}

    def settle_funding(self, authority: Pubkey, position_id: int, long_owner: Pubkey, short_owner: Pubkey, *,
                       seq: int, long_to_short_e6: int, until_ns: int) -> Instruction:
        return self._ix["settle_funding"](seq, long_to_short_e6, until_ns, ctx=Context(
            accounts=self._position_accounts(authority, position_id, long_owner, short_owner)))

    def adjust_margin(self, authority: Pubkey, position_id: int, long_owner: Pubkey, short_owner: Pubkey, *,
                      seq: int, side: int, delta_e6: int) -> Instruction:
        """``side`` SIDE_LONG/SIDE_SHORT; ``delta_e6`` > 0 free -> margin, < 0 margin -> free."""
        return self._ix["adjust_margin"](seq, side, delta_e6, ctx=Context(
            accounts=self._position_accounts(authority, position_id, long_owner, short_owner)))

    def close_position(self, authority: Pubkey, position_id: int, long_owner: Pubkey, short_owner: Pubkey, *,
                       seq: int, fraction_bps: int, exit_price_e8: int, funding_long_to_short_e6: int,
                       pnl_long_e6: int, until_ns: int) -> Instruction:
        return self._ix["close_position"](seq, fraction_bps, exit_price_e8, funding_long_to_short_e6, pnl_long_e6,
                                          until_ns, ctx=Context(accounts=self._position_accounts(
                                              authority, position_id, long_owner, short_owner)))

    def liquidate(self, authority: Pubkey, position_id: int, long_owner: Pubkey, short_owner: Pubkey, *,
                  seq: int, side: int, exit_price_e8: int, funding_long_to_short_e6: int, pnl_long_e6: int,
                  until_ns: int, keeper: Pubkey | None, price_update: Pubkey) -> Instruction:
        """``keeper`` None: the engine liquidated, the reward goes to the insurance fund
        (the program takes the config account in the keeper's place)."""
        accounts = self._position_accounts(authority, position_id, long_owner, short_owner)
        accounts.update(keeper=self.config if keeper is None else self.agent_pda(keeper), price_update=price_update)
        return self._ix["liquidate"](seq, side, exit_price_e8, funding_long_to_short_e6, pnl_long_e6, until_ns,
                                     ctx=Context(accounts=accounts))

    def emergency_close(self, party: Pubkey, position_id: int, long_owner: Pubkey, short_owner: Pubkey,
                        price_update: Pubkey) -> Instruction:
        """The escape hatch: ``party`` (a signer, either owner) closes the position alone at the
        price in ``price_update`` (Pyth PriceUpdateV2), once the venue has left it untouched
        for the config's ``escape_delay_s``."""
        return self._ix["emergency_close"](ctx=Context(accounts={
            "party": party, "config": self.config, "position": self.position_pda(position_id),
            "long_agent": self.agent_pda(long_owner), "short_agent": self.agent_pda(short_owner),
            "price_update": price_update}))

    def initialize(self, admin: Pubkey, authority: Pubkey, usdc_mint: Pubkey, vault: Pubkey, *,
                   escape_delay_s: int, oracle_max_age_s: int, max_deviation_bps: int,
                   feeds: list[bytes], maintenance_bps: int = 5_000, liquidation_reward_bps: int = 500,
                   max_conf_bps: int = 200) -> Instruction:
        MarketParams = self._program.type["MarketParams"]
        markets = [MarketParams(feed_id=list(f), maintenance_bps=maintenance_bps,
                                liquidation_reward_bps=liquidation_reward_bps, max_conf_bps=max_conf_bps,
                                reserved=0) for f in feeds]
        return self._ix["initialize"](authority, escape_delay_s, oracle_max_age_s, max_deviation_bps, markets,
                                      ctx=Context(accounts={"admin": admin, "config": self.config,
                                                            "usdc_mint": usdc_mint, "vault": vault,
                                                            "system_program": SYSTEM_PROGRAM_ID}))

    # ------------------------------------------------------------------ decoding
    def decode_agent(self, data: bytes) -> ChainAgent:
        a = self._coder.decode(data)
        return ChainAgent(a.owner, a.free_e6, a.locked_e6, a.last_withdraw_seq, a.open_positions)

    def decode_position(self, data: bytes) -> ChainPosition:
        p = self._coder.decode(data)
        return ChainPosition(p.position_id, p.long_owner, p.short_owner, p.market, p.size_e6, p.entry_price_e8,
                             p.margin_long_e6, p.margin_short_e6, p.last_seq, p.last_funding_ns, p.status,
                             p.last_settled_ts, p.funding_rate_e9, bool(p.taker_is_long))

    def decode_config(self, data: bytes) -> ChainConfig:
        c = self._coder.decode(data)
        return ChainConfig(c.authority, c.usdc_mint, c.vault, c.fees_e6, c.insurance_e6, c.bad_debt_e6,
                           c.total_deposited_e6, c.total_withdrawn_e6, c.escape_delay_s, c.oracle_max_age_s)

    def instruction_name(self, data: bytes) -> str | None:
        """The IDL name of an instruction of this program from its data (None if unknown)."""
        try:
            return self._program.coder.instruction.parse(data).name
        except Exception:  # noqa: BLE001 - any undecodable data is "not ours"
            return None
