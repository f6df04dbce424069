"""The host's pre-trade check, in front of the gateware's risk gate.

The gate holds the authoritative, fast checks against the live book. This one runs first, on the
host, with the host's fuller picture (open orders not yet acknowledged, per-strategy intent) and
gives a reason for every refusal. An intent it refuses never becomes an order request.

All limits are integers: a notional is price × quantity in price units × shares, exactly.

A replace is checked as the new order it is, with its target still counted among the open
orders: until the venue answers, the target may still fill (its whole open quantity) and the
replacement may then fill too, so the worst case holds both. This is the bound the gateware's
risk gate applies (it holds the target open until the host reports the venue's answer with a
release), so the host never passes what the gate must refuse for position. A replace that only
shrinks an order can therefore be refused near a position limit; a cancel never is.
"""

from __future__ import annotations

import dataclasses
import enum
import operator
from dataclasses import dataclass
from typing import NamedTuple

from host.types import OrderIntent, OrderKind, Side

__all__ = ["PreTradeConfig", "PreTradeReason", "PreTradeRejection", "PreTradeCheck",
           "Exposure"]

_U32 = (1 << 32) - 1


class PreTradeReason(enum.IntFlag):
    """Why the host refused an intent; several bits may be set."""
    INVALID = 1 << 0             #: slot, side, price or quantity not an integer in range
    #:                              (a float, a bool or a side other than BUY / SELL)
    ORDER_QUANTITY = 1 << 1      #: quantity above max_order_quantity
    NOTIONAL = 1 << 2            #: price × quantity above max_notional
    POSITION_LONG = 1 << 3       #: position + open buys + quantity above max_long
    POSITION_SHORT = 1 << 4      #: -position + open sells + quantity above max_short
    OPEN_ORDERS = 1 << 5         #: as many live orders as max_open_orders already
    SYMBOL_DISABLED = 1 << 6     #: the slot is not enabled for trading
    UNKNOWN_TARGET = 1 << 7      #: a cancel or replace of an order not ours or not live (or,
    #:                              for a replace, on another symbol or side)
    UNSUPPORTED_KIND = 1 << 8    #: a request kind the host does not know


_INVALID = int(PreTradeReason.INVALID)
_ORDER_QUANTITY = int(PreTradeReason.ORDER_QUANTITY)
_NOTIONAL = int(PreTradeReason.NOTIONAL)
_POSITION_LONG = int(PreTradeReason.POSITION_LONG)
_POSITION_SHORT = int(PreTradeReason.POSITION_SHORT)
_OPEN_ORDERS = int(PreTradeReason.OPEN_ORDERS)
_SYMBOL_DISABLED = int(PreTradeReason.SYMBOL_DISABLED)
_UNKNOWN_TARGET = int(PreTradeReason.UNKNOWN_TARGET)
_UNSUPPORTED_KIND = int(PreTradeReason.UNSUPPORTED_KIND)
_SIDES = frozenset(int(s) for s in Side)


def _integer(value) -> int | None:
    """``value`` as an exact int (a Python or numpy integer), or None: a float, a bool or
    anything else is not a quantity or a price."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


@dataclass(frozen=True, kw_only=True)
class PreTradeConfig:
    """Host-side pre-trade limits.

    Parameters
    ----------
    max_order_quantity : int
        Largest quantity of one order. Default 10_000.
    max_notional : int
        Largest price × quantity of one order, in price units × shares. Default 10**11 (with
        ITCH Price(4) prices: $10 million).
    max_long : int
        Largest long position of a slot, counting open buy orders. Default 100_000.
    max_short : int
        Largest short position (a positive number) of a slot, counting open sell orders.
        Default 100_000.
    max_open_orders : int
        Largest number of live orders over all slots. Default 100.
    enabled_slots : frozenset of int or None
        Slots allowed to trade; None (the default) enables every slot.
    """

    max_order_quantity: int = 10_000
    max_notional: int = 10 ** 11
    max_long: int = 100_000
    max_short: int = 100_000
    max_open_orders: int = 100
    enabled_slots: frozenset[int] | None = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "enabled_slots":
                if value is not None:
                    object.__setattr__(self, f.name, frozenset(int(s) for s in value))
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"PreTradeConfig.{f.name} must be a non-negative integer, "
                                 f"got {value!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "PreTradeConfig":
        """Build from a mapping, refusing unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"PreTradeConfig has no field(s) {unknown!r}; "
                             f"known fields are {sorted(known)!r}")
        return cls(**values)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["enabled_slots"] is not None:
            d["enabled_slots"] = sorted(d["enabled_slots"])
        return d


@dataclass(frozen=True, slots=True)
class PreTradeRejection:
    """An intent the host refused, with the reasons."""
    intent: OrderIntent
    reasons: PreTradeReason


class Exposure(NamedTuple):
    """What the check needs to know about a slot and the book of live orders (a named tuple:
    one is made per intent, on the path to the gate)."""
    position: int          #: signed position of the slot
    open_buy: int          #: open quantity of live buy orders of the slot
    open_sell: int         #: open quantity of live sell orders of the slot
    open_orders: int       #: live orders over all slots
    target_live: bool      #: cancel / replace: its target is one of our live orders (a
    #:                        replace: on the same symbol and side)


class PreTradeCheck:
    """Applies a :class:`PreTradeConfig` to one intent at a time.

    Parameters
    ----------
    config : PreTradeConfig
    """

    def __init__(self, config: PreTradeConfig):
        self.config = config

    def check(self, intent: OrderIntent, exposure: Exposure) -> PreTradeReason:
        """Return the reasons to refuse ``intent`` (an empty flag when it passes).

        Parameters
        ----------
        intent : OrderIntent
        exposure : Exposure
            The slot's position and live orders before this intent.
        """
        cfg = self.config
        # Plain integers while checking (an IntFlag operation costs a microsecond), one
        # PreTradeReason at the end.
        r = 0
        slot = _integer(intent.slot)
        if slot is None or not 0 <= slot <= 0xFFFF:
            r |= _INVALID
        kind = intent.kind
        if kind == OrderKind.CANCEL:
            # A cancel only ever lowers exposure: a disabled symbol's orders can still be pulled.
            if not exposure.target_live:
                r |= _UNKNOWN_TARGET
            return PreTradeReason(r)
        if cfg.enabled_slots is not None and slot not in cfg.enabled_slots:
            r |= _SYMBOL_DISABLED
        if kind == OrderKind.REPLACE:
            if not exposure.target_live:
                r |= _UNKNOWN_TARGET
        elif kind != OrderKind.NEW:
            return PreTradeReason(r | _UNSUPPORTED_KIND)
        qty, price = _integer(intent.quantity), _integer(intent.price)
        if (qty is None or price is None or not (0 < qty <= _U32 and 0 < price <= _U32)
                or _integer(intent.side) not in _SIDES):
            return PreTradeReason(r | _INVALID)
        if qty > cfg.max_order_quantity:
            r |= _ORDER_QUANTITY
        if price * qty > cfg.max_notional:
            r |= _NOTIONAL
        if intent.side == Side.BUY:
            if exposure.position + exposure.open_buy + qty > cfg.max_long:
                r |= _POSITION_LONG
        else:
            if -exposure.position + exposure.open_sell + qty > cfg.max_short:
                r |= _POSITION_SHORT
        if exposure.open_orders >= cfg.max_open_orders:
            r |= _OPEN_ORDERS
        return PreTradeReason(r)
