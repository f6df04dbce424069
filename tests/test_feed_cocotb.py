"""cocotb + Verilator: the feed stage against its reference model (sim/model/feed.py), on the
real sample.itch, generated order flow with every type and level updates, MoldUDP64 sessions
with gaps, duplicates and heartbeats, and fuzzed frames; with and without idle and backpressure.
"""

import pickle
import random
from pathlib import Path

import pytest
from cocotb_tools.check_results import get_results

from hdl.feed.bench import FeedBench
from host.decode import split_frames
from sim.cocotb_run import run_cocotb
from sim.gen.itchgen import generate_messages
from sim.model.feed import FeedConfig, run_feed_model
from tb_feed_streams import fuzz_frames, historical_frames, level_update, mold_frames

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SLOTS = 256


def sample_scenario():
    path = DATA / "itch50" / "sample.itch"
    if not path.exists():
        pytest.skip(f"real sample data not found at {path}")
    return split_frames(path.read_bytes(), 50), FeedConfig()


def generated_scenario():
    rng = random.Random(11)
    msgs = generate_messages(11, 500, n_symbols=10, edge_cases=True)
    msgs += [level_update(rng, rng.randrange(SLOTS + 20)) for _ in range(40)]
    rng.shuffle(msgs)   # level updates and order flow interleaved (the book never sees this)
    return historical_frames(msgs, rng), FeedConfig()


def mold_scenario():
    return mold_frames(12, 300), FeedConfig(mold=True)


def fuzz_scenario():
    return fuzz_frames(13, 120), FeedConfig(sub_mode="tickers", tickers=("AAPL", "MSFT"))


SCENARIOS = {"sample": sample_scenario, "generated": generated_scenario, "mold": mold_scenario,
             "fuzz": fuzz_scenario}


# Every scenario under idle input and output backpressure; the two with the densest message
# mixes also without, where the testbench checks one beat per cycle and the 2-cycle latency.
CASES = [(name, 0.3, 0.5) for name in SCENARIOS] + [("sample", 0.0, 0.0), ("mold", 0.0, 0.0)]


@pytest.mark.parametrize("scenario,idle,backpressure", CASES)
def test_feed_stage_records_and_counters_equal_model(tmp_path, scenario, idle, backpressure):
    # Arrange
    frames, config = SCENARIOS[scenario]()
    expected = run_feed_model(frames, config)
    assert expected.events or expected.host
    path = tmp_path / "scenario.pkl"
    path.write_bytes(pickle.dumps({"frames": frames, "config": config, "expected": expected}))

    # Act (the bench is made here, not at import: a parallel worker that collects this module
    # and runs none of its tests would leave it unused)
    bench = FeedBench(slots=SLOTS)
    results = run_cocotb(bench, toplevel="ticklane_feed_bench", config=bench.config,
                         test_module="tb_feed",
                         env={"TICKLANE_TB_SCENARIO": path, "TICKLANE_TB_IDLE": idle,
                              "TICKLANE_TB_BACKPRESSURE": backpressure, "TICKLANE_TB_SEED": 5})

    # Assert
    tests, failed = get_results(results)
    assert tests == 1 and failed == 0
