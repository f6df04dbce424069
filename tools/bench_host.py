"""Benchmark of the host side of the daemon; prints tables of measured numbers.

* Per batch, p50 / p99 in µs, for 1, 8 and 32 strategies:

  - host path: BBO records in host memory → strategies → host check → journal → order
    requests handed to the link (the link's time and the paper venue's matching excluded: the
    simulated gateware's and the simulated exchange's work);
  - strategies: strategy evaluation alone;
  - link: time in the link, i.e. the simulated gateware running in this process (on the
    board: DMA transfers), reported apart because it is not the host's;
  - journal: the journal's calls on the batch's path (its writes; with the default group
    commit its fsyncs run in a background thread);
  - venue: the paper venue's own matching (the market's moves against resting orders, the
    arrival of orders), reported apart like the link;
  - whole batch: everything the daemon does for a batch (link, venue, journal, the software
    book's catch-up, metrics), which the host path is a part of;
  - whole batch without the link: wall clock, and CPU time of the daemon's thread (which leaves
    out the time the process waited for a core on a shared machine).

* Batch decode of BBO records from a DMA-like buffer (raw bytes as an S2MM channel writes them):
  the zero-copy view, the per-batch columns the daemon reads (latency, validity, slots), and the
  strategies' per-slot summary.
* Daemon resident memory at the end of the runs.

Two feeds: the demo stream (4,000 messages, adds only: 63 batches, so its p99 is close to the
largest batch, warm-up included) and a generated order flow over the same 8 symbols with
executes, cancels, deletes and replaces (``--messages``, default 40,000: 625 batches).

Runs the daemon on the simulated gateware (needs the Verilator build; the first run builds it).
The journal uses the daemon's default fsync policy unless ``--fsync`` names another.

    python -m tools.bench_host [--batch 64] [--repeat 3] [--messages 40000] [--fsync group]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import numpy as np

from hdl import wire
from host.config import config_from_mapping
from host.daemon import Daemon, _percentile, demo_config
from host.strategy.summary import BatchSummary

_CYCLE_MASK = (1 << wire.CYCLE_STAMP_BITS) - 1
_BOTH = wire.BBO_UPDATE.flag("flags", "bid_valid") | wire.BBO_UPDATE.flag("flags", "ask_valid")


def strategies(n: int) -> list[dict]:
    """``n`` built-in strategies over the demo's 8 symbols, market makers and momentum
    alternating."""
    out = []
    for i in range(n):
        slot = i % 8
        if i % 2 == 0:
            out.append({"module": "host.strategy.builtin", "class": "MarketMaker",
                        "name": f"mm-{i}", "params": {"slot": slot, "quote_qty": 100,
                                                      "half_spread_ticks": 1 + i // 8}})
        else:
            out.append({"module": "host.strategy.builtin", "class": "ImbalanceMomentum",
                        "name": f"imb-{i}", "params": {"slot": slot, "quantity": 100}})
    return out


def run_daemon(n: int, link, batch: int, feed: bytes | None = None, fsync: str | None = None):
    # the journal of a benchmark run is removed with its folder when the run ends
    with tempfile.TemporaryDirectory(prefix="ticklane-bench-") as journal:
        base = demo_config(journal_dir=journal)
        strat = config_from_mapping({"strategies": strategies(n)}).strategies
        config = dataclasses.replace(base, strategies=strat)
        if fsync is not None:
            config = dataclasses.replace(config,
                                         journal=dataclasses.replace(config.journal, fsync=fsync))
        daemon = Daemon(config, link, batch_messages=batch, feed=feed)
        return daemon.run()


def bench_decode(records: int = 1 << 20, batch: int = 4096, repeat: int = 3) -> dict[str, float]:
    rng = np.random.default_rng(1)
    arr = wire.BBO_UPDATE.array(records)
    arr["seq"] = np.arange(records)
    arr["slot"] = rng.integers(0, 64, records)
    arr["bid_price"] = rng.integers(1_000_000, 2_000_000, records)
    arr["ask_price"] = arr["bid_price"] + 100
    arr["bid_size"] = rng.integers(1, 10_000, records)
    arr["ask_size"] = rng.integers(1, 10_000, records)
    arr["ingress_cycle"] = rng.integers(0, 1 << 32, records)
    arr["egress_cycle"] = (arr["ingress_cycle"].astype(np.int64) + 12) & _CYCLE_MASK
    arr["flags"] = _BOTH
    dma = bytearray(arr.tobytes())   # what an S2MM channel leaves in memory
    size = wire.BBO_UPDATE.size
    out = {}

    def best(fn):
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return records / min(times)

    def view():
        for at in range(0, records, batch):
            np.frombuffer(dma, wire.BBO_UPDATE.dtype, count=batch, offset=at * size)

    def columns():
        for at in range(0, records, batch):
            b = np.frombuffer(dma, wire.BBO_UPDATE.dtype, count=batch, offset=at * size)
            lat = (b["egress_cycle"].astype(np.int64) - b["ingress_cycle"]) & _CYCLE_MASK
            two_sided = (b["flags"] & _BOTH) == _BOTH
            np.unique(b["slot"])
            lat.sum(), two_sided.sum()

    def summary():
        for at in range(0, records, batch):
            BatchSummary(np.frombuffer(dma, wire.BBO_UPDATE.dtype, count=batch,
                                       offset=at * size))

    out["zero-copy view"] = best(view)
    out["view + latency, validity, slots"] = best(columns)
    out["view + per-slot summary (strategies)"] = best(summary)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="feed messages per batch")
    ap.add_argument("--repeat", type=int, default=3, help="decode repetitions (best is kept)")
    ap.add_argument("--messages", type=int, default=40_000,
                    help="messages of the generated order flow (default 40,000)")
    ap.add_argument("--fsync", choices=("group", "batch", "always", "never"), default=None,
                    help="the journal's fsync policy (default: the daemon's, group)")
    args = ap.parse_args(argv)

    from hdl.top import Top
    from host.link.sim import SimLink
    from sim.gen.itchgen import generate

    feeds = [("demo stream", None),
             (f"generated flow, {args.messages:,} messages",
              generate(3, args.messages, n_symbols=8, target_live_orders=400))]
    print("building / loading the simulated gateware ...", flush=True)
    rss = peak = 0.0
    with SimLink(Top()) as link:
        for title, feed in feeds:
            rows = [(n, run_daemon(n, link, args.batch, feed, args.fsync)) for n in (1, 8, 32)]
            rss = max(rss, *(s.rss_mb for _, s in rows))
            peak = max(peak, *(s.rss_peak_mb for _, s in rows))
            print(f"\nPer batch, {title}, {args.batch} messages per batch "
                  f"(µs; p50 / p99; {rows[0][1].batches} batches, "
                  f"{rows[0][1].bbo_records:,} BBO records)")
            cols = ("host path", "strategies", "link", "journal", "venue", "whole batch",
                    "batch - link", "batch - link, CPU")
            print(f"{'strategies':>10} | " + " | ".join(f"{c:>17}" for c in cols)
                  + f" | {'orders':>6} | {'fills':>5}")
            for n, s in rows:
                f = lambda a: f"{_percentile(a, .5):7.1f} / {_percentile(a, .99):7.1f}"  # noqa: E731
                values = (s.host_us, s.strategy_us, s.link_us, s.journal_us, s.venue_us,
                          s.cycle_us,
                          s.cycle_us - s.link_us, s.cycle_cpu_us - s.link_cpu_us)
                print(f"{n:>10} | " + " | ".join(f(v) for v in values)
                      + f" | {s.orders:>6} | {s.fills:>5}")

    print("\nBBO batch decode from a DMA-like buffer (1,048,576 records, batches of 4096)")
    for name, rate in bench_decode(repeat=args.repeat).items():
        print(f"  {name:<38} {rate / 1e6:8.2f} M records/s")

    print(f"\nDaemon resident memory: {rss:.1f} MB at the end of a run, peak {peak:.1f} MB "
          f"(before the decode benchmark's buffers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
