"""Gate the clocks of idle blocks in the harness's Verilog, so the model skips what cannot change.

Verilator evaluates a clocked block, and the combinational logic that reads only its registers,
on the edges of that block's clock alone. A block on a clock that does not tick costs nothing. The
harness puts each block the design names (the top's ``sim_gates``: instance name to a one-bit
signal of the top) on a clock of its own::

    reg \\gate$book$en  = 1'h1;
    always @(negedge clk) \\gate$book$en  <= gate_book;
    wire \\gate$book$clk  = clk & \\gate$book$en ;

and connects the instance's clock port to it. The enable is sampled on the falling edge, when
the harness has set the inputs of the coming rising edge and the design has settled, and holds
through that rising edge (a latch-based clock gate, as a standard cell would do it): the block
sees a rising edge exactly when its signal was high before it.

The signal is the design's promise that the block's state does not change on an edge where it is
low (each block's ``busy`` says when, in :mod:`hdl`), or changes only in registers nothing reads
until the block's next clocked edge (the register bank captures the bus address and data on
every cycle, and reads them only under a strobe). Skipping such an edge is then the same as
clocking it. Combinational logic of the block that reads signals of other blocks still runs
when those change. A test runs the gated and the ungated model side by side on the full top
and compares every output record and register read, cycle for cycle.

The rewrite is for the simulation harness only. cocotb runs, formal proofs and synthesis read
Amaranth's Verilog unchanged; synthesis removes the gate signals, which nothing reads.
"""

from __future__ import annotations

import re

__all__ = ["GatingError", "gate_clocks"]


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


def gate_clocks(text: str, module: str, gates: dict[str, str], clock: str = "clk") -> str:
    """Return ``text`` with each instance of ``gates`` in ``module`` on a gated ``clock``.

    Parameters
    ----------
    text : str
        Verilog as Amaranth writes it (folded or not).
    module : str
        The module that holds the instances (the top).
    gates : dict
        Instance name to the name of a one-bit wire of ``module``: high when the instance's state
        may change on the next rising edge of ``clock``.
    clock : str
        The clock input of ``module`` the instances are connected to.

    Raises
    ------
    GatingError
        An instance is missing, is not connected to ``clock``, or its gate signal is not a
        one-bit wire of the module.
    """
    lines = text.split("\n")
    start, end = _module_span(lines, module)
    body = lines[start:end]
    declared = {m.group(1) for line in body
                for m in [re.match(r"^  (?:wire|reg) (\w+)(?: = \S+)?;$", line)] if m}
    for inst, signal in gates.items():
        if signal not in declared:
            raise GatingError(f"{module}: gate signal {signal!r} of {inst!r} is not a one-bit "
                              "wire or reg of the module")
        head = re.compile(rf"^  (?:\\\S+|\w+)\s+{re.escape(inst)} \($")
        at = [i for i in range(start, end) if head.match(lines[i])]
        if len(at) != 1:
            raise GatingError(f"{module}: instance {inst!r} found {len(at)} times")
        net = f"\\gate${inst}$clk "
        replaced = 0
        i = at[0] + 1
        while i < end and lines[i] != "  );":
            port = re.match(rf"^(    \.\w+)\({re.escape(clock)}\)(,?)$", lines[i])
            if port:
                lines[i] = f"{port.group(1)}({net}){port.group(2)}"
                replaced += 1
            i += 1
        if not replaced:
            raise GatingError(f"{module}: instance {inst!r} has no port connected to {clock!r}")
    extra = []
    for inst, signal in gates.items():
        en = f"\\gate${inst}$en "
        extra += [
            f"  reg {en} = 1'h1;",
            f"  always @(negedge {clock}) {en} <= {signal};",
            f"  wire \\gate${inst}$clk  = {clock} & {en};",
        ]
    lines[end:end] = extra
    return "\n".join(lines)
