"""AXI glue between the Zynq's processing system and the design's own interfaces.

* :class:`AxiLiteToRegisterBus` lets the ARM cores reach the register bank
  (:class:`hdl.regs.RegisterBusSignature`) through an AXI4-Lite slave port.
* :class:`AxiStreamToRecords` gathers 64-bit AXI4-Stream beats from an AXI DMA MM2S channel into
  whole records (``N`` x 64 bits, e.g. an :data:`hdl.wire.ORDER_REQUEST`).
* :class:`RecordsToAxiStream` serializes records into 64-bit beats for an AXI DMA S2MM channel and
  closes DMA packets with ``tlast``.

Ref: ARM IHI 0022E "AMBA AXI and ACE Protocol Specification", part B (AXI4-Lite), and ARM IHI 0051A
"AMBA 4 AXI4-Stream Protocol Specification". Byte lane ``k`` of ``tdata`` is bits ``8k..8k+7``,
which is also byte ``k`` of a record in :mod:`hdl.wire`, so the first beat of a record carries its
least significant 64 bits.

The internal record streams follow the Amaranth :mod:`amaranth.lib.stream` contract: ``valid``
never waits for ``ready``, and the payload is stable while ``valid`` is high and ``ready`` low.
AXI's handshake rules are the same, so a ``tvalid``/``tdata`` pair obeys them too.
"""

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import wire
from ..regs import ADDR_BITS, RegisterBusSignature

__all__ = [
    "AxiLiteSignature", "AxiStreamSignature",
    "AxiLiteToRegisterBus", "AxiStreamToRecords", "RecordsToAxiStream",
    "RESP_OKAY", "RESP_SLVERR",
]

RESP_OKAY = 0b00
RESP_SLVERR = 0b10  # IHI 0022E A3.4.4: slave error, the access reached the slave but failed


class AxiLiteSignature(wiring.Signature):
    """AXI4-Lite, seen from the manager (the processing system's side).

    Parameters
    ----------
    addr_width : int
        Byte address width.
    data_width : int
        32 (the only width AXI4-Lite and our register bank share).
    """

    def __init__(self, *, addr_width: int = ADDR_BITS + 2, data_width: int = 32):
        if data_width != 32:
            raise ValueError(f"AXI4-Lite data width must be 32 for the register bank, "
                             f"not {data_width!r}")
        if addr_width < 3:
            raise ValueError(f"AXI4-Lite address width must be at least 3, not {addr_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })


class AxiStreamSignature(wiring.Signature):
    """AXI4-Stream with ``tdata``, ``tkeep``, ``tlast``, ``tvalid`` and ``tready``, seen from the
    transmitter.

    Parameters
    ----------
    data_width : int
        ``tdata`` width in bits, a multiple of 8.
    """

    def __init__(self, data_width: int = 64):
        if data_width <= 0 or data_width % 8:
            raise ValueError(f"AXI4-Stream data width must be a positive multiple of 8, "
                             f"not {data_width!r}")
        self.data_width = data_width
        super().__init__({
            "tdata": Out(data_width), "tkeep": Out(data_width // 8), "tlast": Out(1),
            "tvalid": Out(1), "tready": In(1),
        })


class AxiLiteToRegisterBus(wiring.Component):
    """AXI4-Lite slave in front of the register bus.

    One access is in flight at a time, which is plenty for a control path. A write is taken when
    both its address and data are offered (the slave may wait for both, IHI 0022E A3.3.1); a read
    strobes ``r_stb`` and returns ``r_data`` from the next cycle. When a read and a write are
    offered together they take turns, so neither starves.

    The register bus has no byte enables, so a write with ``wstrb`` other than all ones is refused
    with SLVERR and does not reach the registers: a partial write would silently clear the other
    bytes. The low two address bits are ignored (AXI4-Lite addresses bytes, the bus words).

    Attributes
    ----------
    axi : In(AxiLiteSignature)
    bus : Out(RegisterBusSignature)
    """

    def __init__(self, *, addr_width: int = ADDR_BITS + 2):
        if addr_width > ADDR_BITS + 2:
            raise ValueError(f"AXI4-Lite address width {addr_width!r} exceeds the register bus's "
                             f"{ADDR_BITS}-bit word address")
        super().__init__({
            "axi": In(AxiLiteSignature(addr_width=addr_width)),
            "bus": Out(RegisterBusSignature()),
        })

    def elaborate(self, platform):
        m = Module()
        axi, bus = self.axi, self.bus

        busy = Signal()         # a read waits for its data, or a response waits to be taken
        read_wait = Signal()    # cycle after r_stb: r_data is valid now
        prefer_read = Signal()  # whose turn it is when both offer at once

        write_offered = axi.awvalid & axi.wvalid
        read_offered = axi.arvalid
        take_write = Signal()
        take_read = Signal()
        m.d.comb += [
            take_write.eq(~busy & write_offered & ~(read_offered & prefer_read)),
            take_read.eq(~busy & read_offered & ~(write_offered & ~prefer_read)),
        ]

        full_word = axi.wstrb == Const(0b1111, 4)
        m.d.comb += [
            axi.awready.eq(take_write),
            axi.wready.eq(take_write),
            axi.arready.eq(take_read),
            bus.addr.eq(Mux(take_write, axi.awaddr[2:], axi.araddr[2:])),
            bus.w_stb.eq(take_write & full_word),
            bus.w_data.eq(axi.wdata),
            bus.r_stb.eq(take_read),
        ]

        with m.If(take_write):
            m.d.sync += [
                busy.eq(1), prefer_read.eq(1),
                axi.bvalid.eq(1), axi.bresp.eq(Mux(full_word, RESP_OKAY, RESP_SLVERR)),
            ]
        with m.If(take_read):
            m.d.sync += [busy.eq(1), prefer_read.eq(0), read_wait.eq(1)]
        with m.If(read_wait):
            m.d.sync += [read_wait.eq(0), axi.rvalid.eq(1), axi.rdata.eq(bus.r_data),
                         axi.rresp.eq(RESP_OKAY)]
        with m.If(axi.bvalid & axi.bready):
            m.d.sync += [axi.bvalid.eq(0), busy.eq(0)]
        with m.If(axi.rvalid & axi.rready):
            m.d.sync += [axi.rvalid.eq(0), busy.eq(0)]
        return m


def _record_bits(record) -> int:
    bits = record.width if isinstance(record, wire.Record) else record
    if not isinstance(bits, int) or bits <= 0:
        raise TypeError(f"record must be an hdl.wire.Record or a positive bit count, "
                        f"not {record!r}")
    return bits


def _record_shape(record):
    return record.layout if isinstance(record, wire.Record) else unsigned(record)


class AxiStreamToRecords(wiring.Component):
    """Gather beats of a 64-bit AXI4-Stream into records of ``N`` beats.

    The first beat of a record holds its least significant bits. ``tlast`` may fall on any record
    boundary (a DMA packet holds a whole number of records). A record that ``tlast`` cuts short,
    or that has a beat with ``tkeep`` other than all ones, is dropped and counted in
    :attr:`malformed`; gathering restarts at the next beat. The input takes a beat every cycle
    while the output keeps up.

    Parameters
    ----------
    record : hdl.wire.Record or int
        The record (its Amaranth layout becomes the payload) or a width in bits.
    data_width : int
        ``tdata`` width; the record width must be a multiple of it.

    Attributes
    ----------
    axis : In(AxiStreamSignature)
    records : Out(stream.Signature(record layout))
    malformed : Out(32)
        Records dropped, wrapping at 2**32.
    """

    def __init__(self, record, *, data_width: int = 64):
        bits = _record_bits(record)
        if bits % data_width:
            raise ValueError(f"record of {bits} bits is not a whole number of "
                             f"{data_width}-bit beats")
        self.record_bits = bits
        self.data_width = data_width
        self.beats = bits // data_width
        super().__init__({
            "axis": In(AxiStreamSignature(data_width)),
            "records": Out(stream.Signature(_record_shape(record))),
            "malformed": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        axis, out = self.axis, self.records
        w, n = self.data_width, self.beats

        gathered = Signal(self.record_bits)  # beats shift in from the top, first beat ends lowest
        index = Signal(range(n))
        bad = Signal()  # a beat of this record had a partial tkeep

        out_free = ~out.valid | out.ready
        final_beat = index == n - 1
        m.d.comb += axis.tready.eq(~final_beat | out_free)

        with m.If(out.valid & out.ready):
            m.d.sync += out.valid.eq(0)

        with m.If(axis.tvalid & axis.tready):
            assembled = Cat(gathered[w:], axis.tdata) if n > 1 else axis.tdata
            keep_ok = axis.tkeep == Const((1 << (w // 8)) - 1, w // 8)
            m.d.sync += gathered.eq(assembled)
            with m.If(final_beat):
                m.d.sync += [index.eq(0), bad.eq(0)]
                with m.If(bad | ~keep_ok):
                    m.d.sync += self.malformed.eq(self.malformed + 1)
                with m.Else():
                    m.d.sync += [out.payload.eq(assembled), out.valid.eq(1)]
            with m.Elif(axis.tlast):
                # The packet ended inside a record: nothing of it may reach the design.
                m.d.sync += [index.eq(0), bad.eq(0), self.malformed.eq(self.malformed + 1)]
            with m.Else():
                m.d.sync += [index.eq(index + 1), bad.eq(bad | ~keep_ok)]
        return m


class RecordsToAxiStream(wiring.Component):
    """Serialize records into a 64-bit AXI4-Stream and close DMA packets with ``tlast``.

    A packet ends (``tlast`` on its final beat) after ``packet_records`` records, or earlier when
    a flush is due: :attr:`flush` was pulsed, or no next record has arrived for
    ``idle_flush_cycles`` cycles. An S2MM DMA transfer completes only at ``tlast``, so the idle
    flush bounds how long a record can sit in a half-filled packet; ``idle_flush_cycles=0`` ends
    the packet whenever the next record is not already waiting.

    To know whether a record is the last of its packet, the final beat of each record is held
    (``tvalid`` low) until the next record is offered or a flush is due. The host cannot see any
    part of a packet before its ``tlast``, so this costs no latency. ``tkeep`` is all ones.

    Parameters
    ----------
    record : hdl.wire.Record or int
        The record or its width in bits.
    packet_records : int
        Records per full DMA packet (``K``).
    idle_flush_cycles : int or None
        Cycles without a next record after which a partial packet is closed; ``None`` closes
        partial packets only on :attr:`flush`.
    data_width : int
        ``tdata`` width.

    Attributes
    ----------
    records : In(stream.Signature(record layout))
    axis : Out(AxiStreamSignature)
    flush : In(1)
        Close the current packet at the end of the record in flight (or the next one).
    """

    def __init__(self, record, *, packet_records: int, idle_flush_cycles: "int | None" = None,
                 data_width: int = 64):
        bits = _record_bits(record)
        if bits % data_width:
            raise ValueError(f"record of {bits} bits is not a whole number of "
                             f"{data_width}-bit beats")
        if not isinstance(packet_records, int) or packet_records < 1:
            raise ValueError(f"packet_records must be a positive integer, not {packet_records!r}")
        if idle_flush_cycles is not None and (not isinstance(idle_flush_cycles, int)
                                              or idle_flush_cycles < 0):
            raise ValueError(f"idle_flush_cycles must be None or a non-negative integer, "
                             f"not {idle_flush_cycles!r}")
        self.record_bits = bits
        self.data_width = data_width
        self.beats = bits // data_width
        self.packet_records = packet_records
        self.idle_flush_cycles = idle_flush_cycles
        super().__init__({
            "records": In(stream.Signature(_record_shape(record))),
            "axis": Out(AxiStreamSignature(data_width)),
            "flush": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        inp, axis = self.records, self.axis
        w, n, k = self.data_width, self.beats, self.packet_records

        shreg = Signal(self.record_bits)
        loaded = Signal()
        index = Signal(range(n))
        in_packet = Signal(range(k))   # records already sent in this packet
        flush_pending = Signal()
        released = Signal()            # the held final beat has been offered; tlast is fixed
        released_last = Signal()

        final_beat = index == n - 1
        packet_full = in_packet == k - 1
        holding = loaded & final_beat

        flush_now = Signal()
        m.d.comb += flush_now.eq(flush_pending | self.flush)
        if self.idle_flush_cycles is not None:
            if self.idle_flush_cycles == 0:
                m.d.comb += flush_now.eq(1)
            else:
                idle = Signal(range(self.idle_flush_cycles + 1))
                with m.If(holding & ~released & ~inp.valid):
                    with m.If(idle != self.idle_flush_cycles):
                        m.d.sync += idle.eq(idle + 1)
                with m.Else():
                    m.d.sync += idle.eq(0)
                with m.If(idle == self.idle_flush_cycles):
                    m.d.comb += flush_now.eq(1)

        # Decide tlast for the held beat: a full packet, or a flush with no next record waiting.
        decide_last = packet_full | (flush_now & ~inp.valid)
        m.d.comb += [
            axis.tdata.eq(shreg[:w]),
            axis.tkeep.eq((1 << (w // 8)) - 1),
            axis.tvalid.eq(loaded & (~final_beat | released | inp.valid | decide_last)),
            axis.tlast.eq(final_beat & Mux(released, released_last, decide_last)),
        ]
        handoff = axis.tvalid & axis.tready
        m.d.comb += inp.ready.eq(~loaded | (handoff & final_beat))

        # A flush with nothing loaded and nothing offered has nothing to close.
        with m.If(self.flush & (loaded | inp.valid)):
            m.d.sync += flush_pending.eq(1)

        with m.If(axis.tvalid & ~axis.tready & final_beat & ~released):
            m.d.sync += [released.eq(1), released_last.eq(axis.tlast)]

        with m.If(handoff):
            m.d.sync += shreg.eq(shreg >> w)
            with m.If(final_beat):
                m.d.sync += [index.eq(0), loaded.eq(0), released.eq(0)]
                with m.If(axis.tlast):
                    m.d.sync += [in_packet.eq(0), flush_pending.eq(0)]
                with m.Else():
                    m.d.sync += in_packet.eq(in_packet + 1)
            with m.Else():
                m.d.sync += index.eq(index + 1)

        with m.If(inp.valid & inp.ready):
            m.d.sync += [shreg.eq(inp.payload), loaded.eq(1), index.eq(0)]
        return m
