"""First-come symbol subscriptions: stock locate → symbol slot, in front of the book.

Each stock directory ('R') event subscribes its stock locate to the next free symbol slot until
the slots run out (the rule of :mod:`sim.reference`). ITCH events of subscribed locates leave with
their ``slot`` set; those of other locates are dropped and counted. Crypto events (LEVEL, CLEAR)
carry their slot already and pass unchanged.

This stage is needed while the feed stage sends locates unresolved; a feed that resolves slots
itself makes it unnecessary (``BookStage(assign_slots=False)``).

One register stage: the locate table (block RAM) is read as the event is accepted and the event
leaves in the next cycle. The table's read port is transparent for its write port, so an event
right behind the 'R' of its symbol sees the new slot.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..feed.events import BookEventLayout, EventKind

__all__ = ["FirstComeSubscriptions"]


class FirstComeSubscriptions(wiring.Component):
    """Resolve stock locates to symbol slots, first come first served.

    Parameters
    ----------
    slots : int
        Symbol slots (a power of two).
    """

    def __init__(self, *, slots: int = 256):
        if slots < 2 or slots & (slots - 1):
            raise ValueError(f"slots must be a power of two >= 2, not {slots!r}")
        self.slots = slots
        self.slot_bits = (slots - 1).bit_length()
        super().__init__({
            "events": In(stream.Signature(BookEventLayout)),
            "resolved": Out(stream.Signature(BookEventLayout)),
            "count_unsubscribed": Out(1),
            "count_slot_overflow": Out(1),
            "subscribed": Out(range(slots + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        entry_layout = data.StructLayout({"valid": 1, "slot": self.slot_bits})
        m.submodules.locate_table = table = Memory(shape=entry_layout, depth=1 << 16, init=[])
        wr = table.write_port()
        rd = table.read_port(transparent_for=(wr,))

        held = Signal(BookEventLayout)
        held_valid = Signal()
        entry = rd.data
        is_itch = ((held.kind != EventKind.LEVEL) & (held.kind != EventKind.CLEAR)
                   & (held.kind != EventKind.NONE) & (held.kind != EventKind.DIRECTORY))
        passes = held_valid & (~is_itch | entry.valid) & (held.kind != EventKind.DIRECTORY) \
            & (held.kind != EventKind.NONE)
        take = Signal()
        m.d.comb += [
            self.resolved.valid.eq(passes),
            self.resolved.payload.eq(held),
            self.events.ready.eq(~passes | self.resolved.ready),
            take.eq(self.events.valid & self.events.ready),
            rd.addr.eq(self.events.payload.locate),
            rd.en.eq(take),
        ]
        with m.If(is_itch):
            m.d.comb += self.resolved.payload.slot.eq(entry.slot)
        with m.If(self.events.ready):
            m.d.sync += held_valid.eq(self.events.valid)
            with m.If(self.events.valid):
                m.d.sync += held.eq(self.events.payload)

        next_free = Signal(range(self.slots + 1))
        m.d.comb += self.subscribed.eq(next_free)
        with m.If(held_valid & (held.kind == EventKind.DIRECTORY) & ~entry.valid):
            with m.If(next_free < self.slots):
                m.d.comb += [wr.addr.eq(held.locate), wr.data.valid.eq(1),
                             wr.data.slot.eq(next_free[:self.slot_bits]), wr.en.eq(1)]
                m.d.sync += next_free.eq(next_free + 1)
            with m.Else():
                m.d.comb += self.count_slot_overflow.eq(1)
        m.d.comb += self.count_unsubscribed.eq(held_valid & is_itch & ~entry.valid)
        return m
