"""cocotb testbench of :class:`hdl.book.standalone.StandaloneBook`: book events in, BBO out.

Inputs come from the environment (set by ``tests/test_book_cocotb.py``): ``TICKLANE_TB_EVENTS``
(``.npy`` of packed events, :func:`sim.model.book_hw.pack_events`), ``TICKLANE_TB_EXPECTED``
(``.npy`` of BBO records from :class:`sim.model.book_hw.HardwareBook`), ``TICKLANE_TB_IDLE``,
``TICKLANE_TB_BACKPRESSURE``, ``TICKLANE_TB_SEED``, ``TICKLANE_TB_LATENCY`` (``.npy`` written
back: egress - ingress of every record).

The source stamps each event's ``ingress`` with the cycle counter of the cycle it first presents
the event, so a record's ``egress - ingress`` is the stage's latency plus any wait for ``ready``.
"""

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hdl import wire
from hdl.feed.events import BookEventLayout
from sim.scoreboard import compare_bbo
from sim.tb import StreamSink

_INGRESS = BookEventLayout["ingress"]
_INGRESS_MASK = ((1 << _INGRESS.width) - 1) << _INGRESS.offset


async def _drive(dut, words: list[int], idle: float, seed: int, done: list):
    rng = random.Random(seed)
    current = None
    queue = list(reversed(words))
    dut.events__valid.value = 0
    while queue or current is not None:
        await FallingEdge(dut.clk)
        if current is None:
            if queue and not (idle and rng.random() < idle):
                stamp = int(dut.cycle.value) & ((1 << _INGRESS.width) - 1)
                current = (queue.pop() & ~_INGRESS_MASK) | (stamp << _INGRESS.offset)
                dut.events__payload.value = current
                dut.events__valid.value = 1
            else:
                dut.events__valid.value = 0
        await ReadOnly()
        if current is not None and int(dut.events__ready.value):
            current = None
    await FallingEdge(dut.clk)
    dut.events__valid.value = 0
    done.append(True)


@cocotb.test()
async def book_publishes_what_the_hardware_model_expects(dut):
    events = np.load(os.environ["TICKLANE_TB_EVENTS"])
    expected = np.load(os.environ["TICKLANE_TB_EXPECTED"])
    idle = float(os.environ.get("TICKLANE_TB_IDLE", "0"))
    backpressure = float(os.environ.get("TICKLANE_TB_BACKPRESSURE", "0"))
    seed = int(os.environ.get("TICKLANE_TB_SEED", "0"))

    Clock(dut.clk, 4, unit="ns").start()
    sink = StreamSink(dut, "bbo", dut.clk, backpressure=backpressure, seed=seed + 1)
    dut.events__valid.value = 0
    dut.refill__valid.value = 0
    dut.rst.value = 1
    for _ in range(4):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0

    words = [int.from_bytes(row.tobytes(), "little") for row in events]
    done = []
    cocotb.start_soon(_drive(dut, words, idle, seed, done))
    quiet = 0
    while not done or quiet < 64:
        await RisingEdge(dut.clk)
        n = len(sink.received)
        quiet = quiet + 1 if done and n == getattr(sink, "_seen", -1) else 0
        sink._seen = n

    got = np.frombuffer(b"".join(v.to_bytes(wire.BBO_UPDATE.size, "little")
                                 for v in sink.received), dtype=wire.BBO_UPDATE.dtype)
    compare_bbo(got, expected)
    bad = np.nonzero(got["flags"] != expected["flags"])[0]
    assert not len(bad), f"flags differ first at record {bad[0]}: {got[bad[0]]} vs {expected[bad[0]]}"
    latency = (got["egress_cycle"].astype(np.int64) - got["ingress_cycle"]) % (1 << 32)
    np.save(os.environ["TICKLANE_TB_LATENCY"], latency)
