"""The export tables' schemas: one Arrow schema per table, every column typed, its unit in its
name (``_e6`` micro-USDC, ``_e8`` 1e-8 USD per base unit, ``_e9`` fraction per 8h × 1e9,
``_ns`` ns since the Unix epoch, ``_bps`` basis points) and described in its metadata.

``markdown()`` renders them for docs/replay.md (a test keeps the two in step).
"""

from __future__ import annotations

import pyarrow as pa

I64, I32, I16, STR, BOOL = pa.int64(), pa.int32(), pa.int16(), pa.string(), pa.bool_()
TIME = pa.timestamp("ns", tz="UTC")


def _f(name: str, kind, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, kind, nullable=nullable, metadata={"doc": doc})


def _stamp(what: str) -> list[pa.Field]:
    return [_f("seq", I64, f"seq of the event that {what}"),
            _f("ts_ns", I64, "the sequencer's stamp of that event (ns since the Unix epoch)"),
            _f("time", TIME, "ts_ns as a UTC timestamp"),
            _f("cmd_id", I64, "the journaled command that caused it")]


_MARKET = [_f("market", I16, "market id (index into the config's markets)"),
           _f("market_symbol", STR, "market symbol, e.g. BTC-PERP")]

SCHEMAS: dict[str, pa.Schema] = {
    "rfqs": pa.schema([
        _f("rfq_id", I64, "RFQ id"), *_stamp("opened the RFQ"), _f("trader", STR, "trader agent key"), *_MARKET,
        _f("side", STR, "long | short (the trader's side)"), _f("size_e6", I64, "requested size, micro-USDC"),
        _f("leverage", I32, "requested leverage"),
        _f("max_funding_rate_e9", I64, "highest rate the trader accepts, per 8h × 1e9"),
        _f("duration", STR, "perpetual | 1h | 24h"), _f("expires_ns", I64, "when the RFQ expires"),
        _f("margin_e6", I64, "trader margin held, micro-USDC"), _f("fee_e6", I64, "taker fee held, micro-USDC"),
        _f("auto_accept", BOOL, "the engine accepts the best quote itself"),
        _f("target_rate_e9", I64, "auto-accept at once at or below this rate (null: none)", True),
        _f("client_id", STR, "the trader's client id"),
        _f("outcome", STR, "filled | expired | cancelled | open (still open at the end of the journal)"),
        _f("ended_seq", I64, "seq of the event that ended it (null while open)", True),
        _f("ended_ts_ns", I64, "stamp of that event (null while open)", True),
        _f("position_id", I64, "the position it opened (null unless filled)", True)]),
    "quotes": pa.schema([
        _f("quote_id", I64, "quote id"), _f("rfq_id", I64, "the RFQ quoted"), *_stamp("submitted the quote"),
        _f("maker", STR, "maker agent key"), _f("funding_rate_e9", I64, "quoted rate, per 8h × 1e9 (taker pays)"),
        _f("collateral_e6", I64, "firm collateral held, micro-USDC"), _f("fee_e6", I64, "maker fee held, micro-USDC"),
        _f("expires_ns", I64, "when the quote expires"), _f("client_id", STR, "the maker's client id"),
        _f("outcome", STR, "filled | cancelled | replaced | expired | rfq_closed | not_selected | session_ended "
                           "| live"),
        _f("ended_seq", I64, "seq of the event that ended it (null while live)", True)]),
    "positions": pa.schema([
        _f("position_id", I64, "position id"), _f("rfq_id", I64, "the RFQ filled"), _f("quote_id", I64, "the quote filled"),
        *_stamp("opened the position"), *_MARKET, _f("long_agent", STR, "long side's agent"),
        _f("short_agent", STR, "short side's agent"), _f("taker_side", STR, "long | short"),
        _f("size_e6", I64, "size at open, micro-USDC"), _f("entry_price_e8", I64, "oracle price at open, 1e-8 USD"),
        _f("oracle_conf_e8", I64, "oracle confidence at open, 1e-8 USD"),
        _f("oracle_publish_ns", I64, "publish time of that price"),
        _f("funding_rate_e9", I64, "negotiated rate, per 8h × 1e9 (taker pays maker)"),
        _f("margin_long_e6", I64, "long margin at open, micro-USDC"),
        _f("margin_short_e6", I64, "short margin at open, micro-USDC"),
        _f("taker_fee_e6", I64, "taker fee, micro-USDC"), _f("maker_fee_e6", I64, "maker fee, micro-USDC"),
        _f("duration", STR, "perpetual | 1h | 24h"), _f("expires_ns", I64, "fixed end (0: perpetual)"),
        _f("auto_accepted", BOOL, "filled by the engine's auto-accept"),
        _f("status", STR, "closed | expired | liquidated | open (still open at the end of the journal)"),
        _f("ended_seq", I64, "seq of the final close or liquidation (null while open)", True),
        _f("ended_ts_ns", I64, "its stamp (null while open)", True),
        _f("pnl_long_e6", I64, "PnL realised by the long side over all closes, micro-USDC (short: the negative)"),
        _f("funding_long_to_short_e6", I64, "funding paid by the long to the short over the life, micro-USDC")]),
    "fills": pa.schema([
        *_stamp("changed the position's size"), _f("position_id", I64, "position id"), *_MARKET,
        _f("kind", STR, "open | close | expiry | liquidation"),
        _f("agent", STR, "who acted: the trader (open), the closing party (close), the keeper (liquidation; "
                         "empty: the engine), empty for expiry"),
        _f("price_e8", I64, "oracle price used, 1e-8 USD"), _f("size_e6", I64, "size opened or closed, micro-USDC"),
        _f("remaining_size_e6", I64, "size still open after it, micro-USDC"),
        _f("pnl_long_e6", I64, "PnL of the closed part for the long side, micro-USDC (0 for open)"),
        _f("funding_long_to_short_e6", I64, "accrued funding settled first, micro-USDC"),
        _f("fee_e6", I64, "taker + maker fee charged (open), micro-USDC"),
        _f("insurance_e6", I64, "paid by the insurance fund for the loser's shortfall, micro-USDC"),
        _f("bad_debt_e6", I64, "shortfall the fund could not cover, micro-USDC")]),
    "funding": pa.schema([
        *_stamp("settled the funding"), _f("position_id", I64, "position id"),
        _f("source", STR, "boundary (8h settlement) | close | liquidation (accrued part settled first)"),
        _f("boundary_ns", I64, "the 8h boundary settled (null for close / liquidation)", True),
        _f("long_to_short_e6", I64, "moved from the long margin to the short margin, micro-USDC (negative: the "
                                    "other way)")]),
    "liquidations": pa.schema([
        *_stamp("liquidated the position"), _f("position_id", I64, "position id"), *_MARKET,
        _f("side", STR, "the liquidated side: long | short"), _f("liquidated_agent", STR, "that side's agent"),
        _f("counterparty", STR, "the other side's agent"),
        _f("keeper", STR, "the keeper's key (empty when the engine liquidated)"),
        _f("by_engine", BOOL, "liquidated by the engine after its grace (reward to insurance)"),
        _f("price_e8", I64, "oracle price used, 1e-8 USD"), _f("publish_ns", I64, "its publish time"),
        _f("oracle_stale", BOOL, "the price was older than the market's max age"),
        _f("size_e6", I64, "size closed, micro-USDC"),
        _f("funding_long_to_short_e6", I64, "accrued funding settled first, micro-USDC"),
        _f("pnl_long_e6", I64, "PnL for the long side at price_e8, micro-USDC"),
        _f("insurance_e6", I64, "paid by the insurance fund, micro-USDC"),
        _f("bad_debt_e6", I64, "shortfall not covered, micro-USDC"), _f("reward_e6", I64, "keeper reward, micro-USDC")]),
    "transfers": pa.schema([
        *_stamp("carried the transfer"), _f("event", STR, "the event's tag, e.g. position_opened.v1"),
        _f("index", I32, "position of the transfer inside its event"),
        _f("debit_account", STR, "free | held | margin_long | margin_short | fees | insurance | external"),
        _f("debit_agent", STR, "whose free/held account is debited (null otherwise)", True),
        _f("debit_position_id", I64, "whose margin is debited (null otherwise)", True),
        _f("credit_account", STR, "as debit_account"),
        _f("credit_agent", STR, "whose free/held account is credited (null otherwise)", True),
        _f("credit_position_id", I64, "whose margin is credited (null otherwise)", True),
        _f("amount_e6", I64, "amount moved, micro-USDC (> 0)"),
        _f("kind", STR, "deposit | withdraw | hold | release | margin | fee | funding | pnl | insurance | reward "
                        "| return")]),
    "oracle": pa.schema([
        *_stamp("accepted the price"), *_MARKET, _f("price_e8", I64, "price, 1e-8 USD per base unit"),
        _f("conf_e8", I64, "confidence, 1e-8 USD"), _f("publish_ns", I64, "the oracle's publish time"),
        _f("source", STR, "the feed that published it")]),
    "oracle_switches": pa.schema([
        *_stamp("journaled the switch"), *_MARKET, _f("from_source", STR, "the source that priced the market until now"),
        _f("to_source", STR, "the source that prices it from now"),
        _f("reason", STR, "stale | diverged | recovered | check_stale")]),
}

TABLES = tuple(SCHEMAS)


def markdown() -> str:
    """Every table and column as Markdown (for docs/replay.md)."""
    out = []
    for name, schema in SCHEMAS.items():
        out.append(f"### `{name}`\n\n| column | type | meaning |\n|---|---|---|")
        for f in schema:
            kind = str(f.type) + (" (nullable)" if f.nullable else "")
            out.append(f"| `{f.name}` | {kind} | {f.metadata[b'doc'].decode()} |")
        out.append("")
    return "\n".join(out)
