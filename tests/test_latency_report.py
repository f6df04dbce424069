"""Latency report: percentiles from cycle counts, nanoseconds from the stated clock, files written."""

import json

import numpy as np
import pytest

from tools import latency_report
from tools.latency_report import build_report, summarize

CLOCK_SOURCE = "PYNQ-Z2 FCLK_CLK0 as configured (test)"


def test_uniform_1_to_1000_cycles_gives_nearest_rank_percentiles():
    cycles = np.random.default_rng(0).permutation(np.arange(1, 1001))

    stats = summarize(cycles, clock_mhz=100.0)

    assert stats["count"] == 1000
    assert stats["cycles"] == {"min": 1, "p50": 500, "p90": 900, "p99": 990, "p99.9": 999,
                               "max": 1000}
    assert stats["ns"]["p50"] == pytest.approx(5000.0)  # 500 cycles at 10 ns


def test_constant_latency_with_rare_tail_shows_tail_only_at_p999():
    # 9990 records at 12 cycles and 10 at 400: p99 is still 12, p99.9 catches the tail.
    cycles = np.concatenate([np.full(9990, 12), np.full(10, 400)])

    stats = summarize(cycles, clock_mhz=250.0)["cycles"]

    assert (stats["p50"], stats["p99"], stats["p99.9"], stats["max"]) == (12, 12, 12, 400)
    cycles = np.concatenate([np.full(9989, 12), np.full(11, 400)])
    assert summarize(cycles, clock_mhz=250.0)["cycles"]["p99.9"] == 400


def test_build_report_writes_json_html_and_one_png_per_path(tmp_path):
    paths = {"md_to_bbo": np.arange(10, 110), "order_to_verdict": np.full(50, 7)}

    summary = build_report(paths, 125.0, CLOCK_SOURCE, tmp_path)

    written = json.loads((tmp_path / "latency.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["clock"] == {"mhz": 125.0, "source": CLOCK_SOURCE}
    assert written["paths"]["order_to_verdict"]["ns"]["max"] == pytest.approx(56.0)
    for name in paths:
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{name}.png"' in (tmp_path / "index.html").read_text()
    assert CLOCK_SOURCE in (tmp_path / "index.html").read_text()
    # the report says how its percentiles are taken
    assert written["quantiles"].startswith("nearest rank")
    assert "Quantiles: nearest rank" in (tmp_path / "index.html").read_text()


def test_empty_path_is_reported_with_zero_count_and_no_plot(tmp_path):
    summary = build_report({"idle": np.array([], dtype=np.int64), "busy": np.arange(5)},
                           100.0, CLOCK_SOURCE, tmp_path)

    assert summary["paths"]["idle"] == {"count": 0, "unit": "cycles", "cycles": {}, "ns": {}}
    assert not (tmp_path / "idle.png").exists()


def test_a_path_named_ns_is_host_time_summarized_in_ns_with_cycles_for_comparison():
    ns = np.random.default_rng(1).permutation(np.arange(1_000, 1_001_000, 1_000))  # 1..1000 µs

    stats = summarize(ns, clock_mhz=100.0, unit="ns")

    assert stats["unit"] == "ns" and stats["count"] == 1000
    assert stats["ns"] == {"min": 1_000, "p50": 500_000, "p90": 900_000, "p99": 990_000,
                           "p99.9": 999_000, "max": 1_000_000}
    assert stats["cycles"]["p50"] == 50_000.0     # 500 µs at 10 ns a cycle
    assert latency_report.unit_of("tick_to_order_host_ns") == "ns"
    assert latency_report.unit_of("md_to_bbo") == "cycles"


def test_report_with_a_host_path_shows_it_in_microseconds(tmp_path):
    paths = {"md_to_bbo": np.full(20, 3), "tick_to_order_host_ns": np.array([70_500, 80_000,
                                                                           450_250])}

    summary = build_report(paths, 100.0, CLOCK_SOURCE, tmp_path)

    host = summary["paths"]["tick_to_order_host_ns"]
    assert host["unit"] == "ns" and host["ns"]["max"] == 450_250
    assert host["cycles"]["max"] == pytest.approx(45_025.0)
    assert summary["paths"]["md_to_bbo"]["cycles"]["max"] == 3
    page = (tmp_path / "index.html").read_text()
    assert "450.2 µs" in page and "45,025 cycles" in page
    assert (tmp_path / "tick_to_order_host_ns.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_prints_host_paths_in_microseconds(tmp_path, capsys):
    src = tmp_path / "run.npz"
    np.savez(src, order_to_verdict=np.full(4, 2), tick_to_order_host_ns=np.array([1_500, 2_500]),
             clock_mhz=np.array(100.0), clock_source=np.array(CLOCK_SOURCE))

    assert latency_report.main([str(src), "--out", str(tmp_path / "out")]) == 0

    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()
             if line.startswith(("order_to_verdict", "tick_to_order"))}
    assert lines["order_to_verdict"].split()[1:8] == ["4", "2", "2", "2", "2", "2", "2"]
    assert lines["tick_to_order_host_ns"].split()[1:4] == ["2", "1.5", "1.5"]
    assert "µs (host clock)" in lines["tick_to_order_host_ns"]


@pytest.mark.parametrize("values,message", [
    (np.array([3, -1]), "negative latency -1 cycles"),
    (np.array([1.5]), "whole cycle counts"),
    (np.zeros((2, 2)), "1-D array"),
])
def test_bad_latencies_are_rejected_with_a_clear_message(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        build_report({"p": values}, 100.0, CLOCK_SOURCE, tmp_path)


@pytest.mark.parametrize("values,message", [
    (np.array([3, -1]), "negative latency -1 ns"),
    (np.array([1.5]), "whole nanoseconds"),
])
def test_bad_host_latencies_are_rejected_in_their_unit(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        build_report({"p_ns": values}, 100.0, CLOCK_SOURCE, tmp_path)


def test_missing_clock_source_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="clock_source"):
        build_report({"p": np.arange(3)}, 100.0, " ", tmp_path)


def test_cli_reads_npz_with_clock_and_writes_report(tmp_path, capsys):
    src = tmp_path / "stamps.npz"
    np.savez(src, md_to_bbo=np.arange(1, 101), clock_mhz=np.array(200.0),
             clock_source=np.array(CLOCK_SOURCE))

    rc = latency_report.main([str(src), "--out", str(tmp_path / "out")])

    assert rc == 0
    stats = json.loads((tmp_path / "out" / "latency.json").read_text())["paths"]["md_to_bbo"]
    assert (stats["cycles"]["p90"], stats["ns"]["p90"]) == (90, pytest.approx(450.0))


def test_cli_json_without_clock_exits_with_usage_error(tmp_path):
    src = tmp_path / "stamps.json"
    src.write_text(json.dumps({"paths": {"p": [1, 2, 3]}}))

    assert latency_report.main([str(src), "--out", str(tmp_path / "out")]) == 2


def test_save_run_writes_what_load_input_reads_and_refuses_a_bad_path(tmp_path):
    paths = {"md_to_bbo": np.array([3, 3, 4]), "tick_to_order_host_ns": np.array([1_500, 2_000])}

    out = latency_report.save_run(tmp_path / "sub" / "run.npz", paths, 100.0, CLOCK_SOURCE)
    loaded, clock, source = latency_report.load_input(out)

    assert (clock, source) == (100.0, CLOCK_SOURCE)
    assert {k: v.tolist() for k, v in loaded.items()} == {k: v.tolist() for k, v in paths.items()}
    with pytest.raises(ValueError, match="negative latency -1 ns"):
        latency_report.save_run(tmp_path / "bad.npz", {"x_ns": np.array([-1])}, 100.0,
                                CLOCK_SOURCE)
    assert not (tmp_path / "bad.npz").exists()


def _write_bad_inputs(tmp_path) -> dict:
    """Run files the report cannot read, each as a user could hand it over."""
    good = tmp_path / "good.npz"
    np.savez(good, md_to_bbo=np.arange(1, 5), clock_mhz=np.array(100.0),
             clock_source=np.array(CLOCK_SOURCE))
    files = {
        "missing": tmp_path / "nothing-here.npz",
        "truncated npz": tmp_path / "truncated.npz",
        "zip that is not an npz": tmp_path / "garbage.npz",
        "empty file": tmp_path / "empty.npz",
        "text named npz": tmp_path / "text.npz",
        "bad JSON": tmp_path / "bad.json",
        "clock as a string": tmp_path / "clock.json",
        "negative latency": tmp_path / "negative.json",
    }
    files["truncated npz"].write_bytes(good.read_bytes()[:200])
    files["zip that is not an npz"].write_bytes(b"PK\x03\x04" + b"\0" * 60)
    files["empty file"].write_bytes(b"")
    files["text named npz"].write_text("md_to_bbo: 3 3 3\n")
    files["bad JSON"].write_text("{not json")
    files["clock as a string"].write_text(json.dumps({"paths": {"p": [1]}, "clock_mhz": "100",
                                                      "clock_source": CLOCK_SOURCE}))
    files["negative latency"].write_text(json.dumps({"paths": {"p": [3, -2]}, "clock_mhz": 100,
                                                     "clock_source": CLOCK_SOURCE}))
    return files


@pytest.mark.parametrize("case", ["missing", "truncated npz", "zip that is not an npz",
                                  "empty file", "text named npz", "bad JSON",
                                  "clock as a string", "negative latency"])
def test_cli_refuses_an_unreadable_run_file_in_one_line_naming_it(tmp_path, capsys, case):
    # Arrange
    path = _write_bad_inputs(tmp_path)[case]

    # Act
    rc = latency_report.main([str(path), "--out", str(tmp_path / "out")])

    # Assert: exit status 2 and one line on stderr that names the file, no traceback
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("latency_report: ") and str(path) in err
    assert not (tmp_path / "out" / "latency.json").exists()


def test_an_npz_is_read_as_one_whatever_its_name(tmp_path, capsys):
    # Arrange: np.savez to a file object keeps the name it is given
    src = tmp_path / "run.dat"
    with open(src, "wb") as f:
        np.savez(f, md_to_bbo=np.array([3, 4]), clock_mhz=np.array(100.0),
                 clock_source=np.array(CLOCK_SOURCE))

    # Act
    rc = latency_report.main([str(src), "--out", str(tmp_path / "out")])

    # Assert
    assert rc == 0
    assert json.loads((tmp_path / "out" / "latency.json").read_text())["paths"]["md_to_bbo"][
        "count"] == 2


def test_a_clock_given_on_the_command_line_is_not_labelled_with_the_runs_source(tmp_path):
    # Arrange
    src = latency_report.save_run(tmp_path / "run.npz", {"md_to_bbo": np.array([3])}, 100.0,
                                  CLOCK_SOURCE)

    # Act
    rc = latency_report.main([str(src), "--out", str(tmp_path / "out"), "--clock-mhz", "50"])

    # Assert
    doc = json.loads((tmp_path / "out" / "latency.json").read_text())
    assert rc == 0
    assert doc["clock"]["mhz"] == 50.0 and doc["clock"]["source"] == "given on the command line"
    assert doc["paths"]["md_to_bbo"]["ns"]["max"] == pytest.approx(60.0)


def test_save_run_returns_the_file_numpy_wrote(tmp_path):
    # Act
    out = latency_report.save_run(tmp_path / "runlat.bin", {"md_to_bbo": np.array([3])}, 100.0,
                                  CLOCK_SOURCE)

    # Assert
    assert out == tmp_path / "runlat.bin.npz" and out.exists()
    assert not (tmp_path / "runlat.bin").exists()
    assert latency_report.load_input(out)[1] == 100.0


@pytest.mark.parametrize("values", [np.array([2 ** 63], dtype=np.uint64), np.array([1e30])])
def test_latencies_beyond_int64_are_refused_not_wrapped(tmp_path, values):
    with pytest.raises(ValueError, match="beyond 2\\*\\*63 - 1"):
        build_report({"p": values}, 100.0, CLOCK_SOURCE, tmp_path)


def test_cli_table_keeps_wide_figures_apart(tmp_path, capsys):
    # Arrange: latencies of more digits than a column is wide
    src = latency_report.save_run(tmp_path / "run.npz",
                                  {"md_to_bbo": np.array([2 ** 40, 2 ** 40 + 1])}, 100.0,
                                  CLOCK_SOURCE)

    # Act
    assert latency_report.main([str(src), "--out", str(tmp_path / "out")]) == 0

    # Assert: every figure of the row is a field of its own
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("md_to_bbo"))
    assert row.split()[1:8] == ["2", "1099511627776", "1099511627776", "1099511627777",
                                "1099511627777", "1099511627777", "1099511627777"]
