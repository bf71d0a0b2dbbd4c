"""`--oracle PRIMARY[,CHECK]` and the [oracle] section: what is accepted, what is refused."""

from __future__ import annotations

import pytest

from venue import cli, config


@pytest.mark.parametrize("flag, sources", [
    ("synthetic", ("synthetic", None)), ("none", (None, None)), ("pyth,synthetic", ("pyth", "synthetic")),
    ("recorded", ("recorded", None)), (" pyth , recorded ", ("pyth", "recorded")), ("ccxt", ("ccxt", None)),
    ("pyth,ccxt", ("pyth", "ccxt")),
])
def test_oracle_flag(flag, sources):
    args = cli.build_parser().parse_args(["run", "--oracle", flag])
    assert config.load(env={}, overrides=cli._run_overrides(args)).oracle.sources() == sources


@pytest.mark.parametrize("flag", ["binance", "ccxt,ccxt", "pyth,pyth", "pyth,synthetic,recorded", "none,pyth", ""])
def test_bad_oracle_flag_is_refused_with_the_field(flag):
    with pytest.raises(config.ConfigError, match="oracle.source"):
        config.load(env={}, overrides={"oracle": {"source": flag}})


def test_feed_ids_and_api_key_from_env():
    settings = config.load(env={"AGENTPERP_ORACLE_PYTH_API_KEY": "k", "AGENTPERP_ORACLE_SOURCE": "pyth"})
    assert settings.oracle.pyth_api_key == "k"
    assert settings.oracle.pyth_feed_ids["BTC-PERP"].startswith("e62df6c8")


def test_a_malformed_feed_id_stops_the_start():
    from adapters.oracle.pyth_client import feed_ids_by_market

    with pytest.raises(ValueError, match="BTC-PERP"):
        feed_ids_by_market(["BTC-PERP"], {"BTC-PERP": "0xnothex"})
    assert feed_ids_by_market(["BTC-PERP", "X"], {"BTC-PERP": "0x" + "AB" * 32}) == {0: "ab" * 32}


def test_ccxt_settings_are_checked_when_the_source_is_built():
    from venue.oracle import build_source

    o = config.load(env={}, overrides={"oracle": {"source": "ccxt"}}).oracle
    source = build_source("ccxt", o, ["BTC-PERP", "ETH-PERP", "DOGE-PERP"], lambda: 0)
    assert source.settings.symbols == {0: "BTC/USDT:USDT", 1: "ETH/USDT:USDT"}
    assert [e.kind for e in source.settings.exchanges] == ["binanceusdm", "okx"]
    bad = config.load(env={}, overrides={"oracle": {"ccxt_exchanges": {"x": "kraken"}}}).oracle
    with pytest.raises(ValueError, match="kraken"):
        build_source("ccxt", bad, ["BTC-PERP"], lambda: 0)
    too_many = config.load(env={}, overrides={"oracle": {"ccxt_sources_min": 3}}).oracle
    with pytest.raises(ValueError, match="ccxt_sources_min"):
        build_source("ccxt", too_many, ["BTC-PERP"], lambda: 0)


def test_ccxt_transport_is_ws_by_default_and_configurable():
    from venue.oracle import build_source

    default = build_source("ccxt", config.load(env={}, overrides={}).oracle, ["BTC-PERP"], lambda: 0)
    assert default.settings.transport == "ws" and default.settings.ws_price_interval_s == 0.1
    rest = config.load(env={}, overrides={"oracle": {"ccxt_transport": "rest", "ccxt_ws_price_interval_ms": 20}}).oracle
    built = build_source("ccxt", rest, ["BTC-PERP"], lambda: 0)
    assert built.settings.transport == "rest" and built.settings.ws_price_interval_s == 0.02
    with pytest.raises(config.ConfigError, match="ccxt_transport"):
        config.load(env={}, overrides={"oracle": {"ccxt_transport": "fix"}})
    never = config.load(env={}, overrides={"oracle": {"ccxt_ws_price_interval_ms": 0}}).oracle
    with pytest.raises(ValueError, match="ccxt_ws_price_interval_ms"):
        build_source("ccxt", never, ["BTC-PERP"], lambda: 0)
    for key, value in (("ccxt_poll_interval_ms", 9), ("ccxt_stale_ms", 0)):  # a 0 poll interval would spin
        bad = config.load(env={}, overrides={"oracle": {key: value}}).oracle
        with pytest.raises(ValueError, match=key):
            build_source("ccxt", bad, ["BTC-PERP"], lambda: 0)
