"""Positions and profit and loss per symbol slot, in exact integer arithmetic.

A position keeps its open lots first in, first out. The cost of the open position is the integer
sum of price × quantity over its lots, so the average cost is the exact rational
``cost / quantity`` (:attr:`Position.average_cost`, a :class:`fractions.Fraction`), never a float.

Realised P&L matches each closing execution against the oldest open lots (FIFO). That keeps it an
integer: closing ``n`` shares of a lot bought at ``p`` by selling at ``x`` realises ``n * (x - p)``.
(The average-cost method would realise ``n * (x - cost / quantity)``, a fraction in general.)
Unrealised P&L against a mark ``m`` is ``quantity * m - cost``. Both are in price units × shares:
with ITCH Price(4) prices, 10_000 units of P&L are one dollar. Their sum equals cash flow plus
the marked position, whatever the lot order, which the tests check.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

from host.types import Side

__all__ = ["Position", "mid_price"]


def mid_price(bid_price: int, ask_price: int) -> int:
    """The mark we use by default: the mid rounded down, ``(bid + ask) // 2``.

    Parameters
    ----------
    bid_price, ask_price : int
        Best bid and ask in integer price units.

    Returns
    -------
    int
        The mid price, floored to a whole price unit (so it is never a fraction).
    """
    return (int(bid_price) + int(ask_price)) // 2


@dataclass(slots=True)
class Position:
    """The position of one symbol slot.

    Attributes
    ----------
    slot : int
    quantity : int
        Signed: positive long, negative short.
    cost : int
        Signed sum of price × quantity of the open lots (negative when short).
    realised : int
        Realised P&L, price units × shares.
    lots : deque of [price, quantity]
        Open lots, oldest first, quantities positive.
    """

    slot: int
    quantity: int = 0
    cost: int = 0
    realised: int = 0
    lots: deque = field(default_factory=deque)

    @property
    def average_cost(self) -> Fraction | None:
        """Exact average entry price of the open position, or None when flat."""
        if self.quantity == 0:
            return None
        return Fraction(self.cost, self.quantity)

    def apply_fill(self, side: Side, price: int, quantity: int) -> int:
        """Book an execution; return the P&L it realised.

        Parameters
        ----------
        side : Side
            Our side of the execution.
        price : int
            Execution price.
        quantity : int
            Executed quantity, > 0.

        Returns
        -------
        int
            Realised P&L of this execution.
        """
        if quantity <= 0:
            raise ValueError(f"slot {self.slot}: fill quantity must be > 0, got {quantity!r}")
        sign = Side(side).sign
        left = quantity
        realised = 0
        # Close against lots held on the opposite side first.
        while left and self.quantity * sign < 0:
            lot = self.lots[0]
            n = min(left, lot[1])
            # Long lot closed by a sell: n * (price - lot price); short lot closed by a buy: the
            # opposite sign. -sign is the sign of the position being closed.
            realised += -sign * n * (price - lot[0])
            self.cost -= -sign * n * lot[0]
            self.quantity += sign * n
            lot[1] -= n
            if lot[1] == 0:
                self.lots.popleft()
            left -= n
        if left:
            self.lots.append([price, left])
            self.cost += sign * left * price
            self.quantity += sign * left
        self.realised += realised
        return realised

    def copy(self) -> "Position":
        """An independent copy (its lots are copied too)."""
        return Position(self.slot, self.quantity, self.cost, self.realised,
                        deque([lot[:] for lot in self.lots]))

    def unrealised(self, mark: int) -> int:
        """Unrealised P&L of the open position against ``mark`` (integer price units)."""
        return self.quantity * int(mark) - self.cost

    def to_dict(self) -> dict:
        return {"slot": self.slot, "quantity": self.quantity, "cost": self.cost,
                "realised": self.realised, "lots": [list(lot) for lot in self.lots]}

    @classmethod
    def from_dict(cls, d: dict) -> "Position":
        return cls(slot=d["slot"], quantity=d["quantity"], cost=d["cost"],
                   realised=d["realised"], lots=deque([list(lot) for lot in d["lots"]]))
