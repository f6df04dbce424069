"""Latency histograms per path, from cycle stamps.

Every output record carries the cycle at which its input entered and the cycle at which it left
(:mod:`hdl.wire`), so latency is an exact count of cycles. What "left" means differs by path:
feed → BBO (``md_to_bbo``) ends when the book writes the record into its output queue, so a
record's wait there for a backpressured reader is not in it; order → verdict
(``order_to_verdict``) ends when the risk gate registers its verdict on its output, and the gate
decides only while its outputs have room, so a stalled reader delays it and shows in it.
Nanoseconds are cycles divided by the clock the design is built for; that clock figure is only as
good as its source (a synthesis or timing estimate, or the board's configured FCLK), so the
source is written next to every number.

Input: per-path arrays of latencies in cycles, or in nanoseconds for a path whose name ends in
``_ns`` (the host's own paths, such as its tick → order loop, timed by the host's clock).

* JSON: ``{"clock_mhz": 100.0, "clock_source": "...", "paths": {"md_to_bbo": [12, 13, ...]}}``
* npz: one array per path; optional 0-d arrays ``clock_mhz`` and ``clock_source``.

Output in ``out_dir``: ``latency.json`` (count, min, p50, p90, p99, p99.9, max in cycles and ns,
and the unit the path was measured in), ``index.html`` and one PNG histogram per path. A path
measured in cycles converts to ns at the clock; a path measured in ns converts to cycles of that
clock, for comparison only.

Quantiles are nearest-rank (numpy ``method="inverted_cdf"``): each is a latency that was observed.

CLI::

    python -m tools.latency_report stamps.json --out out/latency [--clock-mhz 100 --clock-source ..]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["QUANTILES", "unit_of", "summarize", "build_report", "save_run", "load_input",
           "InputError", "main"]

# (label, quantile) pairs of the summary.
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999))
# How they are taken, as the report states it.
QUANTILE_METHOD = ("nearest rank (numpy method 'inverted_cdf'): the smallest observed latency "
                   "with at least that fraction of the samples at or below it")


def unit_of(name: str) -> str:
    """``"ns"`` for a path whose name ends in ``_ns`` (host time), else ``"cycles"``."""
    return "ns" if name.endswith("_ns") else "cycles"


def _as_counts(name: str, values, unit: str = "cycles") -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"path {name!r}: expected a 1-D array of latencies, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)) \
                or not np.all(arr == np.round(arr)):
            what = "whole cycle counts" if unit == "cycles" else "whole nanoseconds"
            raise ValueError(f"path {name!r}: latencies must be {what}")
    if arr.size and (arr.max() > np.iinfo(np.int64).max
                     or (np.issubdtype(arr.dtype, np.floating) and arr.max() >= 2.0 ** 63)):
        raise ValueError(f"path {name!r}: a latency of {arr.max()} {unit} is beyond 2**63 - 1; "
                         f"stamps must be differenced modulo the counter width first")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        hint = ("stamps must be differenced modulo the counter width first" if unit == "cycles"
                else "a latency cannot be negative")
        raise ValueError(f"path {name!r}: negative latency {int(arr.min())} {unit}; {hint}")
    return arr


def summarize(values: np.ndarray, clock_mhz: float, unit: str = "cycles") -> dict:
    """Count, min, quantiles and max of one path, in cycles and nanoseconds.

    Parameters
    ----------
    values : numpy.ndarray
        1-D latencies in whole cycles (``unit="cycles"``) or whole nanoseconds (``"ns"``).
    clock_mhz : float
        Clock the cycles and nanoseconds are converted at.
    unit : str
        What ``values`` count. The quantiles are taken in that unit, so each is a latency that
        was observed; the other unit is converted from it (cycles → ns exactly at the clock;
        ns → cycles to 0.1 of a cycle).

    Returns
    -------
    dict
        ``{"count": n, "unit": unit, "cycles": {...}, "ns": {...}}``; the inner dicts have keys
        ``min``, ``p50``, ``p90``, ``p99``, ``p99.9``, ``max`` and are empty when ``n`` is 0.
    """
    if unit not in ("cycles", "ns"):
        raise ValueError(f"unit must be 'cycles' or 'ns', not {unit!r}")
    values = _as_counts("summary", values, unit)
    out = {"count": int(values.size), "unit": unit, "cycles": {}, "ns": {}}
    if values.size == 0:
        return out
    stats = {"min": int(values.min())}
    for label, q in QUANTILES:
        stats[label] = int(np.quantile(values, q, method="inverted_cdf"))
    stats["max"] = int(values.max())
    if unit == "cycles":
        out["cycles"] = stats
        out["ns"] = {k: v * 1000.0 / clock_mhz for k, v in stats.items()}
    else:
        out["ns"] = stats
        out["cycles"] = {k: round(v * clock_mhz / 1000.0, 1) for k, v in stats.items()}
    return out


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "path"


def _plot(name: str, values: np.ndarray, stats: dict, clock_mhz: float, clock_source: str,
          path: Path, unit: str = "cycles") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    if unit == "cycles":
        x, marks, label_of = values, stats, (lambda v: f"{v} cycles")
        # One bin per cycle while that stays readable, otherwise 200 even bins.
        lo, hi = int(values.min()), int(values.max())
        bins = np.arange(lo, hi + 2) - 0.5 if hi - lo < 200 else 200
        ax.set_xlabel("latency (cycles)")
        sec = ax.secondary_xaxis("top", functions=(lambda c: c * 1000.0 / clock_mhz,
                                                   lambda ns: ns * clock_mhz / 1000.0))
        sec.set_xlabel(f"ns at {clock_mhz:g} MHz")
    else:
        x = values / 1000.0
        marks = {k: v / 1000.0 for k, v in stats.items()}
        label_of = (lambda v: f"{v:.1f} µs")
        bins = 200 if values.min() != values.max() else 1
        ax.set_xlabel("latency (µs, host clock)")
        sec = ax.secondary_xaxis("top", functions=(lambda us: us * clock_mhz,
                                                   lambda c: c / clock_mhz))
        sec.set_xlabel(f"cycles at {clock_mhz:g} MHz (for comparison)")
    ax.hist(x, bins=bins, color="#3a6ea5", edgecolor="none")
    ax.set_yscale("log")
    ax.set_ylabel("count")
    for label, color in (("p50", "#2a9d3f"), ("p99", "#e08a00"), ("p99.9", "#c0392b")):
        ax.axvline(marks[label], color=color, linestyle="--", linewidth=1,
                   label=f"{label} = {label_of(marks[label])}")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{name}: {values.size} samples", fontsize=10)
    # the clock's source is a sentence or more: wrapped to the figure's width, not cut off
    note = textwrap.wrap(f"clock: {clock_source}", 150)
    fig.text(0.01, 0.01, "\n".join(note), fontsize=7, color="#555555", va="bottom")
    fig.tight_layout(rect=(0, 0.01 + 0.03 * len(note), 1, 1))
    fig.savefig(path)
    plt.close(fig)


def _html(summary: dict, images: dict) -> str:
    clock = summary["clock"]
    cols = ["min"] + [label for label, _ in QUANTILES] + ["max"]
    head = "".join(f"<th>{c}</th>" for c in ["path", "count"] + cols)
    rows = []
    for name, s in summary["paths"].items():
        if not s["count"]:
            cells = "".join("<td>-</td>" for c in cols)
        elif s["unit"] == "cycles":
            cells = "".join(f"<td>{s['cycles'][c]}<br><small>{s['ns'][c]:.1f} ns</small></td>"
                            for c in cols)
        else:
            cells = "".join(f"<td>{s['ns'][c] / 1000:,.1f} µs<br><small>{s['cycles'][c]:,.0f} "
                            f"cycles</small></td>" for c in cols)
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{s['count']}</td>{cells}</tr>")
    figs = "".join(f'<h2>{html.escape(name)}</h2><img src="{html.escape(img)}" alt="latency '
                   f'histogram of {html.escape(name)}">' for name, img in images.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ticklane latency</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}td:first-child{{text-align:left}}
small{{color:#666}}</style></head><body>
<h1>Latency per path</h1>
<p>Latencies of the gateware's paths are exact cycle counts; nanoseconds assume a clock of
{clock['mhz']:g} MHz (source: {html.escape(clock['source'])}). A path whose name ends in
<code>_ns</code> is the host's, timed by its clock in nanoseconds and shown in µs; its cycles are
at the same clock, for comparison. Quantiles: {html.escape(QUANTILE_METHOD)}.</p>
<table><tr>{head}</tr>{''.join(rows)}</table>
{figs}
</body></html>
"""


def build_report(paths: dict, clock_mhz: float, clock_source: str, out_dir) -> dict:
    """Write ``latency.json``, ``index.html`` and a PNG per path; return the summary.

    Parameters
    ----------
    paths : dict of str to numpy.ndarray
        Latencies per path, in cycles (e.g. ``{"md_to_bbo": ..., "order_to_verdict": ...}``),
        or in nanoseconds for a name ending in ``_ns`` (:func:`unit_of`).
    clock_mhz : float
        The design clock used to convert cycles to nanoseconds.
    clock_source : str
        Where that clock figure comes from, e.g. ``"fmax estimate: nextpnr-ecp5, LFE5U-85F,
        not the xc7z020"`` or ``"PYNQ-Z2 FCLK_CLK0 as configured"``.
    out_dir : path
        Output folder, created if needed.

    Returns
    -------
    dict
        ``{"clock": {"mhz", "source"}, "paths": {name: summarize(...)}}``, as written to
        ``latency.json``.

    Raises
    ------
    ValueError
        No paths, a non-positive clock, an empty clock source, or latencies that are not
        whole non-negative counts of their unit.
    """
    if not paths:
        raise ValueError("no latency paths given")
    if not clock_mhz or not np.isfinite(clock_mhz) or clock_mhz <= 0:
        raise ValueError(f"clock_mhz must be a positive number, not {clock_mhz!r}")
    if not clock_source or not str(clock_source).strip():
        raise ValueError("clock_source must say where the clock figure comes from")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"clock": {"mhz": float(clock_mhz), "source": str(clock_source)},
               "quantiles": QUANTILE_METHOD, "paths": {}}
    images = {}
    for name, values in paths.items():
        unit = unit_of(name)
        counts = _as_counts(name, values, unit)
        stats = summarize(counts, clock_mhz, unit)
        summary["paths"][name] = stats
        if counts.size:
            img = f"{_file_stem(name)}.png"
            _plot(name, counts, stats[unit], clock_mhz, clock_source, out / img, unit)
            images[name] = img
    (out / "latency.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "index.html").write_text(_html(summary, images))
    return summary


def save_run(path, paths: dict, clock_mhz: float, clock_source: str) -> Path:
    """Write a run's latencies per path as the npz :func:`load_input` reads (each path checked
    as :func:`build_report` would check it, so a bad run fails here, not in the report); returns
    the file written (``path``, with ``.npz`` added when it has another suffix)."""
    arrays = {name: _as_counts(name, values, unit_of(name)) for name, values in paths.items()}
    out = Path(path)
    if out.suffix != ".npz":          # numpy would add it; the path returned is the file written
        out = out.with_name(out.name + ".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays, clock_mhz=np.array(float(clock_mhz)),
             clock_source=np.array(str(clock_source)))
    return out


def load_input(path) -> tuple:
    """Read ``(paths, clock_mhz, clock_source)`` from a JSON or npz file; missing clock fields
    come back as ``None``."""
    path = Path(path)
    try:
        head = path.read_bytes()[:4]
    except OSError as e:
        raise InputError(f"{path}: cannot read it: {e.strerror or e}") from None
    if head.startswith(b"PK"):          # an npz is a zip archive, whatever its name
        try:
            with np.load(path, allow_pickle=False) as z:
                clock = _clock(z["clock_mhz"][()]) if "clock_mhz" in z.files else None
                source = str(z["clock_source"]) if "clock_source" in z.files else None
                paths = {k: z[k] for k in z.files if k not in ("clock_mhz", "clock_source")}
        except InputError as e:
            raise InputError(f"{path}: {e}") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise InputError(f"{path}: not a readable latency npz ({type(e).__name__}: {e})") \
                from None
        return paths, clock, source
    try:
        doc = json.loads(path.read_text())
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: neither an npz nor JSON of latencies ({type(e).__name__}: "
                         f"{e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise InputError(f"{path}: expected a JSON object with a 'paths' object")
    source = doc.get("clock_source")
    try:
        clock = None if doc.get("clock_mhz") is None else _clock(doc["clock_mhz"])
        paths = {k: np.asarray(v) for k, v in doc["paths"].items()}
    except ValueError as e:         # a clock that is not a number, or ragged paths
        raise InputError(f"{path}: {e}") from None
    return paths, clock, None if source is None else str(source)


def _clock(value) -> float:
    """A clock figure in MHz read from a run file: a number, not a string or a flag."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise InputError(f"clock_mhz must be a number of MHz, not {value!r}")
    return float(value)


class InputError(ValueError):
    """A run file that cannot be read as per-path latencies; the message names the file."""


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    ap = argparse.ArgumentParser(prog="python -m tools.latency_report",
                                 description="Latency histograms per path from cycle counts")
    ap.add_argument("input", type=Path, help="JSON or npz of per-path latencies in cycles "
                                             "(in ns for a path named *_ns)")
    ap.add_argument("--out", type=Path, default=Path("out") / "latency")
    ap.add_argument("--clock-mhz", type=float, default=None, help="overrides the input's clock")
    ap.add_argument("--clock-source", default=None, help="where the clock figure comes from")
    args = ap.parse_args(argv)

    try:
        paths, clock, source = load_input(args.input)
    except InputError as e:
        print(f"latency_report: {e}", file=sys.stderr)
        return 2
    if args.clock_mhz is not None:
        clock = args.clock_mhz
        # a clock given here is not the one the run's own label describes
        source = (args.clock_source if args.clock_source is not None
                  else "given on the command line")
    elif args.clock_source is not None:
        source = args.clock_source
    if clock is None or source is None:
        print("latency_report: the clock (MHz) and its source are needed: put clock_mhz and "
              "clock_source in the input or pass --clock-mhz and --clock-source", file=sys.stderr)
        return 2
    try:
        summary = build_report(paths, clock, source, args.out)
    except ValueError as e:
        print(f"latency_report: {args.input}: {e}", file=sys.stderr)
        return 2
    print(f"clock {clock:g} MHz ({source})")
    print(f"{'path':<24}{'count':>9}{'min':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'p99.9':>9}"
          f"{'max':>9}  unit")
    keys = ("min", "p50", "p90", "p99", "p99.9", "max")
    for name, s in summary["paths"].items():
        # each value after a space: a figure wider than its column does not run into the next
        if s["unit"] == "cycles":
            vals, unit = "".join(f" {s['cycles'].get(k, '-'):>8}" for k in keys), "cycles"
        else:
            vals = "".join(f" {s['ns'][k] / 1000:>8.1f}" if s["count"] else f" {'-':>8}"
                           for k in keys)
            unit = "µs (host clock)"
        print(f"{name:<24}{s['count']:>9}{vals}  {unit}")
    print(f"wrote {args.out / 'index.html'} and {args.out / 'latency.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
