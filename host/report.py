"""``ticklane report``: latency histograms of a run, per path, in cycles and nanoseconds.

A run (``ticklane replay --latency-out RUN.npz`` or ``ticklane run --latency-out RUN.npz``) saves
the latency of every record per path, taken from the records' cycle stamps, and the daemon adds
its tick → order loop timed by the host's clock; on the board the same stamps come from the same
counter, so board runs produce the same file. This command turns it into an HTML page with a
PNG per path and a JSON summary (see :mod:`tools.latency_report`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["add_parser"]


def _run(args) -> int:
    from tools.latency_report import main as report_main

    argv = [str(args.input), "--out", str(args.out)]
    if args.clock_mhz is not None:
        argv += ["--clock-mhz", str(args.clock_mhz)]
    if args.clock_source is not None:
        argv += ["--clock-source", args.clock_source]
    return report_main(argv)


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="latency histograms of a run (HTML, PNG, JSON)",
                       description=__doc__.splitlines()[0])
    p.add_argument("input", type=Path, help="a run's latency file (.npz or .json)")
    p.add_argument("--out", type=Path, default=Path("out") / "latency",
                   help="output folder (default out/latency)")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="clock to convert cycles to ns (default: the one the run recorded)")
    p.add_argument("--clock-source", default=None, help="where that clock figure comes from")
    p.set_defaults(func=_run)
