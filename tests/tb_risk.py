"""cocotb testbench of the risk gate alone (:class:`tools.bench_risk.StandaloneRiskGate`).

Seeded phases of orders, fills and BBO records (:class:`tools.bench_risk.RiskTraffic`) go in on
their three streams at once, with limit writes and commits on the register bus while they flow;
each phase is drained and scored against the reference model
(:class:`tools.bench_risk.RiskScoreboard`): every verdict bit for bit, every accepted order,
latency in cycles, and the counters read back over the bus.

Inputs come from the environment (set by ``tests/test_risk_cocotb.py``):
``TICKLANE_TB_IDLE`` / ``TICKLANE_TB_BACKPRESSURE`` probabilities, ``TICKLANE_TB_SEED``,
``TICKLANE_TB_CYCLES`` (the run's budget), ``TICKLANE_TB_OPEN_ORDERS``, ``TICKLANE_TB_DUP_DEPTH``
(the build's parameters) and ``TICKLANE_TB_SUMMARY`` (a JSON file the run writes its numbers to).
"""

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from hdl import wire
from sim.tb import RegisterBus, StreamSink, StreamSource
from tools.bench_risk import RiskScoreboard, RiskTraffic, records_array, register_ref


def _rows(record: wire.Record, rows: list[dict]) -> list[int]:
    raw = records_array(record, rows).tobytes()
    return [int.from_bytes(raw[i:i + record.size], "little")
            for i in range(0, len(raw), record.size)]


def _array(record: wire.Record, values: list[int]) -> np.ndarray:
    return np.frombuffer(b"".join(v.to_bytes(record.size, "little") for v in values),
                         dtype=record.dtype)


class RiskTB:
    """Clock, reset, a source per input stream, a sink per output stream, the register bus."""

    def __init__(self, dut, *, idle: float, backpressure: float, seed: int):
        self.dut, self.clk = dut, dut.clk
        Clock(dut.clk, 4, unit="ns").start()   # 250 MHz
        self.orders = StreamSource(dut, "order_in", self.clk, idle=idle, seed=seed)
        self.fills = StreamSource(dut, "fill_in", self.clk, idle=idle, seed=seed + 1)
        self.bbos = StreamSource(dut, "bbo_in", self.clk, idle=idle, seed=seed + 2)
        self.verdicts = StreamSink(dut, "verdict_out", self.clk, backpressure=backpressure,
                                   seed=seed + 3)
        self.orders_out = StreamSink(dut, "order_out", self.clk, backpressure=backpressure,
                                     seed=seed + 4)
        # The monitor must never be held: it would count an overrun.
        self.applied = StreamSink(dut, "applied", self.clk, backpressure=0.0)
        self.regs = RegisterBus(dut, self.clk)

    async def reset(self, cycles: int = 4):
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.clk)

    async def drain(self, orders: int, settle: int = 4, limit: int = 1_000_000):
        """Clock until every input is taken and ``orders`` verdicts came out, then ``settle``."""
        for _ in range(limit):
            await RisingEdge(self.clk)
            if (self.orders.empty and self.fills.empty and self.bbos.empty
                    and len(self.verdicts.received) >= orders
                    and not int(self.orders_out.valid.value)):
                await ClockCycles(self.clk, settle)
                return
        raise AssertionError(f"the gate did not drain a phase within {limit} cycles")


@cocotb.test()
async def risk_gate_verdicts_match_model_with_limit_changes_in_flight(dut):
    idle = float(os.environ.get("TICKLANE_TB_IDLE", "0"))
    backpressure = float(os.environ.get("TICKLANE_TB_BACKPRESSURE", "0"))
    seed = int(os.environ.get("TICKLANE_TB_SEED", "1"))
    budget = int(os.environ.get("TICKLANE_TB_CYCLES", "20000"))
    open_orders = int(os.environ.get("TICKLANE_TB_OPEN_ORDERS", "32"))
    dup_depth = int(os.environ.get("TICKLANE_TB_DUP_DEPTH", "16"))

    tb = RiskTB(dut, idle=idle, backpressure=backpressure, seed=seed)
    await tb.reset()
    traffic = RiskTraffic(seed, open_orders=open_orders, dup_depth=dup_depth)
    board = RiskScoreboard(open_orders=open_orders, dup_depth=dup_depth)
    phases = 0
    while int(tb.dut.cycle.value) < budget:
        phase = traffic.next_phase(board.model)
        # Before the phase's first handshake: the reference for unwrapping 32-bit stamps.
        start = int(tb.dut.cycle.value)
        tb.orders.send(_rows(wire.ORDER_REQUEST, phase.orders))
        tb.fills.send(_rows(wire.FILL, phase.fills))
        tb.bbos.send(_rows(wire.BBO_UPDATE, phase.bbos))
        if phase.writes:
            if phase.write_after:
                await ClockCycles(tb.clk, phase.write_after)
            for key, value in phase.writes:
                name, index = register_ref(key)
                await tb.regs.write(name, value, index)
        await tb.drain(len(phase.orders))
        verdicts = _array(wire.VERDICT, tb.verdicts.received)
        orders_out = _array(wire.ORDER_REQUEST, tb.orders_out.received)
        applied = np.array(tb.applied.received, dtype=np.uint64)
        tb.verdicts.received.clear()
        tb.orders_out.received.clear()
        tb.applied.received.clear()
        board.check_phase(phase, verdicts, orders_out, applied, start_cycle=start,
                          stalled=backpressure > 0, back_to_back=idle == 0 and backpressure == 0)
        phases += 1
        if phases % 8 == 0:
            values = {}
            for key in RiskScoreboard.status_keys():
                values[key] = await tb.regs.read(*register_ref(key))
            board.check_status(values)
        assert board.mismatches == 0, "\n".join(board.messages)

    values = {}
    for key in RiskScoreboard.status_keys():
        values[key] = await tb.regs.read(*register_ref(key))
    board.check_status(values)
    assert board.mismatches == 0, "\n".join(board.messages)

    summary = os.environ.get("TICKLANE_TB_SUMMARY")
    if summary:
        with open(summary, "w") as f:
            json.dump({"cycles": int(tb.dut.cycle.value), "phases": phases,
                       "orders": board.orders, "accepted": board.accepted,
                       "fills": board.model.counters["RISK_FILLS"],
                       "commits": board.commits, "kills": board.kills,
                       "latency": {str(k): v for k, v in sorted(
                           (board.latency_stalled if backpressure else board.latency_ready)
                           .items())},
                       "sustained_orders": board.sustained_orders,
                       "sustained_cycles": board.sustained_cycles}, f)
