"""What a strategy is, and what it may see of the daemon.

A strategy receives batches of BBO records (numpy structured arrays of
:data:`hdl.wire.BBO_UPDATE` ``.dtype``), fills and timer ticks, and answers with
:class:`host.types.OrderIntent`\\ s. It never talks to a venue: intents go through the order
manager and the risk checks. What it may know of our own state (positions, open orders) comes in
a read-only :class:`StrategyContext` that the daemon fills in before each call.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from hdl.wire import BBO_UPDATE
from host.types import Fill, OrderIntent, OrderKind, Side

__all__ = [
    "OpenOrder", "StrategyContext", "Strategy", "BID_VALID", "ASK_VALID", "BOTH_VALID",
    "quote_side_intents", "empty_context",
]

BID_VALID = BBO_UPDATE.flag("flags", "bid_valid")
ASK_VALID = BBO_UPDATE.flag("flags", "ask_valid")
BOTH_VALID = BID_VALID | ASK_VALID


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenOrder:
    """One of our orders that is live at the venue (or on its way there).

    Attributes
    ----------
    client_order_id : int
    strategy : str
        Name of the strategy that owns it.
    slot : int
    side : Side
    price : int
        Limit price, integer price units.
    quantity : int
        Quantity still open.
    """

    client_order_id: int
    strategy: str
    slot: int
    side: Side
    price: int
    quantity: int

    @classmethod
    def quick(cls, client_order_id: int, strategy: str, slot: int, side: Side, price: int,
              quantity: int) -> "OpenOrder":
        """The same view as the keyword constructor in half its time (the daemon makes one per
        changed order per batch); see :meth:`host.types.OrderIntent.quick`."""
        o = _new(cls)
        _set_coid(o, client_order_id)
        _set_strategy(o, strategy)
        _set_slot(o, slot)
        _set_side(o, side)
        _set_price(o, price)
        _set_quantity(o, quantity)
        return o


_new = object.__new__
_set_coid, _set_strategy, _set_slot, _set_side, _set_price, _set_quantity = (
    OpenOrder.__dict__[f].__set__
    for f in ("client_order_id", "strategy", "slot", "side", "price", "quantity"))


@dataclass(frozen=True, kw_only=True)
class StrategyContext:
    """Read-only view of the daemon's state handed to every strategy call.

    Attributes
    ----------
    now_ns : int
        Host time of the call, nanoseconds.
    positions : mapping of int to int
        Net position per symbol slot (buys positive), shares or lots; a slot not present is flat.
    open_orders : tuple of OpenOrder
        Every open order of every strategy.
    """

    now_ns: int = 0
    positions: Mapping[int, int] = field(default_factory=lambda: types.MappingProxyType({}))
    open_orders: tuple[OpenOrder, ...] = ()

    def __post_init__(self):
        # A strategy must not be able to write into the daemon's books through its view.
        if not isinstance(self.positions, types.MappingProxyType):
            object.__setattr__(self, "positions", types.MappingProxyType(dict(self.positions)))
        object.__setattr__(self, "open_orders", tuple(self.open_orders))
        # The first open order per (strategy, slot, side): built from the last, so that the
        # first one written wins.
        object.__setattr__(self, "_first_open", {(o.strategy, o.slot, o.side): o
                                                  for o in reversed(self.open_orders)})

    @classmethod
    def indexed(cls, now_ns: int, positions: types.MappingProxyType,
                open_orders: tuple[OpenOrder, ...],
                first_open: dict[tuple[str, int, Side], OpenOrder]) -> "StrategyContext":
        """A context whose index the caller built in the same pass as the open orders (the
        daemon, once per change of its books): ``first_open`` must map each (strategy, slot,
        side) to its first order in ``open_orders``, and neither may change afterwards. The
        tests hold the daemon's contexts to the keyword constructor's."""
        view = object.__new__(cls)
        view.__dict__.update(now_ns=now_ns, positions=positions, open_orders=open_orders,
                             _first_open=first_open)
        return view

    def __reduce__(self):
        # mappingproxy does not pickle; the process-pool evaluator ships contexts to workers.
        return (_rebuild_context, (self.now_ns, dict(self.positions), self.open_orders))

    def at(self, now_ns: int) -> "StrategyContext":
        """The same view at another time: positions, open orders and their index are shared,
        not rebuilt (the daemon makes one view per change of its books, not per call)."""
        if now_ns == self.now_ns:
            return self
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.__dict__["now_ns"] = now_ns
        return view

    @property
    def first_open(self) -> Mapping[tuple[str, int, Side], OpenOrder]:
        """Read-only (strategy, slot, side) → :meth:`open_order` mapping, for kernels that
        look up many instances' orders per batch (a mapping's ``get`` is a C call, a method
        call is not)."""
        return types.MappingProxyType(self._first_open)

    def position(self, slot: int) -> int:
        """Net position of ``slot`` (0 when flat or unknown)."""
        return self.positions.get(slot, 0)

    def open_order(self, strategy: str, slot: int, side: Side) -> OpenOrder | None:
        """The first open order of ``strategy`` on ``slot`` and ``side``, or None."""
        return self._first_open.get((strategy, slot, side))

    def has_open_orders(self, strategy: str, slot: int) -> bool:
        """Whether ``strategy`` has any open order on ``slot`` (a lookup, not a scan)."""
        first = self._first_open
        return (strategy, slot, Side.BUY) in first or (strategy, slot, Side.SELL) in first

    def orders_of(self, strategy: str, slot: int | None = None) -> tuple[OpenOrder, ...]:
        """All open orders of ``strategy`` (on ``slot`` when given)."""
        return tuple(o for o in self.open_orders
                     if o.strategy == strategy and (slot is None or o.slot == slot))


def _rebuild_context(now_ns, positions, open_orders):
    return StrategyContext(now_ns=now_ns, positions=positions, open_orders=open_orders)


def empty_context(now_ns: int = 0) -> StrategyContext:
    """A context with no positions and no open orders."""
    return StrategyContext(now_ns=now_ns)


class Strategy:
    """Base class of strategies.

    Subclasses take their parameters as keyword arguments and override the callbacks they
    need. A subclass may declare ``kernel`` (a :class:`host.strategy.vector.Kernel` type) so
    that the vectorised evaluator runs many instances in one numpy pass; it must then give
    the same intents as its ``on_bbo``.

    Parameters
    ----------
    name : str
        Name stamped on the strategy's intents and used to find its open orders.
    """

    kernel = None

    def __init__(self, *, name: str):
        if not isinstance(name, str) or not name:
            raise ValueError(f"strategy name must be a non-empty str, got {name!r}")
        self.name = name

    def on_bbo(self, batch: np.ndarray, ctx: StrategyContext) -> list[OrderIntent]:
        """React to a batch of BBO records (``BBO_UPDATE.dtype``, in arrival order).

        Returns
        -------
        list of OrderIntent
        """
        return []

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> list[OrderIntent]:
        """React to a fill of one of this strategy's orders."""
        return []

    def on_timer(self, now_ns: int, ctx: StrategyContext) -> list[OrderIntent]:
        """Periodic call, e.g. to cancel stale quotes."""
        return []

    def export_state(self) -> dict:
        """State to carry over a hot reload (plain picklable values)."""
        return {}

    def import_state(self, state: dict) -> None:
        """Take over the state exported by the previous version of this strategy."""

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def quote_side_intents(strategy: str, slot: int, side: Side, want: bool, price: int,
                       quantity: int, existing: OpenOrder | None) -> list[OrderIntent]:
    """Intents that move a resting quote on one side to the wanted state.

    New quote where there is none, replace when price or quantity differ, cancel when no quote
    is wanted, nothing when the quote already stands.

    Parameters
    ----------
    strategy, slot, side
        Whose quote, where.
    want : bool
        Whether a quote should rest on this side.
    price, quantity : int
        The wanted quote (ignored when ``want`` is False).
    existing : OpenOrder or None
        The quote currently resting, from :meth:`StrategyContext.open_order`.
    """
    if want:
        if existing is None:
            return [OrderIntent.quick(strategy, slot, side, price, quantity)]
        if existing.price != price or existing.quantity != quantity:
            return [OrderIntent.quick(strategy, slot, side, price, quantity, OrderKind.REPLACE,
                                      existing.client_order_id)]
        return []
    if existing is not None:
        return [OrderIntent.quick(strategy, slot, side, existing.price, existing.quantity,
                                  OrderKind.CANCEL, existing.client_order_id)]
    return []
