"""cocotb + Verilator: the risk gate alone against the reference model, with limit changes in
flight, with and without idle inputs and output back-pressure (testbench: ``tests/tb_risk.py``).

One small build (:class:`tools.bench_risk.StandaloneRiskGate`: the gate with the register bank
and a cycle counter, no feed or book) so the Verilator build stays short.
"""

import json

import pytest
from cocotb_tools.check_results import get_results

from hdl.risk import LATENCY
from sim.cocotb_run import run_cocotb
from tools.bench_risk import StandaloneRiskGate

PARAMS = dict(open_orders=32, dup_depth=16)


@pytest.mark.parametrize("idle,backpressure,cycles", [
    (0.0, 0.0, 50_000), (0.3, 0.5, 30_000), (0.0, 0.8, 20_000)],
    ids=["always_ready", "idle_and_backpressure", "heavy_backpressure"])
def test_risk_gate_verdicts_equal_model_with_limit_changes_in_flight(
        tmp_path, idle, backpressure, cycles):
    # Arrange
    top = StandaloneRiskGate(**PARAMS)
    summary = tmp_path / "summary.json"

    # Act
    results = run_cocotb(
        top, toplevel="ticklane_risk", config=top.config, test_module="tb_risk",
        env={"TICKLANE_TB_IDLE": idle, "TICKLANE_TB_BACKPRESSURE": backpressure,
             "TICKLANE_TB_SEED": 11, "TICKLANE_TB_CYCLES": cycles,
             "TICKLANE_TB_OPEN_ORDERS": PARAMS["open_orders"],
             "TICKLANE_TB_DUP_DEPTH": PARAMS["dup_depth"], "TICKLANE_TB_SUMMARY": summary})

    # Assert
    tests, failed = get_results(results)
    assert tests == 1 and failed == 0
    done = json.loads(summary.read_text())
    assert done["cycles"] >= cycles
    assert done["accepted"] > 0 and done["accepted"] < done["orders"]
    assert done["commits"] > 1 and done["fills"] > 0
    latency = {int(k): v for k, v in done["latency"].items()}
    assert sum(latency.values()) == done["orders"]
    if backpressure == 0:
        # every verdict exactly LATENCY cycles after its request, one request per cycle
        assert set(latency) == {LATENCY}
        assert done["sustained_orders"] == done["sustained_cycles"] == done["orders"]
    else:
        assert min(latency) == LATENCY and max(latency) > LATENCY
