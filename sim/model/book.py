"""The reference order book: the exact full-depth book of every symbol and the BBO it implies.

Every gateware book test scores against this model. It consumes ITCH 5.0 messages decoded into
dicts (the field names of :func:`host.feed.itch.decode_message`) and the crypto LEVEL_UPDATE
message of :data:`hdl.wire.LEVEL_UPDATE`, and reports the top of book of a symbol each time its
best bid or best ask price or size changes, and only then.

Ref: NASDAQ TotalView-ITCH 5.0 specification, sections 1.2.1 (Stock Directory), 1.3 (Add Order
'A', 'F') and 1.4 (Modify Order: 'E', 'C', 'X', 'D', 'U').

ITCH semantics kept here:

* 'R' records ``stock_locate`` -> ``stock``.
* 'A' and 'F' add an order (reference, side, price, shares); it joins its price level.
* 'E' and 'C' execute ``executed_shares`` from the resting order at the order's own price level
  (the execution price of a 'C' does not matter to the book); 'X' cancels ``cancelled_shares``;
  'D' deletes the order.
* 'U' replaces: the original reference leaves its level and the new reference joins the level of
  the new price on the same side, with the new shares.
* An order whose remaining shares reach 0 leaves the book. A level's size is the sum of the
  remaining shares of its orders (a Python int: it may exceed 2**32).
* Other message types change nothing.

Input the feed should never produce is handled deterministically and counted per cause in
:attr:`BookModel.anomalies`:

``unknown_reference``
    'E', 'C', 'X', 'D' or 'U' names a reference that is not live (a feed joined mid-day, or an
    order of a locate outside the filter whose modify carries a tracked locate). Ignored.
``excess_shares``
    'E', 'C' or 'X' takes more shares than remain. The order leaves the book (its level loses
    exactly what remained).
``duplicate_reference``
    'A', 'F' or 'U' would create a reference that is already live. The message is ignored.
``zero_shares``
    'A' or 'F' with 0 shares is ignored; 'U' with 0 new shares removes the original only.
``bad_side``
    A buy/sell indicator other than 'B' or 'S'. Ignored.
``locate_mismatch``
    A modify whose ``stock_locate`` is not the one the order was added with. The order's own
    book is changed (the reference is unique for the day, the locate is redundant).
``absent_level_delete``
    A LEVEL_UPDATE that deletes a level the book does not hold. No-op. Normal for venues
    whose snapshot is depth-limited (Binance, OKX): a level outside the window is deleted.

Crypto books are keyed by symbol slot, in a namespace separate from ITCH locates: use
``SlotKey(slot)`` as the key of the queries. Their BBO changes carry ``locate=0``.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Union

from hdl.wire import LEVEL_UPDATE

__all__ = ["BboChange", "BookModel", "SlotKey", "Top", "BID", "ASK",
           "FLAG_SELL", "FLAG_SNAPSHOT_BEGIN", "FLAG_SNAPSHOT_END", "FLAG_DELETE"]

BID, ASK = 0, 1

FLAG_SELL = LEVEL_UPDATE.flag("flags", "sell")
FLAG_SNAPSHOT_BEGIN = LEVEL_UPDATE.flag("flags", "snapshot_begin")
FLAG_SNAPSHOT_END = LEVEL_UPDATE.flag("flags", "snapshot_end")
FLAG_DELETE = LEVEL_UPDATE.flag("flags", "delete")

_SIDE_OF_INDICATOR = {"B": BID, "S": ASK}


class SlotKey(NamedTuple):
    """Key of a crypto book (a symbol slot); never equal to an ITCH locate ``int``."""
    slot: int


BookKey = Union[int, SlotKey]


class Top(NamedTuple):
    """Best bid and ask of one book; ``None`` price and size for an empty side."""
    bid_price: int | None
    bid_size: int | None
    ask_price: int | None
    ask_size: int | None


_EMPTY_TOP = Top(None, None, None, None)


@dataclass(frozen=True, slots=True)
class BboChange:
    """The top of book of one symbol after a change of its best bid or ask price or size.

    Attributes
    ----------
    seq : int
        Sequence number of the message that caused the change (the caller's numbering: the
        1-based message index of a historical file, or the MoldUDP64 sequence number).
    locate : int
        ITCH stock locate; 0 for a crypto book.
    symbol : str
        Symbol without padding (from the 'R' message, else the first add's ``stock``; for a
        crypto book from ``slot_names``, else ``""``).
    bid_price, bid_size, ask_price, ask_size : int or None
        Best prices in the feed's integer units and aggregate sizes; ``None`` for an empty side.
    slot : int or None
        The symbol slot of a crypto book; ``None`` for ITCH.
    """

    seq: int
    locate: int
    symbol: str
    bid_price: int | None
    bid_size: int | None
    ask_price: int | None
    ask_size: int | None
    slot: int | None = None

    @property
    def locked(self) -> bool:
        """Both sides present and the best bid equals the best ask."""
        return (self.bid_price is not None and self.ask_price is not None
                and self.bid_price == self.ask_price)

    @property
    def crossed(self) -> bool:
        """Both sides present and the best bid at or above the best ask: the ``crossed`` flag of
        :data:`hdl.wire.BBO_UPDATE`, which includes a locked book."""
        return (self.bid_price is not None and self.ask_price is not None
                and self.bid_price >= self.ask_price)


class _Book:
    """One symbol's levels. Each side is a dict price -> aggregate size plus a heap of the prices
    (bids negated) with lazy deletion: a price stays in the heap after its level empties and is
    dropped when it surfaces. The heap is rebuilt when stale entries outnumber live ones."""

    __slots__ = ("key", "locate", "slot", "symbol", "levels", "heaps", "last", "in_snapshot",
                 "orders")

    def __init__(self, key: BookKey, locate: int, slot: int | None, symbol: str):
        self.key = key
        self.locate = locate
        self.slot = slot
        self.symbol = symbol
        self.levels = ({}, {})      # BID, ASK: price -> size
        self.orders = ({}, {})      # BID, ASK: price -> orders resting there (ITCH)
        self.heaps = ([], [])       # BID holds -price, ASK holds price
        self.last = _EMPTY_TOP      # the top last reported
        self.in_snapshot = False

    def clear(self) -> None:
        self.levels = ({}, {})
        self.orders = ({}, {})
        self.heaps = ([], [])

    def count(self, side: int, price: int, delta: int) -> None:
        counts = self.orders[side]
        left = counts.get(price, 0) + delta
        if left:
            counts[price] = left
        else:
            del counts[price]

    def add(self, side: int, price: int, size: int) -> None:
        levels = self.levels[side]
        old = levels.get(price)
        if old is None:
            levels[price] = size
            heap = self.heaps[side]
            heapq.heappush(heap, -price if side == BID else price)
            if len(heap) > 2 * len(levels) + 64:
                self._rebuild(side)
        else:
            levels[price] = old + size

    def take(self, side: int, price: int, size: int) -> None:
        # Callers never take more than the level holds: it is the sum of the orders' remainders.
        levels = self.levels[side]
        left = levels[price] - size
        if left:
            levels[price] = left
        else:
            del levels[price]

    def set(self, side: int, price: int, size: int) -> None:
        levels = self.levels[side]
        if price not in levels:
            heap = self.heaps[side]
            heapq.heappush(heap, -price if side == BID else price)
            if len(heap) > 2 * len(levels) + 64:
                levels[price] = size
                self._rebuild(side)
        levels[price] = size

    def _rebuild(self, side: int) -> None:
        prices = self.levels[side]
        heap = [-p for p in prices] if side == BID else list(prices)
        heapq.heapify(heap)
        self.heaps = (heap, self.heaps[1]) if side == BID else (self.heaps[0], heap)

    def best(self, side: int) -> tuple[int | None, int | None]:
        levels = self.levels[side]
        heap = self.heaps[side]
        if side == BID:
            while heap:
                price = -heap[0]
                size = levels.get(price)
                if size is not None:
                    return price, size
                heapq.heappop(heap)
        else:
            while heap:
                price = heap[0]
                size = levels.get(price)
                if size is not None:
                    return price, size
                heapq.heappop(heap)
        return None, None

    def top(self) -> Top:
        bp, bs = self.best(BID)
        ap, asz = self.best(ASK)
        return Top(bp, bs, ap, asz)

    def top_levels(self, side: int, n: int) -> list[tuple[int, int]]:
        levels = self.levels[side]
        pick = heapq.nlargest if side == BID else heapq.nsmallest
        return [(p, levels[p]) for p in pick(n, levels)]


def _side_index(side) -> int:
    """Accept BID/ASK (0/1, also host.types.Side) or the ITCH indicator 'B'/'S'."""
    if isinstance(side, str):
        try:
            return _SIDE_OF_INDICATOR[side]
        except KeyError:
            raise ValueError(f"side must be 'B' or 'S', got {side!r}") from None
    if side in (BID, ASK):
        return int(side)
    raise ValueError(f"side must be 0 (bid), 1 (ask), 'B' or 'S', got {side!r}")


class BookModel:
    """Exact full-depth books of ITCH symbols (by locate) and crypto symbols (by slot).

    Parameters
    ----------
    locates : iterable of int, optional
        Track only these ITCH stock locates; ``None`` (the default) tracks every locate.
        Messages of other locates are ignored without being counted.
    slot_names : mapping of int to str, optional
        Symbol names of crypto slots, used in their :class:`BboChange`. Default: none (``""``).
    report_inside_snapshot : bool
        If False (the default), :meth:`apply_level` reports nothing between a ``snapshot_begin``
        and the ``snapshot_end`` of the same slot, so a snapshot being rebuilt level by level is
        seen as one change at its end (compared with the top reported before it).

    Attributes
    ----------
    anomalies : collections.Counter
        Count of unexpected input per cause (see the module documentation).
    symbols : dict of int to str
        ITCH locate -> symbol, as learnt from 'R' messages.
    """

    def __init__(self, locates: Iterable[int] | None = None, *,
                 slot_names: Mapping[int, str] | None = None,
                 report_inside_snapshot: bool = False):
        self._locates = None if locates is None else frozenset(int(x) for x in locates)
        self.slot_names = dict(slot_names or {})
        self.report_inside_snapshot = bool(report_inside_snapshot)
        self.anomalies: Counter = Counter()
        self.symbols: dict[int, str] = {}
        self._books: dict[BookKey, _Book] = {}
        # reference -> [book, side, price, remaining shares]
        self._orders: dict[int, list] = {}
        self._handlers = {
            "R": self._on_directory,
            "A": self._on_add, "F": self._on_add,
            "E": self._on_execute, "C": self._on_execute,
            "X": self._on_cancel,
            "D": self._on_delete,
            "U": self._on_replace,
        }

    # ---------------------------------------------------------------- ITCH

    def apply(self, msg: Mapping, seq: int) -> BboChange | None:
        """Apply one decoded ITCH 5.0 message.

        Parameters
        ----------
        msg : mapping
            A message as :func:`host.feed.itch.decode_message` returns it. Only the fields the
            book needs are read.
        seq : int
            Sequence number to stamp on a resulting change.

        Returns
        -------
        BboChange or None
            The symbol's new top of book if its best bid or ask price or size changed, else None.
        """
        handler = self._handlers.get(msg["message_type"])
        if handler is None:
            return None
        return handler(msg, seq)

    def _tracked(self, locate: int) -> bool:
        return self._locates is None or locate in self._locates

    def _itch_book(self, locate: int, stock: str | None) -> _Book:
        book = self._books.get(locate)
        if book is None:
            symbol = self.symbols.get(locate)
            if symbol is None:
                symbol = stock or ""
                if stock:
                    self.symbols[locate] = stock
            book = self._books[locate] = _Book(locate, locate, None, symbol)
        return book

    def _report(self, book: _Book, seq: int) -> BboChange | None:
        top = book.top()
        if top == book.last:
            return None
        book.last = top
        return BboChange(seq, book.locate, book.symbol, top[0], top[1], top[2], top[3], book.slot)

    def _on_directory(self, msg: Mapping, seq: int) -> None:
        locate = msg["stock_locate"]
        stock = msg["stock"]
        self.symbols[locate] = stock
        book = self._books.get(locate)
        if book is not None:
            book.symbol = stock
        return None

    def _on_add(self, msg: Mapping, seq: int) -> BboChange | None:
        locate = msg["stock_locate"]
        if self._locates is not None and locate not in self._locates:
            return None
        side = _SIDE_OF_INDICATOR.get(msg["buy_sell_indicator"])
        if side is None:
            self.anomalies["bad_side"] += 1
            return None
        shares = msg["shares"]
        if shares <= 0:
            self.anomalies["zero_shares"] += 1
            return None
        ref = msg["order_reference_number"]
        if ref in self._orders:
            self.anomalies["duplicate_reference"] += 1
            return None
        book = self._itch_book(locate, msg.get("stock"))
        price = msg["price"]
        self._orders[ref] = [book, side, price, shares]
        book.add(side, price, shares)
        book.count(side, price, 1)
        return self._report(book, seq)

    def _resting(self, msg: Mapping, ref: int) -> list | None:
        order = self._orders.get(ref)
        if order is None:
            self.anomalies["unknown_reference"] += 1
            return None
        if order[0].locate != msg["stock_locate"]:
            self.anomalies["locate_mismatch"] += 1
        return order

    def _reduce(self, msg: Mapping, seq: int, shares: int) -> BboChange | None:
        ref = msg["order_reference_number"]
        order = self._resting(msg, ref)
        if order is None:
            return None
        book, side, price, left = order
        if shares >= left:
            if shares > left:
                self.anomalies["excess_shares"] += 1
            del self._orders[ref]
            shares = left
            book.count(side, price, -1)
        elif shares <= 0:
            return None
        else:
            order[3] = left - shares
        book.take(side, price, shares)
        return self._report(book, seq)

    def _on_execute(self, msg: Mapping, seq: int) -> BboChange | None:
        if self._locates is not None and msg["stock_locate"] not in self._locates:
            return None
        return self._reduce(msg, seq, msg["executed_shares"])

    def _on_cancel(self, msg: Mapping, seq: int) -> BboChange | None:
        if self._locates is not None and msg["stock_locate"] not in self._locates:
            return None
        return self._reduce(msg, seq, msg["cancelled_shares"])

    def _on_delete(self, msg: Mapping, seq: int) -> BboChange | None:
        if self._locates is not None and msg["stock_locate"] not in self._locates:
            return None
        ref = msg["order_reference_number"]
        order = self._resting(msg, ref)
        if order is None:
            return None
        del self._orders[ref]
        book, side, price, left = order
        book.take(side, price, left)
        book.count(side, price, -1)
        return self._report(book, seq)

    def _on_replace(self, msg: Mapping, seq: int) -> BboChange | None:
        if self._locates is not None and msg["stock_locate"] not in self._locates:
            return None
        orig = msg["original_order_reference_number"]
        new = msg["new_order_reference_number"]
        order = self._resting(msg, orig)
        if order is None:
            return None
        if new != orig and new in self._orders:
            self.anomalies["duplicate_reference"] += 1
            return None
        book, side, price, left = order
        del self._orders[orig]
        book.take(side, price, left)
        book.count(side, price, -1)
        shares = msg["shares"]
        if shares > 0:
            new_price = msg["price"]
            self._orders[new] = [book, side, new_price, shares]
            book.add(side, new_price, shares)
            book.count(side, new_price, 1)
        else:
            self.anomalies["zero_shares"] += 1
        return self._report(book, seq)

    # ---------------------------------------------------------------- crypto levels

    def apply_level(self, slot: int, flags: int, price: int, size: int,
                    seq: int) -> BboChange | None:
        """Apply one LEVEL_UPDATE (:data:`hdl.wire.LEVEL_UPDATE`) to the book of ``slot``.

        Parameters
        ----------
        slot : int
            Symbol slot.
        flags : int
            The record's flags: ``sell`` (ask side, else bid), ``snapshot_begin`` (clear the
            slot's book before this level), ``snapshot_end``, ``delete`` (remove the level).
        price : int
            Price in integer ticks.
        size : int
            New aggregate size of the level in lots; 0 deletes the level too.
        seq : int
            Sequence number to stamp on a resulting change.

        Returns
        -------
        BboChange or None
            The slot's new top of book if its best bid or ask price or size changed (and, unless
            ``report_inside_snapshot``, no snapshot is in progress), else None.
        """
        key = SlotKey(slot)
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = _Book(key, 0, slot, self.slot_names.get(slot, ""))
        if flags & FLAG_SNAPSHOT_BEGIN:
            book.clear()
            book.in_snapshot = True
        side = ASK if flags & FLAG_SELL else BID
        if flags & FLAG_DELETE or size == 0:
            levels = book.levels[side]
            if price in levels:
                del levels[price]
            elif not book.in_snapshot:
                self.anomalies["absent_level_delete"] += 1
        else:
            book.set(side, price, size)
        if flags & FLAG_SNAPSHOT_END:
            book.in_snapshot = False
        if book.in_snapshot and not self.report_inside_snapshot:
            return None
        return self._report(book, seq)

    def apply_level_record(self, record: Mapping, seq: int) -> BboChange | None:
        """:meth:`apply_level` for an unpacked LEVEL_UPDATE (``LEVEL_UPDATE.unpack`` dict or a
        numpy record of ``LEVEL_UPDATE.dtype``)."""
        return self.apply_level(int(record["slot"]), int(record["flags"]), int(record["price"]),
                                int(record["size"]), seq)

    # ---------------------------------------------------------------- queries

    def top_levels(self, key: BookKey, side, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels of one side, best first.

        Parameters
        ----------
        key : int or SlotKey
            ITCH locate, or ``SlotKey(slot)`` for a crypto book.
        side : {0, 1, 'B', 'S'}
            0 / 'B' (or ``Side.BUY``) for bids, 1 / 'S' for asks.
        n : int
            Number of levels wanted.

        Returns
        -------
        list of (price, size)
            Fewer than ``n`` if the side holds fewer levels; empty for an unknown key.
        """
        book = self._books.get(key)
        if book is None or n <= 0:
            return []
        return book.top_levels(_side_index(side), n)

    def bbo(self, key: BookKey) -> Top:
        """The current best bid and ask of one book (all None for an unknown key)."""
        book = self._books.get(key)
        return _EMPTY_TOP if book is None else book.top()

    def side_levels(self, key: BookKey, side, n: int) -> tuple[list[tuple[int, int, int]], int]:
        """The best ``n`` levels of one side with their order counts, and the orders below them.

        What a hardware book holding ``n`` levels needs to be exact again (see
        :data:`hdl.wire.BOOK_REFILL_LEVEL`). A crypto level counts as one order.

        Parameters
        ----------
        key : int or SlotKey
        side : {0, 1, 'B', 'S'}
        n : int

        Returns
        -------
        (list of (price, size, orders), int)
            Levels best first (fewer than ``n`` if the side holds fewer), and the number of orders
            resting at the side's other prices.
        """
        book = self._books.get(key)
        if book is None:
            return [], 0
        s = _side_index(side)
        top = book.top_levels(s, max(n, 0))
        if isinstance(key, SlotKey):
            return [(p, size, 1) for p, size in top], len(book.levels[s]) - len(top)
        counts = book.orders[s]
        held = [(p, size, counts[p]) for p, size in top]
        return held, sum(counts.values()) - sum(o for _, _, o in held)

    def depth(self, key: BookKey, side) -> int:
        """Number of price levels on one side of one book."""
        book = self._books.get(key)
        return 0 if book is None else len(book.levels[_side_index(side)])

    def keys(self) -> list[BookKey]:
        """Keys of every book the model has created."""
        return list(self._books)

    def symbol(self, key: BookKey) -> str:
        """Symbol of a book ("" if unknown)."""
        book = self._books.get(key)
        if book is not None:
            return book.symbol
        if isinstance(key, SlotKey):
            return self.slot_names.get(key.slot, "")
        return self.symbols.get(key, "")

    def live_orders(self) -> int:
        """Number of ITCH orders resting in the tracked books."""
        return len(self._orders)
