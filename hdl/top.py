"""The ticklane top: connects the stages, the cycle counter and the register bank. Nothing else.

Streams (see :mod:`hdl.wire`): ``md_in`` market-data beats in, ``bbo_out`` top-of-book records out,
and the register bus ``csr``.
"""


from amaranth import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from . import wire
from .regs import RegisterBank, RegisterBusSignature
from .feed.deframer import Deframer
from .feed.decoder import Decoder
from .book.adds_only import AddsOnlyTopOfBook

__all__ = ["Top"]


class Top(wiring.Component):
    """The whole design.

    Parameters
    ----------
    slots : int
        Symbol slots of the book stage.
    """

    md_in: In(stream.Signature(wire.MD_BEAT.layout))
    bbo_out: Out(stream.Signature(wire.BBO_UPDATE.layout))
    csr: In(RegisterBusSignature())

    def __init__(self, *, slots: int = 256):
        self.slots = slots
        super().__init__()

    @property
    def config(self) -> str:
        """A short name of the build parameters, for build caches and manifests."""
        return f"slots{self.slots}"

    def elaborate(self, platform):
        m = Module()
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)

        m.submodules.deframer = deframer = Deframer()
        m.submodules.decoder = decoder = Decoder()
        m.submodules.book = book = AddsOnlyTopOfBook(slots=self.slots)
        m.submodules.regs = regs = RegisterBank(wire.REGISTERS, latch={"CYCLE_LO": "CYCLE_HI"})

        connect(m, wiring.flipped(self.md_in), deframer.beats)
        connect(m, deframer.messages, decoder.messages)
        connect(m, decoder.events, book.events)
        connect(m, book.bbo, wiring.flipped(self.bbo_out))
        connect(m, wiring.flipped(self.csr), regs.bus)
        m.d.comb += [deframer.cycle.eq(cycle), book.cycle.eq(cycle)]

        status = regs.status
        m.d.comb += [
            status["DEVICE_ID"].eq(wire.DEVICE_ID),
            status["FORMAT_HASH"].eq(wire.FORMAT_HASH & 0xFFFF_FFFF),
            status["CYCLE_LO"].eq(cycle[:32]),
            status["CYCLE_HI"].eq(cycle[32:]),
            status["SUBSCRIBED"].eq(book.subscribed),
        ]
        clear = regs.write_strobe["CONTROL"] & regs.bus.w_data[0]
        pulses = {
            "MD_BEATS": deframer.count_beat,
            "MD_FRAMES": deframer.count_frame,
            "MSGS_IN": deframer.count_message,
            "MSGS_DECODED": decoder.count_decoded,
            "BBO_OUT": book.count_bbo,
            "DROP_BAD_LENGTH": deframer.count_bad_length,
            "DROP_UNKNOWN_TYPE": deframer.count_unknown_type,
            "DROP_TRUNCATED": deframer.count_truncated,
            "DROP_UNSUBSCRIBED": book.count_unsubscribed,
            "SLOT_OVERFLOW": book.count_slot_overflow,
        }
        for name, pulse in pulses.items():
            counter = Signal(32, name=f"counter_{name.lower()}")
            with m.If(clear):
                m.d.sync += counter.eq(0)
            with m.Elif(pulse):
                m.d.sync += counter.eq(counter + 1)
            m.d.comb += status[name].eq(counter)
        return m
