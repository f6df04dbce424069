"""The harness's next-state folding and narrow shifts (sim/harness/flops.py): the rewrites on small
Verilog texts, and the rewritten model against the model of Amaranth's unchanged Verilog, cycle for
cycle, on the full top and on the risk gate."""

import numpy as np
import pytest

from hdl import wire
from sim.harness import Harness
from sim.harness.flops import fold_next_state, narrow_shifts

PAIR = """module m(clk, en, d, q);
  input clk;
  input en;
  input [7:0] d;
  output [7:0] q;
  reg [7:0] q = 8'h00;
  reg [7:0] \\$3 ;
  always @(posedge clk)
    q <= \\$3 ;
  always @* begin
    if (\\$auto$verilog_backend.cc:2355:dump_module$1 ) begin end
    \\$3  = q;
    if (en) begin
      \\$3  = d;
    end
  end
endmodule
"""


def test_a_register_with_a_hold_becomes_one_clocked_block_without_the_hold():
    # Act
    out, stats = fold_next_state(PAIR)

    # Assert
    assert (stats.folded, stats.registers, stats.kept) == (1, 1, 0)
    assert "always @(posedge clk) begin\n    if (en) begin\n      q <= d;\n    end\n  end" in out
    assert "\\$3  =" not in out and "<= \\$3" not in out and "q <= q" not in out
    assert "verilog_backend" not in out


def test_a_next_value_read_by_other_logic_is_left_alone():
    # Arrange: the next value also drives an output
    text = PAIR.replace("output [7:0] q;", "output [7:0] q;\n  assign peek = \\$3 ;")

    # Act
    out, stats = fold_next_state(text)

    # Assert
    assert out == text and (stats.folded, stats.kept) == (0, 1)


def test_a_next_value_read_inside_its_own_block_is_left_alone():
    text = PAIR.replace("      \\$3  = d;", "      \\$3  = d;\n      \\$3 [0] = \\$3 [1];")

    out, stats = fold_next_state(text)

    assert out == text and stats.folded == 0


def test_a_block_that_also_computes_a_wire_is_left_alone():
    text = PAIR.replace("  reg [7:0] \\$3 ;", "  reg [7:0] \\$3 ;\n  reg w;").replace(
        "    \\$3  = q;", "    \\$3  = q;\n    w = en;")

    out, stats = fold_next_state(text)

    assert out == text and stats.folded == 0


def test_partial_loads_and_escaped_register_names_keep_their_bits_and_spaces():
    # Arrange: a register whose name must be escaped, loaded a byte at a time
    text = (PAIR.replace("reg [7:0] q = 8'h00;", "reg [7:0] \\buf  = 8'h00;")
            .replace("    q <= \\$3 ;", "    \\buf  <= \\$3 ;")
            .replace("    \\$3  = q;", "    \\$3  = \\buf ;")
            .replace("      \\$3  = d;", "      \\$3 [3:0] = d[3:0];"))

    # Act
    out, stats = fold_next_state(text)

    # Assert
    assert stats.folded == 1
    assert "      \\buf [3:0] <= d[3:0];" in out
    assert "\\buf  <= \\buf" not in out


def test_a_load_of_several_selects_at_once_is_folded_into_the_register():
    # Arrange: two fields of the next value set by one assignment to their concatenation (as
    # Yosys writes the zeroing of a record's unused fields)
    text = PAIR.replace("      \\$3  = d;", "      { \\$3 [7:6], \\$3 [1:0] } = d[3:0];")

    # Act
    out, stats = fold_next_state(text)

    # Assert
    assert (stats.folded, stats.kept) == (1, 0)
    assert "      { q[7:6], q[1:0] } <= d[3:0];" in out
    assert "\\$3 [" not in out and "<= \\$3" not in out


def test_a_concatenation_of_two_signals_is_left_alone():
    text = (PAIR.replace("reg [7:0] \\$3 ;", "reg [7:0] \\$3 ;\n  reg [7:0] w;")
            .replace("      \\$3  = d;", "      { \\$3 [7:6], w[1:0] } = d[3:0];"))

    out, stats = fold_next_state(text)

    assert out == text and stats.folded == 0


def test_two_modules_are_folded_each_on_its_own():
    out, stats = fold_next_state(PAIR + PAIR.replace("module m(", "module n("))

    assert stats.folded == 2 and out.count("always @(posedge clk) begin") == 2


# ---- the folded model against the unfolded one ------------------------------------------------


def _top_beats(n_messages: int):
    from host.link.beats import pack_historical
    from sim.gen.itchgen import generate

    stream = generate(5, n_messages)
    return pack_historical(stream)


SHIFTS = """module m(v, i, j, y, z, w, u);
  input [255:0] v;
  input [7:0] i;
  input [8:0] j;
  wire [7:0] i;
  output y;
  wire y;
  output [3:0] z;
  output [255:0] w;
  output [1:0] u;
  assign y = v >> i;
  assign z = v >> j;
  assign w = v >> i;
  assign u = v >> i;
endmodule
"""


def test_a_narrow_shift_within_the_value_becomes_a_part_select():
    # Act
    out, count = narrow_shifts(SHIFTS)

    # Assert: one bit at any 8-bit index is inside 256 bits; four bits at a 9-bit index may
    # pass the end (the shift gives zeros there), two bits at index 255 pass it, and a result
    # as wide as the value is the whole shift
    assert count == 1
    assert "  assign y = v[i +: 1];" in out
    assert "  assign z = v >> j;" in out and "  assign w = v >> i;" in out
    assert "  assign u = v >> i;" in out


@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.4, 0.6)])
def test_folded_top_equals_unfolded_top_cycle_for_cycle(idle, backpressure):
    # Arrange: the default top built both ways, a generated day with every message type
    from hdl.top import Top

    beats = _top_beats(4_000)
    runs = []
    for fold in (True, False):
        top = Top(slots=16, levels=2)
        h = Harness.build(top, "ticklane_top", config=top.config, fold=fold,
                          dtypes={name: s.record.dtype for name, s in wire.STREAMS.items()
                                  if name in top.signature.members})
        h.reset()

        # Act
        h.push("md_in", beats)
        cycles = h.run(idle={"md_in": idle}, backpressure={"bbo_out": backpressure}, seed=4)
        outs = {name: h.pop(name) for name, s in wire.STREAMS.items()
                if s.direction == "out" and name in top.signature.members}
        regs = [h.read_reg(word) for word in range(wire.REGISTERS.size // 4)]
        runs.append((cycles, outs, regs))
        h.close()

    # Assert: same cycles, same records (with their cycle stamps), same registers
    (c1, o1, r1), (c2, o2, r2) = runs
    assert len(o1["bbo_out"]) > 500
    assert c1 == c2
    assert set(o1) == set(o2)
    for name in o1:
        assert o1[name].tobytes() == o2[name].tobytes(), name
    assert r1 == r2


class _Recorder:
    """A harness that remembers every record popped from it."""

    def __init__(self, harness):
        self._h = harness
        self.popped = []

    def pop(self, name, *args, **kwargs):
        out = self._h.pop(name, *args, **kwargs)
        self.popped.append((name, out.tobytes()))
        return out

    def __getattr__(self, name):
        return getattr(self._h, name)

    def __setattr__(self, name, value):
        if name in ("_h", "popped"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._h, name, value)


def test_folded_risk_gate_equals_unfolded_with_limit_writes_in_flight():
    # Arrange: the standalone gate both ways, random phases with register writes, idle and stalls
    from tools.bench_risk import StandaloneRiskGate, run_random

    runs = []
    for fold in (True, False):
        top = StandaloneRiskGate(open_orders=32, dup_depth=16)
        h = Harness.build(top, "ticklane_risk", config=top.config, settle=8, fold=fold,
                          dtypes={"order_in": wire.ORDER_REQUEST.dtype,
                                  "fill_in": wire.FILL.dtype, "bbo_in": wire.BBO_UPDATE.dtype,
                                  "verdict_out": wire.VERDICT.dtype,
                                  "order_out": wire.ORDER_REQUEST.dtype,
                                  "applied": np.dtype("<u8")})
        h.reset()
        h.cycle_base = h.cycle
        rec = _Recorder(h)

        # Act
        board = run_random(rec, orders=5_000, seed=21, stress=0.5)
        runs.append((board.mismatches, h.cycle, rec.popped))
        h.close()

    # Assert
    (m1, c1, p1), (m2, c2, p2) = runs
    assert m1 == m2 == 0
    assert c1 == c2
    assert len(p1) == len(p2) and p1 == p2
