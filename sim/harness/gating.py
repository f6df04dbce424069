"""Gate the clocks of idle blocks in the harness's Verilog, so the model skips what cannot change.

Verilator evaluates a clocked block, and the combinational logic that reads only its registers,
on the edges of that block's clock alone. A block on a clock that does not tick costs nothing. The
harness puts each block the design names (the top's ``sim_gates``: instance name to a one-bit
signal of the top) on a clock of its own: the instance's clock port is connected to a new input
of the top, ``<signal>_clk``, and the signal becomes an output of the top::

    module ticklane_top(gate_book_clk, gate_book, ...);
      input gate_book_clk;
      output gate_book;
      ...
      \\ticklane_top.book  book (
        .core_clk(gate_book_clk),

Instances named with the same signal share its clock (each clock costs the scheduler a little on
every evaluation, whether it ticks or not).

Each cycle the harness (:mod:`sim.harness.generator`) sets the inputs of the coming rising edge
with every clock low and evaluates the model; the design settles. It then raises the main clock
and, with it, the clock of every block whose signal is high, and evaluates once more: the block
sees a rising edge exactly when its signal was high before it, as behind a latch-based clock gate.
All clocks are inputs of the model, so one pass of Verilator's scheduler finds every edge.
Through a reset the harness clocks every block.

The signal is the design's promise that the block's state does not change on an edge where it is
low (each block's ``busy`` says when, in :mod:`hdl`), or changes only in registers nothing reads
until the block's next clocked edge (the register bank captures the bus address and data on
every cycle, and reads them only under a strobe). Skipping such an edge is then the same as
clocking it. Combinational logic of the block that reads signals of other blocks still runs
when those change. A test runs the gated and the ungated model side by side on the full top
and compares every output record and register read, cycle for cycle.

A register of the top that changes on every edge, such as the cycle counter, would undo this:
all logic that reads it is evaluated on every edge. The instances the top names for it (its
``sim_counters``: counter to instances) therefore read a copy of the counter, loaded from it on
the falling edges where the instance's gate is high::

    wire \\gate$book$load  = ~clk & gate_book;
    reg [63:0] \\gate$book$cycle  = 64'h0000000000000000;
    always @(posedge \\gate$book$load ) \\gate$book$cycle  <= cycle;

The counter changes on rising edges only, so from that falling edge through the rising edge that
follows, the copy equals it: on every edge the block is clocked, it sees the counter's value.
After that edge, and while the block's clock is stopped, the copy lags. An instance may read a
copy only if nothing reads its outputs that show the counter then: other blocks sample them on
rising edges, when the copy is current if the block's gate is high (an output stream's valid
keeps it high); the harness reads the register bank's read data after the edge, so the bank
reads the counter itself.

Why two evaluations a cycle. The evaluation with the clocks low settles the inputs and loads the
copies; it is about 14% of a cycle's instructions with an ITCH beat on every cycle (callgrind,
plain build, 20,000 generated messages, 80,106 cycles: 43.6 million of 314 million in the step;
an evaluation in which nothing changes costs about 250 instructions). Two ways of doing without
it were measured on that workload and were no better:

* one evaluation a cycle, the inputs settled by Verilator's input-combinational phase alone, the
  edges made by clearing the scheduler's record of each clock's last level, and no copies (the
  stages reading the counter itself): 313 million. The single evaluation grew by 37 million,
  about 460 instructions a cycle, as the logic that reads the counter ran on every edge;
* the same with each copy an input of the model that the harness sets every cycle: 377 million.
  Verilator evaluates all logic that reads an input in its input phase, on every evaluation.

Those figures are for Verilator's scheduler. The step now runs the harness's own schedule of the
two evaluations (:mod:`sim.harness.schedule`): 285 million instructions on the same workload,
against 347 million for the same build under Verilator's. A third way was tried on top of it and
is wrong: loading the copies in the evaluation with the clocks high (the harness writing each
copy before the edge, with the load wires' triggers), so that the one with the clocks low only
settles the inputs. It saved 6% of the instructions, but logic computed from a copy must settle
before the edge that reads it: the BBO records' stamps differed from Verilator's schedule in the
test that compares the two.

The rewrite is for the simulation harness only. cocotb runs, formal proofs and synthesis read
Amaranth's Verilog unchanged; synthesis removes the gate signals, which nothing reads.
"""

from __future__ import annotations

import re

__all__ = ["GatingError", "clock_port", "gate_clocks"]


class GatingError(ValueError):
    """The Verilog does not have the instance, clock or gate signal the rewrite needs."""


def _module_span(lines: list[str], module: str) -> tuple[int, int]:
    head = re.compile(rf"^module {re.escape(module)}\(")
    for i, line in enumerate(lines):
        if head.match(line):
            for j in range(i + 1, len(lines)):
                if lines[j] == "endmodule":
                    return i, j
            break
    raise GatingError(f"module {module!r} not found")


def clock_port(signal: str) -> str:
    """The input of the rewritten top that clocks the instances gated by ``signal``."""
    return f"{signal}_clk"


def gate_clocks(text: str, module: str, gates: dict[str, str], clock: str = "clk",
                counters: dict[str, tuple[str, ...]] | None = None) -> str:
    """Return ``text`` with each instance of ``gates`` in ``module`` on a clock of its own.

    Parameters
    ----------
    text : str
        Verilog as Amaranth writes it (folded or not).
    module : str
        The module that holds the instances (the top).
    gates : dict
        Instance name to the name of a one-bit wire of ``module``: high when the instance's state
        may change on the next rising edge of ``clock``. The wire becomes an output of the
        module, and the instance's clock the input :func:`clock_port` names after it.
    clock : str
        The clock input of ``module`` the instances are connected to.
    counters : dict, optional
        Registers of ``module`` that change on every rising edge of ``clock``, each to the gated
        instances that read their own copy of it, loaded on the falling edges where their gate
        is high. Another instance reads the register itself.

    Raises
    ------
    GatingError
        An instance is missing, is not connected to ``clock``, or its gate signal is not a
        one-bit wire of the module; a counter is not a register of the module; a name the
        rewrite adds is taken.
    """
    lines = text.split("\n")
    start, end = _module_span(lines, module)
    body = lines[start:end]
    declaration = re.compile(r"^  (?:wire|reg|input|output)(?: \[\d+:0\])? ([^\s;]+)")
    names = {m.group(1) for line in body for m in [declaration.match(line)] if m}
    declared = {m.group(1) for line in body
                for m in [re.match(r"^  (?:wire|reg) (\w+)(?: = \S+)?;$", line)] if m}
    widths = {m.group(2): m.group(1) or "" for line in body
              for m in [re.match(r"^  reg (\[\d+:0\] )?(\w+) = \S+;$", line)] if m}
    counters = dict(counters or {})
    for counter, readers in counters.items():
        if counter not in widths:
            raise GatingError(f"{module}: counter {counter!r} is not a register of the module")
        for inst in readers:
            if inst not in gates:
                raise GatingError(f"{module}: {inst!r} reads a copy of {counter!r} but has no gate")
    copies: dict[str, list[str]] = {}
    for inst, signal in gates.items():
        if signal not in declared:
            raise GatingError(f"{module}: gate signal {signal!r} of {inst!r} is not a one-bit "
                              "wire or reg of the module")
        if clock_port(signal) in names:
            raise GatingError(f"{module}: {clock_port(signal)!r} is already a name of the module")
        head = re.compile(rf"^  (?:\\\S+|\w+)\s+{re.escape(inst)} \($")
        at = [i for i in range(start, end) if head.match(lines[i])]
        if len(at) != 1:
            raise GatingError(f"{module}: instance {inst!r} found {len(at)} times")
        replaced = 0
        i = at[0] + 1
        while i < end and lines[i] != "  );":
            port = re.match(r"^(    \.(?:\\\S+ |\w+))\((\w+)\)(,?)$", lines[i])
            if port and port.group(2) == clock:
                lines[i] = f"{port.group(1)}({clock_port(signal)}){port.group(3)}"
                replaced += 1
            elif port and inst in counters.get(port.group(2), ()):
                copy = f"\\gate${inst}${port.group(2)} "
                lines[i] = f"{port.group(1)}({copy}){port.group(3)}"
                copies.setdefault(inst, [])
                if port.group(2) not in copies[inst]:
                    copies[inst].append(port.group(2))
            i += 1
        if not replaced:
            raise GatingError(f"{module}: instance {inst!r} has no port connected to {clock!r}")
    extra = []
    for inst, signal in gates.items():
        if copies.get(inst):
            load = f"\\gate${inst}$load "
            extra.append(f"  wire {load} = ~{clock} & {signal};")
            for counter in copies[inst]:
                copy = f"\\gate${inst}${counter} "
                width = widths[counter]
                bits = int(width[1:].split(":")[0]) + 1 if width else 1
                extra += [f"  reg {width}{copy} = {bits}'h{0:0{(bits + 3) // 4}x};",
                          f"  always @(posedge {load}) {copy} <= {counter};"]
    lines[end:end] = extra
    # the new ports: named first in the module's header, declared after it
    header_end = next(i for i in range(start, end) if lines[i].endswith(");"))
    signals = list(dict.fromkeys(gates.values()))
    new_ports = [clock_port(signal) for signal in signals] + signals
    lines[start] = lines[start].replace(f"module {module}(",
                                        f"module {module}({', '.join(new_ports)}, ", 1)
    declare = []
    for signal in signals:
        declare += [f"  input {clock_port(signal)};", f"  wire {clock_port(signal)};"]
    declare += [f"  output {signal};" for signal in signals]
    lines[header_end + 1:header_end + 1] = declare
    return "\n".join(lines)
