"""The risk gate in the C++ batch harness against the reference model: random orders, fills and
BBO records in phases, limit changes committed while orders are in flight, idle inputs and output
back-pressure; verdicts, accepted orders, counters and latency compared with
:class:`sim.model.risk.RiskModel`. Millions of orders: ``python -m tools.bench_risk``.
"""

import pytest

from hdl import wire
from hdl.risk import LATENCY
from tools.bench_risk import (RiskScoreboard, RiskTraffic, StandaloneRiskGate, build_harness,
                              decode_applied, records_array, register_word, run_random)


@pytest.fixture(scope="module")
def harness():
    h = build_harness(open_orders=32, dup_depth=16)
    yield h
    h.close()


@pytest.fixture
def fresh(harness):
    h = harness.spawn()
    h.reset()
    h.cycle_base = h.cycle
    yield h
    h.close()


def test_200k_random_orders_with_limit_changes_in_flight_match_model(fresh):
    # Arrange: a quarter of the phases with idle inputs and output back-pressure

    # Act
    board = run_random(fresh, orders=200_000, seed=7, stress=0.25)

    # Assert
    assert board.mismatches == 0, "\n".join(board.messages)
    assert board.orders >= 200_000
    assert 0.05 < board.accepted / board.orders < 0.95
    counters = board.model.counters
    assert counters["RISK_FILLS"] > 10_000 and counters["RISK_FILLS_UNKNOWN"] > 0
    assert counters["RISK_DROPPED"] > 0
    assert all(n > 0 for n in counters["RISK_REJECTS"]), dict(zip(wire.RISK_REASONS,
                                                                 counters["RISK_REJECTS"]))
    assert board.commits > 100 and board.kills > 0
    assert max(board.latency_stalled) > LATENCY


def test_orders_back_to_back_enter_one_per_cycle_with_verdicts_two_cycles_later(fresh):
    # Arrange: outputs always ready, no idle

    # Act
    board = run_random(fresh, orders=20_000, seed=3, stress=0.0)

    # Assert
    assert board.mismatches == 0, "\n".join(board.messages)
    assert board.sustained_orders == board.sustained_cycles == board.orders
    assert set(board.latency_ready) == {LATENCY} and LATENCY <= 4
    assert fresh.stats()["order_in"]["stall_cycles"] == 0


def test_monitor_reports_commit_in_the_cycle_after_the_register_write(fresh):
    # Arrange: the register bank registers the bus, so a write strobes the gate one cycle later
    fresh.run(17, stop_when_drained=False)
    expected = fresh.cycle - fresh.cycle_base + 1

    # Act
    fresh.write_reg(register_word("RISK_COMMIT"), 1)
    fresh.run(4, stop_when_drained=False)
    applied = decode_applied(fresh.pop("applied"))

    # Assert
    assert applied["commit"].tolist() == [True]
    assert applied["cycle"].tolist() == [expected]


def test_scoreboard_reports_a_verdict_with_one_reason_bit_flipped(fresh):
    # Arrange: capture one phase's outputs, then corrupt one verdict
    traffic = RiskTraffic(5)
    board = RiskScoreboard()
    phase = traffic.next_phase(board.model)
    start = fresh.cycle - fresh.cycle_base
    fresh.push("order_in", records_array(wire.ORDER_REQUEST, phase.orders))
    fresh.push("fill_in", records_array(wire.FILL, phase.fills))
    fresh.push("bbo_in", records_array(wire.BBO_UPDATE, phase.bbos))
    fresh.run(phase.write_after, stop_when_drained=False)
    for key, value in phase.writes:
        fresh.write_reg(register_word(key), value)
    fresh.run(100_000)
    verdicts, orders_out, applied = (fresh.pop("verdict_out"), fresh.pop("order_out"),
                                     fresh.pop("applied"))
    corrupt = verdicts.copy()
    corrupt["reasons"][len(corrupt) // 2] ^= 1 << wire.RISK_REASONS.index("SELF_TRADE")

    # Act
    honest, lied = RiskScoreboard(), RiskScoreboard()
    honest.check_phase(phase, verdicts, orders_out, applied, start_cycle=start, stalled=False)
    lied.check_phase(phase, corrupt, orders_out, applied, start_cycle=start, stalled=False)

    # Assert
    assert honest.mismatches == 0, "\n".join(honest.messages)
    assert lied.mismatches >= 1
    assert "SELF_TRADE" in "\n".join(lied.messages)


def test_standalone_gate_rejects_zero_open_orders_with_the_value_in_the_message():
    with pytest.raises(ValueError, match=r"open_orders must be an integer in \[1, 1024\], not 0"):
        StandaloneRiskGate(open_orders=0)
