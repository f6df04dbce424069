"""Benchmark of the host side of the daemon; prints tables of measured numbers.

* Host path per batch (BBO records in host memory → strategies → host check → journal → order
  requests handed to the link; link time excluded), p50 / p99 in µs, for 1, 8 and 32 strategies,
  with strategy evaluation alone beside it and the whole cycle (simulated link, venue, fsync).
* Batch decode of BBO records from a DMA-like buffer (raw bytes as an S2MM channel writes them):
  the zero-copy view, the per-batch columns the daemon reads (latency, validity, slots), and the
  strategies' per-slot summary.
* Daemon resident memory at the end of the demo run.

Runs the daemon on the simulated gateware (needs the Verilator build; the first run builds it).

    python -m tools.bench_host [--batch 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
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


def run_daemon(n: int, link, batch: int):
    base = demo_config(journal_dir=tempfile.mkdtemp(prefix="ticklane-bench-"))
    strat = config_from_mapping({"strategies": strategies(n)}).strategies
    config = dataclasses.replace(base, strategies=strat)
    daemon = Daemon(config, link, batch_messages=batch)
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
    args = ap.parse_args(argv)

    from hdl.top import Top
    from host.link.sim import SimLink

    print("building / loading the simulated gateware ...", flush=True)
    with SimLink(Top()) as link:
        rows = []
        rss = 0.0
        for n in (1, 8, 32):
            s = run_daemon(n, link, args.batch)
            rows.append((n, s))
            rss = max(rss, s.rss_mb)
    print(f"\nHost path per batch, demo stream, {args.batch} messages per batch "
          f"(µs; p50 / p99; {rows[0][1].batches} batches)")
    print(f"{'strategies':>10} | {'host path':>17} | {'strategies only':>17} | "
          f"{'full cycle':>17} | {'orders':>6} | {'fills':>5}")
    for n, s in rows:
        f = lambda a: f"{_percentile(a, .5):7.1f} / {_percentile(a, .99):7.1f}"  # noqa: E731
        print(f"{n:>10} | {f(s.host_us)} | {f(s.strategy_us)} | {f(s.cycle_us)} | "
              f"{s.orders:>6} | {s.fills:>5}")

    print("\nBBO batch decode from a DMA-like buffer (1,048,576 records, batches of 4096)")
    for name, rate in bench_decode(repeat=args.repeat).items():
        print(f"  {name:<38} {rate / 1e6:8.2f} M records/s")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nDaemon resident memory: {rss:.1f} MB at the end of a run "
          f"(process peak {peak:.1f} MB, decode buffers included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
