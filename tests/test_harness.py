"""The batch harness against real designs: every record, in order, bit for bit, cycle-exact.

Two designs are built once per module (sim.harness.examples): a FIFO loopback of BBO updates with
the register bank of hdl.wire.REGISTERS, and a fixed-latency pipeline that stamps cycles and
counts stream-contract violations by its source. Each test gets a fresh instance of them.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hdl import wire
from sim.harness import Harness, StreamPort
from sim.harness.examples import CROSS_CHECK_REGISTERS, BboCrossCheck, BboLoopback

BBO = wire.BBO_UPDATE
LATENCY = 3
SETTLE = 16
FIFO_DEPTH = 8
CROSSED = BBO.flag("flags", "crossed")
BID_VALID = BBO.flag("flags", "bid_valid")
ASK_VALID = BBO.flag("flags", "ask_valid")
STAMPS = ("ingress_cycle", "egress_cycle")


def _reg(regmap: wire.RegisterMap, name: str) -> int:
    return regmap.address(name) // 4


def _random_records(n: int, seed: int) -> np.ndarray:
    # Every bit random, padding and flags included, so any lost or shifted bit shows.
    raw = np.random.default_rng(seed).integers(0, 256, size=n * BBO.size, dtype=np.uint8)
    return raw.view(BBO.dtype)


def _cross_check_model(records: np.ndarray) -> np.ndarray:
    out = records.copy()
    both = (out["flags"] & BID_VALID != 0) & (out["flags"] & ASK_VALID != 0)
    crossed = both & (out["bid_price"] >= out["ask_price"])
    out["flags"] = (out["flags"] & ~np.uint16(CROSSED)) | np.where(crossed, CROSSED, 0)
    return out


def _without_stamps(records: np.ndarray) -> np.ndarray:
    out = records.copy()
    for name in STAMPS:
        out[name] = 0
    return out


class _XorShift64Star:
    """The harness's idle/backpressure generator, mirrored to replay its choices."""

    MASK = (1 << 64) - 1

    def __init__(self, seed: int):
        self.s = seed & self.MASK or 0x9E3779B97F4A7C15

    def next32(self) -> int:
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & self.MASK
        s ^= s >> 27
        self.s = s
        return ((s * 0x2545F4914F6CDD1D) & self.MASK) >> 32


def _threshold(p: float) -> int:
    return 0 if p <= 0 else (1 << 32) if p >= 1 else int(p * 4294967296.0)


def _simulate_cross_check(records: np.ndarray, *, idle: float, backpressure: float, seed: int):
    """Amaranth's simulator driving BboCrossCheck exactly as the harness does."""
    dut = BboCrossCheck(latency=LATENCY)
    words = [int.from_bytes(r.tobytes(), "little") for r in records]
    received: list[int] = []
    result = {}

    async def bench(ctx):
        rng = _XorShift64Star(seed)
        idle_thr, bp_thr = _threshold(idle), _threshold(backpressure)
        index, presenting, quiet, cycles = 0, False, 0, 0
        while True:
            if not presenting and index < len(words):
                if idle_thr and rng.next32() < idle_thr:
                    pass
                else:
                    presenting = True
                    ctx.set(dut.bbo_in.payload.as_value(), words[index])
            ctx.set(dut.bbo_in.valid, presenting)
            ready = not (bp_thr and rng.next32() < bp_thr)
            ctx.set(dut.bbo_out.ready, ready)
            out_valid = ctx.get(dut.bbo_out.valid)
            active = presenting or out_valid
            if presenting and ctx.get(dut.bbo_in.ready):
                index, presenting = index + 1, False
            if out_valid and ready:
                received.append(ctx.get(dut.bbo_out.payload.as_value()))
            await ctx.tick()
            cycles += 1
            quiet = 0 if active or index < len(words) else quiet + 1
            if quiet >= SETTLE:
                break
        result["cycles"] = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    raw = b"".join(w.to_bytes(BBO.size, "little") for w in received)
    return np.frombuffer(raw, dtype=BBO.dtype), result["cycles"]


@pytest.fixture(scope="module")
def loopback_build():
    harness = Harness.build(BboLoopback(depth=FIFO_DEPTH), "harness_loopback",
                            config=f"depth{FIFO_DEPTH}",
                            dtypes={"bbo_in": BBO.dtype, "bbo_out": BBO.dtype}, settle=SETTLE)
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def cross_check_build():
    harness = Harness.build(BboCrossCheck(latency=LATENCY), "harness_cross_check",
                            config=f"latency{LATENCY}",
                            dtypes={"bbo_in": BBO.dtype, "bbo_out": BBO.dtype}, settle=SETTLE)
    yield harness
    harness.close()


@pytest.fixture
def loopback(loopback_build):
    with loopback_build.spawn() as harness:
        harness.reset()
        yield harness


@pytest.fixture
def cross_check(cross_check_build):
    with cross_check_build.spawn() as harness:
        harness.reset()
        yield harness


# ----------------------------------------------------------------------------------------------
def test_streams_are_discovered_from_the_signature_with_their_direction_and_width(loopback_build):
    streams = tuple(loopback_build.streams.values())
    has_csr = loopback_build.build_info.has_csr

    assert streams == (StreamPort(name="bbo_in", is_input=True, width=384),
                       StreamPort(name="bbo_out", is_input=False, width=384))
    assert has_csr


@pytest.mark.parametrize("idle, backpressure", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5)])
def test_loopback_returns_every_record_in_order_bit_for_bit(loopback, idle, backpressure):
    records = _random_records(3000, seed=1)
    loopback.push("bbo_in", records)

    cycles = loopback.run(max_cycles=1_000_000, idle={"bbo_in": idle},
                          backpressure={"bbo_out": backpressure}, seed=7)
    received = loopback.pop("bbo_out")

    assert received.tobytes() == records.tobytes()
    assert cycles < 1_000_000
    stats = loopback.stats()
    assert stats["bbo_in"]["records"] == stats["bbo_out"]["records"] == len(records)
    assert (stats["bbo_in"]["throttle_cycles"] > 0) == (idle > 0)
    assert (stats["bbo_out"]["stall_cycles"] > 0) == (backpressure > 0)
    assert loopback.pending("bbo_in") == loopback.pending("bbo_out") == 0


def test_loopback_counters_agree_with_harness_counts_under_backpressure(loopback):
    records = _random_records(500, seed=2)
    loopback.push("bbo_in", records)

    loopback.run(idle={"bbo_in": 0.3}, backpressure={"bbo_out": 0.6}, seed=3)
    received = loopback.pop("bbo_out")

    # The design counts valid & ready at its clock edges; the harness must have taken exactly those.
    assert loopback.read_reg(_reg(wire.REGISTERS, "MSGS_IN")) == len(records)
    assert loopback.read_reg(_reg(wire.REGISTERS, "BBO_OUT")) == len(received) == len(records)


def test_records_pushed_as_bytes_and_popped_raw_match_the_dtype_view(loopback):
    records = _random_records(10, seed=4)
    loopback.push("bbo_in", records.tobytes())

    loopback.run()
    rows = loopback.pop("bbo_out", dtype=np.uint8)

    assert rows.shape == (10, BBO.size)
    assert rows.tobytes() == records.tobytes()


def test_pop_with_a_limit_leaves_the_rest_for_the_next_pop(loopback):
    records = _random_records(20, seed=5)
    loopback.push("bbo_in", records)
    loopback.run()

    first = loopback.pop("bbo_out", max_records=5)
    rest = loopback.pop("bbo_out")

    assert len(first) == 5 and len(rest) == 15
    assert np.concatenate([first, rest]).tobytes() == records.tobytes()


def test_register_write_then_read_returns_the_written_value(loopback):
    control = _reg(wire.REGISTERS, "CONTROL")

    loopback.write_reg(control, 0x1234_5670)
    value = loopback.read_reg(control)

    assert value == 0x1234_5670
    assert loopback.read_reg(_reg(wire.REGISTERS, "DEVICE_ID")) == wire.DEVICE_ID
    assert loopback.read_reg(_reg(wire.REGISTERS, "FORMAT_HASH")) == wire.FORMAT_HASH & 0xFFFF_FFFF


def test_clear_bit_written_to_control_zeroes_the_design_counters(loopback):
    loopback.push("bbo_in", _random_records(7, seed=6))
    loopback.run()

    loopback.write_reg(_reg(wire.REGISTERS, "CONTROL"), 1)

    assert loopback.read_reg(_reg(wire.REGISTERS, "BBO_OUT")) == 0


def test_cycle_counter_counts_reset_run_and_register_cycles(loopback_build):
    with loopback_build.spawn() as harness:
        assert harness.cycle == 0

        harness.reset(4)
        ran = harness.run(100, stop_when_drained=False)
        design_cycles = harness.read_reg(_reg(wire.REGISTERS, "CYCLE_LO"))
        high = harness.read_reg(_reg(wire.REGISTERS, "CYCLE_HI"))

        assert ran == 100
        # The design's counter restarts at reset; the bank registers the bus, so the read strobed
        # after 100 run cycles returns the counter of the cycle after: 101.
        assert design_cycles == 101 and high == 0
        assert harness.cycle == 4 + 100 + 2


def test_cross_check_drains_in_records_plus_latency_plus_settle_cycles(cross_check):
    records = _random_records(500, seed=8)
    cross_check.push("bbo_in", records)

    cycles = cross_check.run()
    received = cross_check.pop("bbo_out")

    assert cycles == len(records) + LATENCY + SETTLE
    index = np.arange(len(records), dtype=np.uint32)
    assert np.array_equal(received["ingress_cycle"], index)
    assert np.array_equal(received["egress_cycle"], index + LATENCY - 1)
    expected = _cross_check_model(records)
    assert _without_stamps(received).tobytes() == _without_stamps(expected).tobytes()
    assert 0 < np.count_nonzero(received["flags"] & CROSSED) < len(records)


def test_cross_check_matches_amaranths_simulator_cycle_for_cycle_under_idle_and_backpressure(
        cross_check):
    records = _random_records(120, seed=9)
    expected, expected_cycles = _simulate_cross_check(records, idle=0.3, backpressure=0.4,
                                                      seed=11)
    cross_check.push("bbo_in", records)

    cycles = cross_check.run(idle={"bbo_in": 0.3}, backpressure={"bbo_out": 0.4}, seed=11)
    received = cross_check.pop("bbo_out")

    assert cycles == expected_cycles
    assert received.tobytes() == expected.tobytes()
    assert len(received) == len(records)


def test_source_holds_valid_and_payload_while_the_design_refuses_input(cross_check):
    records = _random_records(2000, seed=12)
    cross_check.write_reg(_reg(CROSS_CHECK_REGISTERS, "THROTTLE"), 1)
    cross_check.push("bbo_in", records)

    cross_check.run(idle={"bbo_in": 0.5}, backpressure={"bbo_out": 0.3}, seed=13)
    received = cross_check.pop("bbo_out")

    assert cross_check.stats()["bbo_in"]["stall_cycles"] > 100
    assert cross_check.read_reg(_reg(CROSS_CHECK_REGISTERS, "VIOLATIONS")) == 0
    assert cross_check.read_reg(_reg(CROSS_CHECK_REGISTERS, "ACCEPTED")) == len(records)
    assert _without_stamps(received).tobytes() == \
        _without_stamps(_cross_check_model(records)).tobytes()


def test_run_stops_at_the_budget_when_the_output_is_never_ready_and_resumes_later(loopback):
    records = _random_records(100, seed=14)
    loopback.push("bbo_in", records)

    stuck = loopback.run(max_cycles=1000, backpressure={"bbo_out": 1.0})
    waiting = loopback.pending("bbo_in")
    loopback.run()
    received = loopback.pop("bbo_out")

    assert stuck == 1000
    assert 0 < waiting < len(records)
    assert received.tobytes() == records.tobytes()


def test_two_designs_and_two_instances_run_side_by_side_in_one_process(loopback, cross_check,
                                                                       loopback_build):
    a, b, c = (_random_records(300, seed=s) for s in (15, 16, 17))
    with loopback_build.spawn() as other:
        other.reset()
        loopback.push("bbo_in", a)
        cross_check.push("bbo_in", b)
        other.push("bbo_in", c)

        for harness in (loopback, cross_check, other):
            harness.run(max_cycles=200, stop_when_drained=False)
        for harness in (other, cross_check, loopback):
            harness.run(backpressure={"bbo_out": 0.2}, seed=1)

        assert loopback.pop("bbo_out").tobytes() == a.tobytes()
        assert other.pop("bbo_out").tobytes() == c.tobytes()
        assert _without_stamps(cross_check.pop("bbo_out")).tobytes() == \
            _without_stamps(_cross_check_model(b)).tobytes()


def test_misuse_is_rejected_with_a_clear_error(loopback):
    with pytest.raises(KeyError, match="no stream 'quotes'"):
        loopback.push("quotes", _random_records(1, seed=0))
    with pytest.raises(ValueError, match="is an output of the design"):
        loopback.push("bbo_out", _random_records(1, seed=0))
    with pytest.raises(ValueError, match="not a whole number of them"):
        loopback.push("bbo_in", b"\x00" * (BBO.size + 1))
    with pytest.raises(TypeError, match="takes dtype"):
        loopback.push("bbo_in", np.zeros(1, dtype=np.dtype([("raw", "V48")])))
    with pytest.raises(ValueError, match="backpressure applies to output streams"):
        loopback.run(backpressure={"bbo_in": 0.5})
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        loopback.run(idle={"bbo_in": 1.5})
    with pytest.raises(ValueError, match="outside 0 .. 1023"):
        loopback.read_reg(1024)
