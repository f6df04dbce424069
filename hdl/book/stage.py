"""The book stage: book events in, top-of-book records out.

Walking-skeleton version: :class:`AddsOnlyTopOfBook` (subscribes on 'R', books adds only).
"""

from amaranth import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from .. import wire
from ..stage import CounterBank, register_keys
from ..feed.events import BookEventLayout
from .adds_only import AddsOnlyTopOfBook

__all__ = ["BookStage"]


class BookStage(wiring.Component):
    """Keep the top of book of every subscribed symbol.

    Parameters
    ----------
    slots : int
        Symbol slots.
    """

    def __init__(self, *, slots: int = 256):
        self.slots = slots
        super().__init__({
            "events": In(stream.Signature(BookEventLayout)),
            "bbo": Out(stream.Signature(wire.BBO_UPDATE.layout)),
            "cycle": In(64),
            "clear": In(1),
        })
        self.status = {key: Signal(32, name=f"book_{key.lower()}")
                       for key in register_keys(wire.BOOK_REGISTERS, "r")}
        self.control = {key: Signal(32, name=f"book_{key.lower()}")
                        for key in register_keys(wire.BOOK_REGISTERS, "rw")}
        self.control_strobe = {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.tob = tob = AddsOnlyTopOfBook(slots=self.slots)
        connect(m, wiring.flipped(self.events), tob.events)
        connect(m, tob.bbo, wiring.flipped(self.bbo))
        m.d.comb += tob.cycle.eq(self.cycle)
        counters = CounterBank({
            "BBO_OUT": tob.count_bbo,
            "DROP_UNSUBSCRIBED": tob.count_unsubscribed,
            "SLOT_OVERFLOW": tob.count_slot_overflow,
        }, self.clear)
        counters.elaborate_into(m)
        for key, value in counters.values.items():
            m.d.comb += self.status[key].eq(value)
        m.d.comb += self.status["SUBSCRIBED"].eq(tob.subscribed)
        return m
