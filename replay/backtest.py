"""``backtest``: a market-making strategy against the recorded flow of a journal.

The recorded commands are re-decided in order with ``engine.core.execute`` into a fresh
state (ids translated, ``replay.redecide``); the strategy's agent is credited by a
``Deposit`` before the first command; right after each ``RequestQuote`` that opens an RFQ
the strategy is asked for a quote, and its ``SubmitQuote`` is executed at the same
``ts_ns``. Its quotes then compete with the recorded ones under the venue's own ranking
(an ``AcceptQuote`` of the best quote takes the lowest rate, then the earliest); a
recorded accept of a *specific* quote keeps its choice. Recorded traders close their
positions when they did in the journal, so a position the strategy won closes then; funding
settles at the boundaries and liquidations happen as the engine decides.

Deterministic: the same journal, strategy and seed give the same result, bit for bit.
Equity (free + held + margins + unrealised PnL at the last price, micro-USDC) is sampled at
every Tick; the worst drawdown is the largest fall from a running peak. A strategy that
hedges off the venue (``hedge_pnl``, ``protocol.strategy``: the arbitrage maker) has its
hedge's PnL — cost at each fill, funding, mark-to-market — added to every sample, so the
curve, drawdown and PnL are those of the hedged book; ``venue_pnl_e6`` and ``hedge_pnl_e6``
are its two legs, ``pnl_e6`` their sum.
"""

from __future__ import annotations

import importlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine import commands as cmd
from engine import events as ev
from engine import views
from engine.markets import EngineConfig
from engine.risk import formulas
from engine.state import OPEN
from protocol.strategy import HedgePnl
from replay.errors import ReplayError
from replay.rebuild import progress_bar
from replay.redecide import Redecider
from replay.source import ReplayJournal, gc_paused
from replay.whatif import Tally

AGENT_DEFAULT = "backtest-maker"
DEPOSIT_E6_DEFAULT = 1_000_000 * 1_000_000  # 1 000 000 USDC


def load_strategy(spec: str, seed: int):
    """``"module:Class"`` -> ``Class(seed=seed)``."""
    module_name, sep, class_name = spec.partition(":")
    if not sep:
        raise ReplayError(f"--strategy {spec!r}: expected module:Class, e.g. replay.strategies:SpreadMaker")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ReplayError(f"--strategy {spec!r}: {exc}") from None
    return cls(seed=seed)


@dataclass
class BacktestResult:
    directory: str
    strategy: str
    seed: int
    agent: str
    deposit_e6: int
    rfqs_seen: int
    quotes_submitted: int
    quotes_rejected: dict[str, int]  # rejection code -> count
    fills: int
    fill_volume_e6: int
    realized_pnl_e6: int
    unrealized_pnl_e6: int
    funding_e6: int  # funding earned (+) or paid (-)
    fees_e6: int
    liquidated: int
    venue_pnl_e6: int  # venue equity at the end - deposit
    hedge_pnl_e6: int  # the off-venue hedge's total (0 for a strategy without one)
    hedge_cost_e6: int  # of which fees + price impact paid (>= 0)
    hedge_funding_e6: int  # of which the exchange's funding received (+) or paid (-)
    pnl_e6: int  # venue + hedge
    max_drawdown_e6: int
    open_positions: int
    commands: int
    seconds: float
    equity_ns: list[int] = field(default_factory=list, repr=False)
    equity_e6: list[int] = field(default_factory=list, repr=False)
    figure: str | None = None

    def to_dict(self, curve: bool = False) -> dict:
        out = asdict(self)
        if not curve:
            out.pop("equity_ns")
            out.pop("equity_e6")
        out["samples"] = len(self.equity_e6)
        return out


def _equity(state, agent_row: int, open_ids: set[int]) -> int:
    a, p = state.agents.v, state.positions.v
    total = a.free_e6[agent_row] + a.held_e6[agent_row]
    for position_id in open_ids:
        row = state.position_row.get(position_id)
        if row is None or p.status[row] != OPEN:
            continue
        price_e8 = state.oracle.price_e8[p.market[row]]
        pnl = int(formulas.pnl_long_e6(p.size_e6[row], p.entry_price_e8[row], price_e8)) if price_e8 else 0
        if p.long_agent[row] == agent_row:
            total += p.margin_long_e6[row] + pnl
        else:
            total += p.margin_short_e6[row] - pnl
    return total


def backtest(path: Path | str, strategy, config: EngineConfig | None = None, *, seed: int = 0,
             agent: str = AGENT_DEFAULT, deposit_e6: int = DEPOSIT_E6_DEFAULT, figure: Path | str | None = None,
             progress: bool | None = False) -> BacktestResult:
    """Run ``strategy`` (an instance, or ``"module:Class"`` built with ``seed``) over ``path``."""
    name = strategy if isinstance(strategy, str) else f"{type(strategy).__module__}:{type(strategy).__qualname__}"
    if isinstance(strategy, str):
        strategy = load_strategy(strategy, seed)
    journal = ReplayJournal(path)
    config = journal.config(config)  # the journal's own; ``config`` only for one without genesis
    world = Redecider(config)
    tally = Tally()
    strategy.on_start(config, agent)
    on_event = strategy.on_event
    hedge_pnl = getattr(strategy, "hedge_pnl", None) or _unhedged
    rfqs_seen = submitted = fills = volume = 0
    rejected: dict[str, int] = {}
    open_ids: set[int] = set()
    curve_ns: list[int] = []
    curve_e6: list[int] = []
    started = time.perf_counter()
    commands = 0
    agent_row = -1
    with gc_paused(), progress_bar(journal.last_seq, "backtest", progress) as bar:
        for batch in journal.record_batches():
            for record in batch:
                ts_ns = record.ts_ns
                if commands == 0:
                    tally.add(world.run(cmd.Deposit(agent, deposit_e6, "backtest-deposit"), ts_ns))
                    agent_row = world.state.agent_row[agent]
                commands += 1
                outcome = world.replay(record.command, ts_ns, None, record.events)
                own = [outcome] if type(outcome) is list else []
                if type(record.command) is cmd.RequestQuote and own and own[0] and type(own[0][0]) is ev.RfqOpened:
                    opened = own[0][0]
                    rfqs_seen += 1
                    intent = strategy.on_rfq(_rfq_view(opened), world.state.oracle.price_e8[opened.market], ts_ns)
                    if intent is not None:
                        submitted += 1
                        quoted = world.run(cmd.SubmitQuote(agent, opened.rfq_id, int(intent.funding_rate_e9),
                                                           int(intent.collateral_e6), int(intent.valid_for_ms)), ts_ns)
                        if type(quoted) is list:
                            own.append(quoted)
                        else:
                            rejected[quoted.code] = rejected.get(quoted.code, 0) + 1
                for events in own:
                    tally.add(events)
                    for e in events:
                        on_event(e, ts_ns)
                        if type(e) is ev.PositionOpened and agent in (e.long_agent, e.short_agent):
                            fills += 1
                            volume += e.size_e6
                            open_ids.add(e.position_id)
                            strategy.on_fill(views.position(world.state, e.position_id), ts_ns)
                if type(outcome) is not list:
                    tally.add(outcome)
                if type(record.command) is cmd.Tick:
                    curve_ns.append(ts_ns)
                    curve_e6.append(_equity(world.state, agent_row, open_ids) + hedge_pnl(ts_ns).total_e6)
                    open_ids = {p for p in open_ids if p in world.state.position_row}
            bar.update(min(record.last_seq, bar.total) - bar.n)
            del batch, record  # freed before the next batch decodes (replay.source._decoded_batches)
    if commands == 0:
        raise ReplayError(f"{journal.directory} holds no record to backtest")
    state = world.state
    tally.finish(state)
    mine = tally._agent(agent)
    end_equity = _equity(state, agent_row, open_ids)
    hedge = hedge_pnl(ts_ns)
    curve_ns.append(curve_ns[-1] if curve_ns else 0)
    curve_e6.append(end_equity + hedge.total_e6)
    peak, worst = deposit_e6, 0
    for value in curve_e6:
        peak = max(peak, value)
        worst = max(worst, peak - value)
    unrealized = end_equity - (state.agents.v.free_e6[agent_row] + state.agents.v.held_e6[agent_row]) - sum(
        p.margin_long_e6 if p.long_agent == agent else p.margin_short_e6 for p in views.positions(state, agent=agent))
    result = BacktestResult(
        str(journal.directory), name, seed, agent, deposit_e6, rfqs_seen, submitted, rejected, fills, volume,
        mine.realized_pnl_e6, unrealized, mine.funding_e6, mine.fees_e6, mine.liquidated,
        venue_pnl_e6=end_equity - deposit_e6, hedge_pnl_e6=hedge.total_e6, hedge_cost_e6=hedge.cost_e6,
        hedge_funding_e6=hedge.funding_e6, pnl_e6=end_equity - deposit_e6 + hedge.total_e6, max_drawdown_e6=worst,
        open_positions=len(views.positions(state, agent=agent)), commands=commands,
        seconds=time.perf_counter() - started, equity_ns=curve_ns, equity_e6=curve_e6)
    if figure is not None:
        result.figure = str(plot_equity(result, figure))
    return result


def _unhedged(now_ns: int) -> HedgePnl:
    return HedgePnl(0, 0, 0)


def _rfq_view(e: ev.RfqOpened) -> views.RfqView:
    return views.RfqView(e.rfq_id, e.trader, e.market, e.side, e.size_e6, e.leverage, e.max_funding_rate_e9,
                         cmd.DURATION_NS[e.duration], e.expires_ns, e.margin_e6 + e.fee_e6, e.auto_accept,
                         e.target_rate_e9)


def plot_equity(result: BacktestResult, path: Path | str) -> Path:
    """Write the equity curve (PnL in USDC over UTC time) as a PNG."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    times = [dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc) for ns in result.equity_ns]
    pnl_usdc = [(value - result.deposit_e6) / 1e6 for value in result.equity_e6]  # display only
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    ax.plot(times, pnl_usdc, linewidth=1)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_title(f"{result.strategy} (seed {result.seed}): PnL {result.pnl_e6 / 1e6:,.2f} USDC, "
                 f"{result.fills} fills, worst drawdown {result.max_drawdown_e6 / 1e6:,.2f} USDC", fontsize=9)
    ax.set_ylabel("PnL: venue equity - deposit + hedge (USDC)")
    ax.set_xlabel("venue time (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def format_table(r: BacktestResult) -> str:
    def usdc(v: int) -> str:
        return f"{v / 1e6:,.6f} USDC"

    rows = [("strategy", f"{r.strategy} (seed {r.seed}) as {r.agent}"), ("journal", r.directory),
            ("commands", f"{r.commands:,} in {r.seconds:.2f} s"), ("RFQs seen", f"{r.rfqs_seen:,}"),
            ("quotes submitted", f"{r.quotes_submitted:,}"),
            ("quotes rejected", ", ".join(f"{k} {v}" for k, v in r.quotes_rejected.items()) or "0"),
            ("fills", f"{r.fills:,} ({usdc(r.fill_volume_e6)} of size)"), ("realized PnL", usdc(r.realized_pnl_e6)),
            ("unrealized PnL", usdc(r.unrealized_pnl_e6)), ("funding earned", usdc(r.funding_e6)),
            ("fees paid", usdc(r.fees_e6)), ("liquidated", str(r.liquidated)),
            ("venue PnL", usdc(r.venue_pnl_e6) + " (equity - deposit)"),
            ("hedge PnL", usdc(r.hedge_pnl_e6) + (f" (cost {usdc(r.hedge_cost_e6)}, funding {usdc(r.hedge_funding_e6)})"
                                                 if r.hedge_cost_e6 or r.hedge_funding_e6 else "")),
            ("PnL (venue + hedge)", usdc(r.pnl_e6)),
            ("worst drawdown", usdc(r.max_drawdown_e6)), ("open positions at end", str(r.open_positions)),
            ("equity curve", r.figure or "(no --png)")]
    return "\n".join(f"{k:<24} {v}" for k, v in rows)


def to_json(r: BacktestResult) -> str:
    return json.dumps(r.to_dict(), indent=1)
