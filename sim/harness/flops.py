"""Fold Amaranth's next-state blocks into clocked blocks, for a faster Verilator model.

Amaranth's Verilog (through Yosys' ``write_verilog``) gives every register two parts: a
combinational block that computes its next value, starting from the current one, and a flip-flop
that copies that next value on the clock edge::

    always @* begin
      if (\\$auto$verilog_backend.cc:2355:dump_module$10 ) begin end
      \\$1199  = position_3;                  // hold
      if (fill_ok) begin
        ... \\$1199  = \\$29 [63:0]; ...      // load
      end
      if (core_rst) begin
        \\$1199  = 64'h0000000000000000;      // reset
      end
    end
    always @(posedge core_clk)
      position_3 <= \\$1199 ;

Verilator runs both on every cycle: two copies per register even when nothing loads it, and the
next value's whole computation even when its enable is low. On the full top the folded model ran
2.9 against 1.4 M cycles per CPU second idle and 1.9 against 1.2 with ITCH traffic (measured
before the harness gated clocks). :func:`fold_next_state` rewrites such a pair as one clocked
block whose assignments are non-blocking assignments to the register itself, with the hold
dropped::

    always @(posedge core_clk) begin
      if (fill_ok) begin
        ... position_3 <= \\$29 [63:0]; ...
      end
      if (core_rst) begin
        position_3 <= 64'h0000000000000000;
      end
    end

This is the same register. In the combinational block the last assignment wins, and so does the
last non-blocking assignment in a clocked block. Every right-hand side is read before the edge in
both forms. Leaving the register unassigned keeps its value, which is what the hold did.

A block is rewritten only when all of these hold, and is left as it was otherwise:

* everything it assigns is the next value of a flip-flop written in the plain form above;
* those flip-flops share one clock;
* each next value is read nowhere but by its flip-flop, and appears only as an assignment target
  in the block and in its declaration. A target may be a concatenation of selects of one next
  value (``{ \\$927 [664:656], \\$927 [191:0] } = 465'h0;``, as Yosys writes the zeroing of a
  record's unused fields); it becomes the same concatenation of the register's selects. The
  feed's book-event register was kept for that alone: its model copied the 665-bit event and
  evaluated the block on every cycle (callgrind, plain Clang build of the full top, 20,000
  messages with a beat on every cycle: 259.0 M instructions against 259.9 M).

The rewrite is for the simulation harness only. cocotb runs, formal proofs and synthesis read
Amaranth's Verilog or RTLIL unchanged, and a test compares the rewritten model with the unchanged
one cycle for cycle on the full top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FoldStats", "fold_next_state", "narrow_shifts"]

_FLOP_HEAD = re.compile(r"^  always @\(posedge (\S+)\)$")
_FLOP_BODY = re.compile(r"^    (\\\S+ |\w+) <= (\\\S+ |\w+);$")
_ASSIGN = re.compile(r"^(\s+)(\\\S+ |\w+)(\s*\[[^\]]*\])?\s*= (.*)$")
# ``{ \$927 [664:656], \$927 [647:640] } = 465'h0;``: parts of one next value set at once
_CONCAT = re.compile(r"^(\s+)\{ (.*) \}\s*= (.*)$")
_PART = re.compile(r"(\\\S+ |\w+)(\s*\[[^\]]*\])?$")
_DUMMY = re.compile(r"^\s+if \(\\\$auto\$verilog_backend\S* \) begin end$")
_TOKEN = re.compile(r"\\\S+ |[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class FoldStats:
    """What :func:`fold_next_state` did.

    Attributes
    ----------
    folded : int
        Combinational blocks turned into clocked blocks.
    registers : int
        Flip-flops folded into them.
    kept : int
        Combinational blocks left as they were.
    """

    folded: int
    registers: int
    kept: int


def _name(token: str) -> str:
    return token.strip()


def _concat_parts(line: str) -> tuple[str, str, list[tuple[str, str]], str] | None:
    """(indent, name, [(name as written, select)], value) of an assignment to a concatenation of
    selects of one signal, or None."""
    c = _CONCAT.match(line)
    if not c:
        return None
    parts = []
    for piece in c[2].split(", "):
        m = _PART.match(piece)
        if not m:
            return None
        parts.append((m[1], m[2] or ""))
    names = {_name(written) for written, _ in parts}
    if len(names) != 1:
        return None
    return c[1], names.pop(), parts, c[3]


def _targets(line: str) -> tuple[str, int] | None:
    """The signal a line of a combinational block assigns and how often it names it there."""
    a = _ASSIGN.match(line)
    if a:
        return _name(a[2]), 1
    c = _concat_parts(line)
    if c:
        return c[1], len(c[2])
    return None


def _fold_module(text: str) -> tuple[str, int, int, int]:
    lines = text.split("\n")
    # flip-flops: next value -> (line of the ``always``, register, clock)
    flops: dict[str, tuple[int, str, str]] = {}
    for i in range(len(lines) - 1):
        head = _FLOP_HEAD.match(lines[i])
        body = head and _FLOP_BODY.match(lines[i + 1])
        if body:
            flops[_name(body[2])] = (i, body[1], head[1])
    uses: dict[str, int] = {}
    for token in _TOKEN.findall(text):
        token = _name(token)
        uses[token] = uses.get(token, 0) + 1

    blocks = []
    i = 0
    while i < len(lines):
        if lines[i] == "  always @* begin":
            j = i + 1
            while j < len(lines) and lines[j] != "  end":
                j += 1
            if j == len(lines):
                break  # not the layout this pass knows: leave the rest alone
            blocks.append((i, j))
            i = j + 1
        else:
            i += 1

    rewrites: dict[int, tuple[int, list[str]]] = {}
    dropped: set[int] = set()
    folded = registers = kept = 0
    for start, end in blocks:
        body = lines[start + 1:end]
        targets: set[str] = set()
        target_lines = 0
        for line in body:
            t = _targets(line)
            if t:
                targets.add(t[0])
                target_lines += 1
        ok = bool(targets) and all(t in flops for t in targets)
        ok = ok and len({flops[t][2] for t in targets}) == 1
        if ok:
            body_uses: dict[str, int] = {}
            for line in body:
                for token in _TOKEN.findall(line):
                    token = _name(token)
                    body_uses[token] = body_uses.get(token, 0) + 1
            for t in targets:
                as_target = sum(got[1] for line in body
                                if (got := _targets(line)) and got[0] == t)
                # read nowhere else: the block's assignments, the declaration and the flip-flop
                if body_uses.get(t, 0) != as_target or uses.get(t, 0) != as_target + 2:
                    ok = False
                    break
        if not ok:
            kept += 1
            continue
        clock = flops[next(iter(targets))][2]
        new = [f"  always @(posedge {clock}) begin"]
        for line in body:
            if _DUMMY.match(line):
                continue
            a = _ASSIGN.match(line)
            c = None if a else _concat_parts(line)
            if a and _name(a[2]) in targets:
                register = flops[_name(a[2])][1]   # as written: an escaped name keeps its space
                rhs = a[4].rstrip()
                if a[3] is None and rhs.endswith(";") and rhs.rstrip(" ;") == _name(register):
                    continue  # the hold: an unassigned register keeps its value
                line = f"{a[1]}{register}{a[3] or ''} <= {rhs}"
            elif c and c[1] in targets:
                register = flops[c[1]][1]
                parts = ", ".join(f"{register}{select}" for _, select in c[2])
                line = f"{c[0]}{{ {parts} }} <= {c[3].rstrip()}"
            new.append(line)
        new.append("  end")
        rewrites[start] = (end, new)
        for t in targets:
            at = flops[t][0]
            dropped.update((at, at + 1))
        folded += 1
        registers += len(targets)

    out = []
    i = 0
    while i < len(lines):
        if i in rewrites:
            end, new = rewrites[i]
            out.extend(new)
            i = end + 1
        elif i in dropped:
            i += 1
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out), folded, registers, kept


def fold_next_state(verilog: str) -> tuple[str, FoldStats]:
    """Rewrite every foldable next-state block of ``verilog`` (see the module's docstring).

    Parameters
    ----------
    verilog : str
        Verilog as Amaranth writes it.

    Returns
    -------
    (str, FoldStats)
        The rewritten text and what was rewritten.
    """
    parts = re.split(r"(?m)^(?=module )", verilog)
    out, folded, registers, kept = [], 0, 0, 0
    for part in parts:
        if part.startswith("module "):
            part, f, r, k = _fold_module(part)
            folded, registers, kept = folded + f, registers + r, kept + k
        out.append(part)
    return "".join(out), FoldStats(folded=folded, registers=registers, kept=kept)


_DECL = re.compile(r"^\s*(?:input|output|wire|reg)\s+(?:\[(\d+):0\]\s+)?(\\\S+ |\w+)", re.M)
_SHIFT = re.compile(r"^(  assign (\\\S+ |\w+) = )(\\\S+ |\w+) >> (\\\S+ |\w+);$", re.M)


def narrow_shifts(verilog: str) -> tuple[str, int]:
    """Write each narrow result of a shift by a signal as the part-select it is.

    Amaranth writes ``value.bit_select(index, w)`` as a shift, ``assign y = value >> index;``
    with ``y`` ``w`` bits wide. Verilog evaluates the shift at the value's width and keeps the
    low ``w`` bits, and Verilator does just that: for the book's lost bits, a shift of 256 bits
    into a temporary, of which it keeps one. ``value[index +: w]`` is the same bits wherever
    ``index + w`` cannot pass the value's width (every index the signal can hold), and Verilator
    reads it from the one or two words it spans. Only those assignments are rewritten, with all
    three names declared in the module as plain vectors.

    For the simulation harness only, like :func:`fold_next_state`: synthesis reads Amaranth's
    Verilog unchanged, and the test of the folded top against the unfolded one covers it.

    Returns
    -------
    (str, int)
        The rewritten text and the number of assignments rewritten.
    """
    out, count = [], 0
    for part in re.split(r"(?m)^(?=module )", verilog):
        if part.startswith("module "):
            widths = {m.group(2): int(m.group(1) or 0) + 1 for m in _DECL.finditer(part)}

            def select(m: re.Match) -> str:
                nonlocal count
                y, value, index = widths.get(m.group(2)), widths.get(m.group(3)), \
                    widths.get(m.group(4))
                if y is None or value is None or index is None or y >= value \
                        or (1 << index) - 1 + y > value:
                    return m.group(0)
                count += 1
                return f"{m.group(1)}{m.group(3)}[{m.group(4)} +: {y}];"

            part = _SHIFT.sub(select, part)
        out.append(part)
    return "".join(out), count
