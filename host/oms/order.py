"""One order's life: the states, the legal transitions between them, and the order record.

Every order request the host sends (a new order, a cancel or a replace) is an :class:`Order`
with a client order id. Its state only moves along the edges of :data:`TRANSITIONS`; any other
move raises :class:`IllegalTransition`, because an out-of-order or duplicated message from the
gate or the venue means our picture of the order is wrong, and trading on a wrong picture is worse
than stopping. A fill carries no execution id, so a repeated partial fill that does not overfill
the order cannot be told from a second fill of the same size: it is booked. A venue adapter must
hand each fill over once (the paper venue does); a repeat that overfills raises.

::

    NEW ──► RISK_ACCEPTED ──► ACKNOWLEDGED ──► PARTIALLY_FILLED ──► FILLED
     │            │                │  │  │  │         │  │  │
     ▼            ▼                │  │  │  │         │  │  └──► REPLACED
    RISK_REJECTED REJECTED         │  │  │  └► FILLED │  └──► CANCELLED
                                   │  │  └──► CANCELLED └──► PARTIALLY_FILLED (another fill)
                                   │  └──► REPLACED
                                   └──► (cancel requests stop here: the venue accepted the cancel)

A cancel request is itself an order record of kind CANCEL: NEW → RISK_ACCEPTED → ACKNOWLEDGED when
the venue cancels its target, or → REJECTED when the target was no longer live there.

A replace request is an order record of kind REPLACE that *is* the replacement order: the same
side and symbol as its target, its own client order id, price and quantity (the quantity it
leaves open). It is live from submission, like a new order. When the venue acknowledges it, the
target moves to REPLACED (terminal: whatever it had filled stays filled) and the replacement
trades on under its own id; when the venue rejects it (the target was already gone), the target
stays as it was.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from host.types import OrderKind, Side

__all__ = ["OrderState", "Order", "IllegalTransition", "TRANSITIONS", "LIVE_STATES",
           "TERMINAL_STATES"]


class OrderState(enum.IntEnum):
    NEW = 0
    RISK_ACCEPTED = 1
    RISK_REJECTED = 2
    ACKNOWLEDGED = 3
    PARTIALLY_FILLED = 4
    FILLED = 5
    CANCELLED = 6
    REJECTED = 7
    REPLACED = 8


S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.NEW: frozenset({S.RISK_ACCEPTED, S.RISK_REJECTED}),
    S.RISK_ACCEPTED: frozenset({S.ACKNOWLEDGED, S.REJECTED}),
    S.ACKNOWLEDGED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REPLACED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.REPLACED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.REPLACED: frozenset(),
    S.RISK_REJECTED: frozenset(),
}
del S

#: States in which an order may still trade (and so counts against exposure limits).
LIVE_STATES = frozenset({OrderState.NEW, OrderState.RISK_ACCEPTED, OrderState.ACKNOWLEDGED,
                         OrderState.PARTIALLY_FILLED})
TERMINAL_STATES = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransition(RuntimeError):
    """An order was asked to move along an edge the state machine does not have.

    Attributes
    ----------
    client_order_id : int
    from_state, to_state : OrderState
    """

    def __init__(self, client_order_id: int, from_state: OrderState, to_state: OrderState,
                 why: str = ""):
        self.client_order_id = client_order_id
        self.from_state = from_state
        self.to_state = to_state
        allowed = ", ".join(s.name for s in sorted(TRANSITIONS[from_state])) or "none: terminal"
        msg = (f"order {client_order_id}: illegal transition {from_state.name} -> {to_state.name} "
               f"(allowed from {from_state.name}: {allowed})")
        if why:
            msg += f"; {why}"
        super().__init__(msg)


@dataclass(slots=True, kw_only=True)
class Order:
    """The host's record of one order request and what became of it.

    Attributes
    ----------
    client_order_id : int
        Assigned by the order manager, strictly increasing from 1.
    strategy : str
    slot : int
    side : Side
    price : int
        Limit price, integer price units.
    quantity : int
        Ordered quantity.
    kind : OrderKind
        NEW, CANCEL or REPLACE (the replacement order itself).
    target : int
        For a cancel or a replace, the client order id it cancels or replaces; 0 otherwise.
    ioc, post_only, fok : bool
        Time-in-force and execution flags, as sent in ``ORDER_REQUEST.flags``.
    state : OrderState
    filled : int
        Quantity executed so far.
    gate_reasons : int
        Reject reason bits from the gateware's verdict (0 when accepted).
    venue_reason : int
        The venue's reject reason code (0 when none).
    """

    client_order_id: int
    strategy: str
    slot: int
    side: Side
    price: int
    quantity: int
    kind: OrderKind = OrderKind.NEW
    target: int = 0
    ioc: bool = False
    post_only: bool = False
    fok: bool = False
    state: OrderState = OrderState.NEW
    filled: int = 0
    gate_reasons: int = 0
    venue_reason: int = 0

    @property
    def leaves(self) -> int:
        """Quantity still open (0 once the order is terminal)."""
        if self.state in TERMINAL_STATES:
            return 0
        return self.quantity - self.filled

    @property
    def trades(self) -> bool:
        """The order can execute (a new order or a replacement; not a cancel request)."""
        return self.kind != OrderKind.CANCEL

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    def copy(self) -> "Order":
        """A copy (every field is an immutable value)."""
        return Order(client_order_id=self.client_order_id, strategy=self.strategy,
                     slot=self.slot, side=self.side, price=self.price, quantity=self.quantity,
                     kind=self.kind, target=self.target, ioc=self.ioc,
                     post_only=self.post_only, fok=self.fok, state=self.state,
                     filled=self.filled, gate_reasons=self.gate_reasons,
                     venue_reason=self.venue_reason)

    def transition(self, to_state: OrderState) -> None:
        """Move to ``to_state`` or raise :class:`IllegalTransition`."""
        if to_state not in TRANSITIONS[self.state]:
            raise IllegalTransition(self.client_order_id, self.state, to_state)
        self.state = to_state

    def to_dict(self) -> dict:
        return {"client_order_id": self.client_order_id, "strategy": self.strategy,
                "slot": self.slot, "side": int(self.side), "price": self.price,
                "quantity": self.quantity, "kind": int(self.kind), "target": self.target,
                "ioc": self.ioc, "post_only": self.post_only, "fok": self.fok,
                "state": int(self.state), "filled": self.filled,
                "gate_reasons": self.gate_reasons, "venue_reason": self.venue_reason}

    @classmethod
    def from_dict(cls, d: dict) -> "Order":
        d = dict(d)
        d["side"] = Side(d["side"])
        d["kind"] = OrderKind(d["kind"])
        d["state"] = OrderState(d["state"])
        return cls(**d)
