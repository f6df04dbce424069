"""Where an order reference lives in the order table: the set index and the stored tag.

The order table (:class:`hdl.book.order_book.OrderBook`) is set-associative: ``2**set_bits`` sets
of ``ways`` entries, one block RAM per way. An order reference is folded into its set index by
XOR of its ``set_bits``-wide chunks, so the sequential references ITCH assigns spread evenly over
the sets while older references still mix in. The entry stores only ``ref >> set_bits`` as its
tag: with the set index it determines the reference, because the low chunk is the index XOR the
fold of the higher chunks.

The same function exists for Python (the hardware's reference, :mod:`sim.model.book_hw`) and for
Amaranth, and a test holds them equal.
"""

from __future__ import annotations

from amaranth import Const, Value

__all__ = ["order_set_index", "order_set_index_hdl", "REF_BITS"]

REF_BITS = 64


def order_set_index(ref: int, set_bits: int) -> int:
    """Set index of order reference ``ref`` in a table of ``2**set_bits`` sets."""
    if not 1 <= set_bits <= 24:
        raise ValueError(f"set_bits must be in 1..24, not {set_bits!r}")
    mask = (1 << set_bits) - 1
    index = 0
    for shift in range(0, REF_BITS, set_bits):
        index ^= (ref >> shift) & mask
    return index


def order_set_index_hdl(ref: Value, set_bits: int) -> Value:
    """:func:`order_set_index` as gateware (a tree of XORs)."""
    index = Const(0, set_bits)
    for shift in range(0, REF_BITS, set_bits):
        chunk = ref[shift:min(shift + set_bits, REF_BITS)]
        index = index ^ chunk
    return index[:set_bits]
