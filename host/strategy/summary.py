"""One pass over a BBO batch that every strategy of the batch shares: the last record per slot."""

from __future__ import annotations

import numpy as np

from hdl.wire import BBO_UPDATE

__all__ = ["BatchSummary", "last_record_for_slot"]

_DTYPE = BBO_UPDATE.dtype
#: Positions of a row's fields in a record's ``tolist()`` tuple.
_ROW_FIELDS = tuple(BBO_UPDATE.dtype.names.index(f)
                    for f in ("bid_price", "ask_price", "bid_size", "ask_size", "flags"))


def last_record_for_slot(batch: np.ndarray, slot: int) -> np.void | None:
    """The last record of ``slot`` in ``batch`` (arrival order), or None if it has none."""
    hits = np.flatnonzero(batch["slot"] == slot)
    if hits.size == 0:
        return None
    return batch[hits[-1]]


class BatchSummary:
    """The top of book per slot at the end of a batch.

    Two views of the same records: :meth:`row` gives one slot's last record as Python ints (what
    a kernel evaluating a few instances wants: a numpy call costs about a microsecond however
    small its array), and the int64 columns (``slots``, ``last_index``, ``bid_price`` ...)
    serve kernels of many instances. The columns are built on first use.

    Parameters
    ----------
    batch : numpy.ndarray
        Records of ``BBO_UPDATE.dtype`` in arrival order.

    Attributes
    ----------
    last : dict of int to int
        Slot → index in ``batch`` of its last record.
    slots : numpy.ndarray
        Sorted distinct slots of the batch.
    last_index : numpy.ndarray
        Index in ``batch`` of each slot's last record.
    bid_price, ask_price, bid_size, ask_size, flags : numpy.ndarray
        int64 columns of those last records, aligned with ``slots``.
    """

    __slots__ = ("batch", "last", "_rows", "_columns")

    _COLUMNS = ("slots", "last_index", "bid_price", "ask_price", "bid_size", "ask_size",
                "flags")

    def __init__(self, batch: np.ndarray):
        if batch.dtype is not _DTYPE and batch.dtype != _DTYPE:
            raise TypeError(f"BBO batch must have dtype BBO_UPDATE.dtype, got {batch.dtype!r}")
        self.batch = batch
        # Later records overwrite earlier ones: each slot keeps its last index.
        self.last = {slot: i for i, slot in enumerate(batch["slot"].tolist())}
        self._rows: dict[int, tuple[int, int, int, int, int]] | None = None
        self._columns: dict[str, np.ndarray] | None = None

    def rows(self) -> dict[int, tuple[int, int, int, int, int]]:
        """Slot → :meth:`row` of every slot of the batch, built in one numpy call on first use
        (one record at a time costs about as much per slot as this does for all of them)."""
        rows = self._rows
        if rows is None:
            last = self.last
            # take() with a list is twice as fast as indexing with it.
            recs = self.batch.take(list(last.values())).tolist() if last else []
            b, a, bs, as_, f = _ROW_FIELDS
            rows = self._rows = {slot: (r[b], r[a], r[bs], r[as_], r[f])
                                 for slot, r in zip(last, recs)}
        return rows

    def row(self, slot: int) -> tuple[int, int, int, int, int] | None:
        """``(bid_price, ask_price, bid_size, ask_size, flags)`` of the slot's last record, or
        None when the batch has no record of the slot."""
        return self.rows().get(slot)

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in BatchSummary._COLUMNS:
            raise AttributeError(name)
        if self._columns is None:
            self._columns = self._build_columns()
        return self._columns[name]

    def _build_columns(self) -> dict[str, np.ndarray]:
        slots = np.fromiter(sorted(self.last), np.int64, len(self.last))
        last_index = np.fromiter((self.last[s] for s in slots.tolist()), np.int64, slots.size)
        last = self.batch[last_index]
        # Sizes are u64 on the wire; real sizes stay far below 2**63, and int64 lets signed
        # arithmetic (imbalance, positions) run without wrap-around.
        return {"slots": slots, "last_index": last_index,
                "bid_price": last["bid_price"].astype(np.int64),
                "ask_price": last["ask_price"].astype(np.int64),
                "bid_size": last["bid_size"].astype(np.int64),
                "ask_size": last["ask_size"].astype(np.int64),
                "flags": last["flags"].astype(np.int64)}

    def locate(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each slot of ``wanted`` sits in the columns.

        Returns
        -------
        present : numpy.ndarray of bool
            Whether the batch had a record for that slot.
        index : numpy.ndarray of int64
            Index into the summary columns (meaningful where ``present``).
        """
        slots = self.slots
        if slots.size == 0:
            return np.zeros(wanted.shape, bool), np.zeros(wanted.shape, np.int64)
        index = np.searchsorted(slots, wanted)
        index = np.minimum(index, slots.size - 1)
        present = slots[index] == wanted
        return present, index.astype(np.int64)
