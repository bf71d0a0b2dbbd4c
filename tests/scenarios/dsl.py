"""A table-driven scenario language: one line per command and what it must cause.

    # comment
    @00:00:01 request trader=alice market=BTC side=long size=100 leverage=10 max_rate=1% => rfq_opened{margin_e6=10}
    @00:00:02 accept trader=alice rfq=9 => rejected UNKNOWN_RFQ
    expect alice.free=989.95 alice.held=10.05 fees=0

Times are ``@[Nd]HH:MM:SS[.ffffff]`` after 2026-01-01T00:00:00Z (a funding boundary).
Arguments are in human units, converted exactly: USDC for amount/size/collateral, USD for
price/conf, rates as ``0.5%`` or a fraction, lifetimes as ``30s``/``500ms``, close
fractions as ``25%``. After ``=>``: ``rejected CODE``, ``nothing``, or the exact list of
event tags (without ``.v1``) emitted, each with optional ``{field=value ...}`` checks where
``*_e6`` values are USDC, ``*_e8`` USD and ``*_e9`` rates, as in the arguments.
After every command the invariants are checked; at the end the events are replayed into a
fresh state, which must hash the same.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from engine import commands as cmd
from engine import rejections as rj
from engine.apply import apply
from engine.core import execute
from engine.invariants import check
from engine.markets import EngineConfig, default_config
from engine.state import State, state_hash

BASE_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
_TIME = re.compile(r"^@(?:(\d+)d)?(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?$")


class ScenarioError(AssertionError):
    pass


def _scaled(text: str, scale: int, what: str) -> int:
    value = Decimal(text.replace("_", "")) * scale
    if value != value.to_integral_value():
        raise ValueError(f"{text} is not a whole number of {what}")
    return int(value)


def usdc(text: str) -> int:
    return _scaled(text, 10**6, "micro-USDC")


def usd_price(text: str) -> int:
    return _scaled(text, 10**8, "1e-8 USD")


def rate(text: str) -> int:
    if text.endswith("%"):
        return _scaled(text[:-1], 10**7, "1e-9")
    return _scaled(text, 10**9, "1e-9")


def millis(text: str) -> int:
    if text.endswith("ms"):
        return int(text[:-2])
    if text.endswith("s"):
        return _scaled(text[:-1], 1000, "ms")
    return int(text)


def bps(text: str) -> int:
    return _scaled(text.rstrip("%"), 100, "bps")


def parse_time(token: str) -> int:
    match = _TIME.match(token)
    if not match:
        raise ValueError(f"bad time {token!r}; use @[Nd]HH:MM:SS[.fff]")
    days, hours, minutes, seconds, fraction = match.groups()
    total_s = int(days or 0) * 86_400 + int(hours) * 3_600 + int(minutes) * 60 + int(seconds)
    return BASE_NS + total_s * 10**9 + int((fraction or "0").ljust(9, "0"))


def _market(config: EngineConfig, name: str) -> int:
    for m in config.markets:
        if name in (m.symbol, m.symbol.removesuffix("-PERP")):
            return m.market_id
    return int(name) if name.isdigit() else -1


def build_command(config: EngineConfig, verb: str, args: dict[str, str], now_ns: int):
    a = args.get
    if verb == "deposit":
        return cmd.Deposit(a("agent"), usdc(a("amount")), a("ref"))
    if verb == "withdraw":
        return cmd.Withdraw(a("agent"), usdc(a("amount")), a("dest", "wallet"), a("cid", ""))
    if verb == "request":
        target = a("target")
        return cmd.RequestQuote(
            a("trader"), _market(config, a("market")), a("side"), usdc(a("size")), int(a("leverage")),
            rate(a("max_rate")), a("duration", "perpetual"), millis(a("expires", "0")), a("cid", ""),
            a("auto", "no") == "yes", None if target is None else rate(target))
    if verb == "quote":
        return cmd.SubmitQuote(a("maker"), int(a("rfq")), rate(a("rate")), usdc(a("collateral")),
                               millis(a("valid", "0")), a("cid", ""))
    if verb == "cancel_quote":
        return cmd.CancelQuote(a("maker"), int(a("quote")), a("cid", ""))
    if verb == "cancel_rfq":
        return cmd.CancelRfq(a("trader"), int(a("rfq")), a("cid", ""))
    if verb == "accept":
        quote = a("quote", "best")
        return cmd.AcceptQuote(a("trader"), int(a("rfq")), cmd.BEST_QUOTE if quote == "best" else int(quote),
                               a("signature", ""), a("cid", ""))
    if verb == "close":
        return cmd.ClosePosition(a("agent"), int(a("position")), bps(a("fraction", "100%")), a("cid", ""))
    if verb == "liquidate":
        return cmd.Liquidate(a("keeper"), int(a("position")), a("cid", ""))
    if verb in ("add_margin", "remove_margin"):
        kind = cmd.AddMargin if verb == "add_margin" else cmd.RemoveMargin
        return kind(a("agent"), int(a("position")), usdc(a("amount")), a("cid", ""))
    if verb == "oracle":
        publish = a("publish")
        return cmd.OracleUpdate(_market(config, a("market")), usd_price(a("price")), usd_price(a("conf", "0")),
                                now_ns if publish is None else parse_time("@" + publish), a("source", "test"))
    if verb == "switch_source":
        return cmd.SwitchOracleSource(_market(config, a("market")), a("from"), a("to"), a("reason"))
    if verb == "tick":
        return cmd.Tick()
    if verb == "end_session":
        return cmd.CancelAgentQuotes(a("maker"))
    raise ValueError(f"unknown command {verb!r}")


def _expected_value(field: str, text: str):
    if text.startswith("["):
        return [_expected_value(field, item.strip()) for item in text[1:-1].split(",") if item.strip()]
    if field.endswith("_e6"):
        return usdc(text)
    if field.endswith("_e8"):
        return usd_price(text)
    if field.endswith("_e9"):
        return rate(text)
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text.replace("_", ""))
    except ValueError:
        return text


_EVENT_SPEC = re.compile(r"\s*([a-z_]+)(?:\{([^}]*)\})?\s*(?:,|$)")


def check_outcome(outcome, expectation: str) -> str | None:
    """Why ``outcome`` does not meet ``expectation``, or None."""
    expectation = expectation.strip()
    if expectation.startswith("rejected"):
        code = expectation.split()[1]
        if not isinstance(outcome, rj.Rejected):
            return f"expected rejection {code}, got events {[_tag(e) for e in outcome]}"
        return None if outcome.code == code else f"expected {code}, got {outcome.code}: {outcome.message} {outcome.detail}"
    if isinstance(outcome, rj.Rejected):
        return f"unexpected rejection {outcome.code}: {outcome.message} {outcome.detail}"
    specs = [] if expectation == "nothing" else [m.groups() for m in _EVENT_SPEC.finditer(expectation) if m.group(1)]
    tags = [_tag(e) for e in outcome]
    if tags != [tag for tag, _ in specs]:
        return f"expected events {[tag for tag, _ in specs]}, got {tags}"
    for event, (_, fields) in zip(outcome, specs):
        for pair in shlex.split(fields or ""):
            field, text = pair.split("=", 1)
            actual = getattr(event, field)
            if actual != _expected_value(field, text):
                return f"{_tag(event)}.{field} is {actual!r}, expected {text} ({_expected_value(field, text)!r})"
    return None


def _tag(event) -> str:
    return type(event).__struct_config__.tag.removesuffix(".v1")


def balance_of(state: State, key: str):
    """Read one ``expect`` key: agent.free, pos1.margin_long, fees, rfq2, ..."""
    if key in ("fees", "insurance", "bad_debt", "external"):
        return getattr(state, f"{key}_e6")
    if key == "flagged":
        return sorted(state.flagged)
    for prefix, index in (("pos", state.position_row), ("rfq", state.rfqs), ("quote", state.quotes)):
        match = re.fullmatch(prefix + r"(\d+)(?:\.(\w+))?", key)
        if match:
            row = index.get(int(match.group(1)))
            if match.group(2) is None:
                return "closed" if row is None else "open"
            if row is None:
                raise ScenarioError(f"{key}: {prefix} {match.group(1)} is not open")
            column = {"margin_long": "margin_long_e6", "margin_short": "margin_short_e6", "size": "size_e6"}
            return int(getattr(state.positions, column[match.group(2)])[row])
    agent, _, account = key.rpartition(".")
    row = state.agent_row.get(agent)
    if account not in ("free", "held"):
        raise ScenarioError(f"unknown expect key {key}")
    return 0 if row is None else int(getattr(state.agents, f"{account}_e6")[row])


def _expected_balance(key: str, text: str):
    if key == "flagged":
        return [] if text == "none" else [int(x) for x in text.split(",")]
    if text in ("open", "closed"):
        return text
    return usdc(text)


@dataclass
class Result:
    state: State
    events: list


def run(text: str, config: EngineConfig | None = None, name: str = "<scenario>") -> Result:
    """Run a scenario; raise ``ScenarioError`` naming the first line that fails."""
    config = config or default_config()
    state = State(config)
    all_events: list = []
    now_ns = BASE_NS
    cmd_id = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{name}:{number}: {raw.strip()}"
        try:
            if line.startswith("expect "):
                for pair in line.split()[1:]:
                    key, value = pair.split("=", 1)
                    actual, wanted = balance_of(state, key), _expected_balance(key, value)
                    if actual != wanted:
                        raise ScenarioError(f"{key} is {actual}, expected {wanted}")
                continue
            command_part, _, expectation = line.partition("=>")
            tokens = command_part.split()
            if tokens[0].startswith("@"):
                now_ns = parse_time(tokens.pop(0))
            verb, args = tokens[0], dict(token.split("=", 1) for token in tokens[1:])
            cmd_id += 1
            outcome = execute(state, build_command(config, verb, args, now_ns), now_ns, cmd_id)
            check(state)
            if not isinstance(outcome, rj.Rejected):
                all_events.extend(outcome)
            problem = check_outcome(outcome, expectation) if expectation else None
            if problem:
                raise ScenarioError(problem)
        except ScenarioError as error:
            raise ScenarioError(f"{where}\n  {error}") from None
    replayed = State(config)
    for event in all_events:
        apply(replayed, event)
    if state_hash(replayed) != state_hash(state):
        raise ScenarioError(f"{name}: replaying the events does not reproduce the state")
    return Result(state, all_events)


def run_file(path: Path, config: EngineConfig | None = None) -> Result:
    return run(path.read_text(), config, path.name)
