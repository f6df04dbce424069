"""The ticklane top: connects the stages, the cycle counter and the register bank. Nothing else.

Streams are those of :data:`hdl.wire.STREAMS` that this build has; the register bus is ``csr``.
Each stage exposes its registers by name (see :mod:`hdl.stage`); the top wires them to the bank.
Every stream port passes through a :class:`hdl.slice.RegisterSlice` (one cycle each way) and the
bank registers the bus, so no stage logic hangs directly off a top-level input.
"""

from amaranth import Cat, ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from . import wire
from .regs import RegisterBank, RegisterBusSignature
from .feed.stage import FeedStage
from .book.order_book import DEFAULT_LEVELS
from .book.stage import BookStage
from .risk import PreTradeRisk, connect_registers
from .slice import RegisterSlice

__all__ = ["Top"]

# Port slices with a clock gate of their own in the simulation harness: the streams that carry
# records on most cycles of a market-data replay. The other slices share one gate: fewer clocks
# cost the scheduler less on every cycle, and a slice that holds nothing costs little when it is
# clocked (plain builds of the full top, M cycles per CPU second, one gate for all slices against
# these three: 11.0 against 9-10 idle, 1.75 against 1.8-2.05 with ITCH beats on every cycle,
# 2.3-2.4 against 2.75-2.9 with beats on half the cycles and backpressure).
_SLICE_GATES = {"md_in": "gate_md_in", "bbo_out": "gate_bbo_out"}


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
        # Instances whose clock the simulation harness may gate, and the top's signal that says
        # when each may change state (:mod:`sim.harness.gating`). The slices of the market-data
        # and BBO streams have one each; the other port slices share one, high while any of
        # them holds or is offered a record. The cycle counter runs on every cycle; the stages
        # read copies of it, loaded before each of their edges. The register bank reads the
        # counter itself: its read data, which shows the counter, is read right after an edge.
        self.sim_gates = {inst: f"gate_{inst}" for inst in ("feed", "book", "risk", "regs")}
        self.sim_gates.update({f"slice_{name}": _SLICE_GATES.get(name, "gate_ports")
                               for name in wire.STREAMS})
        self.sim_counters = {"cycle": ("feed", "book", "risk")}
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

        # The stages and the bank run in the `core` domain: the same clock, with the reset passed
        # through a flip-flop, so their next-state logic hangs off flip-flops only (the top-level
        # reset is an input like any other). The core leaves reset one cycle after the port
        # slices and the cycle counter, which stay in `sync`: a record offered on the first cycle
        # after reset waits in its slice (whose output is not valid yet) until the core is out.
        m.domains.core = core = ClockDomain("core", local=True)
        core_rst = Signal(init=1, reset_less=True)
        m.d.sync += core_rst.eq(ResetSignal("sync"))
        m.d.comb += [core.clk.eq(ClockSignal("sync")), core.rst.eq(core_rst)]
        to_core = DomainRenamer("core")

        m.submodules.feed = feed = to_core(FeedStage(slots=self.slots, host_streams=True))
        m.submodules.book = book = to_core(BookStage(slots=self.slots, levels=self.levels,
                                                     assign_slots=False))
        m.submodules.regs = regs = to_core(
            RegisterBank(wire.REGISTERS, latch={"CYCLE_LO": "CYCLE_HI"}))

        m.submodules.risk = risk = to_core(PreTradeRisk(slots=wire.RISK_SLOTS))

        # One register slice per stream port: ports[name] is the stage side of that port.
        ports, slices = {}, {}
        for name, s in wire.STREAMS.items():
            if not hasattr(self, name):
                continue
            m.submodules[f"slice_{name}"] = slices[name] = sl = RegisterSlice(s.record.layout)
            if s.direction == "in":
                connect(m, wiring.flipped(getattr(self, name)), sl.i)
                ports[name] = sl.o
            else:
                connect(m, sl.o, wiring.flipped(getattr(self, name)))
                ports[name] = sl.i

        connect(m, ports["md_in"], feed.beats)
        connect(m, feed.events, book.events)
        connect(m, ports["refill_in"], book.refill)
        connect(m, book.bbo, ports["bbo_out"])
        connect(m, feed.host_records, ports["host_out"])
        connect(m, feed.gaps, ports["gaps_out"])
        # The gate sees every BBO record the host will take of a slot it holds (the first
        # RISK_SLOTS), in the cycle it leaves the book (its bbo_in is always ready): the live book
        # it checks collars against is the one the host sees. Records of the book's other slots
        # do not reach it, so its RISK_DROPPED counts only fills of a slot out of range.
        m.d.comb += [
            risk.bbo_in.valid.eq(book.bbo.valid & ports["bbo_out"].ready
                                 & (book.bbo.payload.slot < wire.RISK_SLOTS)),
            risk.bbo_in.payload.eq(book.bbo.payload),
            risk.cycle.eq(cycle),
        ]
        connect(m, ports["order_in"], risk.order_in)
        connect(m, ports["fill_in"], risk.fill_in)
        connect(m, risk.verdict_out, ports["verdict_out"])
        connect(m, risk.order_out, ports["order_out"])
        connect(m, wiring.flipped(self.csr), regs.bus)
        connect_registers(m, regs, risk.regs)

        clear = Signal()
        m.d.comb += clear.eq(regs.write_strobe["CONTROL"] & regs.write_data[0])
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
        # Read by the simulation harness only; synthesis removes them.
        for inst, block in (("feed", feed), ("book", book), ("risk", risk), ("regs", regs)):
            gate = Signal(name=self.sim_gates[inst])
            m.d.comb += gate.eq(block.busy)
        slice_gates = {}
        for name, sl in slices.items():
            slice_gates.setdefault(self.sim_gates[f"slice_{name}"], []).append(sl.busy)
        for gate_name, busy in slice_gates.items():
            gate = Signal(name=gate_name)
            m.d.comb += gate.eq(Cat(busy).any())
        return m
