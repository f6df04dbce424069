"""The harness section of ``make bench`` (tools/bench.py, tools/bench_harness.py) on a short run:
every scenario runs the whole top, the replays take the whole day in, and the report says what it
measured. It measures; nothing here depends on how fast this machine is."""

from host.link.beats import pack_historical
from sim.gen.itchgen import generate
from tools import bench
from tools.bench_harness import TOP_TRAFFIC


def test_harness_section_runs_every_scenario_to_the_end():
    rows = bench.bench_harness_speed(n_messages=2_000, idle_cycles=5_000, repeats=1)

    assert [r["scenario"] for r in rows] == ["no traffic"] + [t[0] for t in TOP_TRAFFIC]
    idle, *traffic = rows
    assert idle["cycles"] == 5_000 and idle["beats"] == 0 and idle["bbo_records"] == 0
    beats = len(pack_historical(generate(1, 2_000)))
    for row in traffic:
        assert row["beats"] == beats
        assert row["bbo_records"] > 0
        # every beat needs a cycle, and held-back beats need more
        assert row["cycles"] >= beats
        assert row["mcycles_per_cpu_s"] > 0 and row["mcycles_per_wall_s"] > 0
    # the same day gives the same records whatever the pacing: the book does not depend on it
    assert len({row["bbo_records"] for row in traffic}) == 1
    # fewer beats per cycle, more cycles for the same day
    cycles = [row["cycles"] for row in traffic]
    every, half, fifth, tenth = cycles
    assert every < fifth < tenth and every < half
