"""Book events: what the feed stage hands to the book stage (internal to the gateware)."""

from amaranth.lib import data, enum

from .. import wire

__all__ = ["EventKind", "BookEventLayout"]


class EventKind(enum.Enum, shape=4):
    NONE = 0
    DIRECTORY = 1   # R: stock locate → symbol; subscribes the symbol
    ADD = 2         # A, F


BookEventLayout = data.StructLayout({
    "kind": EventKind,
    "sell": 1,
    "locate": 16,
    "order_ref": 64,
    "shares": 32,
    "price": 32,
    "stock": 64,        # 8 ASCII bytes as they appear on the wire
    "seq": 64,
    "ingress": wire.CYCLE_STAMP_BITS,
})
