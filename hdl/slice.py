"""A register slice for an Amaranth stream: every output of it comes from a flip-flop.

Placed on the top's ports, it keeps the design's large logic off the top-level inputs: the stages
see registered ``valid``/``payload`` on their inputs and a registered ``ready`` on their outputs.
That shortens the input-to-logic paths on the FPGA, and in Verilator only the slice itself is
re-evaluated when a top-level input changes.
"""

from amaranth import Module, ResetSignal, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

__all__ = ["RegisterSlice"]


class RegisterSlice(wiring.Component):
    """Two-entry skid buffer: one cycle of latency, one record per cycle, registered outputs.

    ``i.ready`` is low only while the skid entry is full; ``o.valid``/``o.payload`` are the main
    entry. Records leave in the order they came, and the stream contract holds on both sides.

    Parameters
    ----------
    layout : amaranth.lib.data.Layout or shape-like
        The payload of the stream.
    """

    def __init__(self, layout):
        self.layout = layout
        super().__init__({"i": In(stream.Signature(layout)), "o": Out(stream.Signature(layout))})
        # High when a register of the slice may change on the next edge (for the simulation
        # harness's clock gates; nothing in the gateware reads it).
        self.busy = Signal(name="busy")

    def elaborate(self, platform):
        m = Module()
        main = Signal.like(self.o.payload)
        main_valid = Signal()
        skid = Signal.like(self.o.payload)
        skid_valid = Signal()
        m.d.comb += [
            self.i.ready.eq(~skid_valid),
            self.o.valid.eq(main_valid),
            self.o.payload.eq(main),
        ]
        with m.If(~main_valid | self.o.ready):
            # the main entry is free at this edge: refill it from the skid entry, else the input
            with m.If(skid_valid):
                m.d.sync += [main.eq(skid), main_valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += main_valid.eq(self.i.valid)
                # an empty input leaves the last record in place: with no record anywhere, no
                # register of the slice changes
                with m.If(self.i.valid):
                    m.d.sync += main.eq(self.i.payload)
        with m.Elif(self.i.valid & ~skid_valid):
            # the main entry is held: park the record taken this cycle
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        # (the skid entry fills only while the main entry is held, and empties into it: a record
        # in the skid entry means one in the main entry)
        m.d.comb += self.busy.eq(ResetSignal() | self.i.valid | main_valid)
        return m
