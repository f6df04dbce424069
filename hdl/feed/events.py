"""Book events: what the feed stage hands to the book stage (internal to the gateware).

One event per book-changing message of a subscribed symbol. The feed resolves the stock locate to
the symbol slot (its subscription table), so the book sees slots only; ``locate`` travels along
for the BBO record.

# Ref: NASDAQ TotalView-ITCH 5.0 specification, sections 1.3 (Add Order 'A', 'F') and 1.4
# (Modify Order: 'E', 'C', 'X', 'D', 'U'); ticklane's LEVEL_UPDATE (hdl/wire.py).
"""

from amaranth.lib import data, enum

from .. import wire

__all__ = ["EventKind", "BookEventLayout"]


class EventKind(enum.Enum, shape=4):
    NONE = 0
    DIRECTORY = 1   # R: stock locate → symbol (the skeleton book subscribes on it)
    ADD = 2         # A, F: order_ref joins (slot, side, price) with shares
    EXECUTE = 3     # E, C: shares leave order_ref (at the order's own price)
    CANCEL = 4      # X: shares leave order_ref
    DELETE = 5      # D: order_ref leaves the book
    REPLACE = 6     # U: order_ref leaves; new_order_ref joins at price with shares, same side
    LEVEL = 7       # crypto: set (slot, side, price) to shares; level_flags delete/snapshot
    CLEAR = 8       # the symbol's book is emptied (e.g. a crypto snapshot begins)


BookEventLayout = data.StructLayout({
    # Wide fields first, each at a multiple of 32 bits: a simulator's word copies then need no
    # shifts (the layout is internal to the gateware; nothing depends on its bit positions).
    "order_ref": 64,        # A F E C X D: the order; U: the original order
    "new_order_ref": 64,    # U: the replacing order
    "stock": 64,            # R, A, F: 8 ASCII bytes in wire order
    "seq": 64,              # the message's sequence number
    "shares": 32,           # A F U: shares; E C: executed; X: cancelled; LEVEL: new size
    "price": 32,            # A F U LEVEL
    "ingress": wire.CYCLE_STAMP_BITS,   # cycle its last byte entered
    "slot": 16,             # symbol slot, resolved by the feed
    "locate": 16,           # ITCH stock locate (0 for crypto)
    # Added for the host's view of book messages (ticklane decode); the book may ignore them.
    "match_number": 64,     # E C: match number
    "exchange_seq": 64,     # LEVEL: the venue's update id
    "exec_price": 32,       # C: execution price
    "attribution": 32,      # F: MPID, 4 ASCII bytes in wire order
    "timestamp": 48,        # ITCH timestamp, ns since midnight
    "tracking": 16,         # ITCH tracking number
    "code": 8,              # A F: buy/sell indicator byte as sent; C: printable
    "msg_type": 8,          # the message's type byte
    "kind": EventKind,
    "sell": 1,              # side for ADD and LEVEL (E/C/X/D/U take the order's own side)
    "level_flags": 4,       # LEVEL: wire.LEVEL_UPDATE flags (sell, snapshot_begin, _end, delete)
})
