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


@pytest.mark.parametrize("key, held", [("max_notional", "one notional limit"),
                                       ("max_open_orders", "one open-order limit"),
                                       ("collar_ticks", "one collar band"),
                                       ("tick_size", "one collar band")])
def test_a_symbol_override_the_gate_cannot_hold_per_symbol_is_refused_with_the_reason(key, held):
    # The gate holds these once for every symbol: a tighter value for one symbol would be
    # enforced by nothing, neither the gate nor the host's pre-check.
    with pytest.raises(ConfigError, match=rf"^risk\.symbols\.AAPL\.{key}: the risk gate holds "
                                          rf"{held}.* for every symbol; set it under \[risk\]$"):
        parse_config(f"[risk.symbols.AAPL]\n{key} = 5\n")


@pytest.mark.parametrize("text, message", [
    ("[risk]\nmax_notional = 18446744073709551616\n",
     r"^risk\.max_notional: must be <= 18446744073709551615, got 18446744073709551616$"),
    ("[risk]\nmax_open_orders = 4294967296\n",
     r"^risk\.max_open_orders: must be <= 4294967295, got 4294967296$"),
    ("[risk.symbols.AAPL]\nmax_position = 4294967296\n",
     r"^risk\.symbols\.AAPL\.max_position: must be <= 4294967295, got 4294967296$")])
def test_a_limit_wider_than_its_gate_register_is_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_the_widest_notional_limit_fits_the_gate_registers():
    from host.daemon import gate_registers

    config = parse_config("[risk]\nmax_notional = 18446744073709551615\n")
    regs = {name: value for name, index, value in gate_registers(config.risk, {})}
    assert regs["RISK_MAX_NOTIONAL_LO"] == regs["RISK_MAX_NOTIONAL_HI"] == 0xFFFF_FFFF


def test_the_host_precheck_takes_the_loosest_of_what_symbols_may_override_only():
    from host.daemon import gate_registers, precheck_config

    config = parse_config("[risk]\nmax_order_qty = 100\nmax_position = 1000\n"
                          "max_notional = 5000000\nmax_open_orders = 8\n"
                          "[risk.symbols.AAPL]\nmax_order_qty = 400\nmax_position = 200\n")

    pre = precheck_config(config.risk)
    regs = {(name, index): value for name, index, value
            in gate_registers(config.risk, {0: "AAPL", 1: "MSFT"})}

    # quantity and position: the host lets the loosest through, the gate holds each slot's own
    assert (pre.max_order_quantity, pre.max_long, pre.max_short) == (400, 1000, 1000)
    assert regs[("RISK_MAX_ORDER_QTY", 0)] == 400 and regs[("RISK_MAX_ORDER_QTY", 1)] == 100
    assert regs[("RISK_MAX_LONG", 0)] == 200 and regs[("RISK_MAX_LONG", 1)] == 1000
    # notional and open orders: one value, the same in both
    assert (pre.max_notional, pre.max_open_orders) == (5_000_000, 8)
    assert regs[("RISK_MAX_NOTIONAL_LO", 0)] == 5_000_000 and regs[("RISK_MAX_OPEN_ORDERS", 0)] == 8
