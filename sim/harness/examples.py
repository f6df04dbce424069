"""Small tops with the port conventions of a ticklane top, for harness tests and benchmarks.

* :class:`BboLoopback`: BBO update records through a FIFO, with the register bank of
  :data:`hdl.wire.REGISTERS` (device id, format hash, cycle counter, record counters).
* :class:`BboCrossCheck`: a fixed-latency pipeline that flags crossed books and stamps ingress and
  egress cycles, with a probe that counts stream-contract violations by its source and an optional
  pseudo-random refusal of input (to stall the source).
"""


from amaranth import Cat, Const, Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from hdl import wire
from hdl.regs import RegisterBank, RegisterBusSignature

__all__ = ["BboLoopback", "BboCrossCheck", "CROSS_CHECK_REGISTERS"]


def _count(m: Module, signal: Signal, when, clear=None) -> None:
    if clear is None:
        with m.If(when):
            m.d.sync += signal.eq(signal + 1)
        return
    with m.If(clear):
        m.d.sync += signal.eq(0)
    with m.Elif(when):
        m.d.sync += signal.eq(signal + 1)


class BboLoopback(wiring.Component):
    """BBO updates in, the same BBO updates out, through a FIFO of ``depth`` records.

    Registers (:data:`hdl.wire.REGISTERS`): ``DEVICE_ID``, ``FORMAT_HASH``, ``CYCLE_LO``/``HI``
    (a 64-bit cycle counter cleared by reset; reading ``CYCLE_LO`` latches ``CYCLE_HI``),
    ``CONTROL`` (bit 0 clears the record counters), ``MSGS_IN`` (records accepted) and ``BBO_OUT``
    (records emitted).

    Parameters
    ----------
    depth : int
        FIFO depth in records.
    registers : bool
        With the register bank and its ``csr`` port; without, only the two streams (to measure
        what the bank costs in simulation).
    """

    def __init__(self, depth: int = 16, *, registers: bool = True):
        if depth < 1:
            raise ValueError(f"FIFO depth must be >= 1, got {depth!r}")
        self.depth = depth
        self.registers = registers
        members = {"bbo_in": In(stream.Signature(wire.BBO_UPDATE.layout)),
                   "bbo_out": Out(stream.Signature(wire.BBO_UPDATE.layout))}
        if registers:
            members["csr"] = In(RegisterBusSignature())
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=wire.BBO_UPDATE.width,
                                                      depth=self.depth)
        m.d.comb += [
            q.w_data.eq(self.bbo_in.payload),
            q.w_en.eq(self.bbo_in.valid),
            self.bbo_in.ready.eq(q.w_rdy),
            self.bbo_out.payload.eq(q.r_data),
            self.bbo_out.valid.eq(q.r_rdy),
            q.r_en.eq(self.bbo_out.ready),
        ]
        if not self.registers:
            return m

        m.submodules.bank = bank = RegisterBank(wire.REGISTERS, latch={"CYCLE_LO": "CYCLE_HI"})
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        accepted = Signal(32)
        emitted = Signal(32)
        clear = bank.write_strobe["CONTROL"] & bank.bus.w_data[0]
        _count(m, accepted, self.bbo_in.valid & self.bbo_in.ready, clear)
        _count(m, emitted, self.bbo_out.valid & self.bbo_out.ready, clear)
        m.d.comb += [
            bank.status["DEVICE_ID"].eq(wire.DEVICE_ID),
            bank.status["FORMAT_HASH"].eq(wire.FORMAT_HASH & 0xFFFF_FFFF),
            bank.status["CYCLE_LO"].eq(cycle[:32]),
            bank.status["CYCLE_HI"].eq(cycle[32:]),
            bank.status["MSGS_IN"].eq(accepted),
            bank.status["BBO_OUT"].eq(emitted),
        ]
        return m


CROSS_CHECK_REGISTERS = wire.RegisterMap([
    wire.Register("DEVICE_ID", "r", "constant 0x544B4C4E ('TKLN')"),
    wire.Register("THROTTLE", "rw", "bit 0: refuse input in the cycles a 16-bit LFSR picks"),
    wire.Register("ACCEPTED", "r", "records accepted"),
    wire.Register("EMITTED", "r", "records emitted"),
    wire.Register("VIOLATIONS", "r", "cycles in which the source dropped valid or changed the "
                                     "payload while a record was waiting for ready"),
])


class BboCrossCheck(wiring.Component):
    """A ``latency``-stage pipeline over BBO updates that flags crossed books.

    Each record leaves ``latency`` cycles after it is accepted (when the output is not stalled)
    with ``flags.crossed`` set when both sides are valid and bid >= ask, ``ingress_cycle`` the
    cycle counter when it was accepted and ``egress_cycle`` the counter when it reached the last
    stage. The whole pipeline stalls when the output is not ready. Registers:
    :data:`CROSS_CHECK_REGISTERS`.

    Parameters
    ----------
    latency : int
        Pipeline stages (cycles from acceptance to the output).
    """

    bbo_in: In(stream.Signature(wire.BBO_UPDATE.layout))
    bbo_out: Out(stream.Signature(wire.BBO_UPDATE.layout))
    csr: In(RegisterBusSignature())

    def __init__(self, latency: int = 4):
        if latency < 1:
            raise ValueError(f"latency must be >= 1 stage, got {latency!r}")
        self.latency = latency
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = RegisterBank(CROSS_CHECK_REGISTERS)
        wiring.connect(m, wiring.flipped(self.csr), bank.bus)
        src, dst = self.bbo_in, self.bbo_out

        cycle = Signal(wire.CYCLE_STAMP_BITS)
        m.d.sync += cycle.eq(cycle + 1)

        # Refusal pattern: the low bit of a maximal-length 16-bit Galois LFSR (taps 0xB400).
        lfsr = Signal(16, init=0xACE1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], Const(0, 1)) ^ (0xB400 * lfsr[0]))
        refuse = bank.control["THROTTLE"][0] & lfsr[0]

        stages = self.latency
        valid = [Signal(name=f"valid_{k}") for k in range(stages)]
        data = [Signal(wire.BBO_UPDATE.layout, name=f"data_{k}") for k in range(stages)]
        advance = ~valid[-1] | dst.ready
        m.d.comb += src.ready.eq(advance & ~refuse)
        accept = src.valid & src.ready

        staged = Signal(wire.BBO_UPDATE.layout)
        m.d.comb += [
            staged.eq(src.payload),
            staged.ingress_cycle.eq(cycle),
            staged.flags.crossed.eq(src.payload.flags.bid_valid & src.payload.flags.ask_valid
                                    & (src.payload.bid_price >= src.payload.ask_price)),
        ]
        with m.If(advance):
            m.d.sync += [valid[0].eq(accept), data[0].eq(staged)]
            for k in range(1, stages):
                m.d.sync += [valid[k].eq(valid[k - 1]), data[k].eq(data[k - 1])]
            if stages == 1:
                m.d.sync += data[0].egress_cycle.eq(cycle)
            else:
                m.d.sync += data[-1].egress_cycle.eq(cycle)
        m.d.comb += [dst.valid.eq(valid[-1]), dst.payload.eq(data[-1])]

        # Contract probe: once valid is high without ready, valid and payload must hold.
        waiting = Signal()
        held = Signal(wire.BBO_UPDATE.width)
        m.d.sync += [waiting.eq(src.valid & ~src.ready), held.eq(src.payload.as_value())]
        violations = Signal(32)
        accepted = Signal(32)
        emitted = Signal(32)
        _count(m, violations, waiting & (~src.valid | (src.payload.as_value() != held)))
        _count(m, accepted, accept)
        _count(m, emitted, dst.valid & dst.ready)
        m.d.comb += [
            bank.status["DEVICE_ID"].eq(wire.DEVICE_ID),
            bank.status["ACCEPTED"].eq(accepted),
            bank.status["EMITTED"].eq(emitted),
            bank.status["VIOLATIONS"].eq(violations),
        ]
        return m
