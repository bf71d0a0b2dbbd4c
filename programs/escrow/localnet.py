"""An in-process LiteSVM world with the escrow program: a real SPL Token mint and
accounts, the built ``.so``, instructions built by anchorpy from the checked-in IDL, and
Pyth PriceUpdateV2 accounts written in the receiver's real layout.

Used by the tests (``tests/escrow``) and the compute-unit benchmark
(``benchmarks/escrow_cu.py``); the fixtures it writes (mint, prices, clock) are for a
local runtime only."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from anchorpy import Context, Idl, Program, Provider, Wallet
from solana.rpc.async_api import AsyncClient
from solders.account import Account
from solders.clock import Clock
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import Transaction

IDL_PATH = Path(__file__).resolve().parent / "idl.json"
PROGRAM_ID = Keypair.from_seed(bytes([7] * 32)).pubkey()
TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
SYSTEM_PROGRAM_ID = Pubkey.from_string("11111111111111111111111111111111")
PYTH_RECEIVER_ID = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")
PRICE_UPDATE_V2_DISC = hashlib.sha256(b"account:PriceUpdateV2").digest()[:8]

START_TS = 1_767_225_600  # 2026-01-01T00:00:00Z, the chain clock the tests start at
NS = 1_000_000_000
ESCAPE_DELAY_S = 3 * 86_400
ORACLE_MAX_AGE_S = 30
MAX_DEVIATION_BPS = 200
FEEDS = [hashlib.sha256(f"feed:{m}".encode()).digest() for m in ("BTC-PERP", "ETH-PERP", "SOL-PERP")]

IDL = Idl.from_json(IDL_PATH.read_text())
ERRORS = {e.name: e.code for e in IDL.errors}


def program() -> Program:
    """anchorpy's view of the program (no network: the provider is never used)."""
    return Program(IDL, PROGRAM_ID, Provider(AsyncClient("http://127.0.0.1:1"), Wallet(Keypair())))


def config_pda() -> Pubkey:
    return Pubkey.find_program_address([b"config"], PROGRAM_ID)[0]


def agent_pda(owner: Pubkey) -> Pubkey:
    return Pubkey.find_program_address([b"agent", bytes(owner)], PROGRAM_ID)[0]


def position_pda(position_id: int) -> Pubkey:
    return Pubkey.find_program_address([b"position", position_id.to_bytes(8, "little")], PROGRAM_ID)[0]


def price_update_bytes(feed_id: bytes, price: int, conf: int, exponent: int, publish_time: int,
                       full: bool = True, posted_slot: int = 1) -> bytes:
    """A PriceUpdateV2 account as the Pyth receiver writes it (134 bytes allocated)."""
    level = b"\x01" if full else b"\x00\x05"
    message = feed_id + struct.pack("<qQiqqqQ", price, conf, exponent, publish_time, publish_time - 1, price, conf)
    data = PRICE_UPDATE_V2_DISC + bytes(Keypair.from_seed(bytes([9] * 32)).pubkey()) + level + message
    data += struct.pack("<Q", posted_slot)
    return data + bytes(134 - len(data))


class TxFailed(AssertionError):
    def __init__(self, err, logs):
        super().__init__(f"{err}\n" + "\n".join(logs))
        self.err = err
        self.logs = logs

    @property
    def custom_code(self) -> int | None:
        """The program's custom error code, if the failure is one."""
        found = re.search(r"Custom\((?:InstructionErrorCustom\()?(\d+)\)", str(self.err))
        return int(found.group(1)) if found else None


@dataclass
class Agent:
    keypair: Keypair
    token: Pubkey

    @property
    def key(self) -> Pubkey:
        return self.keypair.pubkey()

    @property
    def pda(self) -> Pubkey:
        return agent_pda(self.key)


class World:
    """One LiteSVM with the escrow program, a USDC mint, the vault and the config."""

    def __init__(self, program_path: Path, initialize: bool = True, svm: LiteSVM | None = None):
        self.svm = LiteSVM() if svm is None else svm
        self.svm.add_program_from_file(PROGRAM_ID, str(program_path))
        self.program = program()
        self.ix = self.program.instruction
        self.payer = Keypair()
        self.admin = Keypair()
        self.authority = Keypair()
        for kp in (self.payer, self.admin, self.authority):
            self.svm.airdrop(kp.pubkey(), 100 * 10**9)
        self.set_time(START_TS)
        self.mint = Keypair().pubkey()
        self.mint_authority = Keypair()
        self._set(self.mint, bytes(Mint(self.mint_authority.pubkey(), 10**15, 6, True, None)), TOKEN_PROGRAM_ID)
        self.config = config_pda()
        self.vault = Keypair().pubkey()
        self.token_account(self.vault, self.config, 0)
        self.last_cu = 0
        if initialize:
            self.initialize()

    # ---------------------------------------------------------------- fixtures
    def _set(self, key: Pubkey, data: bytes, owner: Pubkey, lamports: int | None = None) -> None:
        lamports = self.svm.minimum_balance_for_rent_exemption(len(data)) if lamports is None else lamports
        self.svm.set_account(key, Account(lamports, data, owner, False, 0))

    def token_account(self, key: Pubkey, owner: Pubkey, amount: int, mint: Pubkey | None = None) -> Pubkey:
        state = TokenAccount(mint or self.mint, owner, amount, None, TokenAccountState.Initialized, None, 0, None)
        self._set(key, bytes(state), TOKEN_PROGRAM_ID)
        return key

    def new_agent(self, usdc_e6: int = 0) -> Agent:
        kp = Keypair()
        self.svm.airdrop(kp.pubkey(), 10 * 10**9)
        token = self.token_account(Keypair().pubkey(), kp.pubkey(), usdc_e6)
        return Agent(kp, token)

    def set_time(self, unix_ts: int) -> None:
        c = self.svm.get_clock()
        self.svm.set_clock(Clock(c.slot, c.epoch_start_timestamp, c.epoch, c.leader_schedule_epoch, unix_ts))

    def now(self) -> int:
        return self.svm.get_clock().unix_timestamp

    def set_price(self, key: Pubkey, market: int, price_e8: int, conf_e8: int = 0, age_s: int = 0,
                  owner: Pubkey = PYTH_RECEIVER_ID, feed: bytes | None = None, exponent: int = -8,
                  full: bool = True) -> Pubkey:
        data = price_update_bytes(FEEDS[market] if feed is None else feed, price_e8, conf_e8, exponent,
                                  self.now() - age_s, full)
        self._set(key, data, owner)
        return key

    # ---------------------------------------------------------------- sending
    def send(self, ixs: list[Instruction], signers: list[Keypair]):
        """Send one transaction (fee paid by the test payer); raise TxFailed on failure."""
        self.svm.expire_blockhash()
        bh = self.svm.latest_blockhash()
        all_signers = [self.payer] + [s for s in signers if s.pubkey() != self.payer.pubkey()]
        tx = Transaction(all_signers, Message.new_with_blockhash(ixs, self.payer.pubkey(), bh), bh)
        result = self.svm.send_transaction(tx)
        if hasattr(result, "err"):
            raise TxFailed(result.err(), result.meta().logs())
        self.last_cu = result.compute_units_consumed()
        self.last_logs = result.logs()
        return result

    def error_of(self, ixs: list[Instruction], signers: list[Keypair]) -> int | None:
        """The custom error code a transaction fails with (it must fail)."""
        try:
            self.send(ixs, signers)
        except TxFailed as exc:
            return exc.custom_code
        raise AssertionError("the transaction succeeded but should have failed")

    # ---------------------------------------------------------------- state
    def decode(self, name: str, key: Pubkey):
        acct = self.svm.get_account(key)
        assert acct is not None, f"no account {key}"
        assert acct.owner == PROGRAM_ID
        return self.program.coder.accounts.decode(bytes(acct.data))

    def agent_state(self, agent: Agent):
        return self.decode("Agent", agent.pda)

    def position_state(self, position_id: int):
        return self.decode("Position", position_pda(position_id))

    def config_state(self):
        return self.decode("Config", self.config)

    def token_balance(self, key: Pubkey) -> int:
        return TokenAccount.from_bytes(bytes(self.svm.get_account(key).data)).amount

    # ---------------------------------------------------------------- instructions
    def initialize_ix(self, markets=None, admin: Keypair | None = None, config: Pubkey | None = None,
                      vault: Pubkey | None = None) -> Instruction:
        MarketParams = self.program.type["MarketParams"]
        if markets is None:
            markets = [MarketParams(feed_id=list(f), maintenance_bps=5000, liquidation_reward_bps=500,
                                    max_conf_bps=200, reserved=0) for f in FEEDS]
        return self.ix["initialize"](
            self.authority.pubkey(), ESCAPE_DELAY_S, ORACLE_MAX_AGE_S, MAX_DEVIATION_BPS, markets,
            ctx=Context(accounts={"admin": (admin or self.admin).pubkey(), "config": config or self.config,
                                  "usdc_mint": self.mint, "vault": vault or self.vault,
                                  "system_program": SYSTEM_PROGRAM_ID}))

    def initialize(self):
        return self.send([self.initialize_ix()], [self.admin])

    def deposit_ix(self, agent: Agent, amount: int, agent_pda_key: Pubkey | None = None,
                   owner: Pubkey | None = None) -> Instruction:
        return self.ix["deposit"](amount, ctx=Context(accounts={
            "owner": owner or agent.key, "config": self.config, "agent": agent_pda_key or agent.pda,
            "owner_token": agent.token, "vault": self.vault, "token_program": TOKEN_PROGRAM_ID,
            "system_program": SYSTEM_PROGRAM_ID}))

    def deposit(self, agent: Agent, amount: int):
        return self.send([self.deposit_ix(agent, amount)], [agent.keypair])

    def withdraw_ix(self, agent: Agent, seq: int, amount: int, authority: Pubkey | None = None,
                    destination: Pubkey | None = None, agent_pda_key: Pubkey | None = None) -> Instruction:
        return self.ix["withdraw"](seq, amount, ctx=Context(accounts={
            "owner": agent.key, "authority": authority or self.authority.pubkey(), "config": self.config,
            "agent": agent_pda_key or agent.pda, "vault": self.vault, "destination": destination or agent.token,
            "token_program": TOKEN_PROGRAM_ID}))

    def withdraw(self, agent: Agent, seq: int, amount: int):
        return self.send([self.withdraw_ix(agent, seq, amount)], [agent.keypair, self.authority])

    def lock_ix(self, position_id: int, long: Agent, short: Agent, *, seq: int = 1, market: int = 0,
                taker_is_long: bool = True, size_e6: int, entry_price_e8: int, margin_long_e6: int,
                margin_short_e6: int, fee_e6: int = 0, funding_rate_e9: int = 0, opened_ns: int | None = None,
                authority: Pubkey | None = None, position: Pubkey | None = None) -> Instruction:
        opened_ns = self.now() * NS if opened_ns is None else opened_ns
        return self.ix["lock_position"](
            position_id, seq, market, taker_is_long, size_e6, entry_price_e8, margin_long_e6, margin_short_e6,
            fee_e6, funding_rate_e9, opened_ns,
            ctx=Context(accounts={"authority": authority or self.authority.pubkey(), "config": self.config,
                                  "position": position or position_pda(position_id), "long_agent": long.pda,
                                  "short_agent": short.pda, "system_program": SYSTEM_PROGRAM_ID}))

    def lock(self, position_id: int, long: Agent, short: Agent, **kw):
        return self.send([self.lock_ix(position_id, long, short, **kw)], [self.authority])

    def _position_accounts(self, position_id: int, long: Agent, short: Agent, authority: Pubkey | None) -> dict:
        return {"authority": authority or self.authority.pubkey(), "config": self.config,
                "position": position_pda(position_id), "long_agent": long.pda, "short_agent": short.pda}

    def settle_ix(self, position_id: int, long: Agent, short: Agent, seq: int, long_to_short_e6: int,
                  until_ns: int | None = None, authority: Pubkey | None = None) -> Instruction:
        until_ns = self.now() * NS if until_ns is None else until_ns
        return self.ix["settle_funding"](seq, long_to_short_e6, until_ns,
                                         ctx=Context(accounts=self._position_accounts(position_id, long, short,
                                                                                      authority)))

    def adjust_margin_ix(self, position_id: int, long: Agent, short: Agent, seq: int, side: int, delta_e6: int,
                         authority: Pubkey | None = None) -> Instruction:
        return self.ix["adjust_margin"](seq, side, delta_e6, ctx=Context(accounts=self._position_accounts(
            position_id, long, short, authority)))

    def close_ix(self, position_id: int, long: Agent, short: Agent, seq: int, fraction_bps: int, exit_price_e8: int,
                 pnl_long_e6: int, funding_long_to_short_e6: int = 0, until_ns: int | None = None,
                 authority: Pubkey | None = None) -> Instruction:
        until_ns = self.now() * NS if until_ns is None else until_ns
        return self.ix["close_position"](seq, fraction_bps, exit_price_e8, funding_long_to_short_e6, pnl_long_e6,
                                         until_ns, ctx=Context(accounts=self._position_accounts(
                                             position_id, long, short, authority)))

    def liquidate_ix(self, position_id: int, long: Agent, short: Agent, seq: int, side: int, exit_price_e8: int,
                     pnl_long_e6: int, price_update: Pubkey, keeper: Pubkey, funding_long_to_short_e6: int = 0,
                     until_ns: int | None = None, authority: Pubkey | None = None) -> Instruction:
        until_ns = self.now() * NS if until_ns is None else until_ns
        accounts = self._position_accounts(position_id, long, short, authority)
        accounts.update(keeper=keeper, price_update=price_update)
        return self.ix["liquidate"](seq, side, exit_price_e8, funding_long_to_short_e6, pnl_long_e6, until_ns,
                                    ctx=Context(accounts=accounts))

    def emergency_close_ix(self, position_id: int, party: Pubkey, long: Agent, short: Agent,
                           price_update: Pubkey) -> Instruction:
        return self.ix["emergency_close"](ctx=Context(accounts={
            "party": party, "config": self.config, "position": position_pda(position_id), "long_agent": long.pda,
            "short_agent": short.pda, "price_update": price_update}))

    def emergency_withdraw_ix(self, agent: Agent, amount: int) -> Instruction:
        return self.ix["emergency_withdraw"](amount, ctx=Context(accounts={
            "owner": agent.key, "config": self.config, "agent": agent.pda, "vault": self.vault,
            "destination": agent.token, "token_program": TOKEN_PROGRAM_ID}))

    # ---------------------------------------------------------------- invariants
    def held_total(self, agents: list[Agent], position_ids: list[int]) -> int:
        """What the vault must hold: every agent's free and locked, plus fees and insurance.
        (Locked is the sum of the agent's open margins; the position margins are checked
        against it separately.)"""
        cfg = self.config_state()
        total = cfg.fees_e6 + cfg.insurance_e6
        for a in agents:
            s = self.agent_state(a)
            total += s.free_e6 + s.locked_e6
        locked = sum(self.agent_state(a).locked_e6 for a in agents)
        margins = 0
        for pid in position_ids:
            p = self.position_state(pid)
            margins += p.margin_long_e6 + p.margin_short_e6
        assert locked == margins, f"agents' locked {locked} != open margins {margins}"
        return total


def idl_json() -> dict:
    return json.loads(IDL_PATH.read_text())
