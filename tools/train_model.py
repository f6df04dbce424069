"""Train the mid-direction model (numpy logistic regression) and export it to ONNX.

Usage::

    python -m tools.train_model                          # synthetic data -> host/ml/model.onnx
    python -m tools.train_model --data recorded.npy --out /path/model.onnx

``--data`` takes a ``.npy`` file holding a structured array of ``hdl.wire.BBO_UPDATE.dtype``
(e.g. BBO records recorded from the link). The output is written atomically, so a running
:class:`host.ml.ModelHost` watching it swaps to the new model between calls.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hdl.wire import BBO_UPDATE
from host.ml.model import DEFAULT_MODEL_PATH, logistic_model, write_model_atomic
from host.ml.train import dataset_from_records, fit_logistic, synthetic_bbo


def load_records(path: Path) -> np.ndarray:
    """Load a ``.npy`` of BBO records, refusing any other dtype (no pickles)."""
    records = np.load(path, allow_pickle=False)
    if records.dtype != BBO_UPDATE.dtype:
        raise SystemExit(f"{path}: dtype {records.dtype!r} is not BBO_UPDATE.dtype")
    return records


def train(records: np.ndarray, out: Path, *, source: str) -> dict[str, str]:
    """Fit on ``records`` and write the ONNX model to ``out``; returns the model metadata."""
    x, y = dataset_from_records(records)
    fit = fit_logistic(x, y)
    metadata = {"trained_on": source, "n_samples": str(fit.n_samples),
                "train_accuracy": f"{fit.accuracy:.4f}"}
    write_model_atomic(logistic_model(fit.weights, fit.bias, metadata=metadata), out)
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help=".npy of BBO_UPDATE records; default: "
                                                  "synthetic records")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--records", type=int, default=200_000,
                        help="synthetic records to generate (without --data)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.data is not None:
        records, source = load_records(args.data), args.data.name
    else:
        records = synthetic_bbo(args.records, seed=args.seed)
        source = f"synthetic(n={args.records},seed={args.seed})"
    metadata = train(records, args.out, source=source)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes): {metadata}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
