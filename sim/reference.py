"""What :class:`hdl.top.Top` must output for a stream, from the reference book model.

The top subscribes symbols as their stock directory ('R') messages arrive, one slot each, in
order, until its slots run out; only subscribed symbols reach the book. This module applies the
same rule in front of :class:`sim.model.book.BookModel` and turns the model's changes into
:data:`hdl.wire.BBO_UPDATE` records (cycle stamps zero).
"""

from __future__ import annotations

import numpy as np

from hdl import wire
from host.feed.framing import iter_historical
from host.feed.itch import decode_message
from sim.model.book import BookModel, BboChange

__all__ = ["SubscribedBook", "expected_bbo_records", "changes_to_records"]

_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
_CROSSED = wire.BBO_UPDATE.flag("flags", "crossed")

# Message types the book stage reads; the others need not be decoded to know the book.
_BOOK_TYPES = frozenset(b"RAFECXDU")


class SubscribedBook:
    """The reference book behind the top's slot-assignment rule.

    Parameters
    ----------
    slots : int
        Symbol slots of the design.
    """

    def __init__(self, slots: int):
        self.slots = slots
        self.slot_of: dict[int, int] = {}
        self.model = BookModel()
        self.overflow = 0

    def apply(self, msg: bytes, seq: int) -> BboChange | None:
        """Apply one message (bytes from its type byte on); return the change it causes."""
        if not msg or msg[0] not in _BOOK_TYPES:
            return None
        fields = decode_message(msg)
        locate = fields["stock_locate"]
        if fields["message_type"] == "R" and locate not in self.slot_of:
            if len(self.slot_of) < self.slots:
                self.slot_of[locate] = len(self.slot_of)
            else:
                self.overflow += 1
        if locate not in self.slot_of:
            return None
        return self.model.apply(fields, seq)


def changes_to_records(changes: list[BboChange], slot_of: dict[int, int]) -> np.ndarray:
    """BBO records for model changes (cycle stamps zero)."""
    out = wire.BBO_UPDATE.array(len(changes))
    for i, c in enumerate(changes):
        flags = 0
        if c.bid_price is not None:
            flags |= _BID_VALID
        if c.ask_price is not None:
            flags |= _ASK_VALID
        if c.crossed or c.locked:
            flags |= _CROSSED
        out[i] = (c.seq, c.bid_price or 0, c.ask_price or 0, c.bid_size or 0, c.ask_size or 0,
                  0, 0, slot_of.get(c.locate, 0), flags, c.locate, 0)
    return out


def expected_bbo_records(stream: bytes, *, slots: int) -> np.ndarray:
    """The records the top emits for a well-framed historical stream."""
    book = SubscribedBook(slots)
    changes = []
    for seq, (_, msg) in enumerate(iter_historical(stream), start=1):
        change = book.apply(msg, seq)
        if change is not None:
            changes.append(change)
    return changes_to_records(changes, book.slot_of)
