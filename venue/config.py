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


class OracleSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    source: Literal["synthetic", "none"] = "synthetic"
    interval_ms: int = 250  # one update per market this often
    seed: int = 7
    step_bps: float = 8.0  # standard deviation of one step of the random walk
    jump_probability: float = 0.004  # per step: a jump of jump_bps, up or down
    jump_bps: float = 600.0
    conf_bps: float = 5.0  # the confidence interval published with each price
    # USD per base unit at the first step, by market symbol (a market not listed starts at 100).
    start_prices: dict[str, float] = msgspec.field(
        default_factory=lambda: {"BTC-PERP": 65_000.0, "ETH-PERP": 3_200.0, "SOL-PERP": 150.0})


class DemoSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    traders: int = 3
    seed: int = 1  # demo keypairs and their randomness derive from it
    faucet_usdc: int = 100_000  # credited to each demo agent at start (if below it)


class EngineSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    auto_liquidate_after_ms: int = 2_000
    idempotency_window_ms: int = 10 * 60 * 1_000
    checkpoint_every_events: int = 100_000


class ProjectionsSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sql: bool = True  # run the SQL read models (docs/projections.md)
    sql_url: str = ""  # "": SQLite file data_dir/read_model.sqlite (WAL); or postgresql+psycopg://...
    batch_events: int = 5_000  # events per read + transaction, at most
    retry_backoff_s_min: float = 0.05  # first wait before retrying a failed batch (same seq)
    retry_backoff_s_max: float = 30.0  # the waits double up to this, with ±25% jitter
    nats_url: str = ""  # "": off; else publish the journal to this NATS JetStream (docs/projections.md)


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    venue: VenueSection = msgspec.field(default_factory=VenueSection)
    gateway: GatewaySection = msgspec.field(default_factory=GatewaySection)
    oracle: OracleSection = msgspec.field(default_factory=OracleSection)
    demo: DemoSection = msgspec.field(default_factory=DemoSection)
    engine: EngineSection = msgspec.field(default_factory=EngineSection)
    projections: ProjectionsSection = msgspec.field(default_factory=ProjectionsSection)
    markets: list[dict[str, Any]] = msgspec.field(default_factory=lambda: [{"symbol": s} for s in DEFAULT_SYMBOLS])

    def engine_config(self) -> EngineConfig:
        """The engine's configuration (validated against its hard bounds)."""
        markets = tuple(msgspec.convert({**m, "market_id": i}, Market) for i, m in enumerate(self.markets))
        config = EngineConfig(markets=markets, **msgspec.structs.asdict(self.engine))
        config.validate()
        return config

    def market_id(self, symbol: str) -> int | None:
        for index, market in enumerate(self.markets):
            if market["symbol"] == symbol:
                return index
        return None


class ConfigError(ValueError):
    pass


SECTIONS = ("venue", "gateway", "oracle", "demo", "engine", "projections")


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
            lines.append(f"{key} = {_toml_value(value)}")
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
    return repr(value)
