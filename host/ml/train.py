"""Training data and a numpy-only logistic regression for the mid-direction model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.wire import BBO_UPDATE
from host.ml.features import N_FEATURES, FeatureExtractor, label_next_mid_move

__all__ = ["synthetic_bbo", "fit_logistic", "LogisticFit", "dataset_from_records"]

_BOTH = BBO_UPDATE.flag("flags", "bid_valid") | BBO_UPDATE.flag("flags", "ask_valid")


def synthetic_bbo(n: int, *, slots: int = 4, seed: int = 0, tick: int = 100,
                  base_price: int = 1_000_000, signal: float = 3.0,
                  one_sided_fraction: float = 0.01) -> np.ndarray:
    """A BBO stream in which the book imbalance predicts the next mid move.

    Each record belongs to a random slot. A slot's mid moves by one tick with probability 0.3
    after each of its records, upward with probability ``sigmoid(signal * imbalance)`` of that
    record. Prices are integers on a ``tick`` grid around ``base_price``.

    Parameters
    ----------
    n : int
        Number of records.
    slots : int
        Symbols, numbered 0 .. slots-1.
    seed : int
    tick, base_price : int
        Integer price units.
    signal : float
        Strength of the imbalance effect (0 gives a pure random walk).
    one_sided_fraction : float
        Fraction of records with one side missing.

    Returns
    -------
    numpy.ndarray
        ``BBO_UPDATE.dtype``, ``seq`` 1..n.
    """
    rng = np.random.default_rng(seed)
    out = BBO_UPDATE.array(n)
    slot = rng.integers(0, slots, n)
    bid_size = rng.integers(1, 40, n) * 100
    ask_size = rng.integers(1, 40, n) * 100
    imbalance = (bid_size - ask_size) / (bid_size + ask_size)
    p_up = 1.0 / (1.0 + np.exp(-signal * imbalance))
    moves = np.where(rng.random(n) < 0.3, np.where(rng.random(n) < p_up, 1, -1), 0)
    spread_ticks = rng.integers(1, 4, n)
    bid_ticks = np.zeros(n, np.int64)
    for s in range(slots):
        idx = np.flatnonzero(slot == s)
        # The move drawn at a record applies to the slot's next record.
        steps = np.concatenate(([0], moves[idx[:-1]]))
        bid_ticks[idx] = base_price // tick + 10 * s + np.cumsum(steps)
    out["seq"] = np.arange(1, n + 1)
    out["slot"] = slot
    out["locate"] = slot + 1
    out["bid_price"] = bid_ticks * tick
    out["ask_price"] = (bid_ticks + spread_ticks) * tick
    out["bid_size"] = bid_size
    out["ask_size"] = ask_size
    flags = np.full(n, _BOTH, np.uint16)
    lost = rng.random(n) < one_sided_fraction
    flags[lost] &= np.where(rng.random(lost.sum()) < 0.5, 0b10, 0b01).astype(np.uint16)
    out["flags"] = flags
    cycles = np.cumsum(rng.integers(20, 200, n)).astype(np.uint64) & 0xFFFFFFFF
    out["ingress_cycle"] = cycles
    out["egress_cycle"] = (cycles + rng.integers(8, 30, n).astype(np.uint64)) & 0xFFFFFFFF
    return out


def dataset_from_records(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels (next mid up = 1) of the usable rows of a recorded BBO stream."""
    if records.dtype != BBO_UPDATE.dtype:
        raise TypeError(f"records must have dtype BBO_UPDATE.dtype, got {records.dtype!r}")
    features, valid = FeatureExtractor().update(records)
    label, usable = label_next_mid_move(records)
    keep = valid & usable
    return features[keep], label[keep]


@dataclass(frozen=True, kw_only=True)
class LogisticFit:
    """A fitted logistic regression on raw features.

    Attributes
    ----------
    weights : numpy.ndarray
        float64, shape ``(N_FEATURES,)``.
    bias : float
    accuracy : float
        Fraction of training rows classified correctly at p = 0.5.
    n_samples : int
    """

    weights: np.ndarray
    bias: float
    accuracy: float
    n_samples: int


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-3,
                 iterations: int = 25) -> LogisticFit:
    """Fit ``P(y=1) = sigmoid(x @ w + b)`` by Newton's method on standardised features.

    Standardising keeps the Hessian well conditioned; the scale is folded back into the
    weights so the model takes raw features.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or x.shape[1] != N_FEATURES or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be (n, {N_FEATURES}) matching y, got {x.shape} and {y.shape}")
    if x.shape[0] < N_FEATURES + 2 or np.unique(y).size < 2:
        raise ValueError("need at least a few rows of both classes to fit")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    z = np.hstack([(x - mean) / std, np.ones((x.shape[0], 1))])
    theta = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], l2)
    reg[-1] = 0.0  # the intercept is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ theta)))
        grad = z.T @ (p - y) / len(y) + reg * theta
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(y) + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    weights = theta[:-1] / std
    bias = float(theta[-1] - np.sum(theta[:-1] * mean / std))
    p = 1.0 / (1.0 + np.exp(-(x @ weights + bias)))
    accuracy = float(np.mean((p > 0.5) == (y > 0.5)))
    return LogisticFit(weights=weights, bias=bias, accuracy=accuracy, n_samples=int(len(y)))
