"""The harness's own schedule of a step's two evaluations, written from the verilated model.

A step evaluates the model twice: with the clocks low and the new inputs, then with the clocks
high (:mod:`sim.harness.gating` says why both stay). Verilator's scheduler (``_eval``) runs, on
each evaluation, its input-combinational region twice (the second pass finds nothing to do), then
loops: compute every trigger, run the non-blocking region for those that fired, compute every
trigger again, until none fires. On the full top that bookkeeping was a fifth of a step's
instructions, more than the feed's clocked logic.

The step knows what each evaluation changes, so this module writes it a schedule that does only
the work (``harness_sched.h``, included by the harness):

* clocks low: the input region once, then the non-blocking region for the load wires that rose,
  until none rises, as Verilator would (the counter copies of the gated blocks load here). The
  step has just lowered every clock, so no clock can fire;
* clocks high: between the two evaluations the step changes nothing but the main clock and the
  gated clocks. The input region reads neither, except the gated blocks' load wires
  (``~clk & gate``), which fall. So the evaluation sets those wires low, fires the triggers of
  the clocks that rose and runs the non-blocking region once. Nothing it changes can fire a
  trigger: the clocks are inputs, and the load wires stay low while the main clock is high.

Each evaluation runs only its part of the non-blocking region. Verilator's ``_eval_nba`` is a
list of blocks, each run when the fired triggers meet its mask; the falling evaluation's
triggers are load wires alone, the rising one's clocks alone. The header therefore holds two
copies of the function's body (:func:`split_nba`): one with the blocks a load wire's trigger can
run (the counter copies and the logic that reads them), one with those a clock's can. Each block
still tests its mask, so each copy does what the whole function would do with those triggers.
A body of any other shape is run whole. Callgrind, the plain Clang build of the full top on the
workload below: 259.9 M instructions against 266.8 M; the falling evaluation's region had cost
15.8 M of them, 198 instructions a cycle, mostly in the 40 mask tests.

The schedule is written only when the generated code has the shape that argument needs, checked
here: every trigger is the rising edge of the main clock, a gated clock or a load wire, all in
one 64-bit word; the input region has only its first-iteration trigger and reads the clocks only
to compute the load wires; there is no active-region logic. Otherwise the header falls back to
Verilator's scheduler and says why (:attr:`Schedule.reason`). A test runs the full top under
both schedules and compares every record, cycle stamp and register read.

Measured with callgrind on a plain build of the full top (20,000 generated messages, 80,106
cycles, an ITCH beat on every cycle): 347 M instructions a run with Verilator's scheduler, 285 M
with this one (at 58fa1d5, where it came in), the same records and cycle count; 270 M since the
book's level store became three memories.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Schedule", "plan", "render"]

_ROOT = "Vtop___024root"
_TRIGGER = re.compile(r"region trigger index (\d+) is active: (.*?)\\n")
_PREV = re.compile(r"vlSelfRef\.(__Vtrigprevexpr___TOP__\w+?__\d+)\s*=\s*vlSelfRef\.(\w+)\s*;")


@dataclass(frozen=True)
class NbaRegion:
    """The non-blocking region function (``_eval_nba``) taken apart: its opening (locals) and its
    body's blocks, each run when its trigger mask meets the fired triggers, in order."""

    opening: str
    blocks: tuple[tuple[int, str], ...]
    callees: tuple[str, ...]

    def only(self, mask: int) -> list[str]:
        """The blocks that can run when no trigger outside ``mask`` fires."""
        return [text for bits, text in self.blocks if bits & mask]


@dataclass(frozen=True)
class Schedule:
    """What the header does.

    ``direct`` is False when the model does not have the shape the harness's schedule needs;
    ``reason`` then says what was found. ``clocks`` and ``loads`` are (trigger bit, C++ member,
    member holding its last value) of the clock inputs and of the gated blocks' load wires.
    ``nba``, when the non-blocking region function has the plain shape :func:`split_nba` reads,
    lets each evaluation run its own part of it.
    """

    direct: bool
    reason: str = ""
    clocks: tuple[tuple[int, str, str], ...] = field(default=())
    loads: tuple[tuple[int, str, str], ...] = field(default=())
    nba: NbaRegion | None = None


def mangle(name: str) -> str:
    """The C++ member name Verilator gives a hierarchical signal name (``.`` and ``$``)."""
    return name.replace(".", "__DOT__").replace("$", "__024")


def _functions(text: str, pattern: str) -> dict[str, str]:
    """Bodies of the functions of ``text`` whose names match ``pattern`` (definitions only)."""
    found = {}
    for m in re.finditer(rf"^\w[\w:<>\s\*&]*?\b({pattern})\s*\([^;{{]*\)\s*\{{", text, re.M):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        found[m.group(1)] = text[m.end():i - 1]
    return found


def plan(obj: Path, clocks: list[str], loads: list[str]) -> Schedule:
    """Read the model Verilator wrote in ``obj`` and decide the schedule.

    ``clocks`` are the C++ names of the clock inputs the step raises (the main clock first);
    ``loads`` the hierarchical Verilog names of the gated blocks' load wires.
    """
    sources = {p.name: p.read_text() for p in sorted(obj.glob(f"{_ROOT}*.cpp"))}
    fast = "\n".join(t for n, t in sources.items() if "__Slow" not in n)
    every = "\n".join(sources.values())

    def no(reason: str) -> Schedule:
        return Schedule(direct=False, reason=reason)

    header = (obj / f"{_ROOT}.h").read_text()
    for word in ("__VicoTriggered", "__VactTriggered", "__VnbaTriggered"):
        if not re.search(rf"VlUnpacked<QData/\*63:0\*/, 1> {word};", header):
            return no(f"{word} is not one 64-bit word")
    dumps = _functions(every, rf"{_ROOT}___dump_triggers__(?:ico|act)")
    ico_dump = dumps.get(f"{_ROOT}___dump_triggers__ico", "")
    act_dump = dumps.get(f"{_ROOT}___dump_triggers__act")
    if act_dump is None:
        return no("no dump of the active region's triggers")
    if _TRIGGER.findall(ico_dump) != [("0", "Internal 'ico' trigger - first iteration")]:
        return no("the input region has triggers other than its first iteration")
    if _functions(fast, rf"{_ROOT}___eval_act"):
        return no("the model has active-region logic")
    if f"{_ROOT}___eval_ico(" not in fast or f"{_ROOT}___eval_nba(" not in fast:
        return no("the model has no input or non-blocking region function")

    triggers = {}
    for index, what in _TRIGGER.findall(act_dump):
        m = re.fullmatch(r"@\(posedge (\S+)\)", what)
        if not m:
            return no(f"active trigger {index} is not a rising edge: {what}")
        triggers[int(index)] = m.group(1)
    if not triggers or max(triggers) >= 64 or sorted(triggers) != list(range(len(triggers))):
        return no(f"active triggers are not bits 0..n-1 of one word: {sorted(triggers)}")
    vec = _functions(fast, rf"{_ROOT}___eval_triggers_vec__act")
    prev = {sig: p for p, sig in _PREV.findall(next(iter(vec.values()), ""))}
    if len(prev) != len(triggers):
        return no(f"{len(prev)} last-value members for {len(triggers)} triggers")

    load_names = {mangle(n): n for n in loads}
    out_clocks, out_loads = [], []
    for bit, name in sorted(triggers.items()):
        member = mangle(name)
        if member not in prev:
            return no(f"no last-value member for trigger {name}")
        if member in clocks:
            out_clocks.append((bit, member, prev[member]))
        elif member in load_names:
            out_loads.append((bit, member, prev[member]))
        else:
            return no(f"trigger {name} is neither a clock the step raises nor a load wire")
    if not any(member == clocks[0] for _, member, _ in out_clocks):
        return no(f"no trigger on the main clock {clocks[0]}")

    # The input region may read the clocks only to compute the load wires.
    ico = _functions(fast, rf"{_ROOT}___(?:eval_ico|ico_\w+)")
    for body in ico.values():
        for statement in re.sub(r"//[^\n]*", "", body).split(";"):
            reads = {c for c in clocks if re.search(rf"vlSelfRef\.{c}\b", statement)}
            if not reads:
                continue
            lhs = re.search(r"vlSelfRef\.(\w+)\s*=(?!=)", statement)
            if reads != {clocks[0]} or not lhs or lhs.group(1) not in load_names:
                return no("the input region reads a clock other than to compute a load wire")
    return Schedule(direct=True, clocks=tuple(out_clocks), loads=tuple(out_loads),
                    nba=split_nba(fast))


_BLOCK = re.compile(
    r"    if \(\((0x[0-9a-fA-F]+|\d+)ULL & vlSelfRef\.__VnbaTriggered\[0U\]\)\) \{\n")
_CALL = re.compile(rf"\b({_ROOT}___\w+)\(vlSelf\);")
_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*"')   # a string literal after its opening quote


def split_nba(fast: str) -> NbaRegion | None:
    """``_eval_nba`` of the model's sources ``fast`` as an opening and trigger-masked blocks, or
    None unless its body is nothing but ``if ((MASK & __VnbaTriggered[0U])) { ... }`` blocks
    whose calls are to functions of the model defined with the one argument ``vlSelf``."""
    body = _functions(fast, rf"{_ROOT}___eval_nba").get(f"{_ROOT}___eval_nba")
    if body is None or body.count("    // Body\n") != 1:
        return None
    opening, rest = body.split("    // Body\n")
    blocks, i = [], 0
    while i < len(rest):
        m = _BLOCK.match(rest, i)
        if not m:
            if rest[i:].strip():
                return None
            break
        depth, j = 1, m.end()
        while depth and j < len(rest):
            if rest[j] == '"':  # a string literal (a debug message): its braces do not count
                close = _STRING_REST.match(rest, j + 1)
                if not close:
                    return None
                j = close.end()
                continue
            depth += {"{": 1, "}": -1}.get(rest[j], 0)
            j += 1
        if depth:
            return None
        end = rest.find("\n", j)
        end = len(rest) if end < 0 else end + 1
        blocks.append((int(m.group(1), 0), rest[m.start():end]))
        i = end
    callees = sorted({c for _, text in blocks for c in _CALL.findall(text)})
    for callee in callees:
        if not re.search(rf"^void {callee}\({_ROOT}\* vlSelf\) \{{", fast, re.M):
            return None
    if not blocks or any(re.search(rf"\b{_ROOT}___\w+\(", _CALL.sub("", text))
                         for _, text in blocks):
        return None
    return NbaRegion(opening=opening, blocks=tuple(blocks), callees=tuple(callees))


def _nba_functions(schedule: Schedule) -> list[str]:
    """``th_sched_nba_loads`` and ``th_sched_nba_clocks``: the non-blocking region for triggers
    of the load wires alone (the falling evaluation) and of the clocks alone (the rising one).
    With the region taken apart, each runs only the blocks whose masks its triggers can meet; the
    others' tests would all fail. Otherwise both run Verilator's whole function."""
    out = []
    kinds = {"loads": sum(1 << bit for bit, _, _ in schedule.loads),
             "clocks": sum(1 << bit for bit, _, _ in schedule.clocks)}
    nba = schedule.nba
    if nba is not None:
        out += ['#include "Vtop__Syms.h"',
                *[f"void {callee}({_ROOT}* vlSelf);" for callee in nba.callees], ""]
        for kind, mask in kinds.items():
            out += [f"// _eval_nba's blocks that triggers in mask {mask:#x} can run, in order.",
                    f"static void th_nba_{kind}({_ROOT}* vlSelf) {{",
                    nba.opening.strip("\n"), "    // Body",
                    *[block.rstrip("\n") for block in nba.only(mask)],
                    "}", ""]
    for kind in kinds:
        call = f"th_nba_{kind}(r)" if nba is not None else f"{_ROOT}___eval_nba(r)"
        out += [f"static inline void th_sched_nba_{kind}({_ROOT}* r, uint64_t t) {{",
                "    r->__VnbaTriggered[0] = t;",
                f"    {call};",
                "    r->__VnbaTriggered[0] = 0;",
                "}", ""]
    return out


def render(schedule: Schedule) -> str:
    """``harness_sched.h``: ``TH_EVAL_FALL`` and ``TH_EVAL_RISE`` for the step."""
    lines = ["// Generated by sim/harness/schedule.py: do not edit.", "#pragma once", ""]
    if not schedule.direct:
        lines += [f"// Verilator's scheduler: {schedule.reason}.",
                  "#define TH_SCHEDULE_DIRECT 0",
                  "#define TH_EVAL_FALL(top) TH_EVAL(top)",
                  "#define TH_EVAL_RISE(top) TH_EVAL(top)", ""]
        return "\n".join(lines)
    lines += [
        f'#include "{_ROOT}.h"',
        f"void {_ROOT}___eval_ico({_ROOT}* vlSelf);",
        f"void {_ROOT}___eval_nba({_ROOT}* vlSelf);",
        "#define TH_SCHEDULE_DIRECT 1",
        "",
        "// A one-bit signal of the model, read as the one byte it is stored in. The triggers'",
        "// signals are neighbouring bytes, each stored on its own just before; read as plain",
        "// members, the compiler may load several of them as one word, which the CPU cannot",
        "// forward from separate byte stores: it waits until they reach the cache.",
        "template <typename T>",
        "static inline uint64_t th_bit(const T& v) {",
        "    return uint64_t(*static_cast<const volatile T*>(&v) & 1u);",
        "}",
        "",
        "// The load wires' rising edges since their last values, as Verilator's active phase",
        "// computes them. The clocks cannot rise while the step holds them low.",
        f"static inline uint64_t th_sched_loads({_ROOT}* r) {{",
        "    uint64_t t = 0;",
        *[f"    t |= (th_bit(r->{m}) & ~th_bit(r->{p})) << {bit};"
          for bit, m, p in schedule.loads],
        *[f"    r->{p} = r->{m};" for _, m, p in schedule.loads],
        "    return t;",
        "}",
        "",
        *_nba_functions(schedule),
        "// Clocks low, new inputs: the input region once, then the non-blocking region until no",
        "// load wire rises (the clocks fell: their last values are low).",
        "static inline void th_eval_fall(Vtop* top) {",
        f"    {_ROOT}* r = top->rootp;",
        "    r->__VicoTriggered[0] = 1;",
        f"    {_ROOT}___eval_ico(r);",
        "    r->__VicoTriggered[0] = 0;",
        *[f"    r->{p} = r->{m};" for _, m, p in schedule.clocks],
        "    uint32_t n = 0;",
        "    for (uint64_t t = th_sched_loads(r); t; t = th_sched_loads(r)) {",
        "        if (++n > 10000) {",
        '            VL_FATAL_MT(__FILE__, __LINE__, "", "DIDNOTCONVERGE: the harness\'s '
        'schedule");',
        "            return;",
        "        }",
        "        th_sched_nba_loads(r, t);",
        "    }",
        "}",
        "",
        "// Clocks high, nothing else changed: the load wires (~clk & gate) fall, the clocks that",
        "// rose fire, the non-blocking region runs once. The evaluation with the clocks low",
        "// recorded them low, so each clock that is high now rose.",
        "static inline void th_eval_rise(Vtop* top) {",
        f"    {_ROOT}* r = top->rootp;",
        "    uint64_t t = 0;",
        *[f"    r->{m} = 0;" for _, m, _ in schedule.loads],
        *[f"    r->{p} = 0;" for _, _, p in schedule.loads],
        *[f"    t |= th_bit(r->{m}) << {bit};" for bit, m, _ in schedule.clocks],
        *[f"    r->{p} = r->{m};" for _, m, p in schedule.clocks],
        "    if (t) th_sched_nba_clocks(r, t);",
        "}",
        "",
        "#define TH_EVAL_FALL(top) th_eval_fall(top)",
        "#define TH_EVAL_RISE(top) th_eval_rise(top)",
        "",
    ]
    return "\n".join(lines)
