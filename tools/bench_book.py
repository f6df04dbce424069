"""Benchmark of the book stage: a long replay against the model, rate, latency, resources.

Prints tables of measured numbers (nothing here passes or fails on timing):

1. Replay: ``--messages`` seeded ITCH messages (edge cases on, thousands of live orders, many
   symbols) as book events through :class:`hdl.book.standalone.StandaloneBook` in the C++ batch
   harness, every record compared with :class:`sim.model.book_hw.HardwareBook`; the refill and
   table-full counts; the sustained rate in cycles per event with the input always offered.
2. Latency through feed and book: a generated stream through the feed stage (which stamps the
   cycle of each message's last byte) into the book stage (slots resolved by the feed), records
   compared with the model, histogram in cycles and in ns at the clock given.
3. Resources: Yosys ``synth_xilinx`` counts on the xc7z020 of the book stage as the top builds it,
   and its ECP5 fmax estimate, each labelled with its source: from the committed
   ``bitstreams/pynq_z2/resources.json``, or measured afresh with ``--synth`` (``--fmax``).

Usage::

    python -m tools.bench_book [--messages 1000000] [--symbols 64] [--synth [--fmax]]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hdl import wire
from hdl.book.standalone import StandaloneBook
from hdl.feed.events import EventKind
from sim.gen.itchgen import generate_messages
from sim.harness import Harness
from sim.model.book_hw import HardwareBook, itch_events, pack_events
from sim.scoreboard import compare_bbo

__all__ = ["main"]

CHUNK = 100_000


def _replay(args) -> None:
    params = dict(slots=args.slots, levels=args.levels, order_ways=args.ways,
                  order_sets=args.sets)
    t0 = time.perf_counter()
    msgs = generate_messages(args.seed, args.messages, n_symbols=args.symbols, edge_cases=True,
                             target_live_orders=args.live_orders)
    events = itch_events(msgs)
    t1 = time.perf_counter()
    hw = HardwareBook(**params)
    expected = hw.run(events)
    t2 = time.perf_counter()
    book = StandaloneBook(**params)
    h = Harness.build(book, "ticklane_book_bench", config=book.config,
                      dtypes={"bbo": wire.BBO_UPDATE.dtype})
    t3 = time.perf_counter()
    h.reset()
    got, cycles = [], 0
    for lo in range(0, len(events), CHUNK):
        h.push("events", pack_events(events[lo:lo + CHUNK]))
        cycles += h.run(max_cycles=50 * CHUNK)
        got.append(h.pop("bbo"))
    t4 = time.perf_counter()
    got = np.concatenate(got)
    compare_bbo(got, expected)
    flags_equal = bool(np.array_equal(got["flags"], expected["flags"]))
    kinds = np.bincount([ev["kind"] for ev in events], minlength=9)
    replaces = int(kinds[EventKind.REPLACE.value])
    print(f"\n== replay: {args.messages:,} ITCH messages, {len(events):,} book events, "
          f"{args.symbols} symbols, build {book.config}")
    print(f"  records: hardware {len(got):,}  model {len(expected):,}  "
          f"equal: {'yes' if flags_equal else 'NO (flags)'}")
    print(f"  live orders at end {len(hw.table):,}; table-full adds {hw.counts['table_full']}; "
          f"symbols lost {len(hw.lost)}; refill transitions {hw.counts['refill']}; "
          f"records with refill {int((got['flags'] & wire.BBO_UPDATE.flag('flags', 'refill') > 0).sum()):,}")
    print(f"  cycles {cycles:,} for {len(events):,} events: {cycles / len(events):.3f} cycles/event "
          f"(replaces {replaces:,}: 2 cycles each; the rest 1; the settle tail included)")
    print(f"  wall: generate {t1 - t0:.1f}s  model {t2 - t1:.1f}s  build {t3 - t2:.1f}s  "
          f"harness {t4 - t3:.1f}s ({cycles / max(t4 - t3, 1e-9) / 1e6:.2f} Mcycles/s)")


class _FeedAndBook:
    """Feed stage into book stage (slots resolved by the feed), with a cycle counter."""

    def __new__(cls, slots: int):
        from amaranth import Module, Signal
        from amaranth.lib import stream, wiring
        from amaranth.lib.wiring import In, Out, connect
        from hdl.book.stage import BookStage
        from hdl.feed.stage import FeedStage

        class FeedAndBook(wiring.Component):
            def __init__(self):
                self.feed = FeedStage(slots=slots, host_streams=True)
                self.book = BookStage(slots=slots, assign_slots=False)
                members = {"md_in": In(stream.Signature(wire.MD_BEAT.layout)),
                           "bbo_out": Out(stream.Signature(wire.BBO_UPDATE.layout))}
                for name in ("host_records", "gaps"):
                    members[name] = Out(self.feed.signature.members[name].signature.flip()
                                        .flip())
                super().__init__(members)

            def elaborate(self, platform):
                m = Module()
                m.submodules.feed, m.submodules.book = self.feed, self.book
                cycle = Signal(64)
                m.d.sync += cycle.eq(cycle + 1)
                m.d.comb += [self.feed.cycle.eq(cycle), self.book.cycle.eq(cycle)]
                connect(m, wiring.flipped(self.md_in), self.feed.beats)
                connect(m, self.feed.events, self.book.events)
                connect(m, self.book.bbo, wiring.flipped(self.bbo_out))
                connect(m, self.feed.host_records, wiring.flipped(self.host_records))
                connect(m, self.feed.gaps, wiring.flipped(self.gaps))
                return m

        return FeedAndBook()


def _latency(args) -> None:
    from sim.tb import md_beats

    msgs = generate_messages(args.seed, 20_000, n_symbols=16, edge_cases=True,
                             target_live_orders=500)
    from host.feed.framing import frame_historical
    stream = frame_historical(msgs)
    design = _FeedAndBook(64)
    h = Harness.build(design, "ticklane_feedbook_bench", config="s64",
                      dtypes={"bbo_out": wire.BBO_UPDATE.dtype})
    h.reset()
    beats = md_beats(stream)
    rows = np.frombuffer(b"".join(b.to_bytes(wire.MD_BEAT.size, "little") for b in beats),
                         dtype=wire.MD_BEAT.dtype)
    h.push("md_in", rows)
    cycles = h.run(max_cycles=10 * len(rows))
    got = h.pop("bbo_out")
    hw = HardwareBook(slots=64, levels=design.book.levels, order_ways=design.book.order_ways,
                      order_sets=design.book.order_sets)
    expected = hw.run(itch_events(msgs))
    compare_bbo(got, expected)
    lat = (got["egress_cycle"].astype(np.int64) - got["ingress_cycle"]) % (1 << 32)
    values, counts = np.unique(lat, return_counts=True)
    print(f"\n== latency, last byte in -> BBO record out, through feed and book "
          f"({len(got):,} records equal to the model, {len(msgs):,} messages, "
          f"{len(beats):,} beats in {cycles:,} cycles)")
    est = _slowest_estimate(("feed", "book"))
    head = f"  {'cycles':>6} {'ns @' + str(args.clock_mhz) + 'MHz':>12}"
    if est:
        head += f" {'ns @' + format(est[0], '.1f') + 'MHz':>14}"
    print(head + f" {'records':>9}")
    for v, c in zip(values.tolist(), counts.tolist()):
        row = f"  {v:>6} {v * 1000 / args.clock_mhz:>12.1f}"
        if est:
            row += f" {v * 1000 / est[0]:>14.1f}"
        print(row + f" {c:>9,}")
    print(f"  ns @{args.clock_mhz:g}MHz: the PYNQ-Z2 build target (not timing-closed: no Vivado)")
    if est:
        print(f"  ns @{est[0]:.1f}MHz: the slower of the feed and book stages' fmax, {est[1]}, "
              f"gateware {est[2]} (bitstreams/pynq_z2/RESOURCES.md)")


def _slowest_estimate(stages) -> tuple[float, str, str] | None:
    """(MHz, label, design) of the slowest committed fmax estimate among ``stages``."""
    from tools import resources

    fmax = resources.load_report().get("fmax", {})
    found = [fmax[s] for s in stages if s in fmax and fmax[s].get("fmax_mhz")]
    if not found:
        return None
    slowest = min(found, key=lambda f: f["fmax_mhz"])
    return float(slowest["fmax_mhz"]), slowest["label"], slowest.get("design", "?")


def _resources(args) -> None:
    from tools import resources

    print("\n== resources of the book stage as the top builds it")
    resources.print_section(["book"], fresh=args.synth, fmax=args.fmax)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--symbols", type=int, default=64)
    p.add_argument("--live-orders", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slots", type=int, default=256)
    p.add_argument("--levels", type=int, default=8)
    p.add_argument("--ways", type=int, default=16)
    p.add_argument("--sets", type=int, default=512)
    p.add_argument("--clock-mhz", type=float, default=100.0,
                   help="clock for the ns column (quote the synthesis estimate it rests on)")
    p.add_argument("--no-replay", action="store_true")
    p.add_argument("--no-latency", action="store_true")
    p.add_argument("--synth", action="store_true",
                   help="synthesize the book now instead of printing the committed report")
    p.add_argument("--fmax", action="store_true",
                   help="with --synth, also place and route it on ECP5 (nextpnr-ecp5)")
    args = p.parse_args(argv)
    if not args.no_replay:
        _replay(args)
    if not args.no_latency:
        _latency(args)
    _resources(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
