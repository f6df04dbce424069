"""What the hardware book stage publishes: :class:`BookModel` seen through the hardware's limits.

The book stage (:mod:`hdl.book.order_book`) holds an order table of fixed geometry and only the
best ``levels`` price levels per symbol and side. This module wraps the reference
:class:`sim.model.book.BookModel` (which keeps every level exactly) with the bookkeeping those
limits imply, so that the stage can be scored record for record:

* the order table's occupancy, set by set (:func:`hdl.book.order_table.order_set_index`): an add
  whose set is full is not stored and its symbol becomes *lost*;
* the held window of each side: which prices the hardware holds. A side whose held window is
  empty while the full book still has levels on it (ITCH), or after a crypto level was pushed
  beyond the window since the last snapshot, is *blind*.

Published top (one :data:`hdl.wire.BBO_UPDATE` record whenever it changes, and only then):

* a lost symbol publishes ``refill`` and no sides, once; the host's book carries it;
* otherwise each side publishes the model's best level unless it is blind, in which case it is
  absent and the record carries ``refill``; when no side is blind the record equals the model's
  top exactly.

Refills (:meth:`HardwareBook.refill`, batches of :data:`hdl.wire.BOOK_REFILL_LEVEL` made by
:func:`refill_batch`) install one side's held window from the host's book: the side is exact again
and the ``refill`` flag lasts only while another cause (the other side blind, the symbol lost)
remains. A batch older than the slot's last applied event is stale and changes nothing.

Events are the feed's :data:`hdl.feed.events.BookEventLayout` as dicts; :func:`itch_events`
makes them from ITCH messages as the feed stage does, :func:`pack_events` lays them out as the
stage's input words.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import numpy as np

from hdl import wire
from hdl.book.order_table import order_set_index
from hdl.feed.events import BookEventLayout, EventKind
from host.feed.itch import decode_message
from sim.model.book import ASK, BID, BookModel, SlotKey, FLAG_DELETE, FLAG_SELL, \
    FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END

__all__ = ["HardwareBook", "itch_events", "pack_events", "merge_with_host_book", "EVENT_BYTES",
           "refill_batch"]

_FLAG = {name: wire.BBO_UPDATE.flag("flags", name)
         for name in ("bid_valid", "ask_valid", "refill", "crossed")}

_KIND_OF_TYPE = {"R": EventKind.DIRECTORY, "A": EventKind.ADD, "F": EventKind.ADD,
                 "E": EventKind.EXECUTE, "C": EventKind.EXECUTE, "X": EventKind.CANCEL,
                 "D": EventKind.DELETE, "U": EventKind.REPLACE}
_BOOK_TYPES = frozenset(b"RAFECXDU")
_FIELDS = {name: (field.offset, field.width) for name, field in BookEventLayout}
EVENT_BYTES = (BookEventLayout.size + 7) // 8


def itch_events(messages: Iterable[bytes], *, first_seq: int = 1) -> list[dict]:
    """Book events for ITCH messages (bytes from the type byte on), numbered from ``first_seq``.

    Messages the book does not use produce no event but take a sequence number. ``slot`` is 0:
    the stage's subscriptions resolve it.
    """
    out = []
    for seq, msg in enumerate(messages, start=first_seq):
        if not msg or msg[0] not in _BOOK_TYPES:
            continue
        f = decode_message(msg)
        t = f["message_type"]
        ev = {"kind": int(_KIND_OF_TYPE[t].value), "locate": f["stock_locate"], "seq": seq}
        if t == "R":
            ev["stock"] = int.from_bytes(f["stock"].ljust(8).encode(), "little")
        elif t in "AF":
            if f["buy_sell_indicator"] not in ("B", "S"):
                ev["kind"] = int(EventKind.NONE.value)   # the feed's decoder books nothing
            ev.update(order_ref=f["order_reference_number"], sell=int(f["buy_sell_indicator"] == "S"),
                      shares=f["shares"], price=f["price"],
                      stock=int.from_bytes(f["stock"].ljust(8).encode(), "little"))
        elif t in "EC":
            ev.update(order_ref=f["order_reference_number"], shares=f["executed_shares"])
        elif t == "X":
            ev.update(order_ref=f["order_reference_number"], shares=f["cancelled_shares"])
        elif t == "D":
            ev.update(order_ref=f["order_reference_number"])
        else:
            ev.update(order_ref=f["original_order_reference_number"],
                      new_order_ref=f["new_order_reference_number"], shares=f["shares"],
                      price=f["price"])
        out.append(ev)
    return out


def pack_events(events: list[dict]) -> np.ndarray:
    """Events as the stage's input words: an ``(n, EVENT_BYTES)`` uint8 array."""
    out = np.zeros((len(events), EVENT_BYTES), dtype=np.uint8)
    for i, ev in enumerate(events):
        word = 0
        for name, value in ev.items():
            offset, width = _FIELDS[name]
            value = int(value)
            if not 0 <= value < (1 << width):
                raise ValueError(f"event field {name} = {value!r} does not fit in {width} bits")
            word |= value << offset
        out[i] = np.frombuffer(word.to_bytes(EVENT_BYTES, "little"), dtype=np.uint8)
    return out


class HardwareBook:
    """Expected BBO records of the book stage for a stream of events.

    Parameters
    ----------
    slots : int
        Symbol slots; with ``assign_slots`` the first ``slots`` directory events subscribe.
    levels : int
        Price levels the stage holds per symbol and side.
    order_ways, order_sets : int
        Order table geometry.
    assign_slots : bool
        Resolve ITCH locates to slots first come (as ``BookStage(assign_slots=True)``); else the
        events' ``slot`` is taken as given.

    Attributes
    ----------
    model : BookModel
        The exact book.
    counts : collections.Counter-like dict
        ``table_full``, ``unknown``, ``duplicate``, ``refill`` as the stage's counters count them.
    """

    def __init__(self, *, slots: int, levels: int, order_ways: int, order_sets: int,
                 assign_slots: bool = True):
        self.slots, self.levels = slots, levels
        self.ways, self.set_bits = order_ways, (order_sets - 1).bit_length()
        self.assign_slots = assign_slots
        self.model = BookModel()
        self.slot_of: dict[int, int] = {}
        self.table: dict[int, list] = {}                 # ref -> [slot, sell, price, shares]
        self.set_fill: dict[int, int] = defaultdict(int)
        self.lost: set[int] = set()
        self.held: dict[tuple, set] = defaultdict(set)   # (slot, side) -> held prices
        self.crypto_deep: set[tuple] = set()             # (slot, side) pushed beyond the window
        self.key_of_slot: dict[int, object] = {}
        self.pub: dict[int, tuple] = {}
        self.last_seq: dict[int, int] = defaultdict(int)   # slot -> seq of its last event
        self.counts = defaultdict(int)

    # ------------------------------------------------------------------ table
    def _table_add(self, ref: int, slot: int, sell: int, price: int, shares: int) -> bool:
        s = order_set_index(ref, self.set_bits)
        if self.set_fill[s] >= self.ways:
            return False
        self.set_fill[s] += 1
        self.table[ref] = [slot, sell, price, shares]
        return True

    def _table_remove(self, ref: int) -> None:
        del self.table[ref]
        self.set_fill[order_set_index(ref, self.set_bits)] -= 1

    # ------------------------------------------------------------------ window
    def _levels(self, slot: int, side: int) -> dict:
        book = self.model._books.get(self.key_of_slot.get(slot))
        return {} if book is None else book.levels[side]

    def _join(self, slot: int, side: int, price: int, crypto: bool, deep_before: bool) -> None:
        held = self.held[(slot, side)]
        if price in held:
            return
        better = (lambda a, b: a > b) if side == BID else (lambda a, b: a < b)
        worse_than_all = all(better(p, price) for p in held)
        full = len(held) >= self.levels
        qualifies = (not worse_than_all) if full else (not worse_than_all or not deep_before)
        if qualifies:
            held.add(price)
            if len(held) > self.levels:
                worst = min(held) if side == BID else max(held)
                held.discard(worst)
                if crypto:
                    self.crypto_deep.add((slot, side))
        elif crypto:
            self.crypto_deep.add((slot, side))

    def _deep(self, slot: int, side: int, crypto: bool) -> bool:
        if crypto:
            return (slot, side) in self.crypto_deep
        return len(self._levels(slot, side)) > len(self.held[(slot, side)])

    def _prune(self, slot: int, side: int) -> None:
        live = self._levels(slot, side)
        self.held[(slot, side)] = {p for p in self.held[(slot, side)] if p in live}

    # ------------------------------------------------------------------ events
    def apply(self, ev: dict) -> dict | None:
        """Apply one event; return the record it makes the stage emit (a dict of BBO_UPDATE
        fields, cycle stamps 0) or None."""
        kind = EventKind(ev.get("kind", 0))
        seq = ev.get("seq", 0)
        locate = ev.get("locate", 0)
        if kind in (EventKind.NONE,):
            return None
        if kind == EventKind.DIRECTORY:
            if self.assign_slots and locate not in self.slot_of:
                if len(self.slot_of) < self.slots:
                    self.slot_of[locate] = len(self.slot_of)
                else:
                    self.counts["slot_overflow"] += 1
            return None
        crypto = kind in (EventKind.LEVEL, EventKind.CLEAR)
        if crypto or not self.assign_slots:
            slot = ev.get("slot", 0)
        elif locate in self.slot_of:
            slot = self.slot_of[locate]
        else:
            self.counts["unsubscribed"] += 1
            return None
        if slot >= self.slots:
            return None
        self.last_seq[slot] = seq
        self.key_of_slot.setdefault(slot, SlotKey(slot) if crypto else locate)

        if crypto:
            self._apply_crypto(kind, slot, ev, seq)
        else:
            self._apply_itch(kind, slot, locate, ev, seq)
        book = self.model._books.get(self.key_of_slot[slot])
        if book is not None and book.in_snapshot:
            return None
        return self._publish(slot, locate, seq)

    def _apply_itch(self, kind, slot, locate, ev, seq) -> None:
        ref = ev.get("order_ref", 0)
        shares = ev.get("shares", 0)
        if kind == EventKind.ADD:
            if ref in self.table:
                self.counts["duplicate"] += 1
                return
            if shares == 0:
                return
            side = ASK if ev.get("sell", 0) else BID
            self._add_order(ref, slot, locate, side, ev["price"], shares, seq)
            return
        entry = self.table.get(ref)
        if entry is None:
            self.counts["unknown"] += 1
            return
        if kind in (EventKind.EXECUTE, EventKind.CANCEL) and shares == 0:
            return
        if entry[0] != slot:
            self.counts["mismatch"] += 1
            self.lost.update((slot, entry[0]))
        if kind in (EventKind.EXECUTE, EventKind.CANCEL):
            if shares >= entry[3]:
                self._table_remove(ref)
            else:
                entry[3] -= shares
            if entry[0] == slot:
                self.model.apply({"message_type": "X", "stock_locate": locate,
                                  "order_reference_number": ref, "cancelled_shares": shares}, seq)
                self._prune(slot, entry[1])
            return
        self._table_remove(ref)
        if kind == EventKind.DELETE:
            if entry[0] == slot:
                self.model.apply({"message_type": "D", "stock_locate": locate,
                                  "order_reference_number": ref}, seq)
                self._prune(slot, entry[1])
            return
        # replace: the original leaves, then the new reference joins on its side
        if entry[0] != slot:
            return
        side = entry[1]
        new = ev["new_order_ref"]
        self.model.apply({"message_type": "D", "stock_locate": locate,
                          "order_reference_number": ref}, seq)
        self._prune(slot, side)
        if new in self.table:
            self.counts["duplicate"] += 1
            self.lost.add(slot)
            return
        if shares == 0:
            return
        self._add_order(new, slot, locate, side, ev["price"], shares, seq)

    def _add_order(self, ref, slot, locate, side, price, shares, seq) -> None:
        """An order joins the table and its level (an add, or a replace's new reference); a
        full table set loses the symbol to the host's book."""
        if not self._table_add(ref, slot, side, price, shares):
            self.counts["table_full"] += 1
            self.lost.add(slot)
            return
        deep_before = self._deep(slot, side, False)
        self.model.apply({"message_type": "A", "stock_locate": locate,
                          "buy_sell_indicator": "S" if side else "B", "shares": shares,
                          "order_reference_number": ref, "price": price}, seq)
        self._join(slot, side, price, False, deep_before)

    def _apply_crypto(self, kind, slot, ev, seq) -> None:
        flags = ev.get("level_flags", 0)
        if kind == EventKind.CLEAR or flags & FLAG_SNAPSHOT_BEGIN:
            for side in (BID, ASK):
                self.held[(slot, side)] = set()
                self.crypto_deep.discard((slot, side))
            book = self.model._books.get(SlotKey(slot))
            if book is not None:
                book.clear()
            if kind == EventKind.CLEAR:
                return
        side = ASK if (flags & FLAG_SELL or ev.get("sell", 0)) else BID
        price, size = ev.get("price", 0), ev.get("shares", 0)
        self.model.apply_level(slot, flags | (FLAG_SELL if side == ASK else 0), price, size, seq)
        if flags & FLAG_DELETE or size == 0:
            self.held[(slot, side)].discard(price)
        else:
            self._join(slot, side, price, True, self._deep(slot, side, True))

    def _publish(self, slot: int, locate: int, seq: int) -> dict | None:
        if slot in self.lost:
            top = (False, False, True, 0, 0, 0, 0)
        else:
            key = self.key_of_slot[slot]
            crypto = isinstance(key, SlotKey)
            best = self.model.bbo(key)
            shown = []
            blind = False
            for side in (BID, ASK):
                held = self.held[(slot, side)]
                price, size = best[2 * side], best[2 * side + 1]
                if held:
                    # the held window is the exact top of the side
                    edge = max(held) if side == BID else min(held)
                    assert price == edge, (slot, side, price, sorted(held))
                    shown.append((True, price, size))
                else:
                    blind = blind or self._deep(slot, side, crypto)
                    shown.append((False, 0, 0))
            (bv, bp, bs), (av, ap, asz) = shown
            top = (bv, av, blind, bp, bs, ap, asz)
        if top == self.pub.get(slot, (False, False, False, 0, 0, 0, 0)):
            return None
        if top[2] and not self.pub.get(slot, (0, 0, 0))[2]:
            self.counts["refill"] += 1
        self.pub[slot] = top
        flags = ((_FLAG["bid_valid"] if top[0] else 0) | (_FLAG["ask_valid"] if top[1] else 0)
                 | (_FLAG["refill"] if top[2] else 0)
                 | (_FLAG["crossed"] if top[0] and top[1] and top[3] >= top[5] else 0))
        return {"seq": seq, "bid_price": top[3], "ask_price": top[5], "bid_size": top[4],
                "ask_size": top[6], "ingress_cycle": 0, "egress_cycle": 0, "slot": slot,
                "flags": flags, "locate": locate}

    def refill(self, batch: np.ndarray) -> dict | None:
        """Apply one refill batch (records of ``BOOK_REFILL_LEVEL.dtype``, ``first`` to
        ``last``, as :func:`refill_batch` makes them); return the record it makes the stage emit.

        Counts ``refills_applied``, ``refills_stale`` (an event of the slot came after the batch's
        seq) and ``refills_rejected`` (slot beyond the slots, or lost). The batch must be well
        formed and hold the model's levels as of its seq, and the slot must have had events.
        """
        last = batch[-1]
        slot, seq = int(last["slot"]), int(last["seq"])
        side = ASK if int(last["flags"]) & _REFILL_FLAG["sell"] else BID
        if slot >= self.slots or slot in self.lost:
            self.counts["refills_rejected"] += 1
            return None
        if self.last_seq[slot] > seq:
            self.counts["refills_stale"] += 1
            return None
        self.counts["refills_applied"] += 1
        levels = [r for r in batch if not int(r["flags"]) & _REFILL_FLAG["empty"]]
        self.held[(slot, side)] = {int(r["price"]) for r in levels[:self.levels]}
        below = int(last["orders_below"]) + sum(int(r["orders"]) for r in levels[self.levels:])
        if isinstance(self.key_of_slot[slot], SlotKey):
            if below:
                self.crypto_deep.add((slot, side))
            else:
                self.crypto_deep.discard((slot, side))
        book = self.model._books.get(self.key_of_slot[slot])
        if book is not None and book.in_snapshot:
            return None
        return self._publish(slot, int(last["locate"]), seq)

    def run(self, events: Iterable[dict]) -> np.ndarray:
        """Apply every event; the expected records as an array of ``BBO_UPDATE.dtype``."""
        rows = [r for r in (self.apply(ev) for ev in events) if r is not None]
        out = wire.BBO_UPDATE.array(len(rows))
        for i, r in enumerate(rows):
            for k, v in r.items():
                out[i][k] = v
        return out


_REFILL_FLAG = {name: wire.BOOK_REFILL_LEVEL.flag("flags", name)
                for name in ("sell", "first", "last", "empty")}


def refill_batch(model: BookModel, key, *, slot: int, side: int, seq: int,
                 levels: int) -> np.ndarray:
    """The refill batch of one side of one symbol from the host's full book.

    Parameters
    ----------
    model : BookModel
        The host's book, having applied every message up to ``seq`` and none after.
    key : int or SlotKey
        The symbol's book key: ITCH locate or ``SlotKey(slot)``.
    slot : int
        The symbol's slot in the book stage.
    side : {0, 1}
        BID or ASK.
    seq : int
        Sequence number of the last message ``model`` has applied.
    levels : int
        Levels the stage holds per side (register BOOK_LEVELS).

    Returns
    -------
    numpy.ndarray
        Records of ``BOOK_REFILL_LEVEL.dtype``, ``first`` on the first and ``last`` on the last;
        one ``empty`` record when the side has no level.
    """
    held, below = model.side_levels(key, side, levels)
    locate = 0 if isinstance(key, SlotKey) else int(key)
    out = wire.BOOK_REFILL_LEVEL.array(max(len(held), 1))
    out["seq"], out["slot"], out["locate"] = seq, slot, locate
    sell = _REFILL_FLAG["sell"] if side == ASK else 0
    out["flags"] = sell
    if not held:
        out["flags"] = sell | _REFILL_FLAG["empty"]
    for i, (price, size, orders) in enumerate(held):
        out[i]["price"], out[i]["size"], out[i]["orders"], out[i]["level"] = \
            price, size, orders, i
    out[0]["flags"] |= _REFILL_FLAG["first"]
    out[-1]["flags"] |= _REFILL_FLAG["last"]
    out[-1]["orders_below"] = min(below, 2**32 - 1)
    return out


def merge_with_host_book(records: np.ndarray, changes: list) -> list[tuple]:
    """The BBO changes the host publishes from the stage's records and its own full book.

    While a symbol's last record carries ``refill`` the host publishes its software book's
    changes for that symbol; otherwise it publishes the stage's records, skipping one that
    repeats the top already published (the record that ends a refill period when the top did not
    move). Returns ``(seq, key, bid_price, bid_size, ask_price, ask_size)`` tuples, ``key`` the
    ITCH locate or ``("slot", n)`` for a crypto book, sides ``None`` when absent.

    Parameters
    ----------
    records : numpy.ndarray
        The stage's records, of ``BBO_UPDATE.dtype``, in output order.
    changes : list of sim.model.book.BboChange
        The host's full book changes for the same stream (the reference model's).
    """
    refill = wire.BBO_UPDATE.flag("flags", "refill")

    def key_of(locate: int, slot) -> object:
        return locate if locate else ("slot", int(slot))

    by_seq: dict[int, list] = defaultdict(list)
    for r in records:
        by_seq[int(r["seq"])].append(("hw", r))
    for c in changes:
        by_seq[c.seq].append(("model", c))
    carried: dict = {}
    last: dict = {}
    out = []
    for seq in sorted(by_seq):
        items = sorted(by_seq[seq], key=lambda it: it[0] != "hw")   # records first
        for source, item in items:
            if source == "hw":
                key = key_of(int(item["locate"]), item["slot"])
                carried[key] = bool(item["flags"] & refill)
                if carried[key]:
                    continue
                f = int(item["flags"])
                top = (int(item["bid_price"]) if f & _FLAG["bid_valid"] else None,
                       int(item["bid_size"]) if f & _FLAG["bid_valid"] else None,
                       int(item["ask_price"]) if f & _FLAG["ask_valid"] else None,
                       int(item["ask_size"]) if f & _FLAG["ask_valid"] else None)
            else:
                key = key_of(item.locate, item.slot)
                if not carried.get(key):
                    continue
                top = (item.bid_price, item.bid_size, item.ask_price, item.ask_size)
            if last.get(key, (None,) * 4) != top:
                last[key] = top
                out.append((seq, key, *top))
    return out
