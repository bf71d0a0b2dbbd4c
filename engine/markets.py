"""Market and engine configuration, with the defaults of DESIGN §4.

Configuration is data: the venue loads it (TOML, env, flags) and hands it to the engine.
The engine never reads files; it validates what it is given against the hard bounds of
``engine.units``.
"""

from __future__ import annotations

import msgspec

from engine import units as u


class Market(msgspec.Struct, frozen=True, kw_only=True):
    """One perpetual market. Amounts in their unit suffixes (see ``engine.units``)."""

    market_id: int
    symbol: str
    leverage_max: int = 20
    size_e6_min: int = 10 * u.USDC_E6
    size_e6_max: int = 1_000_000 * u.USDC_E6
    taker_fee_bps: int = 5
    maker_fee_bps: int = 0
    liquidation_reward_bps: int = 500
    # Maintenance margin ratio as a fraction of the initial ratio, in bps (50%).
    maintenance_of_initial_bps: int = 5_000
    oracle_age_ns_max: int = 30 * u.NS_PER_S
    oracle_conf_bps_max: int = 200
    rfq_lifetime_ms_min: int = 1_000
    rfq_lifetime_ms_max: int = 300_000
    rfq_lifetime_ms_default: int = 30_000
    quote_lifetime_ms_min: int = 1_000
    quote_lifetime_ms_max: int = 60_000
    quote_lifetime_ms_default: int = 10_000
    # Graded oracle validity (engine/oracle.py; docs/engine.md "Oracle validity").
    # A party's close may use a price up to this old (5x the max age; opening needs a fresh one).
    oracle_close_age_ns_max: int = 150 * u.NS_PER_S
    # The short TWAP a price is judged against: time-weighted over this window.
    oracle_twap_window_ns: int = 60 * u.NS_PER_S
    # TooVolatile: max(price, TWAP) above min(price, TWAP) x (1 + this); 10 000 = a 2x move.
    oracle_volatility_bps_max: int = 10_000

    def validate(self) -> None:
        """Raise ``ValueError`` if the market does not fit the engine's hard bounds."""
        checks = {
            "leverage_max": u.in_range(self.leverage_max, 1, u.LEVERAGE_MAX),
            "size_e6_min": u.in_range(self.size_e6_min, 1, self.size_e6_max),
            "size_e6_max": u.in_range(self.size_e6_max, 1, u.SIZE_E6_MAX),
            "taker_fee_bps": u.in_range(self.taker_fee_bps, 0, 1_000),
            "maker_fee_bps": u.in_range(self.maker_fee_bps, 0, 1_000),
            "liquidation_reward_bps": u.in_range(self.liquidation_reward_bps, 0, u.BPS_SCALE),
            "maintenance_of_initial_bps": u.in_range(self.maintenance_of_initial_bps, 1, u.BPS_SCALE),
            "oracle_age_ns_max": self.oracle_age_ns_max > 0,
            "oracle_conf_bps_max": u.in_range(self.oracle_conf_bps_max, 0, u.BPS_SCALE),
            "rfq_lifetime_ms": 0 < self.rfq_lifetime_ms_min <= self.rfq_lifetime_ms_default <= self.rfq_lifetime_ms_max,
            "quote_lifetime_ms": 0 < self.quote_lifetime_ms_min <= self.quote_lifetime_ms_default <= self.quote_lifetime_ms_max,
            "oracle_close_age_ns_max": u.in_range(self.oracle_close_age_ns_max, self.oracle_age_ns_max,
                                                  u.ORACLE_CLOSE_AGE_NS_MAX),
            "oracle_twap_window_ns": u.in_range(self.oracle_twap_window_ns, u.TWAP_WINDOW_NS_MIN,
                                                u.TWAP_WINDOW_NS_MAX),
            "oracle_volatility_bps_max": u.in_range(self.oracle_volatility_bps_max, 1, u.VOLATILITY_BPS_MAX),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"market {self.symbol}: out of bounds: {', '.join(bad)}")


class EngineConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the engine's decisions depend on besides the journal itself."""

    markets: tuple[Market, ...]
    # A position still liquidatable this long after it was first found so is liquidated
    # by the engine itself, the reward going to the insurance fund.
    auto_liquidate_after_ms: int = 2_000
    # A repeated client_id from the same agent within this window returns the first result.
    idempotency_window_ms: int = 10 * 60 * 1_000
    checkpoint_every_events: int = 100_000
    # Limits on what grows (docs/engine.md, "Limits"). A command that would pass one is
    # rejected with LIMIT_REACHED, detail {limit: <field name>, max, ...}; nothing grows
    # without bound. Appended with defaults (schema evolution): old configurations load.
    open_rfqs_per_agent_max: int = 1_000  # open RFQs of one trader
    live_quotes_per_agent_max: int = 10_000  # live quotes of one maker, over all RFQs
    agents_max: int = 1_000_000  # agent accounts (rows of the agents table)
    positions_max: int = 1_000_000  # open positions (live rows of the positions table)
    client_ids_max: int = 1_000_000  # client_ids remembered within idempotency_window_ms
    deposit_refs_max: int = 10_000_000  # deposit refs, remembered for ever (idempotency)
    # A Tick's work, bounded: each expiry round takes at most this many quotes or RFQs, and a
    # Tick starts no round once it holds this many events; what is still due waits for the
    # next Tick, which the sequencer injects at once (so one Tick never holds the commands
    # behind it for long). 0: unbounded, as every journal written before this field was.
    tick_events_max: int = 0

    def validate(self) -> None:
        for index, market in enumerate(self.markets):
            market.validate()
            if market.market_id != index:
                raise ValueError(f"market ids must be 0..n-1 in order; {market.symbol} has {market.market_id}")
        if len({m.symbol for m in self.markets}) != len(self.markets):
            raise ValueError("market symbols must be unique")
        if self.auto_liquidate_after_ms < 0 or self.idempotency_window_ms <= 0 or self.checkpoint_every_events <= 0:
            raise ValueError("auto_liquidate_after_ms >= 0, idempotency_window_ms > 0, checkpoint_every_events > 0")
        if not 0 <= self.tick_events_max <= LIMIT_MAX:
            raise ValueError(f"tick_events_max must be 0 (unbounded) .. {LIMIT_MAX}")
        limits = {name: getattr(self, name) for name in LIMIT_FIELDS}
        bad = [name for name, value in limits.items() if not 1 <= value <= LIMIT_MAX]
        if bad:
            raise ValueError(f"limits must be 1..{LIMIT_MAX}: {', '.join(bad)}")


LIMIT_FIELDS = ("open_rfqs_per_agent_max", "live_quotes_per_agent_max", "agents_max", "positions_max",
                "client_ids_max", "deposit_refs_max")
LIMIT_MAX = 100_000_000  # no limit may be configured beyond this (memory: ~100-200 bytes per entry)

DEFAULT_SYMBOLS = ("BTC-PERP", "ETH-PERP", "SOL-PERP")


def default_config(**overrides) -> EngineConfig:
    """The embedded defaults: BTC-PERP (0), ETH-PERP (1), SOL-PERP (2)."""
    markets = tuple(Market(market_id=i, symbol=s) for i, s in enumerate(DEFAULT_SYMBOLS))
    config = EngineConfig(markets=markets, **overrides)
    config.validate()
    return config
