"""Plain value types shared by the host's packages.

Money is integer everywhere: prices in the feed's integer units (ITCH Price(4), i.e. 1e-4 dollars,
or a crypto instrument's ticks), quantities in shares or lots. No float reaches a price, a
position or a P&L.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Side(enum.IntEnum):
    BUY = 0
    SELL = 1

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell."""
        return 1 if self is Side.BUY else -1


class OrderKind(enum.IntEnum):
    """Request kinds, numbered as in ``hdl.wire.ORDER_REQUEST.kind``."""
    NEW = 1
    CANCEL = 2
    REPLACE = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderIntent:
    """What a strategy wants: the order manager turns it into an order request.

    Attributes
    ----------
    strategy : str
        Name of the strategy that produced the intent.
    slot : int
        Symbol slot.
    side : Side
    price : int
        Limit price in integer price units.
    quantity : int
        Shares or lots, > 0.
    kind : OrderKind
        NEW, or CANCEL / REPLACE of ``target`` (a client order id).
    target : int
        Client order id a cancel or replace refers to (0 for NEW).
    ioc : bool
        Immediate-or-cancel.
    fok : bool
        Fill-or-kill.
    post_only : bool
        Rejected rather than allowed to cross the spread.
    """

    strategy: str
    slot: int
    side: Side
    price: int
    quantity: int
    kind: OrderKind = OrderKind.NEW
    target: int = 0
    ioc: bool = False
    fok: bool = False
    post_only: bool = False

    @classmethod
    def quick(cls, strategy: str, slot: int, side: Side, price: int, quantity: int,
              kind: OrderKind = OrderKind.NEW, target: int = 0,
              ioc: bool = False) -> "OrderIntent":
        """The same intent as the keyword constructor, built in half its time (strategies make
        dozens per batch): a frozen dataclass's ``__init__`` goes through ``object.__setattr__``
        once per field, this sets the slots directly."""
        o = _new(cls)
        _set_strategy(o, strategy)
        _set_slot(o, slot)
        _set_side(o, side)
        _set_price(o, price)
        _set_quantity(o, quantity)
        _set_kind(o, kind)
        _set_target(o, target)
        _set_ioc(o, ioc)
        _set_fok(o, False)
        _set_post_only(o, False)
        return o


_new = object.__new__
(_set_strategy, _set_slot, _set_side, _set_price, _set_quantity, _set_kind, _set_target, _set_ioc,
 _set_fok, _set_post_only) = (OrderIntent.__dict__[f].__set__ for f in (
    "strategy", "slot", "side", "price", "quantity", "kind", "target", "ioc", "fok", "post_only"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """An execution of (part of) one of our orders.

    Attributes
    ----------
    client_order_id : int
    slot : int
    side : Side
    price : int
        Execution price in integer price units.
    quantity : int
        Executed quantity, > 0.
    done : bool
        True when the order has no quantity left open.
    ts_ns : int
        Venue time of the execution, nanoseconds.
    """

    client_order_id: int
    slot: int
    side: Side
    price: int
    quantity: int
    done: bool
    ts_ns: int = 0
