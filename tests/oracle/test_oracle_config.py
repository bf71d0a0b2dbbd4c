"""`--oracle PRIMARY[,CHECK]` and the [oracle] section: what is accepted, what is refused."""

from __future__ import annotations

import pytest

from venue import cli, config


@pytest.mark.parametrize("flag, sources", [
    ("synthetic", ("synthetic", None)), ("none", (None, None)), ("pyth,synthetic", ("pyth", "synthetic")),
    ("recorded", ("recorded", None)), (" pyth , recorded ", ("pyth", "recorded")),
])
def test_oracle_flag(flag, sources):
    args = cli.build_parser().parse_args(["run", "--oracle", flag])
    assert config.load(env={}, overrides=cli._run_overrides(args)).oracle.sources() == sources


@pytest.mark.parametrize("flag", ["ccxt", "pyth,pyth", "pyth,synthetic,recorded", "none,pyth", ""])
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
