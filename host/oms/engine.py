"""The order manager: intents in, order requests out, verdicts and venue reports back in.

One path only: strategy intent → :class:`~host.oms.risk.PreTradeCheck` → ``ORDER_REQUEST`` to the
gateware's risk gate → ``VERDICT`` → (accepted requests only) venue → acks, rejects, cancels and
fills → positions, and fills back to the gate as ``FILL`` records. :meth:`OrderManager.on_verdicts`
is the only method that hands out requests a venue may see, and only for orders the gate accepted.

Every handler is atomic: a batch containing an unknown order id, an illegal transition or an
overfill raises and leaves the manager exactly as it was before the batch, so that a journal that
records only applied batches replays without surprises.

Client order ids are assigned 1, 2, 3, ... in submission order, so replaying the same inputs gives
the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from hdl import wire
from host.oms.order import IllegalTransition, Order, OrderState
from host.oms.positions import Position
from host.oms.risk import Exposure, PreTradeCheck, PreTradeConfig, PreTradeRejection
from host.types import Fill, OrderIntent, OrderKind, Side
from host.venue.events import Ack, Cancelled, Reject, Replaced, VenueEvent

__all__ = ["OrderManager", "UnknownOrder", "Overfill"]

_REQ_SELL = wire.ORDER_REQUEST.flag("flags", "sell")
_REQ_IOC = wire.ORDER_REQUEST.flag("flags", "ioc")
_REQ_FOK = wire.ORDER_REQUEST.flag("flags", "fok")
_REQ_POST_ONLY = wire.ORDER_REQUEST.flag("flags", "post_only")
_VERDICT_ACCEPTED = wire.VERDICT.flag("flags", "accepted")
_FILL_SELL = wire.FILL.flag("flags", "sell")
_FILL_DONE = wire.FILL.flag("flags", "done")
_BBO_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_BBO_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
# A request the venue has not answered yet.
_UNANSWERED = frozenset((OrderState.NEW, OrderState.RISK_ACCEPTED))

COUNTERS = ("intents", "precheck_rejected", "requests", "gate_accepted", "gate_rejected",
            "acks", "venue_rejects", "cancels", "replaced", "fills", "filled_quantity")


class UnknownOrder(KeyError):
    """A verdict or venue report names a client order id we never sent."""

    def __str__(self):
        return str(self.args[0])


class Overfill(RuntimeError):
    """A fill would execute more than an order's open quantity, or disagrees with the order."""


class OrderManager:
    """Orders, positions and P&L of one trading session.

    Parameters
    ----------
    config : PreTradeConfig, optional
        Host-side limits; defaults to ``PreTradeConfig()``.

    Attributes
    ----------
    orders : dict of int to Order
        Every order request of the session, by client order id.
    positions : dict of int to Position
        Positions by slot (created on the first fill).
    marks : dict of int to int
        Mark price per slot: the floored mid ``(bid + ask) // 2`` of the last BBO update with
        both sides valid.
    last_rejections : list of PreTradeRejection
        Intents refused by the pre-check in the last :meth:`submit` call.
    counters : dict of str to int
    version : int
        Moves on every call that may change orders or positions (a cheap "has anything
        changed" for views built from them).
    """

    def __init__(self, config: PreTradeConfig | None = None):
        self.config = config if config is not None else PreTradeConfig()
        self._check = PreTradeCheck(self.config)
        self.next_client_order_id = 1
        self.orders: dict[int, Order] = {}
        self.positions: dict[int, Position] = {}
        self.marks: dict[int, int] = {}
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.last_rejections: list[PreTradeRejection] = []
        self.version = 0
        self._live: dict[int, Order] = {}   # live orders that trade (NEW, REPLACE), by id
        self._undo: dict | None = None

    # ----------------------------------------------------------------------------------------
    # Configuration
    def reconfigure(self, config: PreTradeConfig) -> None:
        """Replace the pre-trade limits (they apply to intents submitted from now on)."""
        if not isinstance(config, PreTradeConfig):
            raise TypeError(f"expected a PreTradeConfig, got {type(config).__name__}")
        self.config = config
        self._check = PreTradeCheck(config)

    # ----------------------------------------------------------------------------------------
    # Intents → order requests
    def submit(self, intents: Sequence[OrderIntent]) -> np.ndarray:
        """Check intents and turn those that pass into order requests for the risk gate.

        Parameters
        ----------
        intents : sequence of OrderIntent
            In priority order; earlier intents count against limits seen by later ones.

        Returns
        -------
        numpy.ndarray
            ``wire.ORDER_REQUEST.dtype`` records, one per intent that passed, in order.
            Refused intents are in :attr:`last_rejections`.
        """
        self.version += 1
        self.last_rejections = []
        passed: list[Order] = []
        first_id, counters = self.next_client_order_id, dict(self.counters)
        try:
            self._submit(intents, passed)
        except BaseException:
            # Atomic like every handler: the orders made before the failure go again.
            for coid in range(first_id, self.next_client_order_id):
                self.orders.pop(coid, None)
                self._live.pop(coid, None)
            self.next_client_order_id, self.counters = first_id, counters
            self.last_rejections = []
            raise
        self.counters["requests"] += len(passed)
        return self.requests_for(passed)

    def _submit(self, intents: Sequence[OrderIntent], passed: list[Order]) -> None:
        # Open quantity per (slot, side) of the live orders, kept up to date as intents pass:
        # one pass over the live orders per call, not one per intent.
        open_qty: dict[tuple[int, Side], int] = {}
        for o in self._live.values():
            key = (o.slot, o.side)
            open_qty[key] = open_qty.get(key, 0) + o.leaves
        for intent in intents:
            self.counters["intents"] += 1
            reasons = self._check.check(intent, self._exposure(intent, open_qty))
            if reasons:
                self.counters["precheck_rejected"] += 1
                self.last_rejections.append(PreTradeRejection(intent, reasons))
                continue
            order = self._new_order(intent)
            if order.trades:
                key = (order.slot, order.side)
                open_qty[key] = open_qty.get(key, 0) + order.leaves
            passed.append(order)

    def _exposure(self, intent: OrderIntent, open_qty: dict[tuple[int, Side], int]) -> Exposure:
        open_buy = open_qty.get((intent.slot, Side.BUY), 0)
        open_sell = open_qty.get((intent.slot, Side.SELL), 0)
        pos = self.positions.get(intent.slot)
        target_live = False
        if intent.kind == OrderKind.CANCEL:
            t = self._live.get(intent.target)
            target_live = t is not None and t.slot == intent.slot
        elif intent.kind == OrderKind.REPLACE:
            # A replace keeps its target's symbol and side.
            t = self._live.get(intent.target)
            target_live = (t is not None and t.slot == intent.slot
                           and t.side == intent.side)
        return Exposure(position=pos.quantity if pos else 0, open_buy=open_buy,
                        open_sell=open_sell, open_orders=len(self._live),
                        target_live=target_live)

    def _new_order(self, intent: OrderIntent) -> Order:
        coid = self.next_client_order_id
        self.next_client_order_id += 1
        if intent.kind == OrderKind.CANCEL:
            t = self.orders[intent.target]
            # A cancel carries its target's slot, side and price so the gate and venue can
            # find the order without a lookup on their side.
            order = Order(client_order_id=coid, strategy=intent.strategy, slot=t.slot,
                          side=t.side, price=t.price, quantity=t.leaves, kind=OrderKind.CANCEL,
                          target=t.client_order_id)
        else:
            # Plain ints: the check took numpy integers too, and the journal and the positions
            # must hold exactly what went on the wire.
            order = Order(client_order_id=coid, strategy=intent.strategy, slot=int(intent.slot),
                          side=Side(int(intent.side)), price=int(intent.price),
                          quantity=int(intent.quantity),
                          kind=OrderKind(intent.kind),
                          target=intent.target if intent.kind == OrderKind.REPLACE else 0,
                          ioc=bool(intent.ioc),
                          # OrderIntent has no post-only / fill-or-kill fields yet; honour them
                          # when present.
                          post_only=bool(getattr(intent, "post_only", False)),
                          fok=bool(getattr(intent, "fok", False)))
            self._live[coid] = order
        self.orders[coid] = order
        return order

    # ----------------------------------------------------------------------------------------
    # Gate verdicts
    def on_verdicts(self, verdicts: np.ndarray) -> np.ndarray:
        """Apply the risk gate's verdicts.

        Parameters
        ----------
        verdicts : numpy.ndarray
            ``wire.VERDICT.dtype`` records.

        Returns
        -------
        numpy.ndarray
            ``wire.ORDER_REQUEST.dtype`` records of the accepted requests, rebuilt from our
            orders: these, and only these, may go on to a venue.
        """
        verdicts = _as_records(verdicts, wire.VERDICT)
        self.version += 1
        accepted: list[Order] = []
        with self._atomic():
            for v in verdicts:
                order = self._order(int(v["client_order_id"]), "verdict")
                if int(v["flags"]) & _VERDICT_ACCEPTED:
                    self._move(order, OrderState.RISK_ACCEPTED)
                    self.counters["gate_accepted"] += 1
                    accepted.append(order)
                else:
                    self._move(order, OrderState.RISK_REJECTED)
                    order.gate_reasons = int(v["reasons"])
                    self.counters["gate_rejected"] += 1
        return self.requests_for(accepted)

    @staticmethod
    def requests_for(orders: Iterable[Order]) -> np.ndarray:
        """``ORDER_REQUEST`` records for ``orders`` as they were sent."""
        # One array from a list of tuples (the dtype's field order): far cheaper than setting
        # record fields one by one.
        return np.array([(o.client_order_id, o.target, o.price, o.quantity, o.slot, int(o.kind),
                          (_REQ_SELL if o.side is Side.SELL else 0) | (_REQ_IOC if o.ioc else 0)
                          | (_REQ_FOK if o.fok else 0) | (_REQ_POST_ONLY if o.post_only else 0),
                          0) for o in orders], dtype=wire.ORDER_REQUEST.dtype)

    # ----------------------------------------------------------------------------------------
    # Venue reports
    def on_venue_events(self, events: Iterable[VenueEvent]) -> np.ndarray:
        """Apply acks, rejects, cancels and fills from a venue, in order.

        Returns
        -------
        numpy.ndarray
            ``wire.FILL.dtype`` records of the fills, to forward to the gate.
        """
        events = list(events)
        self.version += 1
        fills: list[Fill] = []
        with self._atomic():
            for ev in events:
                if isinstance(ev, Fill):
                    self._apply_fill(ev)
                    fills.append(ev)
                elif isinstance(ev, Ack):
                    order = self._order(ev.client_order_id, "ack")
                    self._move(order, OrderState.ACKNOWLEDGED)
                    self.counters["acks"] += 1
                elif isinstance(ev, Reject):
                    order = self._order(ev.client_order_id, "reject")
                    self._move(order, OrderState.REJECTED)
                    order.venue_reason = int(ev.reason)
                    self.counters["venue_rejects"] += 1
                elif isinstance(ev, Cancelled):
                    order = self._order(ev.client_order_id, "cancel")
                    self._move(order, OrderState.CANCELLED)
                    self.counters["cancels"] += 1
                elif isinstance(ev, Replaced):
                    order = self._order(ev.client_order_id, "replaced")
                    replacement = self._order(ev.replacement_id, "replacement")
                    if (replacement.kind != OrderKind.REPLACE
                            or replacement.target != order.client_order_id):
                        raise IllegalTransition(
                            order.client_order_id, order.state, OrderState.REPLACED,
                            f"order {ev.replacement_id} is not a replace of it")
                    self._move(order, OrderState.REPLACED)
                    self.counters["replaced"] += 1
                else:
                    raise TypeError(f"not a venue event: {ev!r}")
        return self.fill_records(fills)

    def on_fills(self, fills: Sequence[Fill]) -> np.ndarray:
        """Apply fills; return them as ``wire.FILL`` records for the gate."""
        return self.on_venue_events(fills)

    @staticmethod
    def fill_records(fills: Sequence[Fill]) -> np.ndarray:
        """``wire.FILL.dtype`` records of ``fills``."""
        return np.array([(f.client_order_id, f.price, f.quantity, f.slot,
                          (_FILL_SELL if Side(f.side) is Side.SELL else 0)
                          | (_FILL_DONE if f.done else 0), 0, 0) for f in fills],
                        dtype=wire.FILL.dtype)

    def _apply_fill(self, fill: Fill) -> None:
        order = self._order(fill.client_order_id, "fill")
        if not order.trades:
            raise Overfill(f"fill for order {order.client_order_id}, which is a "
                           f"{order.kind.name} request")
        if fill.slot != order.slot or Side(fill.side) is not order.side:
            raise Overfill(f"fill for order {order.client_order_id} says slot {fill.slot} "
                           f"{Side(fill.side).name}; the order is slot {order.slot} "
                           f"{order.side.name}")
        if fill.quantity <= 0 or fill.quantity > order.leaves:
            raise Overfill(f"fill of {fill.quantity} for order {order.client_order_id} with "
                           f"{order.leaves} open ({order.state.name})")
        done = order.filled + fill.quantity == order.quantity
        self._move(order, OrderState.FILLED if done else OrderState.PARTIALLY_FILLED)
        order.filled += fill.quantity
        self._position(order.slot).apply_fill(order.side, fill.price, fill.quantity)
        self.counters["fills"] += 1
        self.counters["filled_quantity"] += fill.quantity

    # ----------------------------------------------------------------------------------------
    # Market data
    def on_bbo(self, records: np.ndarray) -> None:
        """Update marks from ``wire.BBO_UPDATE`` records (mid of bid and ask, floored)."""
        records = _as_records(records, wire.BBO_UPDATE)
        both = _BBO_BID_VALID | _BBO_ASK_VALID
        two_sided = records[(records["flags"] & both) == both]
        if len(two_sided):
            # mid_price(), over the whole batch at once
            mids = (two_sided["bid_price"].astype(np.int64) + two_sided["ask_price"]) // 2
            # In record order: each slot keeps the mid of its last two-sided record.
            self.marks.update(zip(two_sided["slot"].tolist(), mids.tolist()))

    # ----------------------------------------------------------------------------------------
    # Queries
    def open_orders(self, slot: int | None = None) -> list[Order]:
        """Live orders that trade (new orders and replacements), oldest first, optionally of
        one slot. A target and its replacement are both live until the venue answers the
        replace."""
        return [o for o in self._live.values() if slot is None or o.slot == slot]

    def intended_orders(self) -> list[Order]:
        """Live orders as a strategy should see them: a target whose replace is still on its
        way (not yet answered by the venue) is left out, its replacement stands for it."""
        live = self._live.values()
        replace = OrderKind.REPLACE
        replacing = {o.target for o in live if o.kind is replace and o.state in _UNANSWERED}
        if not replacing:
            return list(live)
        return [o for o in live if o.client_order_id not in replacing]

    def position(self, slot: int) -> Position:
        """The slot's position (flat if it never traded)."""
        return self.positions.get(slot) or Position(slot)

    def unrealised_pnl(self, slot: int, mark: int | None = None) -> int:
        """Unrealised P&L of ``slot`` against ``mark`` (default: the last BBO mid).

        Raises
        ------
        KeyError
            If no mark is given and none has been seen for the slot while it has a position.
        """
        pos = self.position(slot)
        if mark is None:
            if pos.quantity == 0:
                return 0
            if slot not in self.marks:
                raise KeyError(f"no mark price for slot {slot}: no two-sided BBO seen yet")
            mark = self.marks[slot]
        return pos.unrealised(mark)

    def realised_pnl(self, slot: int | None = None) -> int:
        """Realised P&L of one slot, or of all slots."""
        if slot is not None:
            return self.position(slot).realised
        return sum(p.realised for p in self.positions.values())

    # ----------------------------------------------------------------------------------------
    # State for snapshots
    def to_state(self) -> dict:
        """The whole state as plain JSON-able data (integers, strings, lists, dicts)."""
        return {"config": self.config.to_dict(),
                "next_client_order_id": self.next_client_order_id,
                "orders": [o.to_dict() for o in self.orders.values()],
                "positions": [p.to_dict() for p in self.positions.values()],
                "marks": [[s, m] for s, m in self.marks.items()],
                "counters": dict(self.counters)}

    @classmethod
    def from_state(cls, state: dict) -> "OrderManager":
        """Rebuild a manager from :meth:`to_state` output."""
        om = cls(PreTradeConfig.from_dict(state["config"]))
        om.next_client_order_id = state["next_client_order_id"]
        for d in state["orders"]:
            o = Order.from_dict(d)
            om.orders[o.client_order_id] = o
            if o.trades and o.is_live:
                om._live[o.client_order_id] = o
        for d in state["positions"]:
            p = Position.from_dict(d)
            om.positions[p.slot] = p
        om.marks = {int(s): int(m) for s, m in state["marks"]}
        om.counters.update(state["counters"])
        return om

    # ----------------------------------------------------------------------------------------
    # Internals
    def _order(self, coid: int, what: str) -> Order:
        try:
            order = self.orders[coid]
        except KeyError:
            raise UnknownOrder(f"{what} for client order id {coid}, which this session never "
                               f"sent (next id is {self.next_client_order_id})") from None
        self._touch(order)
        return order

    def _position(self, slot: int) -> Position:
        pos = self.positions.get(slot)
        if pos is None:
            pos = self.positions[slot] = Position(slot)
            if self._undo is not None:
                self._undo["new_positions"].append(slot)
        elif self._undo is not None and slot not in self._undo["positions"]:
            self._undo["positions"][slot] = pos.copy()
        return pos

    def _move(self, order: Order, to: OrderState) -> None:
        order.transition(to)
        if order.trades and not order.is_live:
            self._live.pop(order.client_order_id, None)

    def _touch(self, order: Order) -> None:
        if self._undo is not None and order.client_order_id not in self._undo["orders"]:
            self._undo["orders"][order.client_order_id] = order.copy()

    class _Atomic:
        def __init__(self, om: "OrderManager"):
            self.om = om

        def __enter__(self):
            self.om._undo = {"orders": {}, "positions": {}, "new_positions": [],
                             "counters": dict(self.om.counters)}

        def __exit__(self, exc_type, exc, tb):
            om, undo = self.om, self.om._undo
            om._undo = None
            if exc_type is None:
                return False
            for coid, saved in undo["orders"].items():
                om.orders[coid] = saved
                if saved.trades and saved.is_live:
                    om._live[coid] = saved
                else:
                    om._live.pop(coid, None)
            # Keep the live index in submission order after a rollback.
            om._live = dict(sorted(om._live.items()))
            for slot, saved in undo["positions"].items():
                om.positions[slot] = saved
            for slot in undo["new_positions"]:
                om.positions.pop(slot, None)
            om.counters = undo["counters"]
            return False

    def _atomic(self) -> "OrderManager._Atomic":
        return OrderManager._Atomic(self)


def _as_records(arr: np.ndarray, record: wire.Record) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != record.dtype:
        raise TypeError(f"expected an array of {record.name} records ({record.dtype}), "
                        f"got dtype {arr.dtype}")
    return arr.reshape(-1)
