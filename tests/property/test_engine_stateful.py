"""Hypothesis stateful test of the engine: many agents, random command sequences with
ticks across funding boundaries and sharp price moves.

After every command: the invariants hold, and a shadow state that only ever sees the
emitted events (``apply``) hashes the same as the live one (``execute``).

A model of the RFQ book (``QuoteBook``), kept from the events alone and independent of the
engine's state, checks that every fill by "best" — an accept of the best quote or an
auto-accept, at expiry or at a target — took the best live quote by DESIGN §4's ranking
(lowest rate, then earliest, then id), and released every other quote of its RFQ.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine import commands as cmd
from engine import events as ev
from engine.apply import apply
from engine.core import execute
from engine.context import Ctx
from engine.decide import decide
from engine.invariants import check
from engine.markets import default_config
from engine.rejections import Rejected
from engine.risk import bands, liquidation
import msgspec

from engine.state import State, export_state, import_state, state_hash
from engine.units import NS_PER_HOUR, NS_PER_MS, NS_PER_S

AGENTS = ["alice", "bob", "carol", "dave", "erin", "keeper"]
START_NS = 1_767_225_600 * NS_PER_S + 5 * NS_PER_HOUR
START_PRICES_E8 = [100_000 * 10**8, 4_000 * 10**8, 200 * 10**8]
EXAMPLES = int(os.environ.get("AGENTPERP_STATEFUL_EXAMPLES", "60"))

agents = st.sampled_from(AGENTS)
markets = st.integers(0, 2)
usdc_e6 = st.integers(1, 5_000).map(lambda x: x * 1_000_000) | st.integers(1, 10**10)
rates_e9 = st.integers(-20_000_000, 20_000_000) | st.sampled_from([0, 100_000_000, -100_000_000])
time_steps_ns = st.sampled_from([0, 1, NS_PER_MS, 100 * NS_PER_MS, NS_PER_S, 2_500 * NS_PER_MS, 30 * NS_PER_S,
                                 NS_PER_HOUR, 7 * NS_PER_HOUR, 9 * NS_PER_HOUR, 17 * NS_PER_HOUR])
price_moves_bps = st.sampled_from([0, 1, -1, 50, -50, 300, -300, 600, -600, 1_500, -1_500, 4_000, -4_000])


class QuoteBook:
    """Live quotes per RFQ, from the events only: the model the fills are checked against."""

    def __init__(self):
        self.quotes: dict[int, dict[int, tuple[int, int, int]]] = {}  # rfq -> quote -> (rate, created, expires)

    def see(self, command, events) -> None:
        for e in events:
            kind = type(e)
            if kind is ev.QuoteSubmitted:
                self.quotes.setdefault(e.rfq_id, {})[e.quote_id] = (e.funding_rate_e9, e.ts_ns, e.expires_ns)
            elif kind is ev.QuoteReleased:
                del self.quotes[e.rfq_id][e.quote_id]
            elif kind is ev.RfqClosed:
                assert not self.quotes.pop(e.rfq_id, {}), f"RFQ {e.rfq_id} closed with live quotes"
            elif kind is ev.PositionOpened:
                live = self.quotes.pop(e.rfq_id, {})
                assert e.quote_id in live, f"position {e.position_id} took quote {e.quote_id}, not live"
                assert sorted(e.released_quote_ids) == sorted(set(live) - {e.quote_id}), "others not all released"
                by_best = e.auto_accepted or (type(command) is cmd.AcceptQuote and command.quote_id == cmd.BEST_QUOTE)
                if by_best:
                    ranked = sorted((rate, created, quote_id) for quote_id, (rate, created, expires) in live.items()
                                    if expires > e.ts_ns)
                    assert ranked and ranked[0][2] == e.quote_id, \
                        f"position {e.position_id} took quote {e.quote_id}, the best live was {ranked[:1]}"
                    assert e.funding_rate_e9 == ranked[0][0]


class EngineMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        config = default_config(checkpoint_every_events=40)
        self.state = State(config)
        self.shadow = State(config)
        self.now_ns = START_NS
        self.cmd_id = 0
        self.prices_e8 = list(START_PRICES_E8)
        self.client_ids: list[tuple[str, str]] = []
        self.book = QuoteBook()
        for agent in AGENTS:
            self.run(cmd.Deposit(agent, 10_000 * 1_000_000, f"seed-{agent}"))
        for market, price_e8 in enumerate(self.prices_e8):
            self.run(cmd.OracleUpdate(market, price_e8, price_e8 // 1_000, self.now_ns, "test"))

    def run(self, command):
        self.cmd_id += 1
        # The shadow is built from events alone, never from a snapshot, so its derived data
        # (indexes, safe bands) has another history: deciding against it must agree.
        expected = None if type(command) is cmd.Tick else decide(self.shadow, command, self.now_ns, self.cmd_id)
        outcome = execute(self.state, command, self.now_ns, self.cmd_id)
        if expected is not None:
            got = outcome if isinstance(outcome, Rejected) else [e for e in outcome if type(e) is not ev.Checkpoint]
            assert msgspec.msgpack.encode(got) == msgspec.msgpack.encode(expected), "the shadow decides otherwise"
        if not isinstance(outcome, Rejected):
            for event in outcome:
                apply(self.shadow, event)
            self.book.see(command, outcome)
        return outcome

    def _pick(self, ids: dict, index: int) -> int:
        keys = sorted(ids)
        return keys[index % len(keys)] if keys else 10**6

    # -- money ----------------------------------------------------------------------------

    @rule(agent=agents, amount_e6=usdc_e6, ref=st.integers(0, 30))
    def deposit(self, agent, amount_e6, ref):
        self.run(cmd.Deposit(agent, amount_e6, f"ref-{ref}"))

    @rule(agent=agents, amount_e6=usdc_e6, cid=st.integers(0, 5))
    def withdraw(self, agent, amount_e6, cid):
        self.run(cmd.Withdraw(agent, amount_e6, "wallet", f"w{cid}"))

    # -- RFQ ------------------------------------------------------------------------------

    @rule(trader=agents, market=markets, long=st.booleans(), size_usdc=st.integers(5, 20_000),
          leverage=st.integers(1, 22), max_rate_e9=rates_e9, duration=st.sampled_from(["perpetual", "1h", "24h"]),
          expires_ms=st.sampled_from([0, 1_000, 5_000, 300_000]), auto=st.booleans(),
          target_rate=st.none() | rates_e9, cid=st.none() | st.integers(0, 5))
    def request(self, trader, market, long, size_usdc, leverage, max_rate_e9, duration, expires_ms, auto, target_rate,
                cid):
        self.run(cmd.RequestQuote(trader, market, "long" if long else "short", size_usdc * 1_000_000, leverage,
                                  max_rate_e9, duration, expires_ms, "" if cid is None else f"r{cid}", auto,
                                  target_rate if auto else None))

    @rule(maker=agents, pick=st.integers(0, 50), rate_e9=rates_e9, collateral_usdc=st.integers(0, 20_000),
          valid_ms=st.sampled_from([0, 1_000, 3_000, 60_000]))
    def quote(self, maker, pick, rate_e9, collateral_usdc, valid_ms):
        rfq_id = self._pick(self.state.rfqs, pick)
        self.run(cmd.SubmitQuote(maker, rfq_id, rate_e9, collateral_usdc * 1_000_000, valid_ms))

    @rule(trader=agents, makers=st.lists(agents, min_size=1, max_size=3, unique=True), market=markets,
          long=st.booleans(), size_usdc=st.integers(10, 5_000), leverage=st.integers(1, 20),
          rates_bps=st.lists(st.integers(-30, 60), min_size=3, max_size=3), duration=st.sampled_from(["perpetual", "1h", "24h"]),
          collateral_x=st.integers(1, 20), best=st.booleans())
    def trade(self, trader, makers, market, long, size_usdc, leverage, rates_bps, duration, collateral_x, best):
        """A whole RFQ round that is meant to fill: fresh price, request, 1-3 quotes, accept."""
        self.oracle(market, 0, 10)
        outcome = self.run(cmd.RequestQuote(trader, market, "long" if long else "short", size_usdc * 1_000_000,
                                            leverage, 600_000, duration, 10_000))
        if isinstance(outcome, Rejected):
            return
        rfq_id = outcome[0].rfq_id
        quote_ids = []
        for maker, rate_bps in zip(makers, rates_bps):
            quoted = self.run(cmd.SubmitQuote(maker, rfq_id, rate_bps * 10_000,
                                              size_usdc * 1_000_000 * collateral_x // 20 + 1, 5_000))
            if not isinstance(quoted, Rejected):
                quote_ids += [e.quote_id for e in quoted if hasattr(e, "funding_rate_e9")]
        self.run(cmd.AcceptQuote(trader, rfq_id, cmd.BEST_QUOTE if best or not quote_ids else quote_ids[-1], "sig"))

    @rule(rfqs=st.lists(st.tuples(agents, agents, markets, st.booleans(), st.none() | st.integers(-10, 10)),
                        min_size=1, max_size=3), wait_ms=st.sampled_from([999, 1_000, 1_500]))
    def auto_trades(self, rfqs, wait_ms):
        """Auto-accept RFQs that fill at a target on arrival or together at their expiry."""
        for trader, maker, market, long, target_bps in rfqs:
            self.oracle(market, 0, 0)
            target = None if target_bps is None else target_bps * 100_000
            opened = self.run(cmd.RequestQuote(trader, market, "long" if long else "short", 100 * 1_000_000, 5,
                                               2_000_000, "perpetual", 1_000, "", True, target))
            if not isinstance(opened, Rejected):
                self.run(cmd.SubmitQuote(maker, opened[0].rfq_id, 0, 50 * 1_000_000, 5_000))
        self.tick(wait_ms * NS_PER_MS)

    @rule(trader=agents, makers=st.lists(agents, min_size=2, max_size=4, unique=True), market=markets,
          target_bps=st.integers(-5, 15), rates_bps=st.lists(st.integers(-10, 20), min_size=4, max_size=4),
          stale_quotes=st.integers(0, 3), replace=st.booleans())
    def auto_target_after_stale(self, trader, makers, market, target_bps, rates_bps, stale_quotes, replace):
        """An auto-accept RFQ with a target: quotes arrive while the oracle is stale (none
        can fill), then the price is refreshed and the rest arrive. The fill must take the
        best live quote, not the one arriving (issue 11, defect 1)."""
        self.oracle(market, 0, 0)
        opened = self.run(cmd.RequestQuote(trader, market, "long", 100 * 1_000_000, 5, 2_000_000, "perpetual",
                                           300_000, "", True, target_bps * 100_000))
        if isinstance(opened, Rejected):
            return
        rfq_id = opened[0].rfq_id
        age_ns = self.state.config.markets[market].oracle_age_ns_max
        self.now_ns = max(self.now_ns, self.state.oracle.publish_ns[market] + age_ns + 1)  # the price is now stale
        quoting = list(zip(makers, rates_bps))
        if replace:  # a maker re-quotes the same rate: later, so it ranks behind an equal one
            quoting.insert(stale_quotes, quoting[0])
        for index, (maker, rate_bps) in enumerate(quoting):
            if index == stale_quotes:
                self.oracle(market, 0, 0)
            self.now_ns += NS_PER_MS
            self.run(cmd.SubmitQuote(maker, rfq_id, rate_bps * 100_000, 50 * 1_000_000, 60_000))

    @rule(pick=st.integers(0, 50), best=st.booleans(), quote_pick=st.integers(0, 50), as_trader=st.booleans())
    def accept(self, pick, best, quote_pick, as_trader):
        rfq_id = self._pick(self.state.rfqs, pick)
        rfq = self.state.rfqs.get(rfq_id)
        trader = rfq.trader if rfq is not None and as_trader else "bob"
        quote_id = cmd.BEST_QUOTE if best else self._pick(self.state.quotes, quote_pick)
        self.run(cmd.AcceptQuote(trader, rfq_id, quote_id, "sig"))

    @rule(pick=st.integers(0, 50), agent=agents)
    def cancel_quote(self, pick, agent):
        self.run(cmd.CancelQuote(agent, self._pick(self.state.quotes, pick)))

    @rule(pick=st.integers(0, 50), agent=agents)
    def cancel_rfq(self, pick, agent):
        self.run(cmd.CancelRfq(agent, self._pick(self.state.rfqs, pick)))

    @rule(maker=agents)
    def end_session(self, maker):
        self.run(cmd.CancelAgentQuotes(maker))

    # -- positions ------------------------------------------------------------------------

    def _party(self, position_id: int, long: bool) -> str:
        row = self.state.position_row.get(position_id)
        if row is None:
            return "alice"
        column = self.state.positions.long_agent if long else self.state.positions.short_agent
        return self.state.agent_keys[int(column[row])]

    @rule(pick=st.integers(0, 50), long=st.booleans(), fraction_bps=st.sampled_from([1, 2_500, 5_000, 9_999, 10_000]))
    def close(self, pick, long, fraction_bps):
        position_id = self._pick(self.state.position_row, pick)
        row = self.state.position_row.get(position_id)
        if row is not None:  # a fresh price, so that closes are decided on their merits
            self.oracle(int(self.state.positions.market[row]), 0, 0)
        self.run(cmd.ClosePosition(self._party(position_id, long), position_id, fraction_bps))

    @rule(pick=st.integers(0, 50), keeper=agents)
    def liquidate(self, pick, keeper):
        candidates = self.state.flagged or self.state.position_row
        self.run(cmd.Liquidate(keeper, self._pick(candidates, pick)))

    @rule(pick=st.integers(0, 50), long=st.booleans(), amount_e6=usdc_e6, add=st.booleans())
    def margin(self, pick, long, amount_e6, add):
        position_id = self._pick(self.state.position_row, pick)
        kind = cmd.AddMargin if add else cmd.RemoveMargin
        self.run(kind(self._party(position_id, long), position_id, amount_e6))

    # -- market and time ------------------------------------------------------------------

    @rule(market=markets, move_bps=price_moves_bps, conf_bps=st.sampled_from([0, 10, 250]))
    def oracle(self, market, move_bps, conf_bps):
        price_e8 = max(1, self.prices_e8[market] * (10_000 + move_bps) // 10_000)
        self.prices_e8[market] = price_e8
        self.now_ns += 1
        self.run(cmd.OracleUpdate(market, price_e8, price_e8 * conf_bps // 10_000, self.now_ns, "test"))

    @rule(market=markets, move_bps=st.sampled_from([-5_000, -2_000, -800, 800, 2_000, 5_000]), keeper=agents,
          by_engine=st.booleans())
    def crash(self, market, move_bps, keeper, by_engine):
        """A sharp move, then liquidations by a keeper or by the engine after its grace."""
        self.oracle(market, move_bps, 0)
        if by_engine:
            self.tick(2_500 * NS_PER_MS)
        else:
            for position_id in sorted(self.state.flagged):
                self.run(cmd.Liquidate(keeper, position_id))

    @rule(step_ns=time_steps_ns)
    def tick(self, step_ns):
        self.now_ns += step_ns
        self.run(cmd.Tick())

    @invariant()
    def books_balance_and_replay_matches(self):
        if not hasattr(self, "state"):
            return
        check(self.state)
        assert state_hash(self.shadow) == state_hash(self.state), "events do not reproduce the state"
        for market, price_e8 in enumerate(self.state.oracle.price_e8):
            # Where an update may skip its sweep, the sweep would indeed find nothing.
            if price_e8 and bands.skips_sweep(self.state, market, price_e8):
                assert liquidation.watch(self.state, market, price_e8, Ctx(self.state.last_seq, 0, 0)) is None
        if self.cmd_id % 7 == 0:
            # Continue from a snapshot round trip: it must be the same state in every respect.
            restored = import_state(self.state.config, msgspec.msgpack.decode(
                msgspec.msgpack.encode(export_state(self.state))))
            assert state_hash(restored) == state_hash(self.state), "a snapshot does not restore the state"
            check(restored)
            self.state = restored


EngineMachine.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=60, deadline=None,
                                          suppress_health_check=[HealthCheck.too_slow])
TestEngine = EngineMachine.TestCase


def test_the_quote_book_model_catches_a_fill_that_is_not_the_best() -> None:
    """The model can fail: a fill of the worse of two live quotes is caught."""
    import pytest

    book = QuoteBook()
    submitted = [ev.QuoteSubmitted(1, 10, 1, quote_id=1, rfq_id=1, maker="a", funding_rate_e9=1_000_000,
                                   collateral_e6=1, fee_e6=0, expires_ns=100, client_id="", transfers=[]),
                 ev.QuoteSubmitted(2, 11, 2, quote_id=2, rfq_id=1, maker="b", funding_rate_e9=2_000_000,
                                   collateral_e6=1, fee_e6=0, expires_ns=100, client_id="", transfers=[])]
    book.see(None, submitted)
    opened = ev.PositionOpened(3, 12, 3, position_id=1, rfq_id=1, quote_id=2, market=0, long_agent="t",
                               short_agent="b", taker_side="long", size_e6=1, entry_price_e8=1, oracle_conf_e8=0,
                               oracle_publish_ns=1, funding_rate_e9=2_000_000, margin_long_e6=1, margin_short_e6=1,
                               taker_fee_e6=0, maker_fee_e6=0, duration="perpetual", expires_ns=0, signature="",
                               auto_accepted=True, released_quote_ids=[1], client_id="", transfers=[])
    with pytest.raises(AssertionError, match="the best live was"):
        book.see(cmd.SubmitQuote("b", 1, 2_000_000, 1), [opened])
