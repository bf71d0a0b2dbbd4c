"""Configuration: defaults < TOML file < environment < CLI flags; bad values are refused
with the field named; the documented defaults are the real ones."""

from __future__ import annotations

import tomllib

import pytest

from venue import cli, config


def test_precedence_file_then_env_then_flags(tmp_path):
    path = tmp_path / "venue.toml"
    path.write_text('[gateway]\ntcp_port = 7500\nhttp_port = 7501\n[venue]\nfsync = "always"\n'
                    '[[markets]]\nsymbol = "BTC-PERP"\nmaintenance_of_initial_bps = 4000\n')
    settings = config.load(path, env={"AGENTPERP_GATEWAY_HTTP_PORT": "7601", "AGENTPERP_VENUE_FSYNC": "none"},
                           overrides={"venue": {"fsync": "batch"}})
    assert settings.gateway.tcp_port == 7500  # file
    assert settings.gateway.http_port == 7601  # env over file
    assert settings.venue.fsync == "batch"  # flag over env
    engine = settings.engine_config()
    assert [m.symbol for m in engine.markets] == ["BTC-PERP"]
    assert engine.markets[0].maintenance_of_initial_bps == 4000


@pytest.mark.parametrize("env, field", [
    ({"AGENTPERP_GATEWAY_TCP_PORT": "seventy"}, "gateway.tcp_port"),
    ({"AGENTPERP_VENUE_FSYNC": "sometimes"}, "venue.fsync"),
    ({"AGENTPERP_ORACLE_NOPE": "1"}, "oracle"),
])
def test_bad_values_name_the_field(env, field):
    with pytest.raises(config.ConfigError, match=field.replace(".", r"\.")):
        config.load(env=env)


def test_markets_out_of_engine_bounds_are_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[markets]]\nsymbol = "BTC-PERP"\nleverage_max = 1000\n')
    with pytest.raises(config.ConfigError, match="leverage_max"):
        config.load(path, env={})


def test_printed_defaults_load_back_to_the_defaults(tmp_path):
    path = tmp_path / "defaults.toml"
    path.write_text(config.defaults_toml())
    assert tomllib.loads(path.read_text())
    assert config.load(path, env={}).engine_config() == config.load(env={}).engine_config()
    assert config.load(path, env={}).gateway == config.Config().gateway


def test_run_flags_map_onto_the_config():
    args = cli.build_parser().parse_args(["run", "--data", "d", "--port", "0", "--http-port", "0",
                                          "--no-demo", "--oracle", "none", "--duration", "2.5"])
    overrides = cli._run_overrides(args)
    settings = config.load(env={}, overrides=overrides)
    assert (settings.venue.data_dir, settings.gateway.tcp_port, settings.gateway.http_port) == ("d", 0, 0)
    assert (settings.venue.demo, settings.venue.dev, settings.oracle.source, settings.venue.duration_s) == \
        (False, False, "none", 2.5)
    assert settings.hedging.enabled == "auto"  # on with the demo agents


def test_no_hedging_turns_the_hedger_off_even_with_the_demo():
    args = cli.build_parser().parse_args(["run", "--no-hedging"])
    settings = config.load(env={}, overrides=cli._run_overrides(args))
    assert (settings.venue.demo, settings.hedging.enabled) == (True, "off")
