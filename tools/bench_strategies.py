"""Time the strategy evaluators per BBO batch for 1, 8 and 32 strategies.

Usage::

    python -m tools.bench_strategies [--batches 2000] [--batch-size 64] [--workers 2]

Strategies are a round-robin mix of MarketMaker, ImbalanceMomentum and MlSignal over 4 slots;
batches are synthetic BBO records (:func:`host.ml.train.synthetic_bbo`). Each cell is the
p50 / p99 wall time of one ``evaluate`` call in microseconds, after a warm-up. Printed as a
table; nothing passes or fails.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from host.ml.train import synthetic_bbo
from host.strategy.api import OpenOrder, StrategyContext
from host.strategy.builtin import ImbalanceMomentum, MarketMaker, MlSignal, RowKernel
from host.strategy.engine import make_evaluator
from host.types import Side


def build_strategies(n: int, *, with_ml: bool = True) -> list:
    """``n`` strategies, cycling through the built-in classes and 4 slots."""
    out = []
    for i in range(n):
        slot = i % 4
        kind = i % (3 if with_ml else 2)
        if kind == 0:
            out.append(MarketMaker(name=f"mm{i}", slot=slot, half_spread_ticks=1 + i % 3,
                                   skew_unit=100))
        elif kind == 1:
            out.append(ImbalanceMomentum(name=f"imb{i}", slot=slot, threshold_bp=2000 + 50 * (i % 128)))
        else:
            out.append(MlSignal(name=f"ml{i}", slot=slot, buy_above=0.7, sell_below=0.3))
    return out


def time_evaluator(kind: str, n_strategies: int, batches: list[np.ndarray], ctx, *,
                   workers: int, with_ml: bool) -> tuple[float, float]:
    """p50 and p99 of one evaluate call, microseconds."""
    evaluator = make_evaluator(build_strategies(n_strategies, with_ml=with_ml), kind,
                               workers=workers)
    try:
        warm = min(50, len(batches) // 10)
        for batch in batches[:warm]:
            evaluator.evaluate(batch, ctx)
        samples = np.empty(len(batches) - warm)
        for k, batch in enumerate(batches[warm:]):
            t0 = time.perf_counter_ns()
            evaluator.evaluate(batch, ctx)
            samples[k] = (time.perf_counter_ns() - t0) / 1e3
    finally:
        evaluator.close()
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--kinds", nargs="+", default=["serial", "vectorised", "process"])
    parser.add_argument("--no-ml", action="store_true", help="leave MlSignal out of the mix")
    parser.add_argument("--vector-from", type=int, default=None,
                        help="instances of a class from which kernels take one numpy pass "
                             "(default: RowKernel.VECTOR_FROM, None: never); 1 forces the "
                             "numpy pass, a large number the per-row path")
    args = parser.parse_args(argv)

    if args.vector_from is not None:
        RowKernel.VECTOR_FROM = args.vector_from
    records = synthetic_bbo(args.batches * args.batch_size, slots=4, seed=7)
    batches = [records[k:k + args.batch_size] for k in range(0, len(records), args.batch_size)]
    # Some resting quotes and positions so that replace/cancel paths run too.
    ctx = StrategyContext(
        now_ns=0, positions={0: 200, 1: -300},
        open_orders=tuple(OpenOrder(client_order_id=10 + i, strategy=f"mm{i}", slot=i % 4,
                                    side=Side.BUY, price=1_000_000, quantity=100)
                          for i in range(0, 32, 3)))

    print(f"batch = {args.batch_size} BBO records, {len(batches)} batches, "
          f"process pool of {args.workers} workers; p50 / p99 us per batch")
    header = f"{'strategies':>10} | " + " | ".join(f"{k:>20}" for k in args.kinds)
    print(header)
    print("-" * len(header))
    for n in args.counts:
        cells = []
        for kind in args.kinds:
            use = batches if kind != "process" else batches[: max(200, len(batches) // 4)]
            p50, p99 = time_evaluator(kind, n, use, ctx, workers=args.workers,
                                      with_ml=not args.no_ml)
            cells.append(f"{p50:8.1f} / {p99:8.1f}")
        print(f"{n:>10} | " + " | ".join(f"{c:>20}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
