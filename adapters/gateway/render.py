"""Engine events and views -> the HTTP/WebSocket JSON shapes in human units. Pure translation.

One rule for every event field, so a new event needs no code here:

| engine field | rendered as |
|---|---|
| ``rfq_id`` | ``request_id`` (string) |
| ``quote_id``, ``position_id``, lists of ids | strings |
| ``market`` | its symbol |
| ``X_e6`` (int or list of ints) | ``X_usdc``, decimal strings |
| ``X_e8`` | ``X`` (``entry_price_e8`` -> ``entry_price``), decimal string |
| ``X_e9`` | ``X`` (``funding_rate_e9`` -> ``funding_rate``), decimal string (a fraction) |
| ``transfers`` | ``[{debit, debit_ref, credit, credit_ref, amount_usdc, kind}]``, accounts by name |
| ``seq``, ``ts_ns``, ``cmd_id``, ``*_ns``, ``*_bps``, everything else | as is |

Each rendered event starts with ``type``: the event's versioned tag (``position_opened.v1``).
"""

from __future__ import annotations

from typing import Any

from adapters.gateway import http_schemas as s
from adapters.gateway import human as h
from engine import events as ev
from engine import views
from engine.commands import DURATION_NS

_ID_FIELDS = {"quote_id", "position_id"}
_ID_LIST_FIELDS = {"released_quote_ids", "position_ids", "flagged", "cleared"}
_DURATION_OF_NS = {ns: name for name, ns in DURATION_NS.items()}


def event_type(event) -> str:
    return type(event).__struct_config__.tag


def render_event(event, symbols: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": event_type(event)}
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if name == "rfq_id":
            out["request_id"] = str(value)
        elif name in _ID_FIELDS:
            out[name] = str(value)
        elif name in _ID_LIST_FIELDS:
            out[name] = [str(v) for v in value]
        elif name == "market":
            out[name] = symbols[value] if 0 <= value < len(symbols) else str(value)
        elif name == "transfers":
            out[name] = [_transfer(t) for t in value]
        elif name.endswith("_e6"):
            out[name[:-3] + "_usdc"] = _scaled(value, h.USDC_PLACES)
        elif name.endswith("_e8"):
            out[name[:-3]] = _scaled(value, h.PRICE_PLACES)
        elif name.endswith("_e9"):
            out[name[:-3]] = _scaled(value, h.RATE_PLACES)
        else:
            out[name] = value
    return out


def _scaled(value, places: int):
    if value is None:
        return None
    if isinstance(value, list):
        return [h.from_units(v, places) for v in value]
    return h.from_units(value, places)


def _transfer(t: ev.Transfer) -> dict[str, Any]:
    return {"debit": ev.ACCOUNT_NAMES[t.debit], "debit_ref": str(t.debit_ref),
            "credit": ev.ACCOUNT_NAMES[t.credit], "credit_ref": str(t.credit_ref),
            "amount_usdc": h.usdc(t.amount_e6), "kind": t.kind}


# -- command results --------------------------------------------------------------------

# Events that name the ids of a command's answer, most telling first.
_ID_SOURCES = {t: rank for rank, t in enumerate((
    ev.PositionOpened, ev.QuoteSubmitted, ev.RfqOpened, ev.PositionLiquidated, ev.PositionClosed, ev.MarginChanged,
    ev.RfqClosed, ev.QuoteReleased))}


def command_result(events: list, symbols: list[str], *, seq: int, cmd_id: int, ts_ns: int,
                   duplicate: bool = False) -> s.CommandResult:
    """The answer to an accepted command: its events and the ids they name (the first of
    each kind: the RFQ, quote and position the command created or acted on)."""
    ids: dict[str, str] = {}
    # The command's own event first (a quote that replaces another also releases the old one;
    # a fill also releases the losing quotes): its ids win.
    ordered = sorted((e for e in events if type(e) in _ID_SOURCES), key=lambda e: _ID_SOURCES[type(e)])
    for event in ordered:
        for field, name in (("rfq_id", "request_id"), ("quote_id", "quote_id"), ("position_id", "position_id")):
            value = getattr(event, field, None)
            if value is not None and name not in ids:
                ids[name] = str(value)
    return s.CommandResult(seq=seq, cmd_id=cmd_id, ts_ns=ts_ns, duplicate=duplicate,
                           events=[render_event(e, symbols) for e in events], **ids)


# -- views ------------------------------------------------------------------------------


def position_info(p: views.PositionView, symbols: list[str]) -> s.PositionInfo:
    return s.PositionInfo(
        position_id=str(p.position_id), market=symbols[p.market], long_agent=p.long_agent,
        short_agent=p.short_agent, taker_side=p.taker_side, size_usdc=h.usdc(p.size_e6),
        size_opened_usdc=h.usdc(p.size_opened_e6), entry_price=h.price(p.entry_price_e8),
        margin_long_usdc=h.usdc(p.margin_long_e6), margin_short_usdc=h.usdc(p.margin_short_e6),
        funding_rate=h.rate(p.funding_rate_e9), opened_ns=p.opened_ns, expires_ns=p.expires_ns,
        unrealized_pnl_long_usdc=h.usdc(p.unrealized_pnl_long_e6), status="open")


def account_info(a: views.AccountView, symbols: list[str]) -> s.AccountInfo:
    return s.AccountInfo(agent_id=a.agent, free_usdc=h.usdc(a.free_e6), held_usdc=h.usdc(a.held_e6),
                         margin_usdc=h.usdc(a.margin_e6), positions=[position_info(p, symbols) for p in a.positions])


def rfq_info(r: views.RfqView, symbols: list[str]) -> s.RfqInfo:
    return s.RfqInfo(
        request_id=str(r.rfq_id), agent_id=r.trader, market=symbols[r.market], side=r.side,
        size_usdc=h.usdc(r.size_e6), leverage=r.leverage, max_funding_rate=h.rate(r.max_funding_rate_e9),
        duration=_DURATION_OF_NS.get(r.duration_ns, f"{r.duration_ns}ns"), expires_ns=r.expires_ns,
        hold_usdc=h.usdc(r.hold_e6), auto_accept=r.auto_accept,
        target_rate=None if r.target_rate_e9 is None else h.rate(r.target_rate_e9))


def quote_info(q: views.QuoteView) -> s.QuoteInfo:
    return s.QuoteInfo(quote_id=str(q.quote_id), request_id=str(q.rfq_id), agent_id=q.maker,
                       funding_rate=h.rate(q.funding_rate_e9), collateral_usdc=h.usdc(q.collateral_e6),
                       created_ns=q.created_ns, expires_ns=q.expires_ns)


def _seconds(ms: int) -> str:
    return h.from_units(ms, h.SECONDS_PLACES)


def market_info(market, price_e8: int, conf_e8: int, publish_ns: int, source: str = "") -> s.MarketInfo:
    """``market``: an ``engine.markets.Market``; the last oracle price of it (0: none yet)."""
    m = market
    return s.MarketInfo(
        market=m.symbol, market_id=m.market_id, leverage_max=m.leverage_max,
        size_min_usdc=h.usdc(m.size_e6_min), size_max_usdc=h.usdc(m.size_e6_max),
        taker_fee_bps=m.taker_fee_bps, maker_fee_bps=m.maker_fee_bps,
        liquidation_reward_bps=m.liquidation_reward_bps, maintenance_of_initial_bps=m.maintenance_of_initial_bps,
        oracle_age_max_s=h.from_units(m.oracle_age_ns_max, 9), oracle_conf_bps_max=m.oracle_conf_bps_max,
        rfq_lifetime_s=[_seconds(m.rfq_lifetime_ms_min), _seconds(m.rfq_lifetime_ms_default),
                        _seconds(m.rfq_lifetime_ms_max)],
        quote_lifetime_s=[_seconds(m.quote_lifetime_ms_min), _seconds(m.quote_lifetime_ms_default),
                          _seconds(m.quote_lifetime_ms_max)],
        price=h.price(price_e8) if price_e8 else None, conf=h.price(conf_e8) if price_e8 else None,
        publish_ns=publish_ns, oracle_source=source)


# -- rejections -------------------------------------------------------------------------

# The engine's field names -> the HTTP body's, and the decimal places between their units.
_FIELD_OF_ENGINE = {
    "size_e6": ("size_usdc", h.USDC_PLACES), "amount_e6": ("amount_usdc", h.USDC_PLACES),
    "collateral_e6": ("collateral_usdc", h.USDC_PLACES),
    "max_funding_rate_e9": ("max_funding_rate", h.RATE_PLACES), "funding_rate_e9": ("funding_rate", h.RATE_PLACES),
    "target_rate_e9": ("target_rate", h.RATE_PLACES),
    "price_e8": ("price", h.PRICE_PLACES), "conf_e8": ("conf", h.PRICE_PLACES),
    "fraction_bps": ("size_percent", h.PERCENT_PLACES),
    "expires_in_ms": ("expires_in", h.SECONDS_PLACES), "valid_for_ms": ("valid_for", h.SECONDS_PLACES),
    "rfq_id": ("request_id", 0),
}
_BOUND_KEYS = ("value", "min", "max")


def human_detail(code: str, message: str, detail: dict, symbols: list[str]) -> tuple[str, dict]:
    """An engine rejection's message and detail with the HTTP API's field names and units
    (``size_e6: 5000000`` -> ``size_usdc: "5"``); edge rejections are already so."""
    out: dict[str, Any] = {}
    field = detail.get("field")
    mapped = _FIELD_OF_ENGINE.get(field) if isinstance(field, str) else None
    for key, value in detail.items():
        if key == "field" and mapped:
            out[key] = mapped[0]
        elif key in _BOUND_KEYS and mapped and isinstance(value, int):
            out[key] = h.from_units(value, mapped[1]) if mapped[1] else str(value)
        elif key == "market" and isinstance(value, int) and 0 <= value < len(symbols):
            out[key] = symbols[value]
        elif key == "rfq_id":
            out["request_id"] = str(value)
        elif key in _ID_FIELDS:
            out[key] = str(value)
        elif isinstance(value, int) and not isinstance(value, bool) and key.endswith(("_e6", "_e6_min", "_e6_max")):
            out[key.replace("_e6", "_usdc")] = h.usdc(value)
        elif isinstance(value, int) and not isinstance(value, bool) and "_e9" in key:
            out[key.replace("_e9", "")] = h.rate(value)
        elif isinstance(value, int) and not isinstance(value, bool) and "_e8" in key:
            out[key.replace("_e8", "")] = h.price(value)
        else:
            out[key] = value
    if mapped and code == "OUT_OF_RANGE" and all(k in out for k in _BOUND_KEYS):
        message = f"{out['field']} {out['value']} is outside [{out['min']}, {out['max']}]"
    return message, out
