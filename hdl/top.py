"""The ticklane top: connects the stages, the cycle counter and the register bank. Nothing else.

Streams are those of :data:`hdl.wire.STREAMS` that this build has; the register bus is ``csr``.
Each stage exposes its registers by name (see :mod:`hdl.stage`); the top wires them to the bank.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from . import wire
from .regs import RegisterBank, RegisterBusSignature
from .feed.stage import FeedStage
from .book.order_book import DEFAULT_LEVELS
from .book.stage import BookStage
from .risk import PreTradeRisk, connect_registers

__all__ = ["Top"]


class Top(wiring.Component):
    """The whole design.

    Parameters
    ----------
    slots : int
        Symbol slots of the book stage.
    levels : int
        Price levels the book stage holds per symbol and side.
    """

    def __init__(self, *, slots: int = 256, levels: int = DEFAULT_LEVELS):
        self.slots = slots
        self.levels = levels
        members = {name: (In if s.direction == "in" else Out)(stream.Signature(s.record.layout))
                   for name, s in wire.STREAMS.items()}
        members["csr"] = In(RegisterBusSignature())
        super().__init__(members)

    @property
    def config(self) -> str:
        """A short name of the build parameters, for build caches and manifests."""
        return f"slots{self.slots}n{self.levels}"

    def elaborate(self, platform):
        m = Module()
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)

        m.submodules.feed = feed = FeedStage(slots=self.slots, host_streams=True)
        m.submodules.book = book = BookStage(slots=self.slots, levels=self.levels,
                                                 assign_slots=False)
        m.submodules.regs = regs = RegisterBank(wire.REGISTERS, latch={"CYCLE_LO": "CYCLE_HI"})

        m.submodules.risk = risk = PreTradeRisk(slots=wire.RISK_SLOTS)

        connect(m, wiring.flipped(self.md_in), feed.beats)
        connect(m, feed.events, book.events)
        connect(m, wiring.flipped(self.refill_in), book.refill)
        connect(m, book.bbo, wiring.flipped(self.bbo_out))
        connect(m, feed.host_records, wiring.flipped(self.host_out))
        connect(m, feed.gaps, wiring.flipped(self.gaps_out))
        # The gate sees every BBO record the host takes, in the cycle it is taken (its bbo_in is
        # always ready): the live book it checks collars against is the one the host sees.
        m.d.comb += [
            risk.bbo_in.valid.eq(book.bbo.valid & self.bbo_out.ready),
            risk.bbo_in.payload.eq(book.bbo.payload),
            risk.cycle.eq(cycle),
        ]
        connect(m, wiring.flipped(self.order_in), risk.order_in)
        connect(m, wiring.flipped(self.fill_in), risk.fill_in)
        connect(m, risk.verdict_out, wiring.flipped(self.verdict_out))
        connect(m, risk.order_out, wiring.flipped(self.order_out))
        connect(m, wiring.flipped(self.csr), regs.bus)
        connect_registers(m, regs, risk.regs)

        clear = Signal()
        m.d.comb += clear.eq(regs.write_strobe["CONTROL"] & regs.bus.w_data[0])
        m.d.comb += [
            regs.status["DEVICE_ID"].eq(wire.DEVICE_ID),
            regs.status["FORMAT_HASH"].eq(wire.FORMAT_HASH & 0xFFFF_FFFF),
            regs.status["CYCLE_LO"].eq(cycle[:32]),
            regs.status["CYCLE_HI"].eq(cycle[32:]),
        ]
        for stage in (feed, book):
            m.d.comb += [stage.cycle.eq(cycle), stage.clear.eq(clear)]
            for key, sig in stage.status.items():
                m.d.comb += regs.status[key].eq(sig)
            for key, sig in stage.control.items():
                m.d.comb += sig.eq(regs.control[key])
            for key, sig in stage.control_strobe.items():
                m.d.comb += sig.eq(regs.write_strobe[key])
        return m
