"""cocotb testbench of :class:`hdl.top.Top`: a historical ITCH stream in, BBO records out.

Inputs come from the environment (set by ``tests/test_top_cocotb.py``):
``TICKLANE_TB_STREAM`` path of the stream file, ``TICKLANE_TB_FRAMES`` comma-separated frame ends,
``TICKLANE_TB_EXPECTED`` path of the expected records (``.npy`` of the BBO dtype, from the
reference model), ``TICKLANE_TB_IDLE`` / ``TICKLANE_TB_BACKPRESSURE`` probabilities,
``TICKLANE_TB_SEED``.
"""

import json
import os
import time

import cocotb
import numpy as np

from hdl import wire
from sim.tb import TopTB, md_beats
from sim.scoreboard import compare_bbo

# Cycles from the beat holding a message's last byte to its record leaving the book stage, for the
# add orders these streams carry: 2 in the feed stage (deframer, decoder) and 1 in the book. The
# stamps are taken inside the stages, so the register slices on the top's ports (one cycle on
# md_in, one on bbo_out) are not part of it: port to port, a record takes 2 cycles more.
PIPELINE_LATENCY = 3


@cocotb.test()
async def top_replays_stream_like_the_model(dut):
    with open(os.environ["TICKLANE_TB_STREAM"], "rb") as f:
        stream = f.read()
    frames = [int(x) for x in os.environ.get("TICKLANE_TB_FRAMES", "").split(",") if x]
    expected = np.load(os.environ["TICKLANE_TB_EXPECTED"])
    idle = float(os.environ.get("TICKLANE_TB_IDLE", "0"))
    backpressure = float(os.environ.get("TICKLANE_TB_BACKPRESSURE", "0"))
    seed = int(os.environ.get("TICKLANE_TB_SEED", "0"))

    tb = TopTB(dut, idle=idle, backpressure=backpressure, seed=seed)
    await tb.reset()
    assert await tb.regs.read("DEVICE_ID") == wire.DEVICE_ID
    assert await tb.regs.read("FORMAT_HASH") == wire.FORMAT_HASH & 0xFFFF_FFFF

    beats = md_beats(stream, frames or None)
    start_cycle = await tb.regs.read("CYCLE_LO")
    start = time.perf_counter()
    tb.md.send(beats)
    await tb.drain()
    wall = time.perf_counter() - start
    cycles = await tb.regs.read("CYCLE_LO") - start_cycle
    if os.environ.get("TICKLANE_TB_STATS"):
        # the benchmark compares this driving speed with the C++ harness's
        with open(os.environ["TICKLANE_TB_STATS"], "w") as f:
            json.dump({"cycles": cycles, "wall_s": wall, "beats": len(beats)}, f)

    got = np.frombuffer(b"".join(v.to_bytes(wire.BBO_UPDATE.size, "little")
                                 for v in tb.bbo.received), dtype=wire.BBO_UPDATE.dtype)
    compare_bbo(got, expected)

    latency = (got["egress_cycle"].astype(np.int64) - got["ingress_cycle"]) % (1 << 32)
    if len(got):
        assert latency.min() == PIPELINE_LATENCY, (latency.min(), latency.max())
        if backpressure == 0:
            # nothing waits when the host always takes records: every add takes exactly this
            assert latency.max() == PIPELINE_LATENCY, latency.max()

    assert await tb.regs.read("MD_BEATS") == len(beats)
    assert await tb.regs.read("BBO_OUT") == len(expected)
    assert await tb.regs.read("DROP_TRUNCATED") == 0
    lo = await tb.regs.read("CYCLE_LO")
    hi = await tb.regs.read("CYCLE_HI")
    assert hi == 0 and lo > len(beats)
