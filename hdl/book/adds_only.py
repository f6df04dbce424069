"""Top of book from add orders alone: the walking skeleton's book stage.

Each stock directory ('R') message subscribes its stock locate to the next free symbol slot.
For subscribed symbols the stage keeps the best bid and ask and the aggregate displayed shares at
each, from 'A' and 'F' adds only (executions, cancels, deletes and replaces are the full book's
job), and emits a :data:`hdl.wire.BBO_UPDATE` record whenever a best price or its size changes.

Pipeline (no internal stall):

* accept: the event is registered and the locate → slot table (block RAM, one read port,
  transparent for the table's write port so an 'R' followed at once by an add of the same symbol
  sees its slot) is read;
* update: the slot's top of book is read from a small LUT RAM, the add is applied, the new state
  written back in the same cycle (so back-to-back adds on one symbol need no forwarding), and a
  changed top is written to the output FIFO, stamped with the egress cycle.

Input is accepted only while the output FIFO has room for everything in flight, so a slow reader
backpressures the feed instead of losing records.
"""

from __future__ import annotations

from amaranth import Module, Signal, Mux
from amaranth.lib import wiring, stream, data
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import wire
from ..feed.events import BookEventLayout, EventKind

__all__ = ["AddsOnlyTopOfBook"]


class AddsOnlyTopOfBook(wiring.Component):
    """Adds-only top of book for up to ``slots`` symbols.

    Parameters
    ----------
    slots : int
        Number of symbol slots (a power of two).
    fifo_depth : int
        Depth of the output record FIFO.
    """

    def __init__(self, *, slots: int = 256, fifo_depth: int = 16):
        if slots < 2 or slots & (slots - 1):
            raise ValueError(f"slots must be a power of two >= 2, not {slots!r}")
        if fifo_depth < 4:
            raise ValueError(f"fifo_depth must be at least 4, not {fifo_depth!r}")
        self.slots = slots
        self.fifo_depth = fifo_depth
        self.slot_bits = (slots - 1).bit_length()
        super().__init__({
            "events": In(stream.Signature(BookEventLayout)),
            "bbo": Out(stream.Signature(wire.BBO_UPDATE.layout)),
            "cycle": In(64),
            "count_bbo": Out(1),
            "count_unsubscribed": Out(1),
            "count_slot_overflow": Out(1),
            "subscribed": Out(range(slots + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        slot_entry = data.StructLayout({"valid": 1, "slot": self.slot_bits})
        top_entry = data.StructLayout({
            "bid_price": 32, "ask_price": 32, "bid_size": 64, "ask_size": 64,
            "bid_valid": 1, "ask_valid": 1,
        })

        m.submodules.slot_table = slot_table = Memory(shape=slot_entry, depth=1 << 16, init=[])
        slot_wr = slot_table.write_port()
        slot_rd = slot_table.read_port(transparent_for=(slot_wr,))

        m.submodules.tops = tops = Memory(shape=top_entry, depth=self.slots, init=[])
        top_wr = tops.write_port()
        top_rd = tops.read_port(domain="comb")

        m.submodules.fifo = fifo = SyncFIFO(width=wire.BBO_UPDATE.width, depth=self.fifo_depth)
        m.d.comb += [
            self.bbo.valid.eq(fifo.r_rdy),
            self.bbo.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.bbo.ready),
        ]

        # accept
        ev = Signal(BookEventLayout)
        ev_valid = Signal()
        take = Signal()
        m.d.comb += [
            self.events.ready.eq(fifo.level + ev_valid < self.fifo_depth),
            take.eq(self.events.valid & self.events.ready),
            slot_rd.addr.eq(self.events.payload.locate),
            slot_rd.en.eq(take),
        ]
        m.d.sync += ev_valid.eq(take)
        with m.If(take):
            m.d.sync += ev.eq(self.events.payload)

        # update
        next_free = Signal(range(self.slots + 1))
        m.d.comb += self.subscribed.eq(next_free)
        entry = slot_rd.data
        slot = entry.slot
        m.d.comb += top_rd.addr.eq(slot)
        cur = top_rd.data
        new = Signal(top_entry)
        m.d.comb += new.eq(cur)
        changed = Signal()

        with m.If(ev_valid & (ev.kind == EventKind.DIRECTORY) & ~entry.valid):
            with m.If(next_free < self.slots):
                m.d.comb += [
                    slot_wr.addr.eq(ev.locate),
                    slot_wr.data.valid.eq(1),
                    slot_wr.data.slot.eq(next_free[:self.slot_bits]),
                    slot_wr.en.eq(1),
                    # a fresh slot starts with an empty book
                    top_wr.addr.eq(next_free[:self.slot_bits]),
                    top_wr.data.eq(0),
                    top_wr.en.eq(1),
                ]
                m.d.sync += next_free.eq(next_free + 1)
            with m.Else():
                m.d.comb += self.count_slot_overflow.eq(1)

        with m.If(ev_valid & (ev.kind == EventKind.ADD)):
            with m.If(~entry.valid):
                m.d.comb += self.count_unsubscribed.eq(1)
            with m.Elif(ev.sell):
                with m.If(~cur.ask_valid | (ev.price < cur.ask_price)):
                    m.d.comb += [new.ask_valid.eq(1), new.ask_price.eq(ev.price),
                                 new.ask_size.eq(ev.shares)]
                with m.Elif(ev.price == cur.ask_price):
                    m.d.comb += new.ask_size.eq(cur.ask_size + ev.shares)
            with m.Else():
                with m.If(~cur.bid_valid | (ev.price > cur.bid_price)):
                    m.d.comb += [new.bid_valid.eq(1), new.bid_price.eq(ev.price),
                                 new.bid_size.eq(ev.shares)]
                with m.Elif(ev.price == cur.bid_price):
                    m.d.comb += new.bid_size.eq(cur.bid_size + ev.shares)
            with m.If(entry.valid):
                m.d.comb += [
                    top_wr.addr.eq(slot),
                    top_wr.data.eq(new),
                    top_wr.en.eq(1),
                    changed.eq(new.as_value() != cur.as_value()),
                ]

        record = Signal(wire.BBO_UPDATE.layout)
        m.d.comb += [
            record.seq.eq(ev.seq),
            record.bid_price.eq(Mux(new.bid_valid, new.bid_price, 0)),
            record.bid_size.eq(Mux(new.bid_valid, new.bid_size, 0)),
            record.ask_price.eq(Mux(new.ask_valid, new.ask_price, 0)),
            record.ask_size.eq(Mux(new.ask_valid, new.ask_size, 0)),
            record.ingress_cycle.eq(ev.ingress),
            record.egress_cycle.eq(self.cycle[:wire.CYCLE_STAMP_BITS]),
            record.slot.eq(slot),
            record.flags.bid_valid.eq(new.bid_valid),
            record.flags.ask_valid.eq(new.ask_valid),
            record.flags.crossed.eq(new.bid_valid & new.ask_valid
                                    & (new.bid_price >= new.ask_price)),
            record.locate.eq(ev.locate),
            fifo.w_data.eq(record),
            fifo.w_en.eq(changed),
            self.count_bbo.eq(changed),
        ]
        return m
