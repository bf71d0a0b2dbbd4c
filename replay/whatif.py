"""``whatif``: re-decide a journal under changed parameters and report what changes.

Two worlds are built side by side in one pass: the *journal* world applies the journaled
events (``engine.apply``), the *what-if* world re-decides every journaled command with
``engine.core.execute`` under the changed config (ids translated, see
``replay.redecide``). Both are tallied the same way (``Tally``) and compared: liquidations
added or avoided, PnL, funding and fees per agent, equity at the end, the insurance fund,
bad debt and fees. With unchanged parameters the what-if world must reproduce the journal
event for event; ``identical`` says whether it did.

Keys of ``--set KEY=VALUE`` (integers; ``_`` separators allowed):
``auto_liquidate_after_ms``, ``idempotency_window_ms``, ``checkpoint_every_events``,
``tick_events_max``, and
``markets.<SYMBOL|ID|*>.<field>`` for any integer field of ``engine.markets.Market``
(``maintenance_of_initial_bps``, ``liquidation_reward_bps``, ``taker_fee_bps``,
``leverage_max``, ``oracle_age_ns_max`` ...).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msgspec

from engine import events as ev
from engine.apply import apply
from engine.markets import EngineConfig, Market
from engine.risk import formulas
from engine.state import OPEN, State
from replay.errors import BadOverride
from replay.rebuild import progress_bar
from replay.redecide import SKIPPED, Redecider
from replay.source import ReplayJournal, gc_paused

_TOP_KEYS = ("auto_liquidate_after_ms", "idempotency_window_ms", "checkpoint_every_events", "tick_events_max")
_MARKET_KEYS = tuple(name for name, kind in Market.__annotations__.items()
                     if kind in ("int", int) and name != "market_id")


def _int(key: str, text: str) -> int:
    try:
        return int(text.replace("_", ""))
    except ValueError:
        raise BadOverride(f"{key}={text!r}: the value must be an integer") from None


def apply_overrides(config: EngineConfig, settings: list[str] | dict[str, int | str]) -> EngineConfig:
    """``config`` with ``KEY=VALUE`` settings applied, validated (``BadOverride`` otherwise)."""
    items = settings.items() if isinstance(settings, dict) else [_split(s) for s in settings]
    top: dict[str, int] = {}
    markets = list(config.markets)
    for key, value in items:
        value = _int(key, str(value))
        parts = key.split(".")
        if len(parts) == 1:
            if key not in _TOP_KEYS:
                raise BadOverride(f"unknown key {key!r}; top-level keys: {', '.join(_TOP_KEYS)}, or "
                                  f"markets.<SYMBOL|ID|*>.<field>")
            top[key] = value
            continue
        if len(parts) != 3 or parts[0] != "markets":
            raise BadOverride(f"unknown key {key!r}: market keys look like markets.BTC-PERP.maintenance_of_initial_bps")
        selector, name = parts[1], parts[2]
        if name not in _MARKET_KEYS:
            raise BadOverride(f"unknown market field {name!r}; integer fields: {', '.join(_MARKET_KEYS)}")
        chosen = [i for i, m in enumerate(markets)
                  if selector == "*" or m.symbol == selector or str(m.market_id) == selector]
        if not chosen:
            raise BadOverride(f"no market {selector!r}; markets: {', '.join(m.symbol for m in markets)} (or *)")
        for i in chosen:
            markets[i] = msgspec.structs.replace(markets[i], **{name: value})
    changed = msgspec.structs.replace(config, markets=tuple(markets), **top)
    try:
        changed.validate()
    except ValueError as exc:
        raise BadOverride(f"the changed config is invalid: {exc}") from None
    return changed


def _split(setting: str) -> tuple[str, str]:
    key, sep, value = setting.partition("=")
    if not sep or not key.strip():
        raise BadOverride(f"{setting!r}: expected KEY=VALUE")
    return key.strip(), value.strip()


@dataclass
class AgentFigures:
    """One agent's money in one world, micro-USDC."""

    realized_pnl_e6: int = 0  # PnL received (+) or paid (-) at closes and liquidations, incl. insurance cover
    funding_e6: int = 0  # funding received (+) or paid (-)
    fees_e6: int = 0  # fees paid
    rewards_e6: int = 0  # keeper rewards received
    liquidation_cost_e6: int = 0  # rewards paid out of this agent's liquidated margin
    liquidated: int = 0  # times one of its sides was liquidated
    equity_e6: int = 0  # at the end: free + held + margins + unrealised PnL at the last price


class Tally:
    """Per-agent and system figures of one world, fed its events in order."""

    def __init__(self) -> None:
        self.agents: dict[str, AgentFigures] = {}
        self.parties: dict[int, tuple[str, str]] = {}  # position -> (long, short)
        self.liquidated: dict[int, str] = {}  # position -> side
        self.engine_liquidations = 0
        self.events = 0
        self.rejections = 0

    def _agent(self, key: str) -> AgentFigures:
        figures = self.agents.get(key)
        if figures is None:
            figures = self.agents[key] = AgentFigures()
        return figures

    def add(self, outcome) -> None:
        if type(outcome) is not list:
            self.rejections += outcome is not SKIPPED
            return
        self.events += len(outcome)
        for e in outcome:
            kind = type(e)
            if kind is ev.PositionOpened:
                self.parties[e.position_id] = (e.long_agent, e.short_agent)
            elif kind is ev.FundingSettled:
                for position_id, amount in zip(e.position_ids, e.long_to_short_e6):
                    long_agent, short_agent = self.parties[position_id]
                    self._agent(long_agent).funding_e6 -= amount
                    self._agent(short_agent).funding_e6 += amount
                continue
            elif kind is ev.PositionLiquidated:
                self.liquidated[e.position_id] = e.side
                self.engine_liquidations += e.keeper == ""
                long_agent, short_agent = self.parties[e.position_id]
                self._agent(long_agent if e.side == "long" else short_agent).liquidated += 1
            transfers = getattr(e, "transfers", None)
            if transfers:
                self._transfers(transfers)

    def _owner(self, account: int, ref) -> str | None:
        if account == ev.MARGIN_LONG:
            return self.parties[ref][0]
        if account == ev.MARGIN_SHORT:
            return self.parties[ref][1]
        return None

    def _transfers(self, transfers) -> None:
        for t in transfers:
            kind = t.kind
            if kind in ("pnl", "insurance", "funding"):
                payer, payee = self._owner(t.debit, t.debit_ref), self._owner(t.credit, t.credit_ref)
                name = "funding_e6" if kind == "funding" else "realized_pnl_e6"
                if payer is not None:
                    setattr(self._agent(payer), name, getattr(self._agent(payer), name) - t.amount_e6)
                if payee is not None:
                    setattr(self._agent(payee), name, getattr(self._agent(payee), name) + t.amount_e6)
            elif kind == "fee":
                self._agent(t.debit_ref).fees_e6 += t.amount_e6
            elif kind == "reward":
                payer = self._owner(t.debit, t.debit_ref)
                if payer is not None:
                    self._agent(payer).liquidation_cost_e6 += t.amount_e6
                if t.credit == ev.FREE:
                    self._agent(t.credit_ref).rewards_e6 += t.amount_e6

    def finish(self, state: State) -> None:
        """Set each agent's equity from the final state."""
        a = state.agents.v
        for key, row in state.agent_row.items():
            self._agent(key).equity_e6 = a.free_e6[row] + a.held_e6[row]
        p = state.positions.v
        keys = state.agent_keys
        for position_id, row in state.position_row.items():
            if p.status[row] != OPEN:
                continue
            price_e8 = state.oracle.price_e8[p.market[row]]
            pnl = int(formulas.pnl_long_e6(p.size_e6[row], p.entry_price_e8[row], price_e8)) if price_e8 else 0
            self._agent(keys[p.long_agent[row]]).equity_e6 += p.margin_long_e6[row] + pnl
            self._agent(keys[p.short_agent[row]]).equity_e6 += p.margin_short_e6[row] - pnl


@dataclass
class WorldFigures:
    insurance_e6: int
    bad_debt_e6: int
    fees_e6: int
    liquidations: int
    engine_liquidations: int
    events: int
    rejections: int
    open_positions: int


@dataclass
class WhatIfResult:
    directory: str
    settings: dict[str, str]
    identical: bool  # the what-if world decided every command exactly as journaled
    first_difference: dict | None  # {"cmd_id", "seq"} of the first command decided differently
    commands: int
    commands_differing: int
    skipped: int  # commands whose object does not exist in the what-if world
    journal: WorldFigures
    whatif: WorldFigures
    liquidations_added: list[int]  # journal position ids (new:<id> if the position exists only in what-if)
    liquidations_avoided: list[int]
    agents: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # agent -> journal/whatif/delta
    seconds: float = 0.0

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["commands_per_s"] = self.commands_per_s
        return out


def whatif(path: Path | str, settings: list[str] | dict, config: EngineConfig | None = None, *,
           progress: bool | None = False, max_commands: int | None = None) -> WhatIfResult:
    """Re-decide ``path`` under its configuration changed by ``settings``; compare with the
    journal. ``config`` is for a journal without a genesis record only."""
    journal = ReplayJournal(path)
    base_config = journal.config(config)
    changed = apply_overrides(base_config, settings)
    base, base_tally = State(base_config), Tally()
    alt, alt_tally = Redecider(changed), Tally()
    commands = differing = 0
    first = None
    started = time.perf_counter()
    with gc_paused(), progress_bar(journal.last_seq, "whatif", progress) as bar:
        for batch in journal.record_batches():
            for record in batch:
                for e in record.events:
                    apply(base, e)
                journaled = record.rejection if record.rejection is not None else record.events
                base_tally.add(journaled)
                outcome = alt.replay(record.command, record.ts_ns, record.cmd_id, record.events)
                alt_tally.add(outcome)
                if outcome != journaled:
                    differing += 1
                    if first is None:
                        first = {"cmd_id": record.cmd_id, "seq": record.first_seq}
                commands += 1
                if max_commands is not None and commands >= max_commands:
                    break
            bar.update(base.last_seq - bar.n)
            del batch, record  # freed before the next batch decodes (replay.source._decoded_batches)
            if max_commands is not None and commands >= max_commands:
                break
    base_tally.finish(base)
    alt_tally.finish(alt.state)
    back = alt.back["position"]
    journal_liq = set(base_tally.liquidated)
    alt_liq = {back.get(p, f"new:{p}") for p in alt_tally.liquidated}
    agents = {}
    for key in sorted(set(base_tally.agents) | set(alt_tally.agents)):
        j, w = asdict(base_tally._agent(key)), asdict(alt_tally._agent(key))
        delta = {name: w[name] - j[name] for name in j}
        if any(delta.values()):
            agents[key] = {"journal": j, "whatif": w, "delta": delta}
    return WhatIfResult(
        str(journal.directory), {k: str(v) for k, v in (settings.items() if isinstance(settings, dict)
                                                          else [s.split("=", 1) for s in settings])},
        first is None, first, commands, differing, alt.skipped, _world(base, base_tally), _world(alt.state, alt_tally),
        sorted(alt_liq - journal_liq, key=str), sorted(journal_liq - alt_liq, key=str), agents,
        time.perf_counter() - started)


def _world(state: State, tally: Tally) -> WorldFigures:
    return WorldFigures(state.insurance_e6, state.bad_debt_e6, state.fees_e6, len(tally.liquidated),
                        tally.engine_liquidations, tally.events, tally.rejections, state.positions.live)


def format_table(r: WhatIfResult, limit: int = 40) -> str:
    """Render a what-if result for a terminal (amounts in USDC)."""
    def usdc(v: int) -> str:
        return f"{v / 1e6:,.6f}"

    lines = [f"what-if {' '.join(f'{k}={v}' for k, v in r.settings.items()) or '(no change)'}  on {r.directory}",
             f"commands {r.commands:,} re-decided in {r.seconds:.2f} s ({r.commands_per_s:,.0f}/s); "
             f"{r.commands_differing:,} decided differently; {r.skipped} skipped (object absent)",
             "IDENTICAL: the what-if world reproduces the journal event for event" if r.identical
             else f"first difference at cmd_id {r.first_difference['cmd_id']} (seq {r.first_difference['seq']})",
             "", f"{'':24} {'journal':>20} {'what-if':>20} {'delta':>20}"]
    for name in ("insurance_e6", "bad_debt_e6", "fees_e6"):
        j, w = getattr(r.journal, name), getattr(r.whatif, name)
        lines.append(f"{name.replace('_e6', ' USDC'):24} {usdc(j):>20} {usdc(w):>20} {usdc(w - j):>20}")
    for name in ("liquidations", "engine_liquidations", "events", "rejections", "open_positions"):
        j, w = getattr(r.journal, name), getattr(r.whatif, name)
        lines.append(f"{name:24} {j:>20,} {w:>20,} {w - j:>+20,}")
    lines.append(f"liquidations added   ({len(r.liquidations_added)}): {r.liquidations_added[:limit]}")
    lines.append(f"liquidations avoided ({len(r.liquidations_avoided)}): {r.liquidations_avoided[:limit]}")
    lines += ["", f"agents whose figures change: {len(r.agents)} (delta what-if - journal, USDC)",
              f"{'agent':<20} {'equity':>14} {'realized PnL':>14} {'funding':>12} {'fees':>10} {'liq. cost':>10} "
              f"{'rewards':>10} {'liquidated':>10}"]
    ranked = sorted(r.agents.items(), key=lambda kv: -abs(kv[1]["delta"]["equity_e6"]))
    for key, figures in ranked[:limit]:
        d = figures["delta"]
        lines.append(f"{key[:20]:<20} {usdc(d['equity_e6']):>14} {usdc(d['realized_pnl_e6']):>14} "
                     f"{usdc(d['funding_e6']):>12} {usdc(d['fees_e6']):>10} {usdc(d['liquidation_cost_e6']):>10} "
                     f"{usdc(d['rewards_e6']):>10} {d['liquidated']:>+10}")
    if len(ranked) > limit:
        lines.append(f"... {len(ranked) - limit} more (--json for all)")
    return "\n".join(lines)


def to_json(r: WhatIfResult) -> str:
    return json.dumps(r.to_dict(), indent=1, default=str)
