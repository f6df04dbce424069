"""The feed stage alone, with a cycle counter and its own register bank: the design that the
feed's tests, ``ticklane decode`` and ``tools/bench_feed.py`` simulate.

Each output record is followed by ``egress``: the cycle at which it first became valid at the
stage's output, so ``egress - ingress`` is the stage's latency in cycles whatever the reader's
backpressure. Records are padded to whole 64-bit words.
"""

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out, connect

from .. import wire
from ..regs import RegisterBank, RegisterBusSignature
from .events import BookEventLayout
from .stage import FeedStage

__all__ = ["FeedBench", "FEED_BENCH_REGISTERS", "stamped_layout"]

#: The bench's register map: the feed's block alone.
FEED_BENCH_REGISTERS = wire.RegisterMap(wire.FEED_REGISTERS)


def stamped_layout(layout) -> data.StructLayout:
    """``layout`` plus a 32-bit ``egress`` stamp, padded to a multiple of 64 bits."""
    width = data.Layout.cast(layout).size + 32
    members = {"record": layout, "egress": 32}
    if width % 64:
        members["_pad"] = 64 - width % 64
    return data.StructLayout(members)


class FeedBench(wiring.Component):
    """Ports: ``md_in``; ``events_out``, ``host_out``, ``gaps_out`` (stamped); ``csr``."""

    def __init__(self, *, slots: int = 256):
        self.slots = slots
        super().__init__({
            "md_in": In(stream.Signature(wire.MD_BEAT.layout)),
            "events_out": Out(stream.Signature(stamped_layout(BookEventLayout))),
            "host_out": Out(stream.Signature(stamped_layout(wire.HOST_MESSAGE.layout))),
            "gaps_out": Out(stream.Signature(stamped_layout(wire.FEED_GAP.layout))),
            "csr": In(RegisterBusSignature()),
        })

    @property
    def config(self) -> str:
        return f"feedbench-slots{self.slots}"

    def elaborate(self, platform):
        m = Module()
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        m.submodules.feed = feed = FeedStage(slots=self.slots, host_streams=True)
        m.submodules.regs = regs = RegisterBank(FEED_BENCH_REGISTERS)
        connect(m, wiring.flipped(self.md_in), feed.beats)
        connect(m, wiring.flipped(self.csr), regs.bus)
        m.d.comb += [feed.cycle.eq(cycle), feed.clear.eq(0)]
        for key, sig in feed.status.items():
            m.d.comb += regs.status[key].eq(sig)
        for key, sig in feed.control.items():
            m.d.comb += sig.eq(regs.control[key])
        for key, sig in feed.control_strobe.items():
            m.d.comb += sig.eq(regs.write_strobe[key])

        for src, dst in ((feed.events, self.events_out), (feed.host_records, self.host_out),
                         (feed.gaps, self.gaps_out)):
            waiting = Signal()        # valid and not taken last cycle: keep the first stamp
            stamp = Signal(32)
            m.d.sync += waiting.eq(src.valid & ~dst.ready)
            with m.If(src.valid & ~waiting):
                m.d.sync += stamp.eq(cycle[:32])
            m.d.comb += [
                dst.valid.eq(src.valid),
                src.ready.eq(dst.ready),
                dst.payload.record.eq(src.payload),
                dst.payload.egress.eq(Mux(waiting, stamp, cycle[:32])),
            ]
        return m
