"""Configuration: TOML into frozen, keyword-only dataclasses with key-path errors."""

import dataclasses

import pytest

from host.config import (DEFAULT_CONFIG_PATH, Config, ConfigError, RiskConfig, StrategyConfig,
                         describe, load_config, parse_config)


def test_shipped_default_toml_equals_embedded_defaults():
    # Arrange / Act
    loaded = load_config(DEFAULT_CONFIG_PATH)

    # Assert
    assert loaded == Config()


def test_no_path_gives_embedded_defaults_binding_metrics_to_localhost():
    config = load_config(None)

    assert config.metrics.host == "127.0.0.1"
    assert config.metrics.port == 0
    assert config.link.backend == "sim"


def test_string_where_int_expected_is_rejected_with_full_key_path():
    with pytest.raises(ConfigError) as info:
        parse_config('[risk]\nmax_order_qty = "100"\n')

    assert str(info.value) == "risk.max_order_qty: expected int, got str"


def test_bool_where_int_expected_is_rejected():
    with pytest.raises(ConfigError, match=r"^journal\.snapshot_every: expected int, got bool$"):
        parse_config("[journal]\nsnapshot_every = true\n")


def test_unknown_key_in_symbol_override_is_rejected_with_full_key_path():
    with pytest.raises(ConfigError, match=r"^risk\.symbols\.AAPL\.max_qty: unknown key"):
        parse_config("[risk.symbols.AAPL]\nmax_qty = 5\n")


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match=r"^colour: unknown key"):
        parse_config("[colour]\nred = 1\n")


def test_backend_outside_allowed_values_is_rejected():
    with pytest.raises(ConfigError, match=r"^link\.backend: expected one of \['sim', 'board'\]"):
        parse_config('[link]\nbackend = "fpga"\n')


def test_negative_latency_is_rejected():
    with pytest.raises(ConfigError, match=r"^venue\.latency_ns: must be >= 0, got -1$"):
        parse_config("[venue]\nlatency_ns = -1\n")


def test_symbol_override_replaces_only_the_fields_it_sets():
    config = parse_config("[risk]\nmax_position = 900\ncollar_ticks = 7\n"
                          "[risk.symbols.AAPL]\nmax_position = 300\n")

    aapl = config.risk.limits_for("AAPL")
    msft = config.risk.limits_for("MSFT")

    assert (aapl.max_position, aapl.collar_ticks) == (300, 7)
    assert (msft.max_position, msft.collar_ticks) == (900, 7)


def test_strategies_array_of_tables_parses_class_and_params():
    text = """
[[strategies]]
module = "host.strategy.builtin"
class = "MarketMaker"
name = "mm"
params = { slot = 3, tick_size = 100, levels = [1, 2] }
"""
    config = parse_config(text)

    (strategy,) = config.strategies
    assert strategy.class_name == "MarketMaker"
    assert dict(strategy.params) == {"slot": 3, "tick_size": 100, "levels": (1, 2)}
    with pytest.raises(TypeError):
        strategy.params["slot"] = 4  # params are read-only


def test_strategy_without_module_is_rejected_naming_its_index():
    with pytest.raises(ConfigError, match=r"^strategies\[1\]\.module: required key is missing$"):
        parse_config('strategies = [{module = "a", class = "B"}, {class = "C"}]\n')


def test_config_objects_are_frozen_and_keyword_only():
    config = Config()

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.risk.max_position = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        RiskConfig(10)  # type: ignore[misc]
    with pytest.raises(TypeError):
        StrategyConfig("m", "C")  # type: ignore[misc]


def test_toml_syntax_error_from_file_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[risk\n")

    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(path)


def test_every_field_documents_itself_and_appears_in_default_toml():
    lines = describe()
    text = DEFAULT_CONFIG_PATH.read_text()

    for line in lines:
        if line.startswith("["):
            continue
        key, _, rest = line.partition(" = ")
        assert rest.split("  # ", 1)[1].strip(), f"{key} has no doc"
        leaf = key.rsplit(".", 1)[-1]
        assert leaf in text, f"{key} missing from default.toml"


def test_journal_defaults_to_group_commit_and_refuses_a_zero_fsync_interval():
    assert parse_config("").journal.fsync == "group"
    with pytest.raises(ConfigError, match="journal.fsync_interval_ms"):
        parse_config("[journal]\nfsync_interval_ms = 0\n")
    with pytest.raises(ConfigError, match="journal.fsync"):
        parse_config('[journal]\nfsync = "sometimes"\n')
