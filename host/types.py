"""Plain value types shared by the host's packages.

Money is integer everywhere: prices in the feed's integer units (ITCH Price(4), i.e. 1e-4 dollars,
or a crypto instrument's ticks), quantities in shares or lots. No float reaches a price, a
position or a P&L.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


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


class OrderIntent(NamedTuple):
    """What a strategy wants: the order manager turns it into an order request.

    An immutable named tuple: strategies make dozens per batch, and a tuple is built in a
    fraction of a frozen dataclass's time (:meth:`quick`). Build it with keywords; a
    strategy that returns one intent where a list is expected is refused by the evaluators.

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
        """The same intent as the keyword constructor, in half its time (strategies make
        dozens per batch): the tuple is built directly, without matching keywords."""
        return _tuple_new(cls, (strategy, slot, side, price, quantity, kind, target, ioc, False,
                                False))


_tuple_new = tuple.__new__


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
