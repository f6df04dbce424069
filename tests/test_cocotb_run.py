"""sim/cocotb_run.py around the cocotb runner: builds of one configuration take turns, and the
environment a run is given does not outlive it.

cocotb 2.1's Verilator runner re-runs Verilator and make in the build directory on every call;
two test workers building the same configuration at once would write the same files together.
A fake runner stands in for cocotb's here, so these tests check the wrapper, not Verilator.
"""

import os
import threading
import time

import cocotb_tools.runner
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sim import cocotb_run


class _Tiny(wiring.Component):
    def __init__(self):
        super().__init__({"a": In(4), "y": Out(4)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(~self.a)
        return m


class _FakeRunner:
    """Records when each build ran, and what the environment held during each test."""

    def __init__(self, log):
        self.log = log

    def build(self, *, build_dir, **kwargs):
        start = time.monotonic()
        time.sleep(0.3)
        self.log.append(("build", start, time.monotonic()))

    def test(self, *, extra_env, build_dir, **kwargs):
        self.log.append(("test", {k: os.environ.get(k) for k in extra_env}, dict(extra_env)))
        return build_dir / "results.xml"


def test_two_builds_of_one_configuration_do_not_overlap(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLANE_CACHE", str(tmp_path))
    log = []
    monkeypatch.setattr(cocotb_tools.runner, "get_runner", lambda sim: _FakeRunner(log))
    start = threading.Barrier(2)
    errors = []

    def worker():
        try:
            start.wait()
            cocotb_run.run_cocotb(_Tiny(), toplevel="tiny", test_module="none", config="t")
        except Exception as exc:    # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    builds = sorted((s, e) for kind, s, e in (x for x in log if x[0] == "build"))
    assert len(builds) == 2
    (_, first_end), (second_start, _) = builds
    assert second_start >= first_end, "the second build started while the first was running"


def test_the_run_environment_is_set_during_the_run_and_put_back_after(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLANE_CACHE", str(tmp_path))
    monkeypatch.setenv("TICKLANE_TEST_KEPT", "before")
    monkeypatch.delenv("TICKLANE_TEST_NEW", raising=False)
    log = []
    monkeypatch.setattr(cocotb_tools.runner, "get_runner", lambda sim: _FakeRunner(log))
    cocotb_run.run_cocotb(_Tiny(), toplevel="tiny", test_module="none", config="t",
                          env={"TICKLANE_TEST_KEPT": 7, "TICKLANE_TEST_NEW": "x"})
    (_, during, passed), = [x for x in log if x[0] == "test"]
    assert during == {"TICKLANE_TEST_KEPT": "7", "TICKLANE_TEST_NEW": "x"}
    assert passed == during
    assert os.environ["TICKLANE_TEST_KEPT"] == "before"
    assert "TICKLANE_TEST_NEW" not in os.environ


def test_the_environment_is_put_back_when_the_run_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLANE_CACHE", str(tmp_path))
    monkeypatch.delenv("TICKLANE_TEST_NEW", raising=False)

    class Failing(_FakeRunner):
        def test(self, **kwargs):
            raise RuntimeError("a cocotb test failed")

    monkeypatch.setattr(cocotb_tools.runner, "get_runner", lambda sim: Failing([]))
    try:
        cocotb_run.run_cocotb(_Tiny(), toplevel="tiny", test_module="none", config="t",
                              env={"TICKLANE_TEST_NEW": "x"})
    except RuntimeError as exc:
        assert "failed" in str(exc)
    else:
        raise AssertionError("the failure was not raised")
    assert "TICKLANE_TEST_NEW" not in os.environ


def test_a_run_with_a_log_file_writes_its_output_there_not_to_the_terminal(tmp_path, capfd):
    from cocotb_tools.check_results import get_results

    log = tmp_path / "run.log"
    results = cocotb_run.run_cocotb(_Tiny(), toplevel="tiny_inverter", test_module="tb_tiny",
                                    config="log", log_file=log)
    assert get_results(results) == (1, 0)
    assert "inverter checked on every input" in log.read_text()
    assert (tmp_path / "run.build.log").exists()
    out, err = capfd.readouterr()
    assert "inverter checked" not in out + err and "cocotb" not in out + err
