"""Benchmark of the gateware feed stage, measured in the Verilator batch harness.

Prints, for several real-like message mixes:

* the latency histogram in cycles, from the beat holding a message's last byte to the cycle its
  event (or host record) is first valid at the stage's output (no backpressure);
* sustained beats and messages per cycle (cycles counted from the first beat to the last one
  accepted, input always offered);
* with ``--fuzz N``, a long fuzz run of N frames per framing, scored against the model;
* LUT/FF/BRAM of the feed stage for the xc7z020 and its ECP5 fmax estimate (``tools/resources``):
  the committed report, or measured afresh with ``--synth`` (and ``--fmax``).

``python -m tools.bench_feed [--messages 200000] [--fuzz 20000] [--synth [--fmax]]``
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from hdl import wire  # noqa: E402
from host.decode import feed_harness, run_feed_gateware, split_frames  # noqa: E402
from host.feed.framing import build_packet, frame_historical  # noqa: E402
from host.feed.itch import encode_message  # noqa: E402
from sim.gen.itchgen import generate_messages  # noqa: E402
from sim.model.feed import EVENT_FIELDS, FeedConfig, run_feed_model  # noqa: E402

DATA = ROOT / ".." / "shared" / "data"


def _system_events(n: int) -> list[bytes]:
    # 'S' is the shortest ITCH message (12 bytes): back to back, the densest stream there is.
    return [encode_message({"message_type": "S", "stock_locate": 0, "tracking_number": i & 0xFFFF,
                            "timestamp": i, "event_code": "Q"}) for i in range(n)]


def _deletes(n: int) -> list[bytes]:
    # 'D' (19 bytes) is the shortest book message.
    return [encode_message({"message_type": "D", "stock_locate": 1 + i % 8, "tracking_number": 0,
                            "timestamp": i, "order_reference_number": i}) for i in range(n)]


def mixes(n: int) -> dict:
    """Message mixes by name, as (frames, config)."""
    flow = generate_messages(1, n, n_symbols=64)
    out = {
        "generated order flow (historical)": (split_frames(frame_historical(flow), 1024),
                                              FeedConfig()),
        "generated order flow (MoldUDP64)": (
            [build_packet("BENCHSESS1", 1 + i, flow[i:i + 30]) for i in range(0, len(flow), 30)],
            FeedConfig(mold=True)),
        "back-to-back S, 14 bytes each": (split_frames(frame_historical(_system_events(n)), 4096),
                                         FeedConfig()),
        "back-to-back D, 21 bytes each": (split_frames(frame_historical(_deletes(n)), 4096),
                                         FeedConfig(pass_all=True)),
    }
    sample = DATA / "itch50" / "sample.itch"
    if sample.exists():
        out["sample.itch (real, admin)"] = (split_frames(sample.read_bytes(), 1000), FeedConfig())
    return out


def measure(frames, config, harness) -> dict:
    """One run without idle or backpressure: latency histogram and rates."""
    run = run_feed_gateware(frames, config, harness=harness)
    lat = Counter((e["egress"] - e["ingress"]) % (1 << 32) for e in run.events)
    lat.update((h["egress"] - h["ingress_cycle"]) % (1 << 32) for h in run.host)
    beats = run.counters["MD_BEATS"]
    msgs = run.counters["MSGS_IN"]
    # run.cycles ends with the harness's settle time; beats were offered every cycle from the
    # first, so the cycles to take them are the beats plus the stalls (stats give both).
    stats = harness.stats()["md_in"]
    taken_cycles = stats["records"] + stats["stall_cycles"]
    return {"latency": lat, "beats": beats, "messages": msgs, "cycles": taken_cycles,
            "stalls": stats["stall_cycles"]}


def fuzz(n_frames: int, harness) -> list[str]:
    """Long fuzz run in both framings; returns the lines to print."""
    from tb_feed_streams import fuzz_frames
    lines = []
    for mold in (False, True):
        frames = fuzz_frames(1000 + mold, n_frames, mold=mold)
        cfg = FeedConfig(mold=mold, mold_join=True)
        t0 = time.perf_counter()
        exp = run_feed_model(frames, cfg)
        got = run_feed_gateware(frames, cfg, harness=harness.spawn(), idle=0.2, backpressure=0.3)
        ok = ([{k: e[k] for k in EVENT_FIELDS} for e in got.events] == exp.events
              and [(h["seq"], h["slot"]) for h in got.host]
              == [(h["seq"], h["slot"]) for h in exp.host]
              and len(got.gaps) == len(exp.gaps) and got.counters == exp.counters)
        drops = {k: got.counters[k] for k in ("DROP_BAD_LENGTH", "DROP_UNKNOWN_TYPE",
                                             "DROP_TRUNCATED", "DROP_ZERO_LENGTH")}
        lines.append(f"  {'MoldUDP64' if mold else 'historical'}: {n_frames:,} frames, "
                     f"{got.cycles:,} cycles, {len(got.events):,} events, drops {drops}: "
                     f"{'EQUAL to model' if ok else 'DIFFERS from model'} "
                     f"({time.perf_counter() - t0:.1f} s)")
        if not ok:
            raise SystemExit("\n".join(lines))
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000, help="messages per mix")
    ap.add_argument("--fuzz", type=int, default=0, help="fuzz frames per framing (0: none)")
    ap.add_argument("--synth", action="store_true",
                    help="synthesize the feed stage now (yosys) instead of printing the "
                         "committed bitstreams/pynq_z2/resources.json")
    ap.add_argument("--fmax", action="store_true",
                    help="with --synth, also place and route it on ECP5 (nextpnr-ecp5)")
    args = ap.parse_args(argv)

    harness = feed_harness(256)
    print(f"feed stage, {args.messages:,} messages per mix; cycles of the Verilated design\n")
    print(f"{'mix':40} {'beats/cyc':>9} {'msgs/cyc':>9} {'stalls':>7}  latency histogram (cycles)")
    for name, (frames, cfg) in mixes(args.messages).items():
        h = harness.spawn()
        r = measure(frames, cfg, h)
        hist = " ".join(f"{k}:{v}" for k, v in sorted(r["latency"].items()))
        print(f"{name:40} {r['beats'] / r['cycles']:9.3f} {r['messages'] / r['cycles']:9.3f} "
              f"{r['stalls']:7d}  {hist}")
    if args.fuzz:
        print("\nfuzz (idle 0.2 on input, backpressure 0.3 on every output):")
        for line in fuzz(args.fuzz, harness):
            print(line)
    print()
    from tools import resources
    resources.print_section(["feed"], fresh=args.synth, fmax=args.fmax)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
