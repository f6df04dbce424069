"""``make bench``: the benchmark suite. Prints tables of measured numbers and writes JSON.

Sections (each can be skipped with ``--skip NAME``):

* ``replay``: a generated ITCH stream through the whole top on the C++ harness: feed → BBO latency
  (cycles), sustained messages per cycle, simulated messages per second of wall time, harness
  cycles per second;
* ``orders``: random order requests through the risk gate: order → verdict latency, orders per
  cycle;
* ``harness``: the harness's speed on the whole top (the profile-guided build the daemon uses), idle
  and under ITCH traffic from a beat on every cycle to one in ten (``tools/bench_harness.py``),
  in cycles per CPU second and per wall second, against the goal of 5 million;
* ``cocotb``: a top driven by cocotb, pin by pin, and the harness on the same top and stream, to
  compare their speeds;
* ``host``: the host path per batch (``tools/bench_host.py``) and the resident memory of a
  process running only the daemon, with each run's orders sent, refusals by reason and the
  daemon's alerts (counted here, not logged);
* ``resources``: LUT / FF / BRAM / DSP of each stage and the top for the xc7z020 from Yosys
  ``synth_xilinx``, and fmax estimates from nextpnr-ecp5, labelled as such (no Zynq
  place-and-route is open): the committed ``bitstreams/pynq_z2/resources.json``, or measured
  in this run with ``--synth`` (and ``--fmax``).

Nothing here passes or fails on timing: it measures and reports.

    python -m tools.bench [--messages N] [--skip resources] [--synth [--fmax]] [--json out/bench.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hdl import wire


def _pct(values) -> dict:
    v = np.sort(np.asarray(values, dtype=np.int64))
    if not len(v):
        return {}

    def rank(p):
        return int(v[min(len(v) - 1, max(0, int(np.ceil(p * len(v))) - 1))])
    return {"count": int(len(v)), "min": int(v[0]), "p50": rank(0.5), "p99": rank(0.99),
            "max": int(v[-1])}


def bench_replay(n_messages: int, seed: int) -> dict:
    from hdl.top import Top
    from host.link.sim import SimLink
    from host.replay import replay
    from sim.gen.itchgen import generate

    out = {}
    for mix, types in (("adds (A/F)", "AF"), ("full order flow", "all")):
        buf = generate(seed, n_messages, n_symbols=32, types=types)
        with SimLink(Top()) as link:
            t0 = time.perf_counter()
            result = replay(buf, link, slots=256)
            total = time.perf_counter() - t0
        out[mix] = {
            "messages": result.messages,
            "bytes": len(buf),
            "cycles": result.cycles,
            "messages_per_cycle": result.messages / max(result.cycles, 1),
            "sim_wall_s": result.run_wall_s,
            "sim_messages_per_s": result.messages / max(result.run_wall_s, 1e-9),
            "harness_mcycles_per_s": result.cycles / max(result.run_wall_s, 1e-9) / 1e6,
            "replay_wall_s": result.wall_s,
            "replay_messages_per_s": result.messages / max(result.wall_s, 1e-9),
            "replay_total_s": total,
            "md_to_bbo_cycles": _pct(result.latency_cycles),
            "hardware_records": int(len(result.hardware_records)),
            "host_rows": result.host_rows,
        }
    return out


def _permissive_limits(link) -> None:
    for i in range(wire.RISK_SLOTS):
        link.write_reg("RISK_SYMBOL_CONTROL", 1, i)
        link.write_reg("RISK_MAX_ORDER_QTY", 1_000_000, i)
        link.write_reg("RISK_MAX_LONG", 1 << 30, i)
        link.write_reg("RISK_MAX_SHORT", 1 << 30, i)
    link.write_reg("RISK_MAX_NOTIONAL_LO", 0xFFFF_FFFF)
    link.write_reg("RISK_MAX_NOTIONAL_HI", 0xFF)
    link.write_reg("RISK_COLLAR_CONFIG", 0)
    link.write_reg("RISK_MAX_OPEN_ORDERS", 1 << 20)
    link.write_reg("RISK_RATE_SHIFT", 0)
    link.write_reg("RISK_RATE_BURST", 65535)
    link.write_reg("RISK_SYMBOL_RATE_SHIFT", 0)
    link.write_reg("RISK_SYMBOL_RATE_BURST", 65535)
    link.write_reg("RISK_COMMIT", 1)


def bench_orders(n_orders: int, seed: int) -> dict:
    from hdl.top import Top
    from host.link.sim import SimLink

    rng = np.random.default_rng(seed)
    with SimLink(Top()) as link:
        _permissive_limits(link)
        reqs = wire.ORDER_REQUEST.array(n_orders)
        reqs["client_order_id"] = np.arange(1, n_orders + 1)
        reqs["price"] = rng.integers(1, 10_000, n_orders)
        reqs["quantity"] = rng.integers(1, 1_000, n_orders)
        reqs["slot"] = rng.integers(0, wire.RISK_SLOTS, n_orders)
        reqs["kind"] = wire.ORDER_KIND_NEW
        reqs["flags"] = rng.integers(0, 2, n_orders)
        link.send("order_in", reqs)
        stats = link.run()
        verdicts = link.receive("verdict_out")
        accepted = link.receive("order_out")
    latency = (verdicts["egress_cycle"].astype(np.int64) - verdicts["ingress_cycle"]) % (1 << 32)
    return {
        "orders": n_orders,
        "verdicts": int(len(verdicts)),
        "accepted": int(len(accepted)),
        "cycles": stats.cycles,
        "orders_per_cycle": n_orders / max(stats.cycles, 1),
        "order_to_verdict_cycles": _pct(latency),
    }


HARNESS_GOAL_MCYCLES = 5.0   # the harness's goal on the whole top, million cycles per second


def bench_harness_speed(n_messages: int, idle_cycles: int, repeats: int,
                        info: dict | None = None) -> list[dict]:
    """The harness table's rows; ``paced`` is false for :data:`tools.bench_harness.BOOK_IDLE`, a
    measure of the book's share, not a load the goal is judged on. ``info`` receives the build's
    schedule and compiler (see :func:`tools.bench_harness.top_rows`)."""
    from tools.bench_harness import BOOK_IDLE, top_rows

    return [{"scenario": scenario, "beats": n_in, "bbo_records": n_out, "cycles": cycles,
             "wall_s": wall, "mcycles_per_wall_s": rate, "mcycles_per_cpu_s": cpu_rate,
             "paced": scenario != BOOK_IDLE}
            for _, scenario, n_in, n_out, cycles, wall, rate, cpu_rate
            in top_rows(n_messages, idle_cycles, repeats, info)]


def bench_cocotb(n_messages: int, seed: int) -> dict:
    from cocotb_tools.check_results import get_results

    from hdl.top import Top
    from sim.cocotb_run import run_cocotb
    from sim.gen.itchgen import generate
    from sim.reference import expected_bbo_records

    # the testbench module lives in tests/; the cocotb runner takes its PYTHONPATH from sys.path
    tests_dir = str(Path(__file__).resolve().parents[1] / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    slots = 16
    buf = generate(seed, n_messages, n_symbols=8, types="AF")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "s.itch").write_bytes(buf)
        np.save(tmp / "e.npy", expected_bbo_records(buf, slots=slots))
        results = run_cocotb(Top(slots=slots), toplevel="ticklane_top", config=f"slots{slots}",
                             test_module="tb_top",
                             env={"TICKLANE_TB_STREAM": tmp / "s.itch",
                                  "TICKLANE_TB_EXPECTED": tmp / "e.npy",
                                  "TICKLANE_TB_STATS": tmp / "stats.json"},
                             log_file=tmp / "cocotb.log")    # the tables stay readable
        tests, failed = get_results(results)
        if failed:
            print((tmp / "cocotb.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        stats = json.loads((tmp / "stats.json").read_text())
    harness = _harness_on_stream(Top(slots=slots), buf, slots)
    return {"messages": n_messages, "design": f"Top(slots={slots})", "cycles": stats["cycles"],
            "wall_s": stats["wall_s"], "cycles_per_s": stats["cycles"] / stats["wall_s"],
            "scoreboard_passed": failed == 0, "harness_same_run": harness}


def _harness_on_stream(top, buf: bytes, slots: int, repeats: int = 5) -> dict:
    """The harness on the design and stream cocotb drove (best of ``repeats`` fresh runs):
    cycles per second of the simulation alone, as cocotb's figure is."""
    from host.link.sim import SimLink
    from host.replay import replay

    best = None
    with SimLink(top) as link:
        for _ in range(repeats):
            link.power_on()
            result = replay(buf, link, slots=slots)
            rate = result.cycles / max(result.run_wall_s, 1e-9)
            if best is None or rate > best["cycles_per_s"]:
                best = {"cycles": result.cycles, "wall_s": result.run_wall_s,
                        "cycles_per_s": rate}
    return best


def bench_host() -> dict:
    """The host section, run in a process of its own: its resident memory is then the daemon's
    (with the simulated gateware it drives), not this benchmark's."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "host.json"
        code = ("import json, sys; from pathlib import Path; from tools.bench import "
                "_host_section; Path(sys.argv[1]).write_text(json.dumps(_host_section()))")
        done = subprocess.run([sys.executable, "-c", code, str(out)],
                              cwd=Path(__file__).resolve().parents[1])
        if done.returncode:
            raise RuntimeError(f"the host section's process failed ({done.returncode})")
        return json.loads(out.read_text())


def _host_section() -> dict:
    from hdl.top import Top
    from host.link.sim import SimLink
    from tools.bench_host import bench_decode, run_daemon

    out = {}
    # The daemon logs each alert as it starts; here they are counted in the table instead.
    alert_log = logging.getLogger("ticklane.alerts")
    was_disabled, alert_log.disabled = alert_log.disabled, True
    try:
        with SimLink(Top()) as link:
            for n in (1, 8, 32):
                s = run_daemon(n, link, 64)
                out[f"{n} strategies"] = {
                    "host_path_us": _pct_float(s.host_us),
                    "strategies_us": _pct_float(s.strategy_us),
                    "venue_us": _pct_float(s.venue_us), "whole_batch_us": _pct_float(s.cycle_us),
                    "rss_mb": s.rss_mb, "orders": s.orders, "rejects": dict(s.rejects),
                    "alerts": [f"{a.kind}: {a.message}" for a in s.alerts if a.active]}
    finally:
        alert_log.disabled = was_disabled
    out["bbo_decode_records_per_s"] = bench_decode(repeat=2)
    out["pid"] = os.getpid()
    return out


def _pct_float(values) -> dict:
    v = np.sort(np.asarray(values, dtype=float))
    if not len(v):
        return {}
    return {"p50": float(v[min(len(v) - 1, int(np.ceil(0.5 * len(v))) - 1)]),
            "p99": float(v[min(len(v) - 1, int(np.ceil(0.99 * len(v))) - 1)])}


def bench_resources(fresh: bool, fmax: bool) -> dict:
    """Resources of every stage and the top: the committed report, or measured now."""
    from tools import resources

    return resources.print_section(None, fresh=fresh, fmax=fmax)


def _print_table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max((len(k) for k, _ in rows), default=0)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def _fmt_pct(p: dict) -> str:
    return "  ".join(f"{k} {p[k]}" for k in ("min", "p50", "p99", "max") if k in p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="ticklane benchmark suite")
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--cocotb-messages", type=int, default=3_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip", action="append", default=[],
                    choices=["replay", "orders", "harness", "cocotb", "host", "resources"])
    ap.add_argument("--harness-messages", type=int, default=100_000,
                    help="generated ITCH messages per traffic scenario of the harness section")
    ap.add_argument("--harness-repeats", type=int, default=5, help="best of N per scenario")
    ap.add_argument("--synth", action="store_true",
                    help="synthesize every stage now (minutes) instead of printing the "
                         "committed bitstreams/pynq_z2/resources.json")
    ap.add_argument("--fmax", action="store_true",
                    help="with --synth, also place and route on ECP5 (nextpnr-ecp5)")
    ap.add_argument("--json", type=Path, default=Path("out") / "bench.json")
    args = ap.parse_args(argv)

    report = {}
    if "replay" not in args.skip:
        report["replay"] = r = bench_replay(args.messages, args.seed)
        for mix, x in r.items():
            _print_table(f"feed → book, {mix}: {x['messages']:,} messages", [
                ("feed→BBO latency (cycles)", _fmt_pct(x["md_to_bbo_cycles"])),
                ("sustained messages / cycle", f"{x['messages_per_cycle']:.3f}"),
                ("simulated messages / s (wall)", f"{x['sim_messages_per_s']:,.0f}"),
                ("harness speed", f"{x['harness_mcycles_per_s']:.2f} M cycles/s"),
                ("replay end to end (packing, runs, records)",
                 f"{x['replay_messages_per_s']:,.0f} messages/s"),
                ("BBO records (gateware / host-booked)",
                 f"{x['hardware_records']:,} / {x['host_rows']:,}"),
            ])
    if "orders" not in args.skip:
        report["orders"] = o = bench_orders(args.orders, args.seed)
        _print_table(f"risk gate: {o['orders']:,} orders", [
            ("order→verdict latency (cycles)", _fmt_pct(o["order_to_verdict_cycles"])),
            ("orders / cycle", f"{o['orders_per_cycle']:.3f}"),
            ("accepted", f"{o['accepted']:,}"),
        ])
    if "harness" not in args.skip:
        info: dict = {}
        report["harness"] = rows = bench_harness_speed(args.harness_messages, 1_000_000,
                                                       args.harness_repeats, info)
        report["harness_schedule"] = info["schedule"]
        report["harness_compiler"] = info["compiler"]
        paced = [r for r in rows if r["paced"]]
        missed = [r["scenario"] for r in paced if r["mcycles_per_cpu_s"] < HARNESS_GOAL_MCYCLES]
        report["harness_goal_mcycles"] = HARNESS_GOAL_MCYCLES
        table = [(r["scenario"] + ("" if r["paced"] else " (the book's share)"),
                  f"{r['mcycles_per_cpu_s']:6.2f}  {r['mcycles_per_wall_s']:6.2f}"
                  f"   ({r['cycles']:,} cycles)") for r in rows]
        verdict = f"met in {len(paced) - len(missed)} of {len(paced)} scenarios"
        if missed:
            verdict += "; not: " + ", ".join(missed)
        table.append((f"goal {HARNESS_GOAL_MCYCLES:g} M cycles/s", verdict))
        table.append(("schedule of the model's regions", info["schedule"]))
        table.append(("compiled by", info["compiler"]))
        _print_table(f"harness speed, whole top (best of {args.harness_repeats}; M cycles per "
                     "CPU second, per wall second)", table)
    if "cocotb" not in args.skip:
        report["cocotb"] = c = bench_cocotb(args.cocotb_messages, args.seed)
        h = c["harness_same_run"]
        report["harness_vs_cocotb"] = h["cycles_per_s"] / c["cycles_per_s"]
        rows = [("cocotb driving speed", f"{c['cycles_per_s']:,.0f} cycles/s "
                                         f"({c['cycles']:,} cycles in {c['wall_s']:.1f} s)"),
                ("harness, same top and stream", f"{h['cycles_per_s']:,.0f} cycles/s "
                                                 f"({h['cycles']:,} cycles in "
                                                 f"{h['wall_s'] * 1e3:.1f} ms, best of 5)"),
                ("harness / cocotb", f"{report['harness_vs_cocotb']:.0f}×")]
        _print_table(f"simulation speed, {c['design']}, {c['messages']:,} generated adds", rows)
    if "host" not in args.skip:
        report["host"] = h = bench_host()
        rows = []
        for k, v in h.items():
            if k.endswith("strategies"):
                rows.append((f"{k}: host path / strategies / whole batch (µs p50, p99)",
                             " / ".join(f"{v[x].get('p50', 0):.0f}, {v[x].get('p99', 0):.0f}"
                                        for x in ("host_path_us", "strategies_us",
                                                  "whole_batch_us"))
                             + f"   RSS {v['rss_mb']:.0f} MB (the daemon's process)"))
                refused = sum(v["rejects"].values())
                by = ", ".join(f"{k} {n:,}" for k, n in sorted(v["rejects"].items()))
                rows.append(("  orders sent / refusals, alerts",
                             f"{v['orders']:,} / {refused:,}" + (f" ({by})" if refused else "")
                             + (f"; {'; '.join(v['alerts'])}" if v["alerts"] else "; no alert")))
        for name, rate in h["bbo_decode_records_per_s"].items():
            rows.append((f"BBO decode: {name}", f"{rate / 1e6:.1f} M records/s"))
        _print_table("host", rows)
    report["resident_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if "resources" not in args.skip:
        print("\nresources, xc7z020")
        report["resources"] = bench_resources(args.synth, args.fmax)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
