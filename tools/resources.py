"""The design's resources on the xc7z020, per stage and in total, and the committed report.

:data:`STAGES` names the blocks measured, each built as :class:`hdl.top.Top` builds it.
:func:`run_stage` and :func:`run_fmax` (``tools.synth_report``) measure them into a report dict,
kept as JSON at :data:`REPORT_JSON` and rendered to :data:`REPORT_MD`; the benchmarks print the
committed report (:func:`print_section`) unless asked to measure afresh.

    python -m tools.synth_report --all --fmax --markdown    # refresh both files
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tools.synth_report import (FMAX_LABEL, ROUTERS, XC7Z020, FmaxEstimate, SynthesisError,
                                Utilization, fmax_estimate, mapping_text, synthesize)

__all__ = ["Stage", "STAGES", "FMAX_STAGES", "REPORT_JSON", "REPORT_MD", "empty_report",
           "load_report", "save_report", "save_entry", "run_stage", "run_fmax", "format_report",
           "render_markdown", "print_section"]

ROOT = Path(__file__).resolve().parent.parent
REPORT_JSON = ROOT / "bitstreams" / "pynq_z2" / "resources.json"
REPORT_MD = ROOT / "bitstreams" / "pynq_z2" / "RESOURCES.md"


@dataclass(frozen=True)
class Stage:
    """One block of the design, built with the parameters the top gives it.

    Attributes
    ----------
    name : str
    build : str
        The constructor call, as text, for the report.
    make : callable
        Builds the component.
    what : str
        One line on what the block holds.
    """

    name: str
    build: str
    make: Callable
    what: str


def _feed():
    from hdl.feed.stage import FeedStage
    return FeedStage(slots=256, host_streams=True)


def _book():
    from hdl.book.order_book import DEFAULT_LEVELS
    from hdl.book.stage import BookStage
    return BookStage(slots=256, levels=DEFAULT_LEVELS, assign_slots=False)


def _risk():
    from hdl import wire
    from hdl.risk import PreTradeRisk
    return PreTradeRisk(slots=wire.RISK_SLOTS)


def _regs():
    from hdl import wire
    from hdl.regs import RegisterBank
    return RegisterBank(wire.REGISTERS, latch={"CYCLE_LO": "CYCLE_HI"})


def _top():
    from hdl.top import Top
    return Top()


STAGES = {
    "feed": Stage("feed", "FeedStage(slots=256, host_streams=True)", _feed,
                  "deframer, ITCH / level-update decoder, 65,536-entry subscription table"),
    "book": Stage("book", "BookStage(slots=256, levels=8, assign_slots=False)", _book,
                  "order table (16 ways x 512 sets), level store (256 rows), BBO FIFO"),
    "risk": Stage("risk", "PreTradeRisk(slots=RISK_SLOTS=16)", _risk,
                  "limits, positions, open-order table, BBO copy, buckets: all in flip-flops"),
    "regs": Stage("regs", "RegisterBank(REGISTERS)", _regs,
                  "the register bank: every rw register is a 32-bit flip-flop word"),
    "top": Stage("top", "Top()", _top,
                 "the whole design: the stages, the bank, the port slices, the cycle counter"),
}

# Stages placed and routed on ECP5 by default: each fits an LFE5U-85F (83,640 LUT4) alone; the
# top does not (its stages' LUT4 counts add up to more) and is left out. With the WebAssembly
# nextpnr the book and the risk gate take about 20 minutes each on a 2-core machine.
FMAX_STAGES = ("feed", "book", "risk", "regs")
ECP5_85F_LUTS = 83_640   # Lattice FPGA-DS-02012 ECP5 family data sheet, table 1.1, LFE5U-85


def empty_report() -> dict:
    """A report with nothing measured yet."""
    return {
        "part": {"name": XC7Z020.name, "luts": XC7Z020.luts, "ffs": XC7Z020.ffs,
                 "bram36": XC7Z020.bram36, "dsp": XC7Z020.dsp, "source": XC7Z020.source},
        "stages": {},
        "fmax": {},
        "notes": [],
    }


def load_report(path: Path = REPORT_JSON) -> dict:
    """The report at ``path``."""
    return json.loads(Path(path).read_text())


def save_report(report: dict, path: Path = REPORT_JSON) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")


def save_entry(path: Path, section: str, name: str, entry: dict) -> dict:
    """Store one measurement (``report[section][name]``) in the report at ``path`` as the file
    holds it now, and return that report. A stage's run takes minutes to an hour; writing back
    the whole report read at its start would undo what another run stored meanwhile."""
    path = Path(path)
    report = load_report(path) if path.exists() else empty_report()
    report[section][name] = entry
    save_report(report, path)
    return report


def _order_table(util: Utilization) -> dict:
    from hdl.book.order_book import DEFAULT_ORDER_SETS, DEFAULT_ORDER_WAYS, OrderBook
    book = OrderBook()
    book._MustUse__silence = True   # built for its layouts only, never elaborated
    return {
        "ways": DEFAULT_ORDER_WAYS, "sets": DEFAULT_ORDER_SETS, "capacity": book.capacity,
        "entry_bits": book.entry_layout.size,
        "bram36": util.memory_bram36("book.orders_way"),
        "level_store_bram36": util.memory_bram36("book.levels_"),
        "level_row_bits": book.row_bits,
    }


def design_version() -> str:
    """The last commit that changed ``hdl/`` (the gateware measured), ``+changes`` when the
    checkout's ``hdl/`` differs from it."""
    try:
        head = subprocess.run(["git", "log", "-1", "--format=%h", "--abbrev=12", "--", "hdl"],
                              cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "hdl"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+changes" if dirty else "")


def run_stage(report: dict, stage: str, *, timeout_s: float | None = 1800.0,
              workdir: Path | None = None, log=print) -> Utilization:
    """Synthesize one stage for the xc7z020 and store its counts in ``report``."""
    spec = STAGES[stage]
    design = design_version()       # the gateware as it is when the run starts
    log(f"synthesizing {stage}: {spec.build} ...")
    util = synthesize(spec.make(), f"ticklane_{stage}", timeout_s=timeout_s,
                      workdir=None if workdir is None else Path(workdir) / stage)
    log(util.table())
    entry = {"build": spec.build, "what": spec.what, "design": design,
             "utilization": util.to_dict()}
    if stage == "book":
        entry["order_table"] = _order_table(util)
    report["stages"][stage] = entry
    return util


def run_fmax(report: dict, stage: str, *, target_mhz: float = 250.0,
             timeout_s: float | None = 900.0, workdir: Path | None = None,
             log=print, router: str = ROUTERS[0]) -> FmaxEstimate | None:
    """Place and route one stage on ECP5 (nextpnr's ``router``); a failure or timeout is stored,
    not raised."""
    spec = STAGES[stage]
    design = design_version()       # the gateware as it is when the run starts
    log(f"placing and routing {stage} on ECP5 with {router} (limit {timeout_s:g} s) ...")
    try:
        est = fmax_estimate(spec.make(), f"ticklane_{stage}", target_mhz=target_mhz,
                            timeout_s=timeout_s, router=router,
                            workdir=None if workdir is None else Path(workdir) / f"{stage}_ecp5")
    except SynthesisError as e:
        report["fmax"][stage] = {"error": str(e).splitlines()[0], "label": FMAX_LABEL,
                                 "design": design}
        log(f"  {stage}: {e}")
        return None
    report["fmax"][stage] = {**est.to_dict(), "design": design}
    log(f"  {stage}: {est.fmax_mhz:.1f} MHz on {est.clock!r} ({est.label})")
    return est


def _row(name: str, u: dict) -> str:
    p = u["percent"]
    return (f"{name:<6} {u['luts']:>7,} {p['luts']:>6.1f}%  {u['ffs']:>7,} {p['ffs']:>6.1f}%  "
            f"{u['bram36']:>6g} {p['bram36']:>6.1f}%  {u['dsp']:>4} {p['dsp']:>5.1f}%")


def format_report(report: dict) -> str:
    """The report as a plain-text table."""
    lines = [f"resources on the {report['part']['name']} (Yosys synth_xilinx, post-synthesis)",
             f"{'stage':<6} {'LUT':>7} {'':>7}  {'FF':>7} {'':>7}  {'BRAM36':>6} {'':>7}  "
             f"{'DSP':>4} {'':>6}"]
    tools = set()
    for name in STAGES:
        entry = report["stages"].get(name)
        if entry is None:
            continue
        u = entry["utilization"]
        lines.append(_row(name, u))
        tools.add(f"{u['tool']}, `{u['command'].rsplit(' -top', 1)[0]}`")
    lines += [f"tool: {t}" for t in sorted(tools)]
    ot = report["stages"].get("book", {}).get("order_table")
    if ot:
        lines.append(f"order table: {ot['ways']} ways x {ot['sets']} sets = {ot['capacity']:,} "
                     f"orders, {ot['bram36']:g} BRAM36; level store {ot['level_store_bram36']:g} "
                     f"BRAM36")
    for name, f in report.get("fmax", {}).items():
        if "fmax_mhz" in f:
            lines.append(f"fmax {name}: {f['fmax_mhz']:.1f} MHz ({f['label']}; {f['tool']})")
        else:
            lines.append(f"fmax {name}: not measured: {f['error']}")
    return "\n".join(lines)


def print_section(stages: list[str] | None = None, *, fresh: bool = False,
                  fmax: bool = False, path: Path = REPORT_JSON, log=print) -> dict:
    """Print the resources of ``stages`` (all by default) for a benchmark.

    From the committed report, or measured now when ``fresh`` (then, when ``fmax``, also place
    and route the stages given, or the :data:`FMAX_STAGES` when none are). Returns the report
    printed.
    """
    fmax_stages = FMAX_STAGES if stages is None else stages
    stages = list(STAGES) if stages is None else stages
    if fresh:
        report = empty_report()
        for stage in stages:
            run_stage(report, stage, log=lambda *_: None)
            if fmax and stage in fmax_stages:
                run_fmax(report, stage, log=lambda *_: None)
        source = "measured in this run"
    elif Path(path).exists():
        full = load_report(path)
        report = {**full, "stages": {k: v for k, v in full["stages"].items() if k in stages},
                  "fmax": {k: v for k, v in full.get("fmax", {}).items() if k in stages}}
        dates = sorted({v["utilization"]["date"][:10] for v in report["stages"].values()})
        shown = Path(path).relative_to(ROOT) if Path(path).is_relative_to(ROOT) else path
        source = (f"from {shown} ({', '.join(dates) if dates else 'no date'}); "
                  "--synth measures afresh")
    else:
        log(f"no resource report at {path}: run python -m tools.synth_report --all --fmax")
        return {}
    log(format_report(report))
    log(f"({source})")
    return {**report, "source": source}


def _memory_groups(u: dict) -> list:
    """``[(names, via, cells)]``: memories that differ only in a trailing number (the ways of
    the order table) and map alike, grouped in numeric order."""
    groups: dict = {}
    for mem, via in u.get("memories", {}).items():
        cells = u.get("memory_cells", {}).get(mem, {})
        m = re.match(r"(.*?)(\d+)$", mem)
        stem, num = (m.group(1), int(m.group(2))) if m else (mem, -1)
        key = (stem, via, json.dumps(cells, sort_keys=True))
        groups.setdefault(key, []).append((num, mem))
    out = []
    for (stem, via, cells), mems in sorted(groups.items()):
        out.append(([name for _, name in sorted(mems)], via, json.loads(cells)))
    return out


def render_markdown(report: dict) -> str:
    """The report as the Markdown page committed next to the bitstreams."""
    part = report["part"]
    out = [
        "# Resources of the design on the PYNQ-Z2 (xc7z020)",
        "",
        "Measured, not estimated: Yosys `synth_xilinx -family xc7` counts the 7-series primitives "
        "each block maps to. These are post-synthesis numbers (no place-and-route: none is open "
        "for the Zynq-7000, and Vivado's synthesis will differ somewhat). Generated by "
        "`python -m tools.synth_report --all --fmax --markdown` from "
        "[resources.json](resources.json); the benchmarks print the same file.",
        "",
        f"Capacities of the {part['name']}: {part['luts']:,} LUTs, {part['ffs']:,} flip-flops, "
        f"{part['bram36']} BRAM36, {part['dsp']} DSP48E1 ({part['source']}).",
        "",
        "| block | build | LUT | % | FF | % | BRAM36 | % | DSP | % | LUTRAM | CARRY4 | Yosys time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tools, dates, designs = set(), set(), set()
    for name in STAGES:
        entry = report["stages"].get(name)
        if entry is None:
            continue
        u = entry["utilization"]
        p = u["percent"]
        label = f"**{name}** (total)" if name == "top" else name
        out.append(
            f"| {label} | `{entry['build']}` | {u['luts']:,} | {p['luts']:.1f} | {u['ffs']:,} | "
            f"{p['ffs']:.1f} | {u['bram36']:g} | {p['bram36']:.1f} | {u['dsp']} | {p['dsp']:.1f} "
            f"| {u['lut_memory']:,} | {u['carry4']:,} | {u['seconds']:.0f} s |")
        tools.add(u["tool"])
        dates.add(u["date"][:10])
        designs.add(entry.get("design", "unknown"))
    out += [
        "",
        "The top is synthesized as one design, so its row is the total; it is not the sum of the "
        "rows above (the port slices and the cycle counter are only in the top, and flattening "
        "lets Yosys share and remove logic across the stages).",
        "",
        "- Tool: " + "; ".join(sorted(tools)),
        "- Command, after `read_rtlil` of Amaranth's RTLIL: `synth_xilinx -family xc7 -flatten "
        "-noiopad -noclkbuf -top <block>`, then `stat`",
        "- Date: " + ", ".join(sorted(dates)),
        "- Gateware measured: commit " + ", ".join(f"`{d}`" for d in sorted(designs)),
        "",
        "## What each block holds",
        "",
    ]
    for name in STAGES:
        entry = report["stages"].get(name)
        if entry is None:
            continue
        u = entry["utilization"]
        out.append(f"- **{name}**: {entry['what']}.")
        for mems, via, cells in _memory_groups(u):
            kind = mapping_text(via) if via in ("FF", "ROM") else f"`{via}`"
            cells_text = ", ".join(f"{n} {c}" for c, n in sorted(cells.items()))
            if len(mems) > 1:
                name = f"{mems[0]} … {mems[-1]}` ({len(mems)} memories, each"
                out.append(f"  - memory `{name}): {kind}: {cells_text}")
            else:
                out.append(f"  - memory `{mems[0]}`: {kind}"
                           f"{': ' + cells_text if cells_text else ''}")
    ot = report["stages"].get("book", {}).get("order_table")
    if ot:
        out += [
            "",
            "## The order table",
            "",
            f"Default capacity for the Zynq-7020: {ot['ways']} ways x {ot['sets']} sets = "
            f"**{ot['capacity']:,} orders**, each entry {ot['entry_bits']} bits (tag, slot, side, "
            f"price, remaining shares). Measured cost: **{ot['bram36']:g} BRAM36** "
            f"({100 * ot['bram36'] / part['bram36']:.1f}% of the part): each way ({ot['sets']} "
            f"entries x {ot['entry_bits']} bits) takes {ot['bram36'] / ot['ways']:g} BRAM36. The "
            f"level store ({ot['level_row_bits']:,} bits per "
            f"symbol slot in bid, ask and meta rows) takes {ot['level_store_bram36']:g} BRAM36.",
        ]
    out += ["", "## fmax estimate", "",
            f"Label: **{FMAX_LABEL}**. There is no open place-and-route for the Zynq-7000; "
            "this is nextpnr-ecp5's achieved clock for the block placed out of context "
            "(ports left unplaced, register-to-register paths only) on a Lattice ECP5 "
            "LFE5U-85F, speed grade 6. It is not the clock the Zynq build will meet (the "
            "7-series fabric, with 6-input LUTs and faster carry chains, differs); it shows which "
            "paths are long and how long relative to each other.",
            "",
            "| block | fmax (MHz) | clock | target | ECP5 LUT4 | gateware | tool | command | time |",
            "|---|---:|---|---:|---:|---|---|---|---:|"]
    for name in STAGES:
        f = report.get("fmax", {}).get(name)
        if f is None:
            continue
        if "fmax_mhz" in f:
            out.append(f"| {name} | {f['fmax_mhz']:.1f} | `{f['clock']}` | {f['target_mhz']:g} "
                       f"| {f['ecp5_luts']:,} | `{f.get('design', 'unknown')}` | {f['tool']} "
                       f"| `{f['command']}` | {f['seconds']:.0f} s |")
        else:
            out.append(f"| {name} | not measured | | | | | | {f['error']} | |")
    for name in STAGES:
        f = report.get("fmax", {}).get(name, {})
        if f.get("critical_path"):
            ns = f.get("critical_path_ns", {})
            split = (f" ({ns['logic']:.1f} ns logic, {ns['routing']:.1f} ns routing)"
                     if ns else "")
            out.append(f"\nCritical path of **{name}**{split}: "
                       + " → ".join(f"`{src}`" for src in f["critical_path"]) + ".")
    fmax = report.get("fmax", {})
    missing = [n for n in STAGES if n in report["stages"] and n not in fmax]
    parts = [n for n in STAGES if n != "top" and "ecp5_luts" in fmax.get(n, {})]
    need = sum(fmax[n]["ecp5_luts"] for n in parts)
    for name in missing:
        why = ""
        if name == "top" and need > 0.8 * ECP5_85F_LUTS:
            terms = " + ".join(f"{n} {fmax[n]['ecp5_luts']:,}" for n in parts)
            verdict = ("so it does not fit" if need > ECP5_85F_LUTS else
                       f"{100 * need / ECP5_85F_LUTS:.0f}% of the part; not run")
            why = (f": its stages alone need {need:,} LUT4 after `synth_ecp5` ({terms}; LUT4 "
                   f"cells plus two per CCU2C), against the {ECP5_85F_LUTS:,} of the LFE5U-85F, "
                   f"{verdict}")
        out += ["", f"Not placed and routed: {name}{why}."]
    if report.get("notes"):
        out += ["", "## Findings", ""] + [f"- {note}" for note in report["notes"]]
    out.append("")
    return "\n".join(out)
