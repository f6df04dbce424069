"""The book stage: book events in, top-of-book records out.

:class:`FirstComeSubscriptions` (while the feed sends locates unresolved) in front of
:class:`OrderBook` (order table, top ``levels`` price levels per side, BBO).
"""

from amaranth import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from .. import wire
from ..stage import CounterBank, register_keys
from ..feed.events import BookEventLayout
from .order_book import (_REFILL_PATIENCE, DEFAULT_LEVELS, DEFAULT_ORDER_SETS,
                         DEFAULT_ORDER_WAYS, OrderBook)
from .subscriptions import FirstComeSubscriptions

__all__ = ["BookStage"]


class BookStage(wiring.Component):
    """Keep the top of book of every subscribed symbol.

    Parameters
    ----------
    slots : int
        Symbol slots.
    levels : int
        Price levels held per symbol and side.
    order_ways, order_sets : int
        Order table geometry; capacity ``order_ways * order_sets``.
    assign_slots : bool
        Subscribe symbols first come on their directory events and resolve locates to slots here
        (True), or take events whose ``slot`` the feed has resolved (False).
    refill_patience : int
        See :class:`OrderBook` (default 16).
    """

    def __init__(self, *, slots: int = 256, levels: int = DEFAULT_LEVELS,
                 order_ways: int = DEFAULT_ORDER_WAYS, order_sets: int = DEFAULT_ORDER_SETS,
                 assign_slots: bool = True, refill_patience: int = _REFILL_PATIENCE):
        self.slots = slots
        self.levels = levels
        self.order_ways = order_ways
        self.order_sets = order_sets
        self.assign_slots = assign_slots
        self.book = OrderBook(slots=slots, levels=levels, order_ways=order_ways,
                              order_sets=order_sets, refill_patience=refill_patience)
        super().__init__({
            "events": In(stream.Signature(BookEventLayout)),
            "refill": In(stream.Signature(wire.BOOK_REFILL_LEVEL.layout)),
            "bbo": Out(stream.Signature(wire.BBO_UPDATE.layout)),
            "cycle": In(64),
            "clear": In(1),
        })
        self.status = {key: Signal(32, name=f"book_{key.lower()}")
                       for key in register_keys(wire.BOOK_REGISTERS, "r")}
        self.control = {key: Signal(32, name=f"book_{key.lower()}")
                        for key in register_keys(wire.BOOK_REGISTERS, "rw")}
        self.control_strobe = {}
        # High when the stage's state may change on the next edge (the book's, or a clear of the
        # counters; always, with ``assign_slots``); for the simulation harness, see
        # :attr:`OrderBook.busy`.
        self.busy = Signal(name="busy")

    @property
    def config(self) -> str:
        """A short name of the build parameters."""
        return (f"s{self.slots}n{self.levels}w{self.order_ways}x{self.order_sets}"
                f"{'a' if self.assign_slots else 'r'}"
                + ("" if self.book.refill_patience == _REFILL_PATIENCE
                   else f"p{self.book.refill_patience}"))

    def elaborate(self, platform):
        m = Module()
        m.submodules.book = book = self.book
        pulses = {
            "BBO_OUT": book.count_bbo,
            "BOOK_TABLE_FULL": book.count_table_full,
            "BOOK_REFILL": book.count_refill,
            "BOOK_UNKNOWN_ORDER": book.count_unknown,
            "BOOK_DUPLICATE_ORDER": book.count_duplicate,
            "BOOK_LOCATE_MISMATCH": book.count_mismatch,
            "BOOK_BAD_SLOT": book.count_bad_slot,
            "BOOK_REFILLS_APPLIED": book.count_refill_applied,
            "BOOK_REFILLS_STALE": book.count_refill_stale,
            "BOOK_REFILLS_REJECTED": book.count_refill_rejected,
        }
        if self.assign_slots:
            # Standalone use only: in the top the feed stage owns subscriptions and its registers
            # (FEED_SUBSCRIBED, FEED_SLOT_OVERFLOW, FEED_DROP_UNSUBSCRIBED) count them.
            m.submodules.subscriptions = subs = FirstComeSubscriptions(slots=self.slots)
            connect(m, wiring.flipped(self.events), subs.events)
            connect(m, subs.resolved, book.events)
        else:
            connect(m, wiring.flipped(self.events), book.events)
        connect(m, wiring.flipped(self.refill), book.refill)
        connect(m, book.bbo, wiring.flipped(self.bbo))
        m.d.comb += book.cycle.eq(self.cycle)
        counters = CounterBank(pulses, self.clear)
        counters.elaborate_into(m)
        for key, value in counters.values.items():
            m.d.comb += self.status[key].eq(value)
        m.d.comb += [
            self.status["BOOK_ORDER_CAPACITY"].eq(book.capacity),
            self.status["BOOK_LEVELS"].eq(self.levels),
            self.status["BOOK_ORDERS_LIVE"].eq(book.orders_live),
            self.status["BOOK_SYMBOLS_LOST"].eq(book.slots_lost),
        ]
        # With slots assigned here (standalone use) the stage says it is always busy.
        m.d.comb += self.busy.eq(book.busy | self.clear | self.assign_slots)
        return m
