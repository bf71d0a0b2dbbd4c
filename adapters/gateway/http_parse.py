"""HTTP request bodies (human units) -> engine commands (integer units). Pure translation.

Every function takes a decoded body struct (``http_schemas``) and the acting agent (the
signer) and returns the command, or raises ``human.ConversionError`` carrying the stable
code and a detail: ``INVALID_FIELD`` (wrong form: an id that is not decimal digits, an
unknown side or duration, a value with too many decimal places), ``OUT_OF_RANGE`` (beyond
the hard bounds; the engine applies the market's narrower ranges), ``UNKNOWN_MARKET``.
"""

from __future__ import annotations

import re
from decimal import Decimal

from adapters.gateway import http_schemas as s
from adapters.gateway import human as h
from engine import commands as cmd
from engine import rejections as rj

_ID = re.compile(r"[1-9][0-9]{0,17}")
BEST = "best"


def parse_id(value: str | int | Decimal, field: str) -> int:
    """An id as sent (``"12"``, ``12`` or ``12.0``: JSON says the last two are the same integer)
    -> its integer; a string must be the canonical form (no sign, no leading zero)."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value() and \
            abs(value.adjusted()) <= 18:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise h.ConversionError(rj.INVALID_FIELD, f"{field} must be an id", {"field": field})
    text = str(value)
    if not _ID.fullmatch(text):
        raise h.ConversionError(rj.INVALID_FIELD, f"{field} must be a positive integer id in decimal digits "
                                "without leading zeros", {"field": field, "value": text[:40]})
    return int(text)


def id_text(value: str | int) -> str:
    """The id as the client spelled it (what an accept's signature covers)."""
    return str(value)


def market_id(symbol: str, symbols: list[str]) -> int:
    if symbol not in symbols:
        raise h.ConversionError(rj.UNKNOWN_MARKET, f"no market {symbol[:40]!r}",
                                {"market": symbol[:40], "markets": list(symbols)})
    return symbols.index(symbol)


def _choice(value: str, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise h.ConversionError(rj.INVALID_FIELD, f"{field} must be one of {', '.join(allowed)}",
                                {"field": field, "value": value[:40], "allowed": list(allowed)})
    return value


def _usdc(value: Decimal, field: str, bounds=h.USDC_AMOUNT_E6) -> int:
    return h.to_units(value, h.USDC_PLACES, field, *bounds)


def _rate(value: Decimal, field: str) -> int:
    return h.to_units(value, h.RATE_PLACES, field, *h.RATE_E9)


def _ms(value: Decimal | None, field: str) -> int:
    return 0 if value is None else h.to_units(value, h.SECONDS_PLACES, field, *h.LIFETIME_MS)


def request_quote(body: s.TradeRequestBody, agent: str, symbols: list[str]) -> cmd.RequestQuote:
    return cmd.RequestQuote(
        trader=agent,
        market=market_id(body.market, symbols),
        side=_choice(body.side, "side", ("long", "short")),
        size_e6=_usdc(body.size_usdc, "size_usdc", h.USDC_SIZE_E6),
        leverage=h.to_units(body.leverage, 0, "leverage", *h.LEVERAGE),
        max_funding_rate_e9=_rate(body.max_funding_rate, "max_funding_rate"),
        duration=_choice(body.duration, "duration", tuple(cmd.DURATION_NS)),
        expires_in_ms=_ms(body.expires_in, "expires_in"),
        client_id=body.client_id,
        auto_accept=body.auto_accept,
        target_rate_e9=None if body.target_rate is None else _rate(body.target_rate, "target_rate"))


def submit_quote(body: s.TradeQuoteBody, agent: str) -> cmd.SubmitQuote:
    return cmd.SubmitQuote(
        maker=agent,
        rfq_id=parse_id(body.request_id, "request_id"),
        funding_rate_e9=_rate(body.funding_rate, "funding_rate"),
        collateral_e6=_usdc(body.collateral_usdc, "collateral_usdc"),
        valid_for_ms=_ms(body.valid_for, "valid_for"),
        client_id=body.client_id)


def accept_quote(body: s.TradeAcceptBody, agent: str) -> cmd.AcceptQuote:
    quote = body.quote_id
    return cmd.AcceptQuote(
        trader=agent,
        rfq_id=parse_id(body.request_id, "request_id"),
        quote_id=cmd.BEST_QUOTE if quote == BEST else parse_id(quote, "quote_id"),
        signature=body.signature,
        client_id=body.client_id)


def close_position(body: s.TradeCloseBody, agent: str) -> cmd.ClosePosition:
    return cmd.ClosePosition(
        agent=agent,
        position_id=parse_id(body.position_id, "position_id"),
        fraction_bps=h.to_units(body.size_percent, h.PERCENT_PLACES, "size_percent", *h.PERCENT_BPS),
        client_id=body.client_id)


def cancel(body: s.TradeCancelBody, agent: str) -> cmd.CancelRfq | cmd.CancelQuote:
    if (body.request_id is None) == (body.quote_id is None):
        raise h.ConversionError(rj.INVALID_FIELD, "give exactly one of request_id (cancel an RFQ) or quote_id "
                                "(cancel a quote)", {"field": "request_id|quote_id"}, fits_schema=True)
    if body.request_id is not None:
        return cmd.CancelRfq(agent, parse_id(body.request_id, "request_id"), body.client_id)
    return cmd.CancelQuote(agent, parse_id(body.quote_id, "quote_id"), body.client_id)


def liquidate(body: s.TradeLiquidateBody, agent: str) -> cmd.Liquidate:
    return cmd.Liquidate(agent, parse_id(body.position_id, "position_id"), body.client_id)


def margin(body: s.TradeMarginBody, agent: str) -> cmd.AddMargin | cmd.RemoveMargin:
    position_id = parse_id(body.position_id, "position_id")
    amount_e6 = _usdc(body.amount_usdc, "amount_usdc")
    if body.action is not None:
        action = _choice(body.action, "action", ("add", "remove"))
        if amount_e6 <= 0:
            raise h.ConversionError(rj.OUT_OF_RANGE, "with an action, amount_usdc must be positive",
                                    {"field": "amount_usdc", "value": str(body.amount_usdc), "min": "0.000001",
                                     "max": h.usdc(h.USDC_AMOUNT_E6[1])}, fits_schema=True)
        amount_e6 = amount_e6 if action == "add" else -amount_e6
    if amount_e6 == 0:
        raise h.ConversionError(rj.OUT_OF_RANGE, "amount_usdc must not be 0 (> 0 adds, < 0 removes)",
                                {"field": "amount_usdc", "value": "0", "min": h.usdc(h.USDC_AMOUNT_E6[0]),
                                 "max": h.usdc(h.USDC_AMOUNT_E6[1])}, fits_schema=True)
    if amount_e6 > 0:
        return cmd.AddMargin(agent, position_id, amount_e6, body.client_id)
    return cmd.RemoveMargin(agent, position_id, -amount_e6, body.client_id)


def withdraw(body: s.WithdrawBody, agent: str) -> cmd.Withdraw:
    return cmd.Withdraw(agent, _usdc(body.amount_usdc, "amount_usdc"), body.destination, body.client_id)


def faucet(body: s.FaucetBody, ref: str) -> cmd.Deposit:
    return cmd.Deposit(body.agent_id, _usdc(body.amount_usdc, "amount_usdc"), ref)


def oracle(body: s.OracleBody, symbols: list[str], publish_ns: int) -> cmd.OracleUpdate:
    market = market_id(body.market, symbols)
    price_e8 = h.to_units(body.price, h.PRICE_PLACES, "price", *h.PRICE_E8)
    if body.conf is None:
        conf_e8 = max(1, price_e8 // 10_000)  # 1 bp: well inside every market's confidence limit
    else:
        conf_e8 = h.to_units(body.conf, h.PRICE_PLACES, "conf", *h.PRICE_E8)
    return cmd.OracleUpdate(market, price_e8, conf_e8, publish_ns, "dev")
