"""The daemon's configuration: one TOML file validated into frozen, keyword-only dataclasses.

Every section is a dataclass whose fields carry their default and a one-line meaning in
``metadata["doc"]``; :func:`describe` prints them all. Unknown keys, wrong types and values
outside their allowed set are errors that name the full key path, e.g.
``risk.max_order_qty: expected int, got str``.

``host/default.toml`` is the example file; parsing it gives exactly ``Config()`` (a test pins this).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "ConfigError", "Config", "LinkConfig", "FeedConfig", "VenueConfig", "RiskLimits",
    "SymbolRiskOverride", "RiskConfig", "StrategyConfig", "JournalConfig", "MetricsConfig",
    "MlConfig", "load_config", "parse_config", "config_from_mapping", "describe",
    "DEFAULT_CONFIG_PATH",
]

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.toml")


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range.

    The message starts with the full key path, e.g. ``risk.symbols.AAPL.max_position: ...``.
    """


def _f(default: Any, doc: str, *, choices: tuple = (), minimum: int | float | None = None,
       maximum: int | None = None, key: str | None = None) -> Any:
    """A dataclass field with its documentation, allowed values and TOML key."""
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum, "key": key}
    return field(default=default, metadata=meta)


def _ff(factory: Any, doc: str, *, key: str | None = None) -> Any:
    return field(default_factory=factory, metadata={"doc": doc, "choices": (), "minimum": None,
                                                     "key": key})


@dataclass(frozen=True, kw_only=True)
class LinkConfig:
    """``[link]``: the FPGA boundary.

    Attributes
    ----------
    backend : {"sim", "board"}
        Default ``"sim"``: the Verilator-simulated gateware; ``"board"`` drives a PYNQ overlay.
    bitstream : str
        Default ``""``: path of the overlay (``.bit``) for the board backend; unused by ``sim``.
    """

    backend: str = _f("sim", "sim = simulated gateware, board = PYNQ overlay",
                      choices=("sim", "board"))
    bitstream: str = _f("", "overlay path for backend = board")


@dataclass(frozen=True, kw_only=True)
class FeedConfig:
    """``[feed]``: where market data comes from.

    Attributes
    ----------
    format : {"itch", "moldudp64", "level"}
        Default ``"itch"``: historical ITCH file framing; ``moldudp64`` packets; ``level``
        crypto level updates.
    path : str
        Default ``""``: file to replay; empty means no replay source.
    """

    format: str = _f("itch", "itch file framing, moldudp64 packets or level updates",
                     choices=("itch", "moldudp64", "level"))
    path: str = _f("", "file to replay; empty = none")


@dataclass(frozen=True, kw_only=True)
class VenueConfig:
    """``[venue]``: where accepted orders go.

    Attributes
    ----------
    kind : {"paper"}
        Default ``"paper"``: a simulated venue that fills against the live BBO.
    latency_ns : int
        Default ``50000``: one-way order latency the paper venue adds, nanoseconds.
    """

    kind: str = _f("paper", "paper = simulated venue", choices=("paper",))
    latency_ns: int = _f(50_000, "paper venue one-way latency, ns", minimum=0)


@dataclass(frozen=True, kw_only=True)
class RiskLimits:
    """Effective pre-trade limits for one symbol (global limits with the symbol's overrides).

    Attributes
    ----------
    max_order_qty : int
        Largest quantity of one order.
    max_notional : int
        Largest price x quantity of one order, in price units x shares.
    max_position : int
        Largest absolute net position after a fill of the order.
    max_open_orders : int
        Most orders open at once.
    collar_ticks : int
        Farthest a buy may be priced above the ask, or a sell below the bid, in ticks (the
        collar is one-sided: a buy below the ask or a sell above the bid passes).
    tick_size : int
        Price increment in integer price units.
    """

    max_order_qty: int
    max_notional: int
    max_position: int
    max_open_orders: int
    collar_ticks: int
    tick_size: int


@dataclass(frozen=True, kw_only=True)
class SymbolRiskOverride:
    """``[risk.symbols.<TICKER>]``: per-symbol overrides; a field left out keeps the global value.

    Only the limits the risk gate holds per symbol slot can be overridden: the order quantity
    and the position. The gate holds one notional limit, one open-order limit and one collar band
    for every symbol, so those keys are refused here with that reason: a tighter value for one
    symbol would be enforced by nothing.

    Attributes
    ----------
    max_order_qty, max_position : int or None
        Default ``None`` (inherit the ``[risk]`` value).
    """

    GLOBAL_ONLY: ClassVar[dict[str, str]] = {
        "max_notional": "one notional limit", "max_open_orders": "one open-order limit",
        "collar_ticks": "one collar band", "tick_size": "one collar band (collar_ticks x tick_size)"}

    max_order_qty: int | None = _f(None, "override of risk.max_order_qty", minimum=1,
                                   maximum=0xFFFF_FFFF)
    max_position: int | None = _f(None, "override of risk.max_position", minimum=0,
                                  maximum=0xFFFF_FFFF)


@dataclass(frozen=True, kw_only=True)
class RiskConfig:
    """``[risk]``: global pre-trade limits (integers: price units and shares/lots).

    Attributes
    ----------
    max_order_qty : int
        Default ``1000``.
    max_notional : int
        Default ``1_000_000_000`` price units x shares (100,000 $ at ITCH Price(4)).
    max_position : int
        Default ``5000``.
    max_open_orders : int
        Default ``64``.
    collar_ticks : int
        Default ``50``.
    tick_size : int
        Default ``100`` (one cent at ITCH Price(4)).
    symbols : mapping of str to SymbolRiskOverride
        Default empty: ``[risk.symbols.<TICKER>]`` tables.
    """

    max_order_qty: int = _f(1000, "largest order quantity", minimum=1, maximum=0xFFFF_FFFF)
    max_notional: int = _f(1_000_000_000, "largest price x quantity of one order", minimum=1,
                           maximum=(1 << 64) - 1)
    max_position: int = _f(5000, "largest absolute net position", minimum=0, maximum=0xFFFF_FFFF)
    max_open_orders: int = _f(32, "most open orders at once (the default gate holds 32)",
                              minimum=0, maximum=0xFFFF_FFFF)
    collar_ticks: int = _f(50, "farthest a buy above the ask, a sell below the bid, ticks",
                           minimum=0)
    tick_size: int = _f(100, "price increment, integer price units", minimum=1)
    symbols: Mapping[str, SymbolRiskOverride] = _ff(
        lambda: types.MappingProxyType({}), "per-ticker overrides")

    def limits_for(self, ticker: str) -> RiskLimits:
        """The global limits with ``ticker``'s overrides applied.

        Parameters
        ----------
        ticker : str
            Symbol as written in ``[risk.symbols.<TICKER>]``; an unknown ticker gets the
            global limits.
        """
        override = self.symbols.get(ticker)
        values = {}
        for f in dataclasses.fields(RiskLimits):
            value = getattr(override, f.name, None) if override is not None else None
            values[f.name] = getattr(self, f.name) if value is None else value
        return RiskLimits(**values)


@dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """One entry of ``strategies = [...]`` (or one ``[[strategies]]`` table).

    Attributes
    ----------
    module : str
        Required: dotted module name (``host.strategy.builtin``) or path of a ``.py`` file.
    class_name : str
        Required, TOML key ``class``: the :class:`host.strategy.api.Strategy` subclass.
    name : str
        Default ``""``: the strategy's name on its intents; empty means the class name plus
        its position in the list.
    params : mapping
        Default empty: keyword arguments of the class.
    """

    module: str = field(metadata={"doc": "dotted module or .py file path"})
    class_name: str = field(metadata={"doc": "Strategy subclass", "key": "class"})
    name: str = _f("", "intent name; empty = <class>#<index>")
    params: Mapping[str, Any] = _ff(lambda: types.MappingProxyType({}),
                                    "keyword arguments of the class")


@dataclass(frozen=True, kw_only=True)
class JournalConfig:
    """``[journal]``: the event journal.

    Attributes
    ----------
    dir : str
        Default ``"journal"``: directory of journal segments and snapshots.
    fsync : {"group", "batch", "always", "never"}
        Default ``"group"``: group commit; every record is written (one ``write``, so a killed
        process loses nothing) before the order it records leaves, and a background thread
        fsyncs every ``fsync_interval_ms`` or as soon as ``fsync_every_records`` records wait,
        so a power loss loses at most that window. ``"batch"``: fsync at the end of every
        batch, in the batch loop. ``"always"``: fsync after every record. ``"never"``: leave it
        to the OS (fsync only at snapshots and shutdown).
    fsync_interval_ms : int
        Default ``10``: longest time between a record's write and its fsync under ``"group"``
        (plus one fsync's duration).
    fsync_every_records : int
        Default ``64``: records waiting that start a group-commit fsync before the interval.
    snapshot_every : int
        Default ``100000``: events between snapshots.
    """

    dir: str = _f("journal", "directory of segments and snapshots")
    fsync: str = _f("group", "group, batch, always or never",
                    choices=("group", "batch", "always", "never"))
    fsync_interval_ms: int = _f(10, "group commit: most ms from a record's write to its fsync",
                                minimum=1)
    fsync_every_records: int = _f(64, "group commit: waiting records that start an fsync early",
                                  minimum=1)
    snapshot_every: int = _f(100_000, "events between snapshots", minimum=1)


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    """``[metrics]``: the Prometheus endpoint and alert thresholds.

    Attributes
    ----------
    host : str
        Default ``"127.0.0.1"``: address the HTTP endpoint binds to.
    port : int
        Default ``0``: TCP port; 0 disables the endpoint.
    reject_rate_alert : float
        Default ``0.05``: alert when more than this fraction of orders in a window is rejected.
    min_orders_for_reject_alert : int
        Default ``20``: orders a window needs before its reject rate is judged.
    gap_alert : int
        Default ``1``: alert when a window sees at least this many sequence gaps.
    stale_book_alert_ms : int
        Default ``5000``: alert when a symbol's book has had no update for this long.
    window_s : float
        Default ``10.0``: length of the alert window, seconds.
    """

    host: str = _f("127.0.0.1", "bind address")
    port: int = _f(0, "TCP port; 0 = disabled", minimum=0)
    reject_rate_alert: float = _f(0.05, "reject fraction that raises an alert", minimum=0.0)
    min_orders_for_reject_alert: int = _f(20, "orders needed to judge a window", minimum=1)
    gap_alert: int = _f(1, "gaps per window that raise an alert", minimum=1)
    stale_book_alert_ms: int = _f(5000, "book age that raises an alert, ms", minimum=1)
    window_s: float = _f(10.0, "alert window, s", minimum=0.001)


@dataclass(frozen=True, kw_only=True)
class MlConfig:
    """``[ml]``: the model the ML strategy uses.

    Attributes
    ----------
    model : str
        Default ``""``: path of the ONNX model; empty means the shipped ``host/ml/model.onnx``.
    reload : bool
        Default ``true``: watch the file and swap in a retrained model.
    """

    model: str = _f("", "ONNX model path; empty = shipped host/ml/model.onnx")
    reload: bool = _f(True, "pick up a rewritten model file")


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole daemon configuration; each attribute is one TOML section (see its class)."""

    link: LinkConfig = _ff(LinkConfig, "[link]")
    feed: FeedConfig = _ff(FeedConfig, "[feed]")
    venue: VenueConfig = _ff(VenueConfig, "[venue]")
    risk: RiskConfig = _ff(RiskConfig, "[risk]")
    strategies: tuple[StrategyConfig, ...] = _ff(tuple, "strategies = [{module, class, params}]")
    journal: JournalConfig = _ff(JournalConfig, "[journal]")
    metrics: MetricsConfig = _ff(MetricsConfig, "[metrics]")
    ml: MlConfig = _ff(MlConfig, "[ml]")


# ------------------------------------------------------------------------------------------
# Validation
# ------------------------------------------------------------------------------------------

def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)


def _freeze(value: Any) -> Any:
    """Free-form values (strategy params) become read-only: tables to mappingproxy, arrays to
    tuples."""
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _check_scalar(hint: Any, value: Any, path: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected bool, got {_type_name(value)}")
        return value
    if hint is int:
        # bool is an int subclass in Python; TOML true is not a quantity.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected int, got {_type_name(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected float, got {_type_name(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected str, got {_type_name(value)}")
        return value
    raise TypeError(f"unsupported config type {hint!r} at {path}")


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected table, got {_type_name(value)}")
        return _build(hint, value, path)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected array, got {_type_name(value)}")
        return tuple(_convert(args[0], item, f"{path}[{i}]") for i, item in enumerate(value))
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected table, got {_type_name(value)}")
        value_hint = args[1] if args else Any
        if value_hint is Any:
            return _freeze(value)
        return types.MappingProxyType({k: _convert(value_hint, v, f"{path}.{k}")
                                       for k, v in value.items()})
    return _check_scalar(hint, value, path)


def _build(cls: type, table: Mapping[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    by_key = {(f.metadata.get("key") or f.name): f for f in dataclasses.fields(cls)}
    prefix = f"{path}." if path else ""
    for key in table:
        if key not in by_key:
            reason = getattr(cls, "GLOBAL_ONLY", {}).get(key)
            if reason:
                raise ConfigError(f"{prefix}{key}: the risk gate holds {reason} for every "
                                  f"symbol; set it under [risk]")
            raise ConfigError(f"{prefix}{key}: unknown key; expected one of {sorted(by_key)}")
    kwargs = {}
    for key, f in by_key.items():
        key_path = f"{prefix}{key}"
        if key not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key_path}: required key is missing")
            continue
        value = _convert(hints[f.name], table[key], key_path)
        choices = f.metadata.get("choices") or ()
        if choices and value not in choices:
            raise ConfigError(f"{key_path}: expected one of {list(choices)}, got {value!r}")
        minimum = f.metadata.get("minimum")
        if minimum is not None and value is not None and value < minimum:
            raise ConfigError(f"{key_path}: must be >= {minimum}, got {value!r}")
        maximum = f.metadata.get("maximum")
        if maximum is not None and value is not None and value > maximum:
            raise ConfigError(f"{key_path}: must be <= {maximum}, got {value!r}")
        kwargs[f.name] = value
    return cls(**kwargs)


def config_from_mapping(table: Mapping[str, Any]) -> Config:
    """Validate a parsed TOML document (a dict) into a :class:`Config`.

    Raises
    ------
    ConfigError
        With the full key path of the first offending key.
    """
    return _build(Config, table, "")


def parse_config(text: str) -> Config:
    """Parse and validate TOML text.

    Raises
    ------
    ConfigError
        On TOML syntax errors and on invalid keys or values.
    """
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"<toml>: {exc}") from exc
    return config_from_mapping(table)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a TOML file; ``None`` gives the embedded defaults (``Config()``).

    Raises
    ------
    ConfigError
        Invalid content; the message names the file and the key path.
    OSError
        The file cannot be read.
    """
    if path is None:
        return Config()
    text = Path(path).read_text(encoding="utf-8")
    try:
        return parse_config(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def describe(cls: type = Config, prefix: str = "") -> list[str]:
    """Lines ``key = default  # doc`` for every field, recursively; for ``--help``-style output."""
    lines = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.metadata.get('key') or f.name}"
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            lines.append(f"[{key}]")
            lines.extend(describe(hint, f"{key}."))
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "<required>"
        lines.append(f"{key} = {default!r}  # {f.metadata.get('doc', '')}")
    return lines
