"""The host's full book in software, and what the daemon publishes from it.

The gateware's book stage holds the exact top ``BOOK_LEVELS`` levels of each side of each
subscribed symbol. When a best level must come from beyond them (or the order table is full) it
cannot publish that symbol exactly: its BBO record carries ``refill`` (``hdl/wire.py``,
``BBO_UPDATE``). The host keeps every symbol's whole book (:class:`HostBook`, the reference model
:class:`sim.model.book.BookModel` fed message by message) and, while a symbol is flagged,
publishes that symbol's changes from its own book instead (:class:`RefillMerge`), then reloads the
gateware's levels through the link's ``refill_in`` stream (:meth:`HostBook.refill_levels`), after
which the gateware publishes the symbol itself again. The published stream equals the reference
model's, record for record, which is what ``ticklane replay`` checks in one piece
(:func:`sim.model.book_hw.merge_with_host_book`); :class:`RefillMerge` is the same rule kept
batch by batch.

Ref: ``hdl/wire.py`` ``BOOK_REFILL_LEVEL`` (the refill batch contract: built from every message up
to its ``seq``, and only from a ``seq`` the stage has reached).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hdl import wire
from host.feed.itch import MESSAGE_SPECS, decode_message, field_decoder
from sim.model.book import ASK, BID, BboChange, BookModel
from sim.model.book_hw import refill_batch

__all__ = ["HostBook", "RefillMerge", "changes_to_records", "decode_book_fields", "locate_mask",
           "BOOK_FIELDS"]

# Directory messages name symbols; the others move the book.
_APPLIED_TYPES = np.frombuffer(b"RAFECXDU", np.uint8)
_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
_CROSSED = wire.BBO_UPDATE.flag("flags", "crossed")
_REFILL = wire.BBO_UPDATE.flag("flags", "refill")

Top = tuple  # (bid_price, bid_size, ask_price, ask_size), None for an absent side

#: The fields :class:`sim.model.book.BookModel` reads of each message type it applies.
BOOK_FIELDS = {
    "R": ("stock_locate", "stock"),
    "A": ("stock_locate", "order_reference_number", "buy_sell_indicator", "shares", "stock",
          "price"),
    "F": ("stock_locate", "order_reference_number", "buy_sell_indicator", "shares", "stock",
          "price"),
    "E": ("stock_locate", "order_reference_number", "executed_shares"),
    "C": ("stock_locate", "order_reference_number", "executed_shares"),
    "X": ("stock_locate", "order_reference_number", "cancelled_shares"),
    "D": ("stock_locate", "order_reference_number"),
    "U": ("stock_locate", "original_order_reference_number", "new_order_reference_number",
          "shares", "price"),
}
# Only the fields the book reads, laid out from the specification's table.
_DECODERS = {ord(t): (MESSAGE_SPECS[t].length, field_decoder(MESSAGE_SPECS[t], BOOK_FIELDS[t]))
             for t in BOOK_FIELDS}


def decode_book_fields(buf: bytes, pos: int, length: int) -> dict:
    """The fields of :data:`BOOK_FIELDS` of the message at ``buf[pos:pos + length]`` (type byte
    first), equal to :func:`host.feed.itch.decode_message`'s for them.

    The book's catch-up decodes every message of the feed; reading the few fields it uses
    straight from the buffer is cheaper than a whole decode. Anything
    :func:`~host.feed.itch.decode_message` refuses (a wrong length, a non-ASCII alpha byte, an
    unknown type) goes to it, so it raises its own :class:`~host.feed.itch.ItchError`.
    """
    dec = _DECODERS.get(buf[pos])
    if dec is None or dec[0] != length:
        return decode_message(buf[pos:pos + length])
    try:
        return dec[1](buf, pos)
    except UnicodeDecodeError:
        return decode_message(buf[pos:pos + length])


class _QuietBookModel(BookModel):
    """The reference model, working out a symbol's top after a message only for the symbols
    being published.

    Most of the software book's work is the catch-up of symbols nobody reads (the gateware
    publishes them): finding their best levels after every message (a heap walk per side) is
    about half of :meth:`BookModel.apply`. It is skipped for locates outside :attr:`publish`;
    when a locate joins it, its last reported top is set to its top then, so its first change
    is judged against the top it really had (what the model would have reported, message by
    message, all along).
    """

    def __init__(self):
        super().__init__()
        self.publish: frozenset[int] = frozenset()

    def set_publish(self, locates: frozenset[int]) -> None:
        for locate in locates - self.publish:
            book = self._books.get(locate)
            if book is not None:
                book.last = book.top()
        self.publish = locates

    def _report(self, book, seq: int) -> BboChange | None:
        if book.locate in self.publish:
            return super()._report(book, seq)
        return None


class HostBook:
    """Every symbol's full book, advanced over a historical buffer message by message.

    Parameters
    ----------
    buf : bytes
        The feed (historical framing: a 2-byte big-endian length before each message).
    offsets : numpy.ndarray
        Start offset of every message in ``buf``; message ``i`` has sequence number ``i + 1``.
    """

    def __init__(self, buf: bytes, offsets: np.ndarray):
        self.model = _QuietBookModel()
        self._buf = buf
        raw = np.frombuffer(buf, np.uint8)
        types = raw[offsets + 2] if len(offsets) else raw[:0]
        self._index = np.flatnonzero(np.isin(types, _APPLIED_TYPES))
        self._pos = offsets[self._index].tolist()
        self._seq = (self._index + 1).tolist()
        self._next = 0          # entry of _index not yet applied
        self.applied = 0        # every message with index < applied is in the book

    def advance(self, upto: int, publish: Iterable[int] = ()) -> list[BboChange]:
        """Apply messages up to index ``upto`` (exclusive); return the changes of the locates in
        ``publish``, in message order."""
        if upto <= self.applied:
            return []
        stop = int(np.searchsorted(self._index, upto))
        model = self.model
        model.set_publish(frozenset(publish))
        # BookModel.apply's own dispatch, without its call: every applied type has a handler.
        buf, handlers, pos_of, seq_of = self._buf, model._handlers, self._pos, self._seq
        changes = []
        for k in range(self._next, stop):
            pos = pos_of[k]
            msg = decode_book_fields(buf, pos + 2, (buf[pos] << 8) | buf[pos + 1])
            change = handlers[msg["message_type"]](msg, seq_of[k])
            if change is not None:
                changes.append(change)
        self._next = stop
        self.applied = upto
        return changes

    def top(self, locate: int) -> Top:
        """The symbol's best bid and ask now."""
        return tuple(self.model.bbo(locate))

    def refill_levels(self, locate: int, *, slot: int, levels: int) -> np.ndarray:
        """Both sides' best ``levels`` levels of a symbol as ``BOOK_REFILL_LEVEL`` records, exact
        as of the last applied message (two batches: bids, then asks)."""
        seq = self.applied
        return np.concatenate([refill_batch(self.model, locate, slot=slot, side=side, seq=seq,
                                            levels=levels) for side in (BID, ASK)])


def locate_mask(locates: np.ndarray, wanted: Iterable[int]) -> np.ndarray:
    """``locates`` that are in ``wanted`` (a few locates), as a boolean mask.

    One comparison per wanted locate: for the handful a batch involves this is several times
    cheaper than :func:`numpy.isin`, which sorts or builds a lookup table first.
    """
    wanted = wanted if isinstance(wanted, (set, frozenset)) else set(wanted)
    if len(wanted) > 16:
        return np.isin(locates, np.fromiter(wanted, np.int64, len(wanted)))
    mask = np.zeros(len(locates), bool)
    for locate in wanted:
        mask |= locates == locate
    return mask


def changes_to_records(changes: Iterable[BboChange], slot_of: dict[int, int]) -> np.ndarray:
    """``BBO_UPDATE`` records of software-book changes (no cycle stamps: not the gateware's).

    Parameters
    ----------
    changes : iterable of BboChange
    slot_of : dict of int to int
        Locate → the slot the record names.
    """
    changes = list(changes)
    out = wire.BBO_UPDATE.array(len(changes))
    if not changes:
        return out
    bid = [c.bid_price for c in changes]
    ask = [c.ask_price for c in changes]
    out["seq"] = [c.seq for c in changes]
    out["bid_price"] = [p or 0 for p in bid]
    out["ask_price"] = [p or 0 for p in ask]
    out["bid_size"] = [c.bid_size or 0 for c in changes]
    out["ask_size"] = [c.ask_size or 0 for c in changes]
    out["slot"] = [slot_of[c.locate] for c in changes]
    out["locate"] = [c.locate for c in changes]
    out["flags"] = [(_BID_VALID if b is not None else 0) | (_ASK_VALID if a is not None else 0)
                    | (_CROSSED if b is not None and a is not None and b >= a else 0)
                    for b, a in zip(bid, ask)]
    return out


def _row_top(flags: int, bid_price: int, bid_size: int, ask_price: int, ask_size: int) -> Top:
    bid, ask = flags & _BID_VALID, flags & _ASK_VALID
    return (bid_price if bid else None, bid_size if bid else None,
            ask_price if ask else None, ask_size if ask else None)


class RefillMerge:
    """Which gateware symbols the host publishes from its own book, batch after batch.

    A symbol is *carried* from a gateware record with ``refill`` until the next one without it.
    While carried, its gateware records are dropped and the software book's changes published
    instead; the record that ends the period is dropped too when it repeats the top already
    published (a refill that left the top where it was). Symbols never flagged pass through
    untouched, without per-record work.

    Attributes
    ----------
    carried : set of int
        Locates carried now.
    slot : dict of int to int
        Gateware slot of each locate seen flagged.
    """

    def __init__(self):
        self.carried: set[int] = set()
        self.slot: dict[int, int] = {}
        self._last: dict[int, Top] = {}

    def involved(self, hw: np.ndarray) -> set[int]:
        """Locates whose records in ``hw`` need the merge: carried, or flagged in ``hw``."""
        flagged = hw["locate"][(hw["flags"] & _REFILL) != 0]
        if flagged.size == 0:
            return set(self.carried)
        return self.carried | set(flagged.tolist())

    def begin(self, locate: int, top: Top) -> None:
        """Note the top published for ``locate`` before this batch (the software book's, which
        equals the gateware's while the symbol is not flagged)."""
        self._last.setdefault(locate, top)

    def merge(self, hw: np.ndarray, changes: list[BboChange],
              involved: set[int]) -> tuple[np.ndarray, int, int]:
        """The records to publish for one batch.

        Parameters
        ----------
        hw : numpy.ndarray
            The gateware's records of the batch (``BBO_UPDATE.dtype``), in output order.
        changes : list of BboChange
            The software book's changes of the ``involved`` locates over the same messages.
        involved : set of int
            From :meth:`involved`, before the software book was advanced (and :meth:`begin`
            called for the newly flagged ones).

        Returns
        -------
        (numpy.ndarray, int, int)
            The records in sequence order, how many of them came from the software book, and
            how many carried periods ended.
        """
        if not involved:
            return hw, 0, 0
        mine = locate_mask(hw["locate"], involved)
        events: list[tuple[int, int, int, object]] = []
        # Plain Python rows, one conversion per column: reading numpy records field by field
        # costs a microsecond a field.
        rows = hw[mine]
        for k, row in zip(np.flatnonzero(mine).tolist(), zip(
                rows["seq"].tolist(), rows["locate"].tolist(), rows["slot"].tolist(),
                rows["flags"].tolist(), rows["bid_price"].tolist(), rows["bid_size"].tolist(),
                rows["ask_price"].tolist(), rows["ask_size"].tolist())):
            events.append((row[0], 0, k, row))
        for k, c in enumerate(changes):
            events.append((c.seq, 1, k, c))
        events.sort(key=lambda e: (e[0], e[1], e[2]))   # gateware first at the same seq
        keep_hw: list[int] = []
        publish: list[BboChange] = []
        cleared = 0
        for seq, source, k, item in events:
            if source == 0:
                _, locate, slot, flags, bid_price, bid_size, ask_price, ask_size = item
                self.slot[locate] = slot
                if flags & _REFILL:
                    self.carried.add(locate)
                    continue
                if locate in self.carried:
                    self.carried.discard(locate)
                    cleared += 1
                top = _row_top(flags, bid_price, bid_size, ask_price, ask_size)
                if self._last.get(locate) != top:
                    keep_hw.append(k)
                self._last[locate] = top
            else:
                top = (item.bid_price, item.bid_size, item.ask_price, item.ask_size)
                if item.locate in self.carried and self._last.get(item.locate) != top:
                    publish.append(item)
                self._last[item.locate] = top
        # Symbols no longer carried need no memory: their next records are the gateware's own.
        for locate in involved - self.carried:
            self._last.pop(locate, None)
        ours = changes_to_records(publish, self.slot)
        parts = [hw[~mine], hw[np.asarray(keep_hw, np.int64)], ours]
        out = np.concatenate(parts)
        return out[np.argsort(out["seq"], kind="stable")], len(ours), cleared
