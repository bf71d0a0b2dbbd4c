"""Journals produced by the real engine for the settlement tests: execute commands,
encode each outcome as a record, append them to a real journal directory."""

from __future__ import annotations

from pathlib import Path

from solders.keypair import Keypair

from engine import commands as cmd
from engine.core import execute
from engine.invariants import check
from engine.markets import default_config
from engine.rejections import Rejected
from engine.state import State
from ledger.journal import Journal
from ledger.records import encode_record

USDC = 1_000_000
BASE_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z, a funding boundary
S = 10**9
H = 3_600 * S


def usd(x: float) -> int:
    return int(round(x * 10**8))


class JournalBuilder:
    """Runs commands through the engine and journals them; ``must`` asserts acceptance."""

    def __init__(self, journal_dir: Path, config=None):
        self.state = State(config or default_config())
        self.journal = Journal.open(journal_dir, fsync_policy="none")
        self.cmd_id = 0
        self.events: list = []
        self.keys: dict[str, Keypair] = {}

    def agent(self, name: str) -> str:
        kp = Keypair()
        self.keys[str(kp.pubkey())] = kp
        setattr(self, name, str(kp.pubkey()))
        return str(kp.pubkey())

    def run(self, ts_ns: int, command):
        self.cmd_id += 1
        seq_before = self.state.last_seq
        outcome = execute(self.state, command, ts_ns, self.cmd_id)
        self.journal.append_batch([encode_record(self.cmd_id, ts_ns, command, outcome, seq_before)])
        if not isinstance(outcome, Rejected):
            self.events.extend(outcome)
            check(self.state)
        return outcome

    def must(self, ts_ns: int, command):
        outcome = self.run(ts_ns, command)
        assert not isinstance(outcome, Rejected), f"{command}: {outcome}"
        return outcome

    def oracle(self, ts_ns: int, price_e8: int, market: int = 0):
        return self.must(ts_ns, cmd.OracleUpdate(market, price_e8, 0, ts_ns, "test"))

    def open(self, ts_ns: int, trader: str, maker: str, *, side="long", size_e6=1_000 * USDC, leverage=10,
             rate_e9=5_000_000, collateral_e6=100 * USDC, market=0):
        rfq = self.must(ts_ns, cmd.RequestQuote(trader, market, side, size_e6, leverage, 10**8))[0]
        self.must(ts_ns, cmd.SubmitQuote(maker, rfq.rfq_id, rate_e9, collateral_e6))
        opened = [e for e in self.must(ts_ns, cmd.AcceptQuote(trader, rfq.rfq_id)) if type(e).__name__ ==
                  "PositionOpened"]
        return opened[0].position_id

    def close(self):
        self.journal.close()


def lifecycle(journal_dir: Path) -> JournalBuilder:
    """Deposits, opens, margin added (both sides) and removed, two funding boundaries, an
    oracle source switch, a partial and a full close, a liquidation by a keeper and one by the engine, a withdrawal;
    one position left open."""
    j = JournalBuilder(journal_dir)
    for name, amount in (("trader", 1_000), ("maker", 2_000), ("keeper", 10), ("c", 500), ("d", 500),
                         ("e", 500), ("f", 500)):
        j.must(BASE_NS + S, cmd.Deposit(j.agent(name), amount * USDC, f"faucet:{name}"))
    t = BASE_NS + 7 * H
    j.oracle(t, usd(65_000))
    p1 = j.open(t, j.trader, j.maker)  # trader long 1000 @10x, maker short, 0.5%/8h
    p4 = j.open(t, j.maker, j.trader, side="short", size_e6=400 * USDC, leverage=5, rate_e9=-2_000_000,
                collateral_e6=50 * USDC)  # stays open to the end
    j.must(t + S, cmd.AddMargin(j.trader, p1, 30 * USDC))  # long side of p1: 100 -> 130
    j.must(t + 2 * S, cmd.AddMargin(j.maker, p4, 15 * USDC))  # short side of p4: 80 -> 95
    j.must(BASE_NS + 8 * H, cmd.Tick())  # funding boundary
    t = BASE_NS + 9 * H
    j.oracle(t, usd(66_000))
    # the feed fails over (an audit event: the settlement projection passes it by)
    j.must(t + S // 4, cmd.SwitchOracleSource(0, "pyth", "ccxt", "stale"))
    j.must(t + S // 2, cmd.RemoveMargin(j.trader, p1, 10 * USDC))  # in profit: within the initial requirement
    j.must(t + S, cmd.ClosePosition(j.trader, p1, 4_000))  # partial close, 1h accrued funding first
    j.oracle(t + 2 * S, usd(64_000))
    j.must(t + 3 * S, cmd.ClosePosition(j.maker, p1))  # full close
    # keeper liquidation: c long at 20x, price falls
    t = BASE_NS + 10 * H
    j.oracle(t, usd(65_000))
    p2 = j.open(t, j.c, j.d, leverage=20, rate_e9=1_000_000)
    j.oracle(t + S, usd(63_000))
    j.must(t + S + 500_000_000, cmd.Liquidate(j.keeper, p2))
    # engine liquidation: e long at 20x, price falls, 2 s later a tick liquidates it
    t = BASE_NS + 11 * H
    j.oracle(t, usd(65_000))
    j.open(t, j.e, j.f, leverage=20, rate_e9=0)
    j.oracle(t + S, usd(63_000))
    j.must(t + 4 * S, cmd.Tick())
    j.must(t + 5 * S, cmd.Withdraw(j.trader, 500 * USDC, j.trader))
    j.must(BASE_NS + 16 * H, cmd.Tick())  # second boundary: only p4 is open
    j.close()
    return j
