"""``state``: the venue's state at a seq or a time — balances, open RFQs and positions, books.

Read through ``engine.views`` (the same views the HTTP API shows), in engine units.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import msgspec

from engine import views
from engine.markets import EngineConfig
from engine.state import State
from replay.errors import ReplayError
from replay.rebuild import rebuild
from replay.source import ReplayJournal


class AgentBalance(msgspec.Struct, frozen=True):
    agent: str
    free_e6: int
    held_e6: int
    margin_e6: int  # in this agent's open positions
    open_positions: int


class StateReport(msgspec.Struct, frozen=True):
    """The state at ``seq`` (the last event applied); ``ts_ns`` is that event's stamp."""

    seq: int
    ts_ns: int
    books: views.BooksView
    agents: list[AgentBalance]
    rfqs: list[views.RfqView]
    positions: list[views.PositionView]
    insurance_e6: int
    bad_debt_e6: int


def parse_at(text: str) -> tuple[int | None, int | None]:
    """``"12345"`` -> seq; an ISO 8601 time (``2026-01-01T08:00:00Z``; naive means UTC)
    -> ts_ns. Returns ``(seq, ts_ns)`` with one of them set."""
    text = text.strip()
    if text.isdigit():
        return int(text), None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"--at {text!r} is neither a seq (an integer) nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return None, (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1_000


def report(state: State, ts_ns: int = 0) -> StateReport:
    """What ``state`` holds, through ``engine.views``."""
    positions = views.positions(state)
    counts: dict[str, int] = {}
    margins: dict[str, int] = {}
    for p in positions:
        counts[p.long_agent] = counts.get(p.long_agent, 0) + 1
        counts[p.short_agent] = counts.get(p.short_agent, 0) + 1
        margins[p.long_agent] = margins.get(p.long_agent, 0) + p.margin_long_e6
        margins[p.short_agent] = margins.get(p.short_agent, 0) + p.margin_short_e6
    agents = []
    for agent in sorted(state.agent_row):
        # One pass over the positions above, not views.account (which scans them per agent).
        row = state.agent_row[agent]
        agents.append(AgentBalance(agent, state.agents.v.free_e6[row], state.agents.v.held_e6[row],
                                   margins.get(agent, 0), counts.get(agent, 0)))
    return StateReport(state.last_seq, ts_ns, views.books(state), agents, views.rfqs(state), positions,
                       state.insurance_e6, state.bad_debt_e6)


def state_at(path: Path | str, at: str | int | None = None, config: EngineConfig | None = None, *,
             progress: bool | None = False) -> tuple[State, StateReport]:
    """Rebuild ``path`` up to ``at`` (a seq, an ISO time, or None for the end) and report it.

    ``config`` is for a journal without a genesis record only (``ReplayJournal.config``)."""
    journal = ReplayJournal(path)
    seq, ts_ns = parse_at(str(at)) if at is not None else (None, None)
    state = rebuild(journal, journal.config(config), seq=seq, ts_ns=ts_ns, progress=progress)
    stamp = 0
    if state.last_seq:
        for batch in journal.event_record_batches(state.last_seq):
            stamp = batch[0].ts_ns  # the record holding the last applied event
            break
    return state, report(state, stamp)


def _usdc(amount_e6: int) -> str:
    sign = "-" if amount_e6 < 0 else ""
    whole, frac = divmod(abs(amount_e6), 1_000_000)
    return f"{sign}{whole:,}.{frac:06d}"


def _rate_pct(rate_e9: int) -> str:
    return f"{rate_e9 / 1e7:.4f}%"


def format_table(r: StateReport, symbols: list[str], limit: int = 50) -> str:
    """Render a report for a terminal (USDC, prices and rates shown in human units)."""
    when = dt.datetime.fromtimestamp(r.ts_ns / 1e9, dt.timezone.utc).isoformat() if r.ts_ns else "-"
    b = r.books
    lines = [f"state at seq {r.seq} ({when})",
             f"insurance {_usdc(r.insurance_e6)} USDC   bad debt {_usdc(r.bad_debt_e6)}   fees {_usdc(b.fees_e6)}   "
             f"deposited {_usdc(b.deposited_e6)}   withdrawn {_usdc(b.withdrawn_e6)}",
             f"open RFQs {b.open_rfqs}   live quotes {b.live_quotes}   open positions {b.open_positions}   "
             f"open interest {_usdc(b.open_interest_e6)} USDC", "",
             f"{'agent':<24} {'free USDC':>20} {'held USDC':>16} {'margin USDC':>16} {'positions':>9}"]
    for a in r.agents[:limit]:
        lines.append(f"{a.agent[:24]:<24} {_usdc(a.free_e6):>20} {_usdc(a.held_e6):>16} {_usdc(a.margin_e6):>16} "
                     f"{a.open_positions:>9}")
    if len(r.agents) > limit:
        lines.append(f"... {len(r.agents) - limit} more agents (--json for all)")
    lines += ["", f"{'rfq':>8} {'market':<9} {'trader':<16} {'side':<5} {'size USDC':>14} {'lev':>4} "
                  f"{'max rate/8h':>12} {'expires':>20}"]
    for q in r.rfqs[:limit]:
        lines.append(f"{q.rfq_id:>8} {symbols[q.market]:<9} {q.trader[:16]:<16} {q.side:<5} {_usdc(q.size_e6):>14} "
                     f"{q.leverage:>4} {_rate_pct(q.max_funding_rate_e9):>12} {q.expires_ns:>20}")
    if len(r.rfqs) > limit:
        lines.append(f"... {len(r.rfqs) - limit} more RFQs")
    lines += ["", f"{'position':>8} {'market':<9} {'long':<16} {'short':<16} {'size USDC':>14} {'entry':>14} "
                  f"{'rate/8h':>10} {'margin long':>14} {'margin short':>14} {'uPnL long':>14}"]
    for p in r.positions[:limit]:
        lines.append(f"{p.position_id:>8} {symbols[p.market]:<9} {p.long_agent[:16]:<16} {p.short_agent[:16]:<16} "
                     f"{_usdc(p.size_e6):>14} {p.entry_price_e8 / 1e8:>14,.2f} {_rate_pct(p.funding_rate_e9):>10} "
                     f"{_usdc(p.margin_long_e6):>14} {_usdc(p.margin_short_e6):>14} "
                     f"{_usdc(p.unrealized_pnl_long_e6):>14}")
    if len(r.positions) > limit:
        lines.append(f"... {len(r.positions) - limit} more positions (--json for all)")
    return "\n".join(lines)


def to_json(r: StateReport) -> str:
    """The report as JSON (integers in engine units, as named)."""
    return json.dumps(msgspec.to_builtins(r), indent=1)
