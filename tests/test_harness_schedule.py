"""The harness's schedule of a step's evaluations (sim/harness/schedule.py): when the generated
model allows it, and the header it writes. Its results against Verilator's scheduler, cycle for
cycle, are compared in tests/test_harness_gating.py."""

from __future__ import annotations

import shutil

import pytest

from sim.harness import Harness
from sim.harness.schedule import Schedule, plan, render, split_nba

LOADS = [f"ticklane_top.gate${inst}$load" for inst in ("feed", "book", "risk")]
CLOCKS = ["clk", *[f"gate_{n}_clk" for n in ("feed", "book", "risk", "regs", "md_in",
                                            "bbo_out", "ports")]]


@pytest.fixture(scope="module")
def top_build():
    from hdl import wire
    from hdl.top import Top

    top = Top(slots=16, levels=2)
    h = Harness.build(top, "ticklane_top", config=top.config,
                      dtypes={name: s.record.dtype for name, s in wire.STREAMS.items()})
    yield h.build_info
    h.close()


@pytest.fixture
def model(top_build, tmp_path):
    """A copy of the top's verilated C++ that a test may edit."""
    obj = top_build.folder / "obj"
    for path in obj.glob("Vtop___024root*"):
        if path.suffix in (".cpp", ".h"):
            shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _edit(folder, old, new, count=1):
    done = 0
    for path in folder.iterdir():
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new, count - done))
            done += min(text.count(old), count - done)
        if done == count:
            return
    raise AssertionError(f"{old!r} found {done} times, not {count}")


def test_the_tops_build_uses_the_harness_schedule(top_build):
    assert top_build.schedule == "harness"


def test_plan_finds_every_trigger_as_a_clock_or_a_load_wire(model):
    # Act
    got = plan(model, CLOCKS, LOADS)

    # Assert: one bit each, the main clock among the clocks, three load wires
    assert got.direct, got.reason
    bits = sorted(bit for bit, _, _ in got.clocks + got.loads)
    assert bits == list(range(len(CLOCKS) + len(LOADS)))
    assert "clk" in {member for _, member, _ in got.clocks}
    assert {member for _, member, _ in got.loads} == {
        f"ticklane_top__DOT__gate__024{inst}__024load" for inst in ("feed", "book", "risk")}
    assert all(prev.startswith("__Vtrigprevexpr___TOP__") for _, _, prev in got.clocks + got.loads)


def test_a_trigger_that_is_no_clock_or_load_wire_falls_back(model):
    # Arrange: the risk gate's load wire is not declared as one
    got = plan(model, CLOCKS, LOADS[:2])

    # Assert
    assert not got.direct
    assert "gate$risk$load is neither a clock the step raises nor a load wire" in got.reason


def test_an_input_region_that_reads_the_clock_for_other_logic_falls_back(model):
    # Arrange: a slice's input logic made to read the main clock
    _edit(model, "= (1U & ((~ (IData)(vlSelfRef.bbo_out___05Fvalid))",
          "= (1U & ((~ (IData)(vlSelfRef.clk))", count=1)

    # Act
    got = plan(model, CLOCKS, LOADS)

    # Assert
    assert not got.direct
    assert "reads a clock other than to compute a load wire" in got.reason


def test_an_input_region_with_another_trigger_falls_back(model):
    # Arrange
    _edit(model, "Internal 'ico' trigger - first iteration\\n\");",
          "Internal 'ico' trigger - first iteration\\n\");\n"
          "        VL_DBG_MSGS(\"         '\" + tag + \"' region trigger index 1 is active: "
          "@(posedge clk)\\n\");")

    # Assert
    got = plan(model, CLOCKS, LOADS)
    assert not got.direct and "first iteration" in got.reason


def test_active_region_logic_falls_back(model):
    # Arrange: a model with an active-region function
    path = next(model.glob("Vtop___024root__0.cpp"))
    path.write_text(path.read_text() + "\nvoid Vtop___024root___eval_act(Vtop___024root* vlSelf) {\n}\n")

    # Assert
    got = plan(model, CLOCKS, LOADS)
    assert not got.direct and "active-region logic" in got.reason


def test_the_fallback_header_uses_verilators_scheduler_and_says_why():
    text = render(Schedule(direct=False, reason="asked for"))
    assert "#define TH_EVAL_FALL(top) TH_EVAL(top)" in text
    assert "#define TH_EVAL_RISE(top) TH_EVAL(top)" in text
    assert "// Verilator's scheduler: asked for." in text


def test_the_direct_header_clears_the_load_wires_when_the_clocks_rise(model):
    text = render(plan(model, CLOCKS, LOADS))
    rise = text[text.index("th_eval_rise"):]
    for inst in ("feed", "book", "risk"):
        assert f"r->ticklane_top__DOT__gate__024{inst}__024load = 0;" in rise
    assert "#define TH_SCHEDULE_DIRECT 1" in text


def _eval_nba_body(folder) -> str:
    for path in folder.glob("Vtop___024root__*.cpp"):
        text = path.read_text()
        start = text.find("void Vtop___024root___eval_nba(Vtop___024root* vlSelf) {")
        if start >= 0 and "__Slow" not in path.name:
            return text[start:text.index("\n}\n", start)]
    raise AssertionError("no _eval_nba")


def test_the_non_blocking_region_is_taken_apart_into_its_masked_blocks(model):
    # Act
    got = plan(model, CLOCKS, LOADS)
    text = render(got)

    # Assert: every block, in order, and nothing else of the body
    body = _eval_nba_body(model).split("    // Body\n")[1]
    assert got.nba is not None
    assert "".join(block for _, block in got.nba.blocks) == body + "\n"
    assert len(got.nba.blocks) == body.count("& vlSelfRef.__VnbaTriggered[0U]))")
    # the falling evaluation's function holds the blocks a load wire's trigger can run: the
    # counter copies among them; the rising one's those of the clocks
    loads = sum(1 << bit for bit, _, _ in got.loads)
    fall = text[text.index("static void th_nba_loads"):text.index("static void th_nba_clocks")]
    assert fall.count("__VnbaTriggered[0U]))") == sum(1 for m, _ in got.nba.blocks if m & loads)
    for inst in ("feed", "book", "risk"):
        assert f"ticklane_top__DOT__gate__024{inst}__024cycle" in fall
    assert 0 < fall.count("__VnbaTriggered[0U]))") < len(got.nba.blocks)
    assert "th_nba_loads(r)" in text and "th_nba_clocks(r)" in text
    assert "Vtop___024root___eval_nba(r)" not in text


def test_a_region_of_another_shape_runs_whole_on_both_evaluations(model):
    # Arrange: a statement of the body outside the masked blocks
    head = "void Vtop___024root___eval_nba(Vtop___024root* vlSelf) {"
    for path in model.glob("Vtop___024root__*.cpp"):
        text = path.read_text()
        if head in text:
            at = text.index("    // Body\n", text.index(head)) + len("    // Body\n")
            path.write_text(text[:at] + "    vlSelfRef.__VnbaTriggered[0U] |= 0;\n" + text[at:])

    # Act
    got = plan(model, CLOCKS, LOADS)
    text = render(got)

    # Assert: still the harness's schedule, with Verilator's function whole
    assert got.direct and got.nba is None
    assert text.count("Vtop___024root___eval_nba(r);") == 2
    assert "th_nba_loads" not in text


def test_braces_in_a_debug_message_do_not_end_a_block():
    fast = ("void Vtop___024root___f(Vtop___024root* vlSelf) {\n}\n"
            "void Vtop___024root___eval_nba(Vtop___024root* vlSelf) {\n"
            "    auto& vlSelfRef = std::ref(*vlSelf).get();\n"
            "    // Body\n"
            "    if ((2ULL & vlSelfRef.__VnbaTriggered[0U])) {\n"
            '        VL_DEBUG_IF(VL_DBG_MSGF("} \\" {\\n"); );\n'
            "        Vtop___024root___f(vlSelf);\n"
            "    }\n"
            "    if ((0x0000000000000005ULL & vlSelfRef.__VnbaTriggered[0U])) {\n"
            "        vlSelfRef.a = vlSelfRef.b;\n"
            "    }\n"
            "}\n")
    got = split_nba(fast)
    assert got is not None and [m for m, _ in got.blocks] == [2, 5]
    assert got.callees == ("Vtop___024root___f",)
    assert got.only(4) == [got.blocks[1][1]]
    # a call to a function the sources do not define with that one argument
    assert split_nba(fast.replace("void Vtop___024root___f(Vtop___024root* vlSelf) {\n}\n",
                                  "")) is None
