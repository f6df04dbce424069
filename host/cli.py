"""The ``ticklane`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _percentiles(values) -> dict[str, int]:
    import numpy as np

    if len(values) == 0:
        return {"min": 0, "median": 0, "p99": 0, "max": 0}
    v = np.sort(np.asarray(values))
    # nearest-rank percentiles: every number shown is one that was measured
    def rank(p):
        return int(v[min(len(v) - 1, max(0, int(np.ceil(p * len(v))) - 1))])
    return {"min": int(v[0]), "median": rank(0.5), "p99": rank(0.99), "max": int(v[-1])}


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def cmd_replay(args) -> int:
    from hdl.top import Top
    from host.link.sim import SimLink
    from host.replay import DEMO_STREAM, replay

    path = Path(args.file) if args.file else DEMO_STREAM
    try:
        buf = path.read_bytes()
    except OSError as e:
        print(f"ticklane replay: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 2
    top = Top(slots=args.slots)
    print(f"ticklane replay: {path} ({len(buf):,} bytes) on simulated gateware "
          f"(Verilator, {top.config})", flush=True)
    with SimLink(top, idle=args.idle, backpressure=args.backpressure) as link:
        result = replay(buf, link, slots=args.slots, chunk_frames=args.refill_every)

    if args.bbo_csv:
        out = Path(args.bbo_csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.csv())
    latency_file = None
    if args.latency_out:
        from tools.latency_report import save_run
        latency_file = save_run(args.latency_out, {"md_to_bbo": result.latency_cycles},
                                *link.clock())

    lat = _percentiles(result.latency_cycles)
    c = result.counters
    rows = [
        ("messages in", f"{result.messages:,} (gateware delimited {c['MSGS_IN']:,})"),
        ("BBO updates out", f"{len(result.changes):,} (gateware {len(result.hardware_records):,}"
                            f", host-booked {result.host_rows:,})"),
        ("symbols subscribed", f"{c['FEED_SUBSCRIBED']} of {args.slots} slots"),
        ("feed→BBO latency (cycles)",
         "min {min}  median {median}  p99 {p99}  max {max}".format(**lat)),
        ("simulated cycles", f"{result.cycles:,} in {result.run_wall_s:.2f} s wall "
                             f"({result.cycles / max(result.run_wall_s, 1e-9) / 1e6:.2f} M cycles/s;"
                             f" the whole replay {result.wall_s:.2f} s)"),
        ("drops", ", ".join(f"{k.lower()} {c[k]}" for k in
                            ("DROP_BAD_LENGTH", "DROP_UNKNOWN_TYPE", "DROP_TRUNCATED",
                             "DROP_ZERO_LENGTH", "FEED_DROP_UNSUBSCRIBED",
                             "FEED_SLOT_OVERFLOW"))),
    ]
    if args.bbo_csv:
        rows.append(("BBO CSV", str(args.bbo_csv)))
    if latency_file is not None:
        rows.append(("latency", f"{latency_file} (ticklane report {latency_file})"))
    print(_table(rows))
    for note in result.notes:
        print(f"  note: {note}")
    if result.error is not None:
        print(f"ticklane replay: {path}: {result.error} — the {result.messages:,} message(s) "
              f"before it were replayed and kept", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ticklane", description="FPGA-offloaded trading pipeline.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="replay a historical ITCH file through the gateware",
                       description="Replay a file in the NASDAQ historical framing (2-byte "
                                   "big-endian length, then the message) through the simulated "
                                   "gateware and report BBO changes. Without FILE, the built-in "
                                   "demo stream is used.")
    p.add_argument("file", nargs="?", help="ITCH 5.0 file in historical framing")
    p.add_argument("--bbo-csv", metavar="OUT.csv",
                   help="write one row per change of a symbol's top of book: "
                        "seq,symbol,bid_price,bid_size,ask_price,ask_size")
    p.add_argument("--latency-out", metavar="RUN.npz",
                   help="save the per-record latencies for `ticklane report`")
    p.add_argument("--refill-every", type=int, default=None, metavar="FRAMES",
                   help="send the stream FRAMES frames at a time and refill the gateware's "
                        "flagged symbols from the host's book in between (default: the whole "
                        "stream at once; flagged symbols are then published from the host's "
                        "book)")
    p.add_argument("--slots", type=int, default=256, help="symbol slots of the book (default 256)")
    p.add_argument("--idle", type=float, default=0.0,
                   help="probability of an idle input cycle (default 0)")
    p.add_argument("--backpressure", type=float, default=0.0,
                   help="probability the host is not ready for a record on a cycle (default 0)")
    p.set_defaults(func=cmd_replay)

    import importlib
    from host.commands import COMMAND_MODULES
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
            continue  # a feature this build does not have
        module.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
