"""Cycles per second of the batch harness (sim/harness) on example designs and on the real top.

Usage::

    python -m tools.bench_harness                 # example designs
    python -m tools.bench_harness --top           # also hdl.top.Top on generated ITCH flow
    python -m tools.bench_harness --top-only      # only hdl.top.Top (the issue #7 figure)
    python -m tools.bench_harness --records 2000000 --idle-cycles 20000000

Prints one table row per scenario: records in and out, cycles clocked, wall seconds, millions of
cycles per wall second and per CPU second of this process (the second is steadier on a machine
shared with other jobs), the best of ``--repeats`` runs (five: on the shared machine, runs of one
build differ by several percent, and fresh instances of one library by a few). Times cover :meth:`Harness.run` only
(not push/pop or the build). The top runs idle, then replays generated ITCH with a beat offered
on every cycle, on half of them with backpressure on the BBO output, on one in five and on one
in ten (``idle`` is the chance that a beat is held back a cycle), and once more on every cycle with
no symbol subscribed, the book idle.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from hdl import wire
from sim.harness import Harness
from sim.harness.examples import BboCrossCheck, BboLoopback

BBO = wire.BBO_UPDATE


def _records(n: int, seed: int = 1) -> np.ndarray:
    raw = np.random.default_rng(seed).integers(0, 256, size=n * BBO.size, dtype=np.uint8)
    return raw.view(BBO.dtype)


class _Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _row(design: str, scenario: str, n_in: int, n_out: int, cycles: int, t: _Timer) -> tuple:
    return (design, scenario, n_in, n_out, cycles, t.wall,
            cycles / t.wall / 1e6 if t.wall else 0.0, cycles / t.cpu / 1e6 if t.cpu else 0.0)


def _best_of(repeats: int, run) -> tuple:
    """The row of ``run()`` with the most cycles per CPU second over ``repeats`` calls."""
    return max((run() for _ in range(max(repeats, 1))), key=lambda row: row[-1])


def _stream_scenarios(h: Harness, design: str, n: int, src: str, dst: str, records, repeats: int):
    def run(idle, bp):
        h.push(src, records)
        with _Timer() as t:
            cycles = h.run(max_cycles=1 << 40, idle={src: idle}, backpressure={dst: bp}, seed=1)
        return _row(design, f"stream idle={idle} bp={bp}", len(records), len(h.pop(dst)),
                    cycles, t)

    return [_best_of(repeats, lambda: run(idle, bp))
            for idle, bp in ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))]


def _idle_scenario(h: Harness, design: str, cycles: int) -> tuple:
    with _Timer() as t:
        ran = h.run(max_cycles=cycles, stop_when_drained=False)
    return _row(design, "no traffic", 0, 0, ran, t)


# The top's traffic scenarios after the idle one: (label, chance a beat is held back a cycle,
# chance the BBO output is not ready). A beat carries 8 bytes of the stream: on every cycle at the
# 100 MHz target that is 6.4 Gb/s (a recorded day replayed at full speed), on one in five 1.28 Gb/s
# (more than a gigabit Ethernet link carries).
TOP_TRAFFIC = (("ITCH beat on every cycle", 0.0, 0.0),
               ("beats on half, BBO backpressure", 0.5, 0.5),
               ("a beat on one cycle in five", 0.8, 0.0),
               ("a beat on one cycle in ten", 0.9, 0.0))
# Measured after them, not a pace: the same day with a beat on every cycle and no symbol
# subscribed (FEED_SUB_MODE host-only), so the feed decodes every message and the book receives
# no event. Its difference to the first scenario is what the book's logic costs.
BOOK_IDLE = "every cycle, no symbol subscribed"


def top_rows(n_messages: int, idle_cycles: int, repeats: int,
             info: dict | None = None) -> list[tuple]:
    """Rows of the whole top (:class:`hdl.top.Top`, the profile-guided build the daemon uses):
    idle, then a generated ITCH day under each of :data:`TOP_TRAFFIC`, then :data:`BOOK_IDLE`.
    ``info``, if given, receives the build's ``schedule`` and ``compiler``
    (:attr:`HarnessBuild.schedule`, :attr:`HarnessBuild.compiler`)."""
    from hdl.feed.decoder import SUB_HOST
    from host.link.beats import pack_historical
    from hdl.top import Top
    from host.link.sim import TRAINER
    from sim.gen.itchgen import generate

    top = Top()
    h = Harness.build(top, "ticklane_top", config=top.config, pgo=TRAINER,
                      dtypes={"md_in": wire.MD_BEAT.dtype, "bbo_out": BBO.dtype})
    if info is not None:
        info["schedule"] = h.build_info.schedule
        info["compiler"] = h.build_info.compiler
    h.reset()
    stream = generate(1, n_messages)
    beats = pack_historical(stream)

    def replay(label, idle, bp, sub_mode=None):
        h2 = h.spawn()  # a fresh book for each replay of the same day
        h2.reset()
        if sub_mode is not None:
            h2.write_reg(wire.REGISTERS.address("FEED_SUB_MODE") // 4, sub_mode)
        h2.push("md_in", beats)
        with _Timer() as t:
            cycles = h2.run(max_cycles=1 << 40, idle={"md_in": idle},
                            backpressure={"bbo_out": bp}, seed=1)
        row = _row("Top", label, len(beats), len(h2.pop("bbo_out")), cycles, t)
        h2.close()
        return row

    rows = [_best_of(repeats, lambda: _idle_scenario(h, "Top", idle_cycles))]
    rows += [_best_of(repeats, lambda: replay(label, idle, bp))
             for label, idle, bp in TOP_TRAFFIC]
    rows.append(_best_of(repeats, lambda: replay(BOOK_IDLE, 0.0, 0.0, SUB_HOST)))
    h.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000,
                        help="BBO records per streaming scenario (default 1,000,000)")
    parser.add_argument("--idle-cycles", type=int, default=10_000_000,
                        help="cycles of the no-traffic scenario (default 10,000,000)")
    parser.add_argument("--repeats", type=int, default=5, help="best of N per scenario")
    parser.add_argument("--top", action="store_true", help="also measure hdl.top.Top")
    parser.add_argument("--top-only", action="store_true",
                        help="measure hdl.top.Top only, not the example designs")
    parser.add_argument("--top-messages", type=int, default=100_000,
                        help="generated ITCH messages for the top (default 100,000)")
    args = parser.parse_args(argv)

    rows = []
    records = _records(args.records)
    dtypes = {"bbo_in": BBO.dtype, "bbo_out": BBO.dtype}
    # config names every constructor parameter: the Verilog cache is found by it.
    designs = (("BboFifo", lambda: BboLoopback(depth=16, registers=False), "depth16-noregs"),
               ("BboLoopback", lambda: BboLoopback(depth=16), "depth16"),
               ("BboCrossCheck", lambda: BboCrossCheck(latency=4), "latency4"))
    for design, make, config in designs if not args.top_only else ():
        h = Harness.build(make(), f"bench_{design.lower()}", config, dtypes=dtypes)
        h.reset()
        rows.append(_idle_scenario(h, design, args.idle_cycles))
        rows += _stream_scenarios(h, design, args.records, "bbo_in", "bbo_out", records,
                                  args.repeats)
        h.close()
    if args.top or args.top_only:
        info: dict = {}
        rows += top_rows(args.top_messages, max(args.idle_cycles // 10, 1), args.repeats, info)
        print(f"Top: {info['schedule']} schedule, built by {info['compiler']}")

    header = ("design", "scenario", "records in", "records out", "cycles", "wall s",
              "Mcycles/s", "Mcycles/cpu-s")
    print(f"{header[0]:<14} {header[1]:<32} {header[2]:>11} {header[3]:>11} {header[4]:>12} "
          f"{header[5]:>8} {header[6]:>10} {header[7]:>14}")
    for design, scenario, n_in, n_out, cycles, wall, rate, cpu_rate in rows:
        print(f"{design:<14} {scenario:<32} {n_in:>11,} {n_out:>11,} {cycles:>12,} "
              f"{wall:>8.3f} {rate:>10.2f} {cpu_rate:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
