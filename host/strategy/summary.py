"""One pass over a BBO batch that every strategy of the batch shares: the last record per slot."""

from __future__ import annotations

import numpy as np

from hdl.wire import BBO_UPDATE

__all__ = ["BatchSummary", "last_record_for_slot"]


def last_record_for_slot(batch: np.ndarray, slot: int) -> np.void | None:
    """The last record of ``slot`` in ``batch`` (arrival order), or None if it has none."""
    hits = np.flatnonzero(batch["slot"] == slot)
    if hits.size == 0:
        return None
    return batch[hits[-1]]


class BatchSummary:
    """The top of book per slot at the end of a batch, as int64 columns.

    Parameters
    ----------
    batch : numpy.ndarray
        Records of ``BBO_UPDATE.dtype`` in arrival order.

    Attributes
    ----------
    slots : numpy.ndarray
        Sorted distinct slots of the batch.
    last_index : numpy.ndarray
        Index in ``batch`` of each slot's last record.
    bid_price, ask_price, bid_size, ask_size, flags : numpy.ndarray
        int64 columns of those last records, aligned with ``slots``.
    """

    __slots__ = ("batch", "slots", "last_index", "bid_price", "ask_price", "bid_size",
                 "ask_size", "flags")

    def __init__(self, batch: np.ndarray):
        if batch.dtype != BBO_UPDATE.dtype:
            raise TypeError(f"BBO batch must have dtype BBO_UPDATE.dtype, got {batch.dtype!r}")
        self.batch = batch
        n = batch.shape[0]
        # np.unique on the reversed slots returns, per slot, its first index from the end.
        slots, first_from_end = np.unique(batch["slot"][::-1], return_index=True)
        self.slots = slots
        self.last_index = (n - 1 - first_from_end).astype(np.int64)
        last = batch[self.last_index]
        # Sizes are u64 on the wire; real sizes stay far below 2**63, and int64 lets signed
        # arithmetic (imbalance, positions) run without wrap-around.
        self.bid_price = last["bid_price"].astype(np.int64)
        self.ask_price = last["ask_price"].astype(np.int64)
        self.bid_size = last["bid_size"].astype(np.int64)
        self.ask_size = last["ask_size"].astype(np.int64)
        self.flags = last["flags"].astype(np.int64)

    def locate(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each slot of ``wanted`` sits in the summary.

        Returns
        -------
        present : numpy.ndarray of bool
            Whether the batch had a record for that slot.
        index : numpy.ndarray of int64
            Index into the summary columns (meaningful where ``present``).
        """
        if self.slots.size == 0:
            return np.zeros(wanted.shape, bool), np.zeros(wanted.shape, np.int64)
        index = np.searchsorted(self.slots, wanted)
        index = np.minimum(index, self.slots.size - 1)
        present = self.slots[index] == wanted
        return present, index.astype(np.int64)
