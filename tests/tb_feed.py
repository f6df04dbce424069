"""cocotb testbench of :class:`hdl.feed.bench.FeedBench`: one scenario, scored against the model.

Inputs come from the environment (set by ``tests/test_feed_cocotb.py``): ``TICKLANE_TB_SCENARIO``
is a pickle of ``{"frames": [bytes], "config": FeedConfig, "expected": FeedResult}``;
``TICKLANE_TB_IDLE`` / ``TICKLANE_TB_BACKPRESSURE`` probabilities, ``TICKLANE_TB_SEED``.
"""

import os
import pickle

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, FallingEdge, ReadOnly

from hdl import wire
from hdl.feed.bench import FEED_BENCH_REGISTERS
from hdl.feed.events import BookEventLayout
from host.decode import beats_of_frames, _rows_to_dicts
from sim.model.feed import EVENT_FIELDS
from sim.tb import StreamSource, StreamSink, RegisterBus

# Cycles from the beat holding a message's last byte to its event at the stage's output.
FEED_LATENCY = 2
OUTPUTS = (("events_out", BookEventLayout), ("host_out", wire.HOST_MESSAGE.layout),
           ("gaps_out", wire.FEED_GAP.layout))


def _dicts(values, layout, nbytes):
    import numpy as np
    rows = np.frombuffer(b"".join(v.to_bytes(nbytes, "little") for v in values),
                         dtype=np.uint8).reshape(-1, nbytes)
    return _rows_to_dicts(rows, layout)


@cocotb.test()
async def feed_stage_output_equals_model(dut):
    with open(os.environ["TICKLANE_TB_SCENARIO"], "rb") as f:
        scenario = pickle.loads(f.read())
    idle = float(os.environ.get("TICKLANE_TB_IDLE", "0"))
    backpressure = float(os.environ.get("TICKLANE_TB_BACKPRESSURE", "0"))
    seed = int(os.environ.get("TICKLANE_TB_SEED", "0"))
    config, expected = scenario["config"], scenario["expected"]

    clk = dut.clk
    Clock(clk, 4, unit="ns").start()
    src = StreamSource(dut, "md_in", clk, idle=idle, seed=seed)
    sinks = {name: StreamSink(dut, name, clk, backpressure=backpressure, seed=seed + 1 + i)
             for i, (name, _) in enumerate(OUTPUTS)}
    regs = RegisterBus(dut, clk, FEED_BENCH_REGISTERS)
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(clk)
    await FallingEdge(clk)
    dut.rst.value = 0
    await RisingEdge(clk)

    await regs.write("FEED_FRAMING", int(config.mold))
    await regs.write("FEED_MOLD_CONFIG", int(config.mold_join))
    await regs.write("FEED_SUB_MODE", config.mode_register())
    for i, word in enumerate(config.ticker_words()):
        await regs.write("FEED_SUB_TICKER_LO", word & 0xFFFF_FFFF, i)
        await regs.write("FEED_SUB_TICKER_HI", word >> 32, i)
    for locate, slot in config.entries:
        await regs.write("FEED_SUB_LOCATE", locate)
        await regs.write("FEED_SUB_SLOT", slot)

    beats = beats_of_frames(scenario["frames"])
    raw = beats.tobytes()
    size = wire.MD_BEAT.size
    src.send([int.from_bytes(raw[i:i + size], "little") for i in range(0, len(raw), size)])

    # Clock until all beats are in and nothing came out for a while; count the cycles with a
    # beat offered but not taken (there must be none without backpressure).
    stalls = 0
    quiet = 0
    seen = 0
    for _ in range(20 * len(beats) + 10_000):
        await RisingEdge(clk)
        await ReadOnly()
        if int(dut.md_in__valid.value) and not int(dut.md_in__ready.value):
            stalls += 1
        total = sum(len(s.received) for s in sinks.values())
        if src.empty and total == seen:
            quiet += 1
            if quiet >= 32:
                break
        else:
            quiet, seen = 0, total
    else:
        raise AssertionError("the feed stage did not drain")

    got = {name: _dicts(sinks[name].received, layout,
                        len(dut.__getattr__(f"{name}__payload").value) // 8)
           for name, layout in OUTPUTS}
    assert len(got["events_out"]) == len(expected.events), \
        (len(got["events_out"]), len(expected.events))
    for i, (g, e) in enumerate(zip(got["events_out"], expected.events)):
        diff = {k: (g[k], e[k]) for k in EVENT_FIELDS if g[k] != e[k]}
        assert not diff, f"event {i}: (got, expected) {diff}"
    assert len(got["host_out"]) == len(expected.host)
    for i, (g, e) in enumerate(zip(got["host_out"], expected.host)):
        from host.feed.records import host_message_bytes
        assert (g["seq"], g["slot"], g["flags"], host_message_bytes(g)) == \
            (e["seq"], e["slot"], e["flags"], e["message"]), f"host record {i}"
    assert len(got["gaps_out"]) == len(expected.gaps)
    for i, (g, e) in enumerate(zip(got["gaps_out"], expected.gaps)):
        assert {k: g[k] for k in e} == e, f"gap record {i}: {g} != {e}"

    for name, value in expected.counters.items():
        assert await regs.read(name) == value, (name, await regs.read(name), value)

    latency = [(r["egress"] - r["ingress"]) % (1 << 32) for r in got["events_out"]]
    latency += [(r["egress"] - r["ingress_cycle"]) % (1 << 32) for r in got["host_out"]]
    if latency:
        assert min(latency) == FEED_LATENCY, min(latency)
    if backpressure == 0:
        # Stamped when first valid: without backpressure every message takes exactly the
        # pipeline's two cycles, and no beat ever waits.
        assert not latency or max(latency) == FEED_LATENCY, max(latency)
        assert stalls == 0, f"{stalls} beats waited without backpressure"
