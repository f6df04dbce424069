"""Sections of ``make bench`` (tools/bench.py, tools/bench_harness.py) on short runs: every
harness scenario runs the whole top and the replays take the whole day in; the host section
reports the daemon's refusals and alerts in its table. Nothing here depends on how fast this
machine is."""

import os
import re

from host.link.beats import pack_historical
from sim.gen.itchgen import generate
from tools import bench
from tools.bench_harness import BOOK_IDLE, TOP_TRAFFIC


def test_harness_section_runs_every_scenario_to_the_end():
    info = {}
    rows = bench.bench_harness_speed(n_messages=2_000, idle_cycles=5_000, repeats=1, info=info)

    assert [r["scenario"] for r in rows] == (["no traffic"] + [t[0] for t in TOP_TRAFFIC]
                                             + [BOOK_IDLE])
    idle, *traffic, book_idle = rows
    assert [r["paced"] for r in rows] == [True] * (len(rows) - 1) + [False]
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
    # the same day with no symbol subscribed: every beat taken, no event reaches the book, and
    # nothing downstream holds the feed back
    assert book_idle["beats"] == beats and book_idle["bbo_records"] == 0
    assert beats <= book_idle["cycles"] <= every
    # the daemon's build steps the model by the harness's own schedule, compiled by the tool
    # chain the harness chose
    from sim.harness.generator import compiler

    assert info == {"schedule": "harness", "compiler": compiler().version}
    assert info["compiler"]


def test_host_section_counts_alerts_in_its_report_instead_of_logging_them(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="ticklane.alerts"):
        host = bench._host_section()        # in this process, where caplog sees its logging

    assert [r for r in caplog.records if r.name == "ticklane.alerts"] == []
    assert not logging.getLogger("ticklane.alerts").disabled     # put back afterwards
    runs = [host[f"{n} strategies"] for n in (1, 8, 32)]
    assert all(run["orders"] > 0 for run in runs)
    # 32 strategies quoting over 8 symbols run into the demo's open-order limit: the host refuses
    # those intents and counts them by reason. They never became orders, so a reject-rate alert,
    # if one fires, counts only refused orders among those sent.
    many = runs[-1]
    assert many["rejects"].get("host:OPEN_ORDERS", 0) > 0
    sent_refused = sum(n for reason, n in many["rejects"].items() if not reason.startswith("host:"))
    for alert in many["alerts"]:
        m = re.match(r"reject_rate: (\d+) of (\d+) orders rejected", alert)
        if m:
            assert int(m.group(1)) <= min(int(m.group(2)), sent_refused)


def test_host_section_runs_in_a_process_of_its_own_so_its_memory_is_the_daemons():
    # Act
    host = bench.bench_host()

    # Assert
    assert host["pid"] != os.getpid()
    runs = [host[f"{n} strategies"] for n in (1, 8, 32)]
    assert all(run["orders"] > 0 and run["rss_mb"] > 0 for run in runs)
