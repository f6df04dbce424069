"""The harness's clock gating (sim/harness/gating.py): the rewrite, and gated against ungated."""

from __future__ import annotations

import numpy as np
import pytest

from hdl import wire
from sim.harness import Harness
from sim.harness.gating import GatingError, gate_clocks

TOP = """module t(clk, rst, a, y);
  input clk;
  wire clk;
  input rst;
  wire rst;
  input [3:0] a;
  wire [3:0] a;
  output [3:0] y;
  wire [3:0] y;
  wire gate_u;
  wire gate_v;
  reg [63:0] cycle = 64'h0000000000000000;
  \\t.u  u (
    .core_clk(clk),
    .a(a),
    .\\port$1$0 (cycle),
    .y(y)
  );
  \\t.v  v (
    .clk(clk),
    .stamp(cycle),
    .a(a)
  );
  assign gate_u = a != 4'h0;
  assign gate_v = a == 4'h0;
endmodule

module \\t.u (core_clk, a, y);
endmodule
"""


def test_an_instance_is_put_on_a_clock_of_its_own_that_the_harness_drives():
    out = gate_clocks(TOP, "t", {"u": "gate_u"})

    assert out.startswith("module t(gate_u_clk, gate_u, clk, rst, a, y);\n"
                          "  input gate_u_clk;\n  wire gate_u_clk;\n  output gate_u;\n")
    assert "    .core_clk(gate_u_clk)," in out
    assert "    .clk(clk)," in out                       # the other instance keeps the clock
    assert "  wire gate_u;" in out                       # declared, and now an output as well
    # the other module is untouched
    top, rest = out.split("endmodule", 1)
    assert "gate_u_clk" in top and "gate_" not in rest


def test_instances_with_one_gate_signal_share_its_clock():
    out = gate_clocks(TOP, "t", {"u": "gate_u", "v": "gate_u"})

    assert out.startswith("module t(gate_u_clk, gate_u, clk,")
    assert out.count("  input gate_u_clk;") == 1
    assert "    .core_clk(gate_u_clk)," in out and "    .clk(gate_u_clk)," in out


def test_a_gated_instance_reads_a_copy_of_a_counter_loaded_before_its_edges():
    out = gate_clocks(TOP, "t", {"u": "gate_u", "v": "gate_v"}, counters={"cycle": ("u",)})

    assert "    .\\port$1$0 (\\gate$u$cycle )," in out     # escaped port names too
    assert "    .stamp(cycle)," in out                  # v is gated but reads the counter itself
    assert "  wire \\gate$u$load  = ~clk & gate_u;" in out
    assert "  reg [63:0] \\gate$u$cycle  = 64'h0000000000000000;" in out
    assert "  always @(posedge \\gate$u$load ) \\gate$u$cycle  <= cycle;" in out
    assert "gate$v$load" not in out and "gate$v$cycle" not in out


@pytest.mark.parametrize("counters,message", [
    ({"count": ("u",)}, "counter 'count' is not a register"),
    ({"a": ("u",)}, "counter 'a' is not a register"),       # an input, not a register
    ({"cycle": ("v",)}, "'v' reads a copy of 'cycle' but has no gate"),
])
def test_a_counter_the_verilog_cannot_take_is_refused(counters, message):
    with pytest.raises(GatingError, match=message):
        gate_clocks(TOP, "t", {"u": "gate_u"}, counters=counters)


@pytest.mark.parametrize("gates,message", [
    ({"w": "gate_u"}, "instance 'w' found 0 times"),
    ({"u": "gate_w"}, "gate signal 'gate_w'"),
    ({"u": "y"}, "gate signal 'y'"),                 # 4 bits wide: not a gate
])
def test_a_gate_the_verilog_cannot_take_is_refused(gates, message):
    with pytest.raises(GatingError, match=message):
        gate_clocks(TOP, "t", gates)


def test_a_clock_input_whose_name_is_taken_is_refused():
    with pytest.raises(GatingError, match="'gate_u_clk' is already a name"):
        gate_clocks(TOP.replace("  wire gate_v;", "  wire gate_u_clk;"), "t", {"u": "gate_u"})


def test_an_instance_not_on_the_clock_is_refused():
    with pytest.raises(GatingError, match="no port connected to 'clk'"):
        gate_clocks(TOP.replace(".core_clk(clk)", ".core_clk(rst)"), "t", {"u": "gate_u"})


# ---- the gated top against the ungated one ---------------------------------------------------

OUTPUTS = [name for name, s in wire.STREAMS.items() if s.direction == "out"]


def _word(name, index=0):
    return wire.REGISTERS.address(name, index) // 4


def _session(h, seed: int) -> list:
    """Everything the top does in a mixed session, as a log: ITCH with idle inputs and
    backpressure, orders, fills, refill batches, limit writes and commits (tight token buckets
    that drain and refill), kill, counter clears, subscriptions and register reads, each at a
    random point of the traffic; then broken frames, and MoldUDP64 sessions with gaps and
    resets."""
    from host.daemon import demo_config, gate_registers
    from host.link.beats import pack_beats, pack_historical
    from sim.gen.itchgen import generate
    from tb_feed_streams import fuzz_frames, mold_frames

    rng = np.random.default_rng(seed)
    log = []

    def run(cycles, drained=False):
        idle = {"md_in": float(rng.choice([0.0, 0.5])), "order_in": 0.3, "fill_in": 0.3,
                "refill_in": 0.3}
        bp = {name: float(rng.choice([0.0, 0.2, 0.7])) for name in OUTPUTS}
        done = h.run(max_cycles=cycles, idle=idle, backpressure=bp,
                     seed=int(rng.integers(1 << 30)), stop_when_drained=drained)
        log.append(("run", done, h.cycle))
        for name in OUTPUTS:
            log.append((name, h.pop(name).tobytes()))

    h.reset()
    run(3_000)
    for name, index, value in gate_registers(demo_config().risk, {}):
        h.write_reg(_word(name, index), value)
    for name, value in (("RISK_RATE_SHIFT", 3), ("RISK_RATE_BURST", 6),
                        ("RISK_SYMBOL_RATE_SHIFT", 5), ("RISK_SYMBOL_RATE_BURST", 3),
                        ("RISK_COLLAR_CONFIG", 0), ("RISK_KILL", 0), ("RISK_COMMIT", 1)):
        h.write_reg(_word(name), value)

    stream = generate(seed, 3_000, n_symbols=12)
    beats = pack_historical(stream)
    h.push("md_in", beats)

    sell = wire.ORDER_REQUEST.flag("flags", "sell")
    done_flag = wire.FILL.flag("flags", "done")
    next_id, ids = 1, []
    for _ in range(40):
        run(int(rng.integers(20, 2_500)))
        action = rng.integers(8)
        if action <= 2:                                  # a burst of orders
            req = np.zeros(int(rng.integers(1, 24)), wire.ORDER_REQUEST.dtype)
            for r in req:
                r["client_order_id"] = next_id if rng.random() > 0.05 else max(1, next_id - 1)
                r["kind"] = rng.choice([wire.ORDER_KIND_NEW] * 4 + [wire.ORDER_KIND_CANCEL,
                                                                   wire.ORDER_KIND_REPLACE])
                r["orig_client_order_id"] = int(rng.choice(ids)) if ids else 0
                r["slot"] = int(rng.integers(0, wire.RISK_SLOTS + 2))
                r["price"] = int(rng.integers(1, 2_000_000))
                r["quantity"] = int(rng.integers(1, 500))
                r["flags"] = sell if rng.random() < 0.5 else 0
                ids.append(next_id)
                next_id += 1
            h.push("order_in", req)
        elif action == 3 and ids:                        # fills, some closing
            fills = np.zeros(int(rng.integers(1, 10)), wire.FILL.dtype)
            for f in fills:
                f["client_order_id"] = int(rng.choice(ids))
                f["slot"] = int(rng.integers(0, wire.RISK_SLOTS + 1))
                f["quantity"] = int(rng.integers(1, 300))
                f["price"] = int(rng.integers(1, 2_000_000))
                f["flags"] = done_flag if rng.random() < 0.5 else 0
            h.push("fill_in", fills)
        elif action == 4:                                # a refill batch (well formed or not)
            n = int(rng.integers(1, 5))
            lv = np.zeros(n, wire.BOOK_REFILL_LEVEL.dtype)
            side = wire.BOOK_REFILL_LEVEL.flag("flags", "sell") if rng.random() < 0.5 else 0
            for k, r in enumerate(lv):
                r["seq"], r["slot"], r["level"] = int(rng.integers(1 << 20)), int(
                    rng.integers(0, 18)), k
                r["price"] = 1_000_000 - 100 * k if not side else 1_000_000 + 100 * k
                r["size"], r["orders"] = int(rng.integers(1, 1000)), int(rng.integers(1, 5))
                r["flags"] = side | (wire.BOOK_REFILL_LEVEL.flag("flags", "first") if k == 0
                                     else 0) | (wire.BOOK_REFILL_LEVEL.flag("flags", "last")
                                                if k == n - 1 else 0)
            h.push("refill_in", lv)
        elif action == 5:                                # new limits, committed or not yet
            h.write_reg(_word("RISK_RATE_BURST"), int(rng.integers(0, 10)))
            h.write_reg(_word("RISK_SYMBOL_RATE_SHIFT"), int(rng.integers(0, 8)))
            h.write_reg(_word("RISK_COLLAR_CONFIG"), int(rng.integers(0, 4)))
            if rng.random() < 0.7:
                h.write_reg(_word("RISK_COMMIT"), 1)
        elif action == 6:                                # kill switch, counter clear
            h.write_reg(_word("RISK_KILL"), int(rng.integers(2)))
            if rng.random() < 0.5:
                h.write_reg(_word("CONTROL"), 1)
        else:                                            # subscriptions and reads
            h.write_reg(_word("FEED_SUB_LOCATE"), int(rng.integers(1, 20)))
            h.write_reg(_word("FEED_SUB_SLOT"), int(rng.integers(0, 20)))
        for _ in range(int(rng.integers(0, 4))):
            word = int(rng.integers(wire.REGISTERS.size // 4))
            log.append(("reg", word, h.read_reg(word)))
    run(5_000_000, drained=True)
    run(20_000)                                          # buckets refill with nothing offered

    # Broken frames, then MoldUDP64 sessions with gaps, repeats and a reset of the sessions.
    for mold, frames in ((0, fuzz_frames(seed, 150)),
                         (1, mold_frames(seed, 1_500) + fuzz_frames(seed, 60, mold=True))):
        h.write_reg(_word("FEED_FRAMING"), mold)
        h.write_reg(_word("FEED_MOLD_CONFIG"), int(rng.integers(2)))
        frames = [f for f in frames if f]
        h.push("md_in", pack_beats(b"".join(frames), np.cumsum([len(f) for f in frames])))
        for _ in range(6):
            run(int(rng.integers(200, 3_000)))
            if rng.random() < 0.3:
                h.write_reg(_word("FEED_MOLD_RESET"), 1)
        run(5_000_000, drained=True)
    log.append(("regs", [h.read_reg(w) for w in range(wire.REGISTERS.size // 4)]))
    return log


@pytest.mark.parametrize("seed", [3, 8])
def test_gated_top_equals_ungated_top_cycle_for_cycle(seed):
    # Arrange: the small top built with and without gated clocks
    from hdl.top import Top

    logs = []
    for gate in (True, False):
        top = Top(slots=16, levels=2)
        h = Harness.build(top, "ticklane_top", config=top.config, gate=gate,
                          dtypes={name: s.record.dtype for name, s in wire.STREAMS.items()})
        # Act
        logs.append(_session(h, seed))
        h.close()

    # Assert: every run's length, every record with its cycle stamps, every register read
    gated, ungated = logs
    records = {name: sum(len(e[1]) for e in gated if e[0] == name) for name in OUTPUTS}
    assert all(records[name] > 0 for name in OUTPUTS), records
    assert len(gated) == len(ungated)
    for a, b in zip(gated, ungated):
        assert a == b


# ---- the harness's schedule of the model's regions against Verilator's ----------------------

@pytest.mark.parametrize("seed", [3, 8])
def test_harness_schedule_equals_verilators_cycle_for_cycle(seed):
    # Arrange: the small gated top stepped by the harness's schedule and by Verilator's
    from hdl.top import Top

    logs, schedules = [], []
    for schedule in (True, False):
        top = Top(slots=16, levels=2)
        h = Harness.build(top, "ticklane_top", config=top.config, schedule=schedule,
                          dtypes={name: s.record.dtype for name, s in wire.STREAMS.items()})
        schedules.append(h.build_info.schedule)
        # Act
        logs.append(_session(h, seed))
        h.close()

    # Assert: the first build used the harness's schedule, and nothing differs
    assert schedules == ["harness", "verilator: asked for"]
    ours, verilators = logs
    assert len(ours) == len(verilators)
    for a, b in zip(ours, verilators):
        assert a == b
