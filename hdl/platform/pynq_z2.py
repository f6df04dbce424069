"""The PYNQ-Z2 board (xc7z020clg400-1): the design behind AXI DMA and AXI4-Lite.

:class:`PynqZ2Wrapper` takes any component whose signature has

* one register bus port, ``In(hdl.regs.RegisterBusSignature())``, and
* any number of stream ports, ``In``/``Out`` of :class:`amaranth.lib.stream.Signature` whose
  payload is the layout of a record of :mod:`hdl.wire`,

and gives it the ports the Zynq block design needs: an AXI4-Lite slave ``s_axi`` for the registers,
a 64-bit AXI4-Stream ``s_axis_<port>`` fed by an AXI DMA MM2S channel for each ``In`` stream and
``m_axis_<port>`` into an S2MM channel for each ``Out`` stream. Ports are discovered from the
signature, so the wrapper follows the design's top without being edited.

A market-data stream of :data:`hdl.wire.MD_BEAT` maps one AXI beat to one record
(``tdata``/``tkeep``/``tlast`` are its ``data``/``keep``/``flags.last``); every other record is
serialized as ``record.width // 64`` beats, least significant first.

:func:`manifest` describes a build for the host: the format hash, the register map, the streams and
their records, the clock. :func:`verilog_shell` gives the Verilog top with the port names Vivado's IP
packager recognizes (``s_axi_awaddr``, ``aclk``, ``aresetn``...).

Clocking. The design runs on the processing system's FCLK_CLK0, made from the IO PLL (1000 MHz on
the PYNQ-Z2) by two 6-bit dividers. Ref: Xilinx UG585 "Zynq-7000 SoC Technical Reference Manual",
section 25.7 "PL Clocks", and the PYNQ-Z2 board files (IO PLL 1000 MHz from a 50 MHz PS_CLK).
"""

import subprocess
from pathlib import Path

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import wire
from ..regs import RegisterBusSignature
from .axi import (AxiLiteSignature, AxiLiteToRegisterBus, AxiStreamSignature,
                  AxiStreamToRecords, RecordsToAxiStream)

__all__ = [
    "BOARD", "PART", "AXI_LITE_BASE", "AXI_LITE_RANGE", "IO_PLL_MHZ", "IP_VLNV",
    "StreamPort", "discover_ports", "fclk_mhz", "PynqZ2Wrapper", "verilog_shell", "manifest",
]

BOARD = "pynq_z2"
PART = "xc7z020clg400-1"
IO_PLL_MHZ = 1000.0
AXI_LITE_BASE = 0x43C0_0000   # start of the M_AXI_GP0 window Vivado assigns to PL peripherals
AXI_LITE_RANGE = 0x1000       # 4 KiB: the register bus's 10-bit word address
IP_VLNV = "ticklane:user:ticklane:1.0"  # the host driver binds to this (PYNQ DefaultIP.bindto)
BEAT_BITS = 64


class StreamPort:
    """One stream port of the wrapped design.

    Attributes
    ----------
    name : str
        The port's name in the design's signature.
    to_fpga : bool
        True for an ``In`` stream (host to FPGA, DMA MM2S), False for ``Out`` (DMA S2MM).
    record : hdl.wire.Record
    axis_name : str
        ``s_axis_<name>`` or ``m_axis_<name>``.
    dma_name : str
        The AXI DMA instance serving it in the block design.
    """

    def __init__(self, name: str, to_fpga: bool, record: wire.Record):
        self.name = name
        self.to_fpga = to_fpga
        self.record = record
        self.axis_name = f"{'s' if to_fpga else 'm'}_axis_{name}"
        self.dma_name = f"axi_dma_{name}"

    @property
    def beats(self) -> int:
        """AXI beats per record."""
        return 1 if self.record is wire.MD_BEAT else self.record.width // BEAT_BITS

    def __repr__(self):
        return f"StreamPort({self.name!r}, {'in' if self.to_fpga else 'out'}, {self.record.name})"


def _record_of(layout, port_name: str) -> wire.Record:
    for record in wire.RECORDS:
        if layout == record.layout:
            return record
    raise ValueError(f"stream port {port_name!r} carries {layout!r}, which is not the layout of "
                     f"any record in hdl.wire; only contract records may cross the board boundary")


def discover_ports(signature: wiring.Signature) -> "tuple[str, list[StreamPort]]":
    """Find the register bus and the stream ports in a design's signature.

    Parameters
    ----------
    signature : amaranth.lib.wiring.Signature
        The signature of the design's top component.

    Returns
    -------
    bus_name : str
    streams : list of StreamPort
        In signature order.

    Raises
    ------
    ValueError
        No register bus, more than one, a stream of a non-contract payload, or a member the board
        cannot connect.
    """
    bus_names, streams, unknown = [], [], []
    for name, member in signature.members.items():
        if member.is_signature and isinstance(member.signature, RegisterBusSignature) \
                and member.flow == In:
            bus_names.append(name)
        elif member.is_signature and isinstance(member.signature, stream.Signature):
            record = _record_of(member.signature.members["payload"].shape, name)
            streams.append(StreamPort(name, member.flow == In, record))
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"the board wrapper can connect only a register bus and record streams; "
                         f"the design also has {unknown!r}")
    if len(bus_names) != 1:
        raise ValueError(f"the design must have exactly one In(RegisterBusSignature()) port, "
                         f"it has {bus_names!r}")
    return bus_names[0], streams


def fclk_mhz(requested_mhz: float) -> float:
    """The PL clock FCLK_CLK0 nearest ``requested_mhz`` that the IO PLL dividers can make.

    ``FCLK = IO_PLL / (DIVISOR0 * DIVISOR1)`` with both divisors in 1..63 (UG585, 25.7).
    """
    if not 0 < requested_mhz <= 250:
        raise ValueError(f"FCLK_CLK0 of {requested_mhz!r} MHz is outside 0..250 MHz")
    products = {d0 * d1 for d0 in range(1, 64) for d1 in range(1, 64)}
    return min((IO_PLL_MHZ / p for p in products), key=lambda f: abs(f - requested_mhz))


class _BeatToMdBeat(wiring.Component):
    """One AXI beat is one :data:`hdl.wire.MD_BEAT` record; a pure rename, no state."""

    def __init__(self):
        super().__init__({
            "axis": In(AxiStreamSignature(BEAT_BITS)),
            "records": Out(stream.Signature(wire.MD_BEAT.layout)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.records.payload
        m.d.comb += [
            p.data.eq(self.axis.tdata),
            p.keep.as_value().eq(self.axis.tkeep),
            p.flags.last.eq(self.axis.tlast),
            self.records.valid.eq(self.axis.tvalid),
            self.axis.tready.eq(self.records.ready),
        ]
        return m


class _MdBeatToBeat(wiring.Component):
    def __init__(self):
        super().__init__({
            "records": In(stream.Signature(wire.MD_BEAT.layout)),
            "axis": Out(AxiStreamSignature(BEAT_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.records.payload
        m.d.comb += [
            self.axis.tdata.eq(p.data),
            self.axis.tkeep.eq(p.keep.as_value()),
            self.axis.tlast.eq(p.flags.last),
            self.axis.tvalid.eq(self.records.valid),
            self.records.ready.eq(self.axis.tready),
        ]
        return m


class PynqZ2Wrapper(wiring.Component):
    """The design with AXI4-Lite and AXI4-Stream ports for the PYNQ-Z2 block design.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component
        The top: one ``In(RegisterBusSignature())`` and record streams (see the module docs).
    packet_records : int
        Records per DMA packet on FPGA-to-host streams (``tlast`` after this many).
    idle_flush_cycles : int or None
        Close a partial FPGA-to-host packet after this many cycles with no next record, so that a
        quiet market still delivers its last update; ``None`` waits for full packets.
    clock_mhz : float
        Requested FCLK_CLK0; the achievable value is :attr:`clock_mhz`.

    Attributes
    ----------
    s_axi : In(AxiLiteSignature)
    s_axis_<name>, m_axis_<name> : AxiStreamSignature
        One per stream port of the design.
    streams : list of StreamPort
    """

    def __init__(self, design: wiring.Component, *, packet_records: int = 256,
                 idle_flush_cycles: "int | None" = 1024, clock_mhz: float = 100.0):
        self.design = design
        self.bus_name, self.streams = discover_ports(design.signature)
        self.packet_records = packet_records
        self.idle_flush_cycles = idle_flush_cycles
        self.requested_clock_mhz = clock_mhz
        self.clock_mhz = fclk_mhz(clock_mhz)
        members = {"s_axi": In(AxiLiteSignature())}
        for port in self.streams:
            members[port.axis_name] = (In if port.to_fpga else Out)(AxiStreamSignature(BEAT_BITS))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.design = design = self.design
        m.submodules.axi_lite = bridge = AxiLiteToRegisterBus()
        wiring.connect(m, wiring.flipped(self.s_axi), bridge.axi)
        wiring.connect(m, bridge.bus, getattr(design, self.bus_name))

        for port in self.streams:
            axis = getattr(self, port.axis_name)
            inner = getattr(design, port.name)
            if port.to_fpga:
                adapter = (_BeatToMdBeat() if port.record is wire.MD_BEAT
                           else AxiStreamToRecords(port.record))
                wiring.connect(m, wiring.flipped(axis), adapter.axis)
                wiring.connect(m, adapter.records, inner)
            else:
                if port.record is wire.MD_BEAT:
                    adapter = _MdBeatToBeat()
                else:
                    adapter = RecordsToAxiStream(port.record, packet_records=self.packet_records,
                                                 idle_flush_cycles=self.idle_flush_cycles)
                wiring.connect(m, inner, adapter.records)
                wiring.connect(m, adapter.axis, wiring.flipped(axis))
            m.submodules[f"adapt_{port.name}"] = adapter
        return m


def _flat_ports(component: wiring.Component):
    """(amaranth port name, shell port name, direction, width) of every signature member."""
    for path, member, value in component.signature.flatten(component):
        direction = "input" if member.flow == In else "output"
        names = [str(p) for p in path]
        yield "__".join(names), "_".join(names), direction, len(value)


def verilog_shell(wrapper: PynqZ2Wrapper, *, core_name: str, top_name: str = "ticklane") -> str:
    """Verilog top with Vivado-friendly names around the converted wrapper ``core_name``.

    ``aclk`` and the active-low ``aresetn`` become the Amaranth ``clk`` and active-high ``rst``;
    ``s_axi_*``, ``s_axis_*_t*`` and ``m_axis_*_t*`` let ``ipx::package_project`` infer the bus
    interfaces, and the attributes tie them to the clock.
    """
    ports = list(_flat_ports(wrapper))
    busifs = ":".join(["s_axi"] + [p.axis_name for p in wrapper.streams])
    freq_hz = int(round(wrapper.clock_mhz * 1e6))
    lines = [
        "// Generated by hdl.platform.pynq_z2.verilog_shell; do not edit.",
        f"module {top_name} (",
        f'  (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 aclk CLK" *)',
        f'  (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF {busifs}, '
        f'ASSOCIATED_RESET aresetn, FREQ_HZ {freq_hz}" *)',
        "  input wire aclk,",
        f'  (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 aresetn RST" *)',
        f'  (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)',
        "  input wire aresetn" + ("," if ports else ""),
    ]
    decls = []
    for i, (_, shell, direction, width) in enumerate(ports):
        rng = f"[{width - 1}:0] " if width > 1 else ""
        decls.append(f"  {direction} wire {rng}{shell}" + ("," if i < len(ports) - 1 else ""))
    lines += decls + [");", "  reg rst_sync;",
                      "  // The reset is registered once so that it leaves the PS's reset "
                      "block as a plain synchronous signal.",
                      "  always @(posedge aclk) rst_sync <= ~aresetn;",
                      f"  {core_name} core ("]
    conns = ["    .clk(aclk)", "    .rst(rst_sync)"]
    conns += [f"    .{inner}({shell})" for inner, shell, _, _ in ports]
    lines.append(",\n".join(conns))
    lines += ["  );", "endmodule", ""]
    return "\n".join(lines)


def git_revision(repo: "str | Path | None" = None) -> dict:
    """The source tree's commit and whether it has uncommitted changes (read-only git calls)."""
    repo = Path(repo) if repo else Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                                text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "dirty": None}
    commit = rev.stdout.strip() if rev.returncode == 0 else "unknown"
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": commit, "dirty": dirty}


def register_map(regmap: wire.RegisterMap = wire.REGISTERS) -> list:
    """The register map as manifest entries, in address order."""
    return [{"name": r.name, "address": regmap.address(r.name), "access": r.access,
             "doc": r.doc, "count": r.count, "init": r.init} for r in regmap]


def manifest(wrapper: PynqZ2Wrapper, *, bitstream: "str | None" = None,
             hwh: "str | None" = None) -> dict:
    """Everything the host must know about a build, as a JSON-ready dict.

    Parameters
    ----------
    wrapper : PynqZ2Wrapper
    bitstream, hwh : str, optional
        File names of the built overlay, ``None`` when not built.
    """
    return {
        "manifest_version": 1,
        "board": BOARD,
        "part": PART,
        "ip_vlnv": IP_VLNV,
        "format_hash": f"0x{wire.FORMAT_HASH:016x}",
        "format_hash_register": wire.FORMAT_HASH & 0xFFFF_FFFF,
        "device_id": wire.DEVICE_ID,
        "registers": register_map(wire.REGISTERS),
        "register_window": {"base_address": AXI_LITE_BASE, "range": AXI_LITE_RANGE,
                            "interface": "s_axi"},
        "records": {r.name: {"bytes": r.size, "bits": r.width} for r in wire.RECORDS},
        "streams": [{
            "name": p.name,
            "direction": "to_fpga" if p.to_fpga else "from_fpga",
            "record": p.record.name,
            "record_bytes": p.record.size,
            "beats_per_record": p.beats,
            "axis": p.axis_name,
            "dma": p.dma_name,
            "dma_channel": "mm2s" if p.to_fpga else "s2mm",
            "packet_records": None if p.to_fpga else wrapper.packet_records,
            "idle_flush_cycles": None if p.to_fpga else wrapper.idle_flush_cycles,
        } for p in wrapper.streams],
        "clock": {
            "name": "FCLK_CLK0",
            "requested_mhz": wrapper.requested_clock_mhz,
            "mhz": wrapper.clock_mhz,
            "source": f"PS7 IO PLL {IO_PLL_MHZ:g} MHz / (DIVISOR0 * DIVISOR1), UG585 25.7",
        },
        "git": git_revision(),
        "bitstream": bitstream,
        "hwh": hwh,
    }
