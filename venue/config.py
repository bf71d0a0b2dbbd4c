"""The venue's configuration: embedded defaults, then a TOML file, then environment
variables, then CLI flags — each later source overriding the earlier ones.

Every setting lives in one section struct below with its default and unit; `docs/config.md`
lists them. Environment variables are ``AGENTPERP_<SECTION>_<KEY>`` in upper case (e.g.
``AGENTPERP_GATEWAY_TCP_PORT=7500``); markets come only from the file (``[[markets]]``
tables, any field of ``engine.markets.Market`` except ``market_id``, which is the order).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from engine.markets import DEFAULT_SYMBOLS, EngineConfig, Market

ENV_PREFIX = "AGENTPERP_"


class VenueSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    data_dir: str = "data"  # journal under data/journal, snapshots under data/snapshots
    fsync: Literal["always", "batch", "none"] = "batch"  # journal fsync policy (group commit)
    tick_interval_ms: int = 100  # the sequencer injects Tick this often
    queue_max: int = 20_000  # commands waiting for the sequencer; beyond it: OVERLOADED
    batch_max: int = 4_096  # commands decided and journaled per group commit, at most
    snapshot_every_commands: int = 100_000  # 0: no snapshots
    duration_s: float = 0.0  # stop by itself after this long (0: run until Ctrl-C)
    dev: bool = False  # the unsigned /dev/faucet and /dev/oracle helpers
    demo: bool = True  # start the demo agents (and the dev helpers with them)
    status_interval_s: float = 1.0  # the live status line's refresh (0: none)


class GatewaySection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    tcp_port: int = 7400  # 0: any free port (printed at start-up)
    http_port: int = 7401
    max_frame_bytes: int = 64 * 1024  # TCP frames, and HTTP bodies
    requests_per_s: float = 20_000.0  # per agent, across its connections (token bucket)
    request_burst: int = 20_000  # the bucket's size
    connections_per_agent: int = 8
    outbound_queue_max: int = 10_000  # frames waiting for a slow reader; beyond it: disconnect
    login_timeout_s: float = 5.0  # Hello to Login, or the connection is closed
    idle_timeout_s: float = 60.0  # nothing received (not even a Ping) for this long: closed
    signature_window_ms: int = 5_000  # HTTP X-Timestamp may differ from the venue's clock by this


ORACLE_SOURCES = ("pyth", "ccxt", "recorded", "synthetic")
# Pyth Hermes feed ids by market symbol (https://pyth.network/developers/price-feed-ids).
PYTH_FEED_IDS = {
    "BTC-PERP": "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",  # Crypto.BTC/USD
    "ETH-PERP": "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace",  # Crypto.ETH/USD
    "SOL-PERP": "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d",  # Crypto.SOL/USD
}

# USDT-margined perpetuals of the same base (the median is in USDT: a USDT depeg moves it).
CCXT_SYMBOLS = {"BTC-PERP": "BTC/USDT:USDT", "ETH-PERP": "ETH/USDT:USDT", "SOL-PERP": "SOL/USDT:USDT"}


class OracleSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # PRIMARY or PRIMARY,CHECK, each one of pyth | ccxt | recorded | synthetic; or none (prices only from
    # OracleUpdate senders). With a check, a stale or diverging primary is dropped for it (docs/oracle.md).
    source: str = "synthetic"
    interval_ms: int = 250  # synthetic: one update per market this often
    seed: int = 7
    step_bps: float = 8.0  # standard deviation of one step of the random walk
    jump_probability: float = 0.004  # per step: a jump of jump_bps, up or down
    jump_bps: float = 600.0
    conf_bps: float = 5.0  # the confidence interval published with each price
    # USD per base unit at the first step, by market symbol (a market not listed starts at 100).
    start_prices: dict[str, float] = msgspec.field(
        default_factory=lambda: {"BTC-PERP": 65_000.0, "ETH-PERP": 3_200.0, "SOL-PERP": 150.0})
    # The feed: screening and failover
    stale_ms: int = 10_000  # a source whose last price was published longer ago is stale
    divergence_bps_max: int = 100  # primary vs check, in bps of the check's price
    failback_ms: int = 30_000  # the primary must be healthy this long before it is used again
    future_skew_ms_max: int = 5_000  # a publish time further ahead of the venue's clock is dropped
    watch_interval_ms: int = 500  # staleness is checked this often (and on every price)
    # Pyth Hermes
    pyth_base_url: str = "https://hermes.pyth.network"
    pyth_api_key: str = ""  # sent as the header below when set (providers require one); never printed
    pyth_api_key_header: str = "x-api-key"
    pyth_mode: Literal["stream", "poll"] = "stream"  # SSE stream, or the latest endpoint polled
    pyth_poll_interval_ms: int = 1_000
    pyth_stream_stale_ms: int = 20_000  # no price event on the stream (keep-alives aside): reconnect
    pyth_backoff_base_ms: int = 500  # reconnect delays double from this...
    pyth_backoff_max_ms: int = 30_000  # ...up to this, with jitter
    pyth_rate_limited_ms: int = 60_000  # after a 429 without Retry-After (Hermes' public penalty)
    pyth_requests_per_10s: int = 30  # request budget (Hermes' public limit: 30 per 10 s per IP)
    pyth_feed_ids: dict[str, str] = msgspec.field(default_factory=lambda: dict(PYTH_FEED_IDS))
    # CCXT median: the mids of the tops of book of several exchanges (docs/oracle.md)
    ccxt_exchanges: dict[str, str] = msgspec.field(  # our name (in the provenance) → ccxt id
        default_factory=lambda: {"binanceusdm": "binanceusdm", "okx": "okx"})
    ccxt_base_urls: dict[str, str] = msgspec.field(default_factory=dict)  # name → base URL (a simulator)
    ccxt_symbols: dict[str, str] = msgspec.field(default_factory=lambda: dict(CCXT_SYMBOLS))  # market → ccxt
    ccxt_divergence_bps_max: int = 50  # an exchange further from the median is left out
    ccxt_sources_min: int = 2  # fewer fresh (and agreeing) exchanges: no price
    ccxt_stale_ms: int = 5_000  # an exchange timestamp older than this is not fresh
    ccxt_transport: Literal["ws", "rest"] = "ws"  # websocket tops of book (REST while one is down), or polled
    ccxt_ws_price_interval_ms: int = 100  # ws: a market is priced at most this often (pushes coalesce)
    ccxt_poll_interval_ms: int = 1_000  # rest: every round; ws: an exchange whose websocket is down
    ccxt_requests_per_10s: int = 20  # per exchange (one request per round; Binance allows 2400 weight/min)
    ccxt_timeout_ms: int = 3_000
    # Recorded feed (agentperp oracle record writes one)
    recorded_path: str = ""
    recorded_speed: float = 1.0  # 2.0: twice as fast as recorded
    recorded_loop: bool = True  # start over at the end

    def __post_init__(self):
        self.sources()

    def sources(self) -> tuple[str | None, str | None]:
        """(primary, check) from ``source``; (None, None) for ``none``."""
        names = [name.strip() for name in self.source.split(",")]
        if names == ["none"]:
            return None, None
        if not 1 <= len(names) <= 2 or any(name not in ORACLE_SOURCES for name in names) or \
                len(set(names)) != len(names):
            raise ValueError(f"oracle.source {self.source!r}: PRIMARY or PRIMARY,CHECK of "
                             f"{', '.join(ORACLE_SOURCES)} (two different ones), or none")
        return names[0], names[1] if len(names) == 2 else None


class DemoSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    traders: int = 3
    seed: int = 1  # demo keypairs and their randomness derive from it
    faucet_usdc: int = 100_000  # credited to each demo agent at start (if below it)


class EngineSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    auto_liquidate_after_ms: int = 2_000
    idempotency_window_ms: int = 10 * 60 * 1_000
    checkpoint_every_events: int = 100_000
    # A Tick's work at most (~1 ms at 256); the rest goes in the sequencer's next round. Unset:
    # TICK_EVENTS_MAX_NEW_JOURNAL for a new journal, an existing journal's own (0, unbounded,
    # for one written before the field), so an upgraded venue restarts on its data directory.
    tick_events_max: int | None = None


TICK_EVENTS_MAX_NEW_JOURNAL = 256  # [engine] tick_events_max, unset, for a new journal

SQL_COALESCE_MS_MAX = 5_000  # [projections] sql_coalesce_ms: the read models at most 5 s behind a quiet venue


class ProjectionsSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sql: bool = True  # run the SQL read models (docs/projections.md)
    sql_url: str = ""  # "": SQLite file data_dir/read_model.sqlite (WAL); or postgresql+psycopg://...
    # Write the read models from their own process, off the venue's GIL: "auto" does when the
    # machine has SQL_PROCESS_CORES_MIN (2) cores or more (docs/projections.md).
    sql_process: Literal["auto", "on", "off"] = "auto"
    batch_events: int = 5_000  # events per read + transaction, at most
    # How long the SQL read models let a part batch wait for more events (one transaction,
    # one commit's pages for many events: ~1 ms of CPU a batch); at most SQL_COALESCE_MS_MAX.
    sql_coalesce_ms: int = 50
    retry_backoff_s_min: float = 0.05  # first wait before retrying a failed batch (same seq)
    retry_backoff_s_max: float = 30.0  # the waits double up to this, with ±25% jitter
    nats_url: str = ""  # "": off; else publish the journal to this NATS JetStream (docs/projections.md)

    def __post_init__(self):
        if not 0 <= self.sql_coalesce_ms <= SQL_COALESCE_MS_MAX:
            raise ValueError(f"projections.sql_coalesce_ms {self.sql_coalesce_ms} is outside [0, {SQL_COALESCE_MS_MAX}]")


# -- [hedging] (docs/hedging.md, venue/hedging.py) -------------------------------------------
# The demo's market makers by role (agents/demo.py): a name here is that demo agent's id.
DEMO_MAKER_ROLES = ("maker-conservative", "maker-balanced", "maker-aggressive", "maker-swarm", "maker-arbitrage")
EMBEDDED = "embedded"  # an exchange simulator started in the venue's process ("embedded:PORT": on that port)


class HedgeExchangeSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str  # ours: in /health, /metrics, the audit and the keyfile
    kind: Literal["binanceusdm", "okx"] = "binanceusdm"  # the ccxt id
    base_url: str = EMBEDDED  # "embedded" | "embedded:PORT" | a URL (a simulator elsewhere) | "" (the real one)
    fee_bps: float = 5.0  # taker fee, in the all-in cost that picks the exchange
    timeout_ms: int = 5_000  # one request
    recv_window_ms: int = 5_000  # an order arriving later than this after its timestamp is refused
    weight_per_window: int = 2_400  # the request budget shared by all makers (per 60 s)


class HedgingSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: Literal["auto", "on", "off"] = "auto"  # auto: on when [venue] demo is on
    exchanges: list[HedgeExchangeSection] = msgspec.field(default_factory=lambda: [
        HedgeExchangeSection(name="binance", kind="binanceusdm"), HedgeExchangeSection(name="okx", kind="okx")])
    makers: list[str] = msgspec.field(default_factory=lambda: list(DEMO_MAKER_ROLES))  # demo roles or agent ids
    symbols: dict[str, str] = msgspec.field(default_factory=lambda: dict(CCXT_SYMBOLS))  # market → ccxt symbol
    hedge_ratio_bps: int = 10_000  # target = -ratio x the maker's net exposure
    slippage_bps: int = 50  # IOC limit at mid ± this
    keyfile: str = ""  # "": DATA/hedging/keys.json (needed only for non-embedded exchanges)

    def __post_init__(self):
        names = [e.name for e in self.exchanges]
        if len(set(names)) != len(names):
            raise ValueError(f"hedging.exchanges: names must be unique, got {names}")
        if not 0 <= self.hedge_ratio_bps <= 10_000 or not 0 < self.slippage_bps <= 1_000:
            raise ValueError("hedging: hedge_ratio_bps in 0..10000, slippage_bps in 1..1000")


# -- [settlement]: the escrow program, live (issue 13; adapters/solana/README.md, docs/config.md) --
class SettlementSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # litesvm: the program in an in-process LiteSVM (embedded default), rebuilt from the journal at
    # every start; rpc: a cluster's JSON-RPC endpoint; none: no settlement.
    backend: Literal["litesvm", "rpc", "none"] = "litesvm"
    demo_deposits: bool = True  # demo agents fund themselves by a deposit on chain (litesvm, or rpc dev_chain)
    watch_interval_ms: int = 250  # the deposit watcher polls the chain this often
    rpc_url: str = ""  # rpc: the cluster's JSON-RPC URL
    program_id: str = ""  # rpc: the escrow program's address
    vault: str = ""  # rpc: the vault token account
    usdc_mint: str = ""  # rpc: the USDC mint (withdrawals to a wallet create its token account)
    authority_keypair: str = ""  # rpc: the settlement authority's keypair file (solana-keygen JSON); also pays
    oracle_accounts: dict[str, str] = msgspec.field(default_factory=dict)  # rpc: market -> PriceUpdateV2
    # rpc: the endpoint is a dev chain (`agentperp escrow rpc-peer`, surfpool), never a real cluster:
    # the venue writes the oracle accounts itself (surfnet_setAccount) and demo agents get SOL by
    # airdrop and test USDC minted with usdc_mint_authority_keypair.
    dev_chain: bool = False
    usdc_mint_authority_keypair: str = ""  # rpc dev_chain: the test USDC mint's authority (keypair file)


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    venue: VenueSection = msgspec.field(default_factory=VenueSection)
    gateway: GatewaySection = msgspec.field(default_factory=GatewaySection)
    oracle: OracleSection = msgspec.field(default_factory=OracleSection)
    demo: DemoSection = msgspec.field(default_factory=DemoSection)
    engine: EngineSection = msgspec.field(default_factory=EngineSection)
    projections: ProjectionsSection = msgspec.field(default_factory=ProjectionsSection)
    settlement: SettlementSection = msgspec.field(default_factory=SettlementSection)
    hedging: HedgingSection = msgspec.field(default_factory=HedgingSection)
    markets: list[dict[str, Any]] = msgspec.field(default_factory=lambda: [{"symbol": s} for s in DEFAULT_SYMBOLS])

    def engine_config(self, journal: EngineConfig | None = None) -> EngineConfig:
        """The engine's configuration (validated against its hard bounds); ``journal``: the one
        an existing journal was written with, which an unset ``tick_events_max`` follows."""
        markets = tuple(msgspec.convert({**m, "market_id": i}, Market) for i, m in enumerate(self.markets))
        engine = msgspec.structs.asdict(self.engine)
        if engine["tick_events_max"] is None:
            engine["tick_events_max"] = TICK_EVENTS_MAX_NEW_JOURNAL if journal is None else journal.tick_events_max
        config = EngineConfig(markets=markets, **engine)
        config.validate()
        return config

    def market_id(self, symbol: str) -> int | None:
        for index, market in enumerate(self.markets):
            if market["symbol"] == symbol:
                return index
        return None


class ConfigError(ValueError):
    pass


SECTIONS = ("venue", "gateway", "oracle", "demo", "engine", "projections", "settlement", "hedging")


def load(path: str | Path | None = None, *, env: dict[str, str] | None = None,
         overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Defaults < TOML file at ``path`` < ``env`` (default ``os.environ``) < ``overrides``
    (``{section: {key: value}}``, from CLI flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"config file {path}: {error}") from None
    _merge(data, _from_env(os.environ if env is None else env))
    _merge(data, overrides or {})
    try:
        config = msgspec.convert(data, Config, strict=False)
        config.engine_config()
    except (msgspec.ValidationError, ValueError, TypeError) as error:
        raise ConfigError(f"configuration: {error}") from None
    return config


def _from_env(env: dict[str, str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section in SECTIONS and key:
            found.setdefault(section, {})[key] = value
    return found


def _merge(into: dict[str, Any], layer: dict[str, dict[str, Any]]) -> None:
    for section, values in layer.items():
        into.setdefault(section, {}).update(values)


def defaults_toml() -> str:
    """Every setting with its default, as a TOML document (``agentperp config``)."""
    config = Config()
    lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for key, value in msgspec.structs.asdict(getattr(config, section)).items():
            # TOML has no null: an unset setting is printed commented out (its comment says why).
            lines.append(f"# {key} = (unset: see docs/config.md)" if value is None else f"{key} = {_toml_value(value)}")
        lines.append("")
    for market in config.markets:
        lines.append("[[markets]]")
        for key, value in msgspec.structs.asdict(Market(market_id=0, symbol=market["symbol"])).items():
            if key != "market_id":
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + " }"
    if isinstance(value, msgspec.Struct):  # [hedging] exchanges: inline tables
        return _toml_value(msgspec.structs.asdict(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
