"""Profile-guided harness builds (``build_harness(pgo=...)``): same results, own files, and a
trainer that cannot run is a build error that names it."""

from __future__ import annotations

import numpy as np
import pytest

from hdl import wire
from sim.harness import Harness, HarnessBuildError
from sim.harness.examples import BboCrossCheck
from sim.harness.generator import compiler

BBO = wire.BBO_UPDATE
TRAINER = "sim.harness.training:train_streams"


def _run(h: Harness, records: np.ndarray) -> tuple[np.ndarray, int]:
    h.reset()
    h.push("bbo_in", records)
    cycles = h.run(idle={"bbo_in": 0.3}, backpressure={"bbo_out": 0.4}, seed=3)
    return h.pop("bbo_out"), cycles


def test_profile_guided_build_gives_the_plain_builds_results_cycle_for_cycle():
    # Arrange: one design built plainly and profile-guided
    design = dict(config="latency3", dtypes={"bbo_in": BBO.dtype, "bbo_out": BBO.dtype},
                  settle=16)
    records = np.random.default_rng(8).integers(0, 256, 5_000 * BBO.size,
                                                np.uint8).view(BBO.dtype)
    with Harness.build(BboCrossCheck(latency=3), "harness_cross_check", **design) as plain, \
            Harness.build(BboCrossCheck(latency=3), "harness_cross_check", pgo=TRAINER,
                          **design) as guided:
        # Act
        expected, expected_cycles = _run(plain, records)
        got, cycles = _run(guided, records)

    # Assert: its own library beside the plain one, trained, and the same records and cycles
    assert guided.build_info.library.name == "harness-pgo.so"
    assert plain.build_info.library.name == "harness.so"
    obj = guided.build_info.folder / "obj-pgo"
    if compiler().name == "clang":
        assert (obj / "harness.profdata").stat().st_size > 0
    else:
        assert list(obj.glob("*.gcda"))
    assert len(got) == len(records) and cycles == expected_cycles
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("trainer, message", [
    ("sim.harness.training:no_such_trainer", r"pgo trainer .*no_such_trainer failed"),
    ("no_such_module:train", r"pgo trainer must be 'module:function'"),
])
def test_a_trainer_that_cannot_run_is_a_build_error_naming_it(trainer, message):
    with pytest.raises(HarnessBuildError, match=message):
        Harness.build(BboCrossCheck(latency=2), "harness_cross_check", config="latency2",
                      pgo=trainer)
