"""The harness's C++ tool chain (:func:`sim.harness.generator.compiler`): Clang where its whole
tool chain is installed, GCC otherwise or when asked, and the same results from both."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from hdl import wire
from sim.harness import Harness, HarnessBuildError, generator
from sim.harness.examples import BboCrossCheck

BBO = wire.BBO_UPDATE
TRAINER = "sim.harness.training:train_streams"


@pytest.fixture
def fresh_choice(monkeypatch):
    """Forget the process's choice, so that the test's environment decides it again."""
    monkeypatch.setattr(generator, "_COMPILER", None)
    monkeypatch.delenv("TICKLANE_SIM_CXX", raising=False)
    return monkeypatch


def _hide(monkeypatch, *names: str) -> None:
    which = shutil.which
    monkeypatch.setattr(generator.shutil, "which",
                        lambda name, *a, **k: None if name in names else which(name, *a, **k))


def test_the_environment_chooses_gcc(fresh_choice):
    fresh_choice.setenv("TICKLANE_SIM_CXX", "gcc")
    chosen = generator.compiler()
    assert (chosen.name, chosen.cxx, chosen.ar) == ("gcc", "g++", "gcc-ar")
    assert "-fprofile-partial-training" in chosen.pgo_use(generator.HERE)


def test_an_unknown_tool_chain_is_refused(fresh_choice):
    fresh_choice.setenv("TICKLANE_SIM_CXX", "icc")
    with pytest.raises(HarnessBuildError, match="TICKLANE_SIM_CXX must be 'clang' or 'gcc'"):
        generator.compiler()


def test_without_clang_builds_fall_back_to_gcc_unless_clang_is_asked_for(fresh_choice):
    _hide(fresh_choice, "clang++")
    assert generator.compiler().name == "gcc"
    fresh_choice.setattr(generator, "_COMPILER", None)
    fresh_choice.setenv("TICKLANE_SIM_CXX", "clang")
    with pytest.raises(HarnessBuildError, match="clang.* not all installed"):
        generator.compiler()


@pytest.mark.skipif(generator._clang() is None,
                    reason="Clang's tool chain (clang++, llvm-ar, llvm-profdata, ld.lld) is not "
                           "installed")
def test_clang_needs_its_profile_merger_and_linker_too(fresh_choice, tmp_path):
    # clang++ alone, in a folder of its own: the others are looked for beside it, then on PATH
    real = {tool: shutil.which(tool) for tool in ("clang++", "llvm-ar", "llvm-profdata", "ld.lld")}
    wrapper = tmp_path / "clang++"
    wrapper.write_text(f'#!/bin/sh\nexec {real["clang++"]} "$@"\n')
    wrapper.chmod(0o755)
    fresh_choice.setattr(generator.shutil, "which",
                         lambda name, *a, **k: str(wrapper) if name == "clang++" else None)
    assert generator.compiler().name == "gcc"
    # with the three beside it, it is Clang's
    for tool in ("llvm-ar", "llvm-profdata", "ld.lld"):
        (tmp_path / tool).symlink_to(real[tool])
    fresh_choice.setattr(generator, "_COMPILER", None)
    chosen = generator.compiler()
    assert (chosen.name, chosen.cxx) == ("clang", str(wrapper))
    assert chosen.profdata == str(tmp_path / "llvm-profdata")


def _run(h: Harness, records: np.ndarray) -> tuple[np.ndarray, int]:
    h.reset()
    h.push("bbo_in", records)
    cycles = h.run(idle={"bbo_in": 0.3}, backpressure={"bbo_out": 0.4}, seed=5)
    return h.pop("bbo_out"), cycles


@pytest.mark.skipif(generator._clang() is None,
                    reason="Clang's tool chain (clang++, llvm-ar, llvm-profdata, ld.lld) is not "
                           "installed")
def test_clang_and_gcc_builds_give_the_same_records_cycle_for_cycle(fresh_choice, tmp_path):
    # Arrange: one design, profile-guided, built by each tool chain in a cache of its own
    records = np.random.default_rng(21).integers(0, 256, 4_000 * BBO.size,
                                                 np.uint8).view(BBO.dtype)
    results = {}
    for name in ("gcc", "clang"):
        fresh_choice.setattr(generator, "_COMPILER", None)
        fresh_choice.setenv("TICKLANE_SIM_CXX", name)
        fresh_choice.setenv("TICKLANE_CACHE", str(tmp_path / name))
        with Harness.build(BboCrossCheck(latency=3), "harness_cross_check", config="latency3",
                           dtypes={"bbo_in": BBO.dtype, "bbo_out": BBO.dtype}, settle=16,
                           pgo=TRAINER) as h:
            # Act
            results[name] = (*_run(h, records), h.build_info)

    # Assert: each library was compiled by the tool chain it names, and they agree
    (gcc_out, gcc_cycles, gcc_info), (clang_out, clang_cycles, clang_info) = results.values()
    assert "clang" in clang_info.compiler and "clang" not in gcc_info.compiler
    assert b"clang version" in clang_info.library.read_bytes()
    assert b"clang version" not in gcc_info.library.read_bytes()
    assert (clang_info.folder / "obj-pgo" / "harness.profdata").exists()
    assert list((gcc_info.folder / "obj-pgo").glob("*.gcda"))
    assert len(clang_out) == len(records) and clang_cycles == gcc_cycles
    assert np.array_equal(clang_out, gcc_out)
