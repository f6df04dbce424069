"""Decode delimited ITCH 5.0 messages into book events.

# Ref: NASDAQ TotalView-ITCH 5.0 specification, sections 1.3.1 (Stock Directory 'R') and 1.4
# (Add Order 'A', Add Order with MPID Attribution 'F'). All integers are big-endian.

Every field sits at a fixed offset of the gathered message (the deframer aligns each message to
byte 0 of its vector), so decoding is wiring plus one register.
"""

from __future__ import annotations

from amaranth import Module, Signal, Cat
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .deframer import MessageLayout
from .events import BookEventLayout, EventKind

__all__ = ["Decoder"]

PREFIX = 2  # the historical framing's length prefix precedes the message in the vector


def big_endian(msg_bytes, offset: int, length: int):
    """Field of ``length`` bytes at message ``offset``, big-endian."""
    start = PREFIX + offset
    return Cat(*[msg_bytes[start + i] for i in reversed(range(length))])


def ascii_bytes(msg_bytes, offset: int, length: int):
    """Alpha field kept in wire order: byte 0 of the field in the low bits."""
    start = PREFIX + offset
    return Cat(*[msg_bytes[start + i] for i in range(length)])


class Decoder(wiring.Component):
    """One cycle from a delimited message to a book event.

    Messages of types the book does not use produce no event (they are still counted as
    decoded by :attr:`count_decoded`).
    """

    def __init__(self):
        super().__init__({
            "messages": In(stream.Signature(MessageLayout)),
            "events": Out(stream.Signature(BookEventLayout)),
            "count_decoded": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        msg = self.messages.payload
        b = msg.bytes
        mtype = b[PREFIX]

        ev = Signal(BookEventLayout)
        m.d.comb += [
            ev.locate.eq(big_endian(b, 1, 2)),
            ev.seq.eq(msg.seq),
            ev.ingress.eq(msg.ingress),
        ]
        with m.Switch(mtype):
            with m.Case(ord("R")):
                m.d.comb += [
                    ev.kind.eq(EventKind.DIRECTORY),
                    ev.stock.eq(ascii_bytes(b, 11, 8)),
                ]
            with m.Case(ord("A"), ord("F")):   # F is A plus a 4-byte attribution at 36
                side = b[PREFIX + 19]
                shares = big_endian(b, 20, 4)
                # An add of no shares or with a side other than 'B'/'S' changes no book: the
                # reference model ignores it too (and counts it as an anomaly).
                with m.If((shares != 0) & ((side == ord("B")) | (side == ord("S")))):
                    m.d.comb += ev.kind.eq(EventKind.ADD)
                m.d.comb += [
                    ev.order_ref.eq(big_endian(b, 11, 8)),
                    ev.sell.eq(b[PREFIX + 19] == ord("S")),
                    ev.shares.eq(big_endian(b, 20, 4)),
                    ev.stock.eq(ascii_bytes(b, 24, 8)),
                    ev.price.eq(big_endian(b, 32, 4)),
                ]

        out_valid = Signal()
        m.d.comb += [
            self.events.valid.eq(out_valid),
            self.messages.ready.eq(~out_valid | self.events.ready),
        ]
        with m.If(self.events.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(self.messages.valid & self.messages.ready):
            m.d.comb += self.count_decoded.eq(1)
            with m.If(ev.kind != EventKind.NONE):
                m.d.sync += [out_valid.eq(1), self.events.payload.eq(ev)]
        return m
