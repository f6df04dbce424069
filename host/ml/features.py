"""Model inputs computed from the BBO stream.

Prices and sizes arrive as integers; the features are float32 because they only feed the model.
No feature value ever becomes the price of an order: strategies price orders from the integer
BBO fields.
"""

from __future__ import annotations

import math

import numpy as np

from hdl.wire import BBO_UPDATE

__all__ = ["FEATURE_NAMES", "N_FEATURES", "FeatureExtractor", "label_next_mid_move"]

FEATURE_NAMES = (
    "spread_bp",       # (ask - bid) / mid, basis points
    "imbalance",       # (bid_size - ask_size) / (bid_size + ask_size), in [-1, 1]
    "mid_change_bp",   # mid change since the slot's previous two-sided record, basis points
    "log_depth",       # log1p(bid_size + ask_size)
)
N_FEATURES = len(FEATURE_NAMES)

_BOTH = BBO_UPDATE.flag("flags", "bid_valid") | BBO_UPDATE.flag("flags", "ask_valid")


def _two_sided(batch: np.ndarray) -> np.ndarray:
    return ((batch["flags"] & _BOTH) == _BOTH) & (batch["ask_price"] > batch["bid_price"]) \
        & (batch["bid_price"] > 0)


class FeatureExtractor:
    """Stateful feature computation over consecutive batches.

    The only state is each slot's last two-sided mid (doubled, as an integer), so that the mid
    change of a batch's first record of a slot refers to the previous batch.
    """

    def __init__(self) -> None:
        self._prev_mid2: dict[int, int] = {}

    def update(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features of every record of ``batch``; advances the per-slot state.

        Parameters
        ----------
        batch : numpy.ndarray
            Records of ``BBO_UPDATE.dtype`` in arrival order.

        Returns
        -------
        features : numpy.ndarray
            float32, shape ``(len(batch), N_FEATURES)``; rows of one-sided or crossed records
            are zero.
        valid : numpy.ndarray of bool
            Which rows describe a two-sided, uncrossed book.
        """
        if batch.dtype != BBO_UPDATE.dtype:
            raise TypeError(f"expected BBO_UPDATE.dtype, got {batch.dtype!r}")
        n = batch.shape[0]
        valid = _two_sided(batch)
        bid = batch["bid_price"].astype(np.int64)
        ask = batch["ask_price"].astype(np.int64)
        bsz = batch["bid_size"].astype(np.float64)
        asz = batch["ask_size"].astype(np.float64)
        mid2 = bid + ask

        prev = self._previous_mid2(batch["slot"], mid2, valid)
        out = np.zeros((n, N_FEATURES), np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            total = bsz + asz
            spread_bp = (ask - bid) * 2e4 / mid2
            imbalance = np.where(total > 0, (bsz - asz) / np.where(total > 0, total, 1), 0.0)
            change_bp = np.where(prev > 0, (mid2 - prev) * 1e4 / np.where(prev > 0, prev, 1), 0.0)
            cols = (spread_bp, imbalance, change_bp, np.log1p(total))
        for k, col in enumerate(cols):
            out[:, k] = np.where(valid, col, 0.0)
        return out, valid

    def update_rows(self, batch: np.ndarray,
                    rows: list[int]) -> tuple[np.ndarray, list[bool]]:
        """Features of some records of ``batch`` only; advances the state as :meth:`update`.

        What inference needs: the features of each slot's last record, for a few slots. The
        state pass stays over the whole batch; the features of ``rows`` are computed in Python
        floats with the same operations as :meth:`update`, which gives the same values bit for
        bit (``tests/host/test_ml.py`` checks it) at a fraction of a numpy pass's fixed cost.

        Parameters
        ----------
        batch : numpy.ndarray
            Records of ``BBO_UPDATE.dtype`` in arrival order.
        rows : list of int
            Indices into ``batch``, each the last record of its slot in the batch.

        Returns
        -------
        features : numpy.ndarray
            float32, shape ``(len(rows), N_FEATURES)``; zero rows where not valid.
        valid : list of bool
            Which of ``rows`` describe a two-sided, uncrossed book.
        """
        if batch.dtype != BBO_UPDATE.dtype:
            raise TypeError(f"expected BBO_UPDATE.dtype, got {batch.dtype!r}")
        valid = _two_sided(batch)
        vidx = np.flatnonzero(valid)
        state = self._prev_mid2
        # Each slot's doubled mid before its last valid record of the batch.
        before: dict[int, int] = {}
        if vidx.size:
            sub = batch[vidx]
            for slot, bid, ask in zip(sub["slot"].tolist(), sub["bid_price"].tolist(),
                                      sub["ask_price"].tolist()):
                before[slot] = state.get(slot, 0)
                state[slot] = bid + ask
        out = np.zeros((len(rows), N_FEATURES), np.float32)
        ok = []
        for k, r in enumerate(rows):
            if not valid[r]:
                ok.append(False)
                continue
            rec = batch[r]
            bid, ask = int(rec["bid_price"]), int(rec["ask_price"])
            bsz, asz = float(rec["bid_size"]), float(rec["ask_size"])
            mid2, prev = bid + ask, before[int(rec["slot"])]
            total = bsz + asz
            out[k] = ((ask - bid) * 2e4 / mid2,
                      (bsz - asz) / total if total > 0 else 0.0,
                      (mid2 - prev) * 1e4 / prev if prev > 0 else 0.0,
                      math.log1p(total))
            ok.append(True)
        return out, ok

    def _previous_mid2(self, slots: np.ndarray, mid2: np.ndarray,
                       valid: np.ndarray) -> np.ndarray:
        """For each record: the doubled mid of its slot's previous valid record (0 if none)."""
        n = slots.shape[0]
        prev = np.zeros(n, np.int64)
        idx = np.flatnonzero(valid)
        if idx.size == 0:
            return prev
        order = idx[np.argsort(slots[idx], kind="stable")]
        s = slots[order]
        m = mid2[order]
        group_start = np.ones(order.size, bool)
        group_start[1:] = s[1:] != s[:-1]
        shifted = np.empty_like(m)
        shifted[1:] = m[:-1]
        starts = np.flatnonzero(group_start)
        shifted[starts] = [self._prev_mid2.get(int(x), 0) for x in s[starts]]
        prev[order] = shifted
        # Remember each slot's last valid mid for the next batch.
        group_end = np.ones(order.size, bool)
        group_end[:-1] = s[1:] != s[:-1]
        for slot, value in zip(s[group_end].tolist(), m[group_end].tolist()):
            self._prev_mid2[slot] = value
        return prev


def label_next_mid_move(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training labels: does the slot's next two-sided mid go up?

    Returns
    -------
    label : numpy.ndarray of float32
        1 where the next mid of the same slot is higher, 0 where lower.
    usable : numpy.ndarray of bool
        Rows that are two-sided and whose next mid of the same slot exists and differs.
    """
    valid = _two_sided(batch)
    mid2 = batch["bid_price"].astype(np.int64) + batch["ask_price"].astype(np.int64)
    slots = batch["slot"]
    idx = np.flatnonzero(valid)
    order = idx[np.argsort(slots[idx], kind="stable")]
    s, m = slots[order], mid2[order]
    has_next = np.zeros(order.size, bool)
    has_next[:-1] = s[1:] == s[:-1]
    nxt = np.zeros_like(m)
    nxt[:-1] = m[1:]
    label = np.zeros(batch.shape[0], np.float32)
    usable = np.zeros(batch.shape[0], bool)
    moved = has_next & (nxt != m)
    label[order[moved]] = (nxt[moved] > m[moved]).astype(np.float32)
    usable[order[moved]] = True
    return label, usable
