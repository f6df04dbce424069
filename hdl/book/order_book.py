"""The full book: an order table, the top ``levels`` price levels per symbol and side, the BBO.

Input: book events with their symbol slot resolved (:data:`hdl.feed.events.BookEventLayout`).
Output: a :data:`hdl.wire.BBO_UPDATE` record each time a symbol's published top changes.

# Ref: NASDAQ TotalView-ITCH 5.0 specification, sections 1.3 (Add Order 'A', 'F') and 1.4
# (Modify Order: 'E', 'C', 'X', 'D', 'U'); ticklane's LEVEL_UPDATE (hdl/wire.py). The exact
# semantics, anomalies included, are those of sim/model/book.py; sim/model/book_hw.py states what
# this block publishes when it cannot hold a symbol exactly.

Storage
-------
* Order table: ``ways`` block RAMs of ``sets`` entries (reference tag, slot, side, price,
  remaining shares); see :mod:`hdl.book.order_table` for the set index. An add whose set is full
  is not stored: the symbol is marked *lost* (sticky), counted, and published with the ``refill``
  flag and no sides from then on, so the host's software book carries it.
* Level store: three block RAMs with a row per symbol slot. A bid row and an ask row hold the
  side's best ``levels`` price levels sorted best first (price, 64-bit size, order count) and a
  count of the orders resting at prices not held ("deep"); the meta row holds the last applied
  sequence number, the last published top, the crypto snapshot state and a *live* bit per side.
  A side whose live bit is clear is empty whatever its row holds: a clear resets the two bits
  instead of writing both sides. Each cycle writes at most one side row (the side of the
  operation, or the side a refill installs) and the meta row, so the other side is never routed
  through the update logic.

The held levels of a side are always the exact best levels of the side. A join at a price worse
than the worst held level goes deep when the side is full or already has deep orders; a join
that pushes a full side out evicts its worst level to deep. When a side holds no level but has
deep orders, its best price is unknown: the side is published absent and the record carries
``refill`` until the side is exact again (its deep orders are all gone, or a snapshot clears it).
Crypto levels count as one order each; a deep crypto level cannot be tracked, so deep stays set
until the next snapshot or clear.

Pipeline (one event per cycle, a replace two)
---------------------------------------------
* accept: the event is registered; the order table set of its reference and the level rows of
  its slot are read (block RAM, synchronous).
* execute: hit and free ways are found, the order's side and price come from the table, the side's
  levels are updated by sorted insert / in-place update / removal, the new top is compared with
  the last published one, the table entry, the side row and the meta row are written back and a
  changed top is written to the output FIFO, stamped with the egress cycle.

A write at the end of execute lands on the same clock edge as the next event's read; the read
ports are write-first (transparent to the write ports, as block RAM can be), so the rows and the
table entry written last reach the next execute (back-to-back messages on the same order, level
or symbol need no stall, and no forwarding register is needed). A replace runs as two
micro-operations: the original leaves, then the new reference joins on the original's side; the
second reads the new reference's set and the original's rows while the first writes them.

Input is accepted only while the output FIFO has room for everything in flight, so a slow reader
backpressures the feed instead of losing records.

Refill (host levels in)
-----------------------
The ``refill`` port takes :data:`hdl.wire.BOOK_REFILL_LEVEL` records. A batch (``first`` ..
``last``) is collected into a staging side without touching the pipeline (one record per cycle);
levels beyond ``levels`` add their orders to the staged deep count. A complete batch then takes
one accept slot of the pipeline: the slot's row is read like an event's, and in execute the side
is replaced by the staged one, but only if the row's last applied event is not newer than the
batch's ``seq`` (else it is *stale*), the symbol is not lost, the slot exists and the batch was
well formed (else *rejected*). An installed side publishes like an event: a changed top leaves as
a record stamped with the batch's seq and locate. The install takes an accept slot the event input
leaves idle, or, after ``refill_patience`` cycles (16 by default) of waiting behind a busy input,
stalls the events for that one cycle.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import wire
from ..bits import lowest_set, onehot_index, onehot_select, popcount
from ..feed.events import BookEventLayout, EventKind
from .order_table import REF_BITS, order_set_index_hdl

__all__ = ["OrderBook", "DEFAULT_LEVELS", "DEFAULT_ORDER_WAYS", "DEFAULT_ORDER_SETS"]

DEFAULT_LEVELS = 8
DEFAULT_ORDER_WAYS = 16
DEFAULT_ORDER_SETS = 512

_LEVEL_SELL = 0       # bit positions in BookEventLayout.level_flags (= wire.LEVEL_UPDATE flags)
_LEVEL_BEGIN = 1
_LEVEL_END = 2
_LEVEL_DELETE = 3
_DEEP_BITS = 32
# cycles a complete refill batch waits for an idle input cycle before it stalls the events for one
_REFILL_PATIENCE = 16


def _pow2(name: str, value: int, lo: int) -> None:
    if not isinstance(value, int) or value < lo or value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= {lo}, not {value!r}")


class OrderBook(wiring.Component):
    """Order table, top-``levels`` price levels and BBO of up to ``slots`` symbols.

    Parameters
    ----------
    slots : int
        Symbol slots (a power of two). Events with ``slot >= slots`` are dropped and counted.
    levels : int
        Price levels held per symbol and side (``N``), 1 to 32.
    order_ways, order_sets : int
        Order table geometry (powers of two): capacity ``order_ways * order_sets`` orders.
    fifo_depth : int
        Depth of the output record FIFO.
    refill_patience : int
        Cycles a complete refill batch waits for an idle input cycle before it stalls the events
        for one (default 16).
    """

    def __init__(self, *, slots: int = 256, levels: int = DEFAULT_LEVELS,
                 order_ways: int = DEFAULT_ORDER_WAYS, order_sets: int = DEFAULT_ORDER_SETS,
                 fifo_depth: int = 16, refill_patience: int = _REFILL_PATIENCE):
        try:
            _pow2("slots", slots, 2)
            _pow2("order_ways", order_ways, 1)
            _pow2("order_sets", order_sets, 2)
            if not isinstance(levels, int) or not 1 <= levels <= 32:
                raise ValueError(f"levels must be an int in 1..32, not {levels!r}")
            if not isinstance(refill_patience, int) or refill_patience < 1:
                raise ValueError(f"refill_patience must be a positive int, not "
                                 f"{refill_patience!r}")
            if fifo_depth < 4:
                raise ValueError(f"fifo_depth must be at least 4, not {fifo_depth!r}")
        except ValueError:
            self._MustUse__silence = True   # a refused component is not an unused one
            raise
        self.slots = slots
        self.levels = levels
        self.order_ways = order_ways
        self.order_sets = order_sets
        self.fifo_depth = fifo_depth
        self.refill_patience = refill_patience
        self.slot_bits = (slots - 1).bit_length()
        self.set_bits = (order_sets - 1).bit_length()
        self.capacity = order_ways * order_sets
        self.count_bits = self.capacity.bit_length()

        # Each layout below puts its wide fields first, at multiples of 32 bits where its size
        # allows: the simulator then copies them as whole words, without shifts.
        self.entry_layout = data.StructLayout({
            "price": 32, "shares": 32, "tag": REF_BITS - self.set_bits, "slot": self.slot_bits,
            "sell": 1, "valid": 1,
        })
        self.level_layout = data.StructLayout({
            "price": 32, "size": 64, "orders": self.count_bits, "valid": 1,
        })
        self.top_layout = data.StructLayout({
            "bid_price": 32, "ask_price": 32, "bid_size": 64, "ask_size": 64,
            "bid_valid": 1, "ask_valid": 1, "refill": 1,
        })
        self.side_layout = data.StructLayout({
            "lv": data.ArrayLayout(self.level_layout, levels), "deep": _DEEP_BITS,
        })
        # a side row is current only while its ``live`` bit in the slot's meta row is set; a clear
        # resets the bits instead of writing zeros over the sides
        self.meta_layout = data.StructLayout({
            "last_seq": 64, "pub": self.top_layout, "in_snapshot": 1, "bid_live": 1,
            "ask_live": 1,
        })
        # bits of level store per symbol slot: a bid row, an ask row and a meta row
        self.row_bits = 2 * self.side_layout.size + self.meta_layout.size
        super().__init__({
            "events": In(stream.Signature(BookEventLayout)),
            "refill": In(stream.Signature(wire.BOOK_REFILL_LEVEL.layout)),
            "bbo": Out(stream.Signature(wire.BBO_UPDATE.layout)),
            "cycle": In(64),
            "count_refill_applied": Out(1),
            "count_refill_stale": Out(1),
            "count_refill_rejected": Out(1),
            "count_bbo": Out(1),
            "count_refill": Out(1),
            "count_table_full": Out(1),
            "count_unknown": Out(1),
            "count_duplicate": Out(1),
            "count_mismatch": Out(1),
            "count_bad_slot": Out(1),
            "orders_live": Out(32),
            "slots_lost": Out(32),
        })
        # High when the block's state may change on the next edge; see the end of elaborate().
        self.busy = Signal(name="busy")

    # ---------------------------------------------------------------------------------------
    def _side_update(self, m: Module, side, sell, price, qty, op_join, op_leave, op_set, op_del,
                     leaves, crypto):
        """New value of one side (``side_layout``) after one operation on it."""
        n = self.levels
        lv = side.lv
        new = Signal(self.side_layout, name="side_new")
        m.d.comb += new.eq(side)

        better = Signal(n, name="better")        # held level i strictly better than ``price``
        match = Signal(n, name="match")          # held level i at ``price``
        for i in range(n):
            cmp = Mux(sell, lv[i].price < price, lv[i].price > price)
            m.d.comb += [better[i].eq(lv[i].valid & cmp),
                         match[i].eq(lv[i].valid & (lv[i].price == price))]
        any_match = match.any()
        full = lv[n - 1].valid
        # the held levels are a sorted prefix, so ``better`` is a prefix too: the insertion point
        # is where it ends; ``worst_ok`` is "better than the worst held level"
        worse_than_all = Signal(name="worse_than_all")
        m.d.comb += worse_than_all.eq(Cat(*[~lv[i].valid | better[i] for i in range(n)]).all())
        qualifies = Mux(full, ~worse_than_all, ~worse_than_all | (side.deep == 0))

        # the held levels have distinct prices, so at most one matches: the OR of the matching
        # levels is that level
        matched = Signal(self.level_layout, name="matched")
        m.d.comb += matched.eq(onehot_select(match, [lv[i].as_value() for i in range(n)]))

        fresh = Signal(self.level_layout, name="fresh")
        m.d.comb += [fresh.valid.eq(1), fresh.price.eq(price), fresh.size.eq(qty),
                     fresh.orders.eq(1)]

        def insert():
            for i in range(n):
                at = ~better[i] & (better[i - 1] if i else 1)
                with m.If(~better[i]):
                    if i == 0:
                        m.d.comb += new.lv[i].eq(fresh)
                        continue
                    with m.If(at):
                        m.d.comb += new.lv[i].eq(fresh)
                    with m.Else():
                        m.d.comb += new.lv[i].eq(lv[i - 1])
            with m.If(full):
                evicted = lv[n - 1].orders
                m.d.comb += new.deep.eq(_sat_add(side.deep, evicted))

        def remove():
            for i in range(n):
                with m.If(~better[i]):
                    m.d.comb += new.lv[i].eq(lv[i + 1] if i + 1 < n else 0)

        def update(level):
            for i in range(n):
                with m.If(match[i]):
                    m.d.comb += new.lv[i].eq(level)

        joined = Signal(self.level_layout, name="joined")
        m.d.comb += [joined.eq(matched), joined.size.eq(matched.size + qty),
                     joined.orders.eq(matched.orders + 1)]
        left = Signal(self.level_layout, name="left")
        m.d.comb += [left.eq(matched), left.size.eq(matched.size - qty),
                     left.orders.eq(matched.orders - leaves)]
        setl = Signal(self.level_layout, name="setl")
        m.d.comb += [setl.eq(matched), setl.size.eq(qty)]

        with m.If(op_join | op_set):
            with m.If(any_match):
                update(Mux(op_join, joined, setl))
            with m.Elif(qualifies):
                insert()
            with m.Else():
                m.d.comb += new.deep.eq(_sat_add(side.deep, 1))
        with m.Elif(op_leave):
            with m.If(any_match):
                with m.If(matched.size == qty):
                    remove()
                with m.Else():
                    update(left)
            with m.Elif(~crypto & leaves & (side.deep != 0)):
                m.d.comb += new.deep.eq(side.deep - 1)
        with m.Elif(op_del):
            with m.If(any_match):
                remove()
        return new

    # ---------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        ways, n = self.order_ways, self.levels

        # ---- storage
        tbl_wr, tbl_rd = [], []
        for w in range(ways):
            mem = Memory(shape=self.entry_layout, depth=self.order_sets, init=[])
            m.submodules[f"orders_way{w}"] = mem
            tbl_wr.append(mem.write_port())
            # write-first: a read in the cycle of a write to its address returns the new entry
            tbl_rd.append(mem.read_port(transparent_for=(tbl_wr[-1],)))
        # the level store: a row per slot in each of three memories (bid side, ask side, meta),
        # write-first like the order table
        side_wr, side_rd = [], []
        for name in ("bid", "ask"):
            mem = Memory(shape=self.side_layout, depth=self.slots, init=[])
            m.submodules[f"levels_{name}"] = mem
            side_wr.append(mem.write_port())
            side_rd.append(mem.read_port(transparent_for=(side_wr[-1],)))
        m.submodules.levels_meta = metas = Memory(shape=self.meta_layout, depth=self.slots,
                                                  init=[])
        meta_wr = metas.write_port()
        meta_rd = metas.read_port(transparent_for=(meta_wr,))
        lost = Signal(self.slots)       # symbols the host's book carries (sticky)

        m.submodules.fifo = fifo = SyncFIFO(width=wire.BBO_UPDATE.width, depth=self.fifo_depth)
        m.d.comb += [
            self.bbo.valid.eq(fifo.r_rdy),
            self.bbo.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.bbo.ready),
        ]

        # ---- refill collection: a batch is staged in registers, then installed in one slot
        st_side = Signal(self.side_layout)
        st_slot = Signal(16)
        st_sell = Signal()
        st_seq = Signal(64)
        st_locate = Signal(16)
        st_ingress = Signal(wire.CYCLE_STAMP_BITS)
        st_index = Signal(9)
        st_prev = Signal(32)
        st_extra = Signal(_DEEP_BITS)
        st_bad = Signal()
        st_active = Signal()
        st_ready = Signal()             # a complete batch waits for its install
        st_wait = Signal(range(self.refill_patience + 1))
        rf = self.refill.payload
        rf_take = Signal()
        m.d.comb += [self.refill.ready.eq(~st_ready), rf_take.eq(self.refill.valid & ~st_ready)]
        with m.If(rf_take):
            first = rf.flags.first
            index = Mux(first, 0, st_index)
            bad = Mux(first, 0, st_bad | ~st_active
                      | (rf.slot != st_slot) | (rf.flags.sell != st_sell))
            level_bad = Signal()
            worse = Mux(rf.flags.sell, rf.price > st_prev, rf.price < st_prev)
            m.d.comb += level_bad.eq((rf.level != index) | (rf.size == 0) | (rf.orders == 0)
                                     | ((index != 0) & ~worse))
            with m.If(first):
                m.d.sync += [st_side.eq(0), st_extra.eq(0), st_slot.eq(rf.slot),
                             st_sell.eq(rf.flags.sell)]
            with m.If(~rf.flags.empty):
                # saturates: a 257th level cannot match an 8-bit index, so the batch goes bad
                m.d.sync += [st_index.eq(Mux(index[8], index, index + 1)), st_prev.eq(rf.price)]
                for i in range(n):
                    with m.If(index == i):
                        m.d.sync += [st_side.lv[i].valid.eq(1), st_side.lv[i].price.eq(rf.price),
                                     st_side.lv[i].size.eq(rf.size),
                                     st_side.lv[i].orders.eq(rf.orders)]
                with m.If(index >= n):
                    m.d.sync += st_extra.eq(_sat_add(Mux(first, 0, st_extra), rf.orders))
            with m.Else():
                m.d.sync += st_index.eq(index)
            m.d.sync += st_bad.eq(bad | (~rf.flags.empty & level_bad)
                                  | (rf.flags.empty & (index != 0)))
            with m.If(rf.flags.last):
                m.d.sync += [st_active.eq(0), st_ready.eq(1), st_seq.eq(rf.seq),
                             st_locate.eq(rf.locate),
                             st_ingress.eq(self.cycle[:wire.CYCLE_STAMP_BITS]),
                             st_side.deep.eq(_sat_add(Mux(first, 0, st_extra)
                                                      + Mux(~rf.flags.empty & (index >= n),
                                                            rf.orders, 0),
                                                      rf.orders_below))]
            with m.Else():
                m.d.sync += st_active.eq(1)

        # ---- accept
        ex = Signal(BookEventLayout)
        ex_valid = Signal()
        ex_inst = Signal()              # a refill install in execute
        ex_second = Signal()            # the joining half of a replace
        u_ok = Signal()                 # the replace's original was found (its side below)
        u_sell = Signal()
        in_ev = self.events.payload
        replace_first = Signal()
        m.d.comb += replace_first.eq(ex_valid & (ex.kind == EventKind.REPLACE) & ~ex_second)
        take = Signal()
        room = fifo.level + (ex_valid | ex_inst) < self.fifo_depth
        inst_go = Signal()              # the staged refill takes this accept slot
        m.d.comb += [
            inst_go.eq(st_ready & ~replace_first & room
                       & (~self.events.valid | (st_wait == self.refill_patience))),
            self.events.ready.eq(~replace_first & room & ~inst_go),
            take.eq(self.events.valid & self.events.ready),
        ]
        m.d.sync += ex_inst.eq(inst_go)
        with m.If(inst_go):
            m.d.sync += [st_ready.eq(0), st_wait.eq(0)]
        with m.Elif(st_ready & (st_wait != self.refill_patience)):
            m.d.sync += st_wait.eq(st_wait + 1)
        key_next = Signal(REF_BITS)
        m.d.comb += key_next.eq(Mux(replace_first, ex.new_order_ref, in_ev.order_ref))
        # One signal feeds all the ways' addresses: as an expression, each port would get a copy
        # of the XOR tree, and a simulator computes all of them on every cycle the feed moves.
        set_next = Signal(self.set_bits)
        m.d.comb += set_next.eq(order_set_index_hdl(key_next, self.set_bits))
        # The table set and the row are read only for a cycle that will have an event or an
        # install in execute: nothing else reads them.
        read = Signal()
        m.d.comb += read.eq(take | replace_first | inst_go)
        for w in range(ways):
            m.d.comb += [tbl_rd[w].addr.eq(set_next), tbl_rd[w].en.eq(read)]
        # the joining half of a replace reads its own slot again: the row the leaving half writes
        # on this edge comes back through the write-first read port
        row_next = Signal(self.slot_bits)
        m.d.comb += row_next.eq(Mux(replace_first, ex.slot[:self.slot_bits],
                                    Mux(inst_go, st_slot[:self.slot_bits],
                                        in_ev.slot[:self.slot_bits])))
        for port in (*side_rd, meta_rd):
            m.d.comb += [port.addr.eq(row_next), port.en.eq(read)]

        with m.If(replace_first):
            m.d.sync += [ex_valid.eq(1), ex_second.eq(1)]
        with m.Else():
            m.d.sync += [ex_valid.eq(take), ex_second.eq(0)]
            with m.If(take):
                m.d.sync += ex.eq(in_ev)


        # ---- execute
        # All of execute is computed under ``active`` and is zero without an event or install in
        # it: no write, record or count happens then. On the board that is a few enables; in
        # simulation the idle cycles skip the order table and the row logic entirely.
        active = Signal()
        m.d.comb += active.eq(ex_valid | ex_inst)
        lost_count = Signal(range(self.slots + 1))   # popcount(lost), kept as lost grows
        m.d.comb += self.slots_lost.eq(lost_count)
        # The execute's key and its set index, read by every way: signals, computed once, and
        # outside ``active``. Zeroed with the rest of execute they took the book stage to 23,824
        # LUTs on the xc7z020, against 20,149 as expressions and 18,607 as they are here.
        key = Signal(REF_BITS)
        key_set = Signal(self.set_bits)
        m.d.comb += [key.eq(Mux(ex_second, ex.new_order_ref, ex.order_ref)),
                     key_set.eq(order_set_index_hdl(key, self.set_bits))]
        with m.If(active):
            # ---- execute: order table
            slot = Signal(self.slot_bits)
            m.d.comb += slot.eq(Mux(ex_inst, st_slot[:self.slot_bits], ex.slot[:self.slot_bits]))
            # Values read in many places are signals of their own: an expression is written out
            # again at each use, and a simulator computes every copy.
            slot_ok = Signal()
            m.d.comb += slot_ok.eq((ex.slot < self.slots) if self.slot_bits < 16 else 1)
            inst_slot_ok = (st_slot < self.slots) if self.slot_bits < 16 else Const(1)
            key_tag = key[self.set_bits:]
            entries = [tbl_rd[w].data for w in range(ways)]
            hit = Signal(ways)
            free = Signal(ways)
            m.d.comb += [hit.eq(Cat(*[e.valid & (e.tag == key_tag) for e in entries])),
                         free.eq(Cat(*[~e.valid for e in entries]))]
            # At most one way of a set holds a tag (an add that hits is refused as a duplicate),
            # so the hit way is the OR of the hit bits' indices and the entry the OR of the hit
            # ways' entries; the free way is the lowest free one.
            free_first = Signal(ways)
            m.d.comb += free_first.eq(lowest_set(free))
            hit_way = Signal(range(ways))
            free_way = Signal(range(ways))
            m.d.comb += [hit_way.eq(onehot_index(hit)), free_way.eq(onehot_index(free_first))]
            entry = Signal(self.entry_layout)
            m.d.comb += entry.eq(onehot_select(hit, [e.as_value() for e in entries]))

            kind = ex.kind
            is_add, is_reduce, is_remove = Signal(), Signal(), Signal()
            is_level, is_clear, is_book = Signal(), Signal(), Signal()
            event_ok = Signal()
            m.d.comb += [
                event_ok.eq(ex_valid & slot_ok),
                is_add.eq(event_ok & ((kind == EventKind.ADD)
                                      | ((kind == EventKind.REPLACE) & ex_second & u_ok))),
                is_reduce.eq(event_ok & ((kind == EventKind.EXECUTE) | (kind == EventKind.CANCEL))),
                is_remove.eq(event_ok & ((kind == EventKind.DELETE)
                                         | ((kind == EventKind.REPLACE) & ~ex_second))),
                is_level.eq(event_ok & (kind == EventKind.LEVEL)),
                is_clear.eq(event_ok & (kind == EventKind.CLEAR)),
                is_book.eq(event_ok & (kind != EventKind.NONE) & (kind != EventKind.DIRECTORY)),
            ]
            m.d.comb += self.count_bad_slot.eq(ex_valid & ~slot_ok & (kind != EventKind.NONE)
                                               & (kind != EventKind.DIRECTORY))

            tbl_we = Signal()
            tbl_way = Signal(range(ways))
            tbl_data = Signal(self.entry_layout)
            lost_set = Signal(self.slots)     # slots to mark lost this cycle
            # High with every lost_set: its slot is always among them (a mismatch adds the
            # order's slot too). The published top reads this bit, not lost_set at the slot.
            lose_slot = Signal()
            live = Signal(32)
            m.d.comb += self.orders_live.eq(live)

            # the side operation to apply to this slot's row
            op_join, op_leave, op_set, op_del = Signal(), Signal(), Signal(), Signal()
            op_sell = Signal()
            op_price = Signal(32)
            op_qty = Signal(64)
            op_leaves = Signal()

            add_sell = Mux(ex_second, u_sell, ex.sell)
            with m.If(is_add):
                with m.If(hit.any()):
                    m.d.comb += self.count_duplicate.eq(1)
                    with m.If(ex_second):
                        # the original has left already: the book no longer equals the model's
                        m.d.comb += [lost_set.eq(Const(1, self.slots) << slot), lose_slot.eq(1)]
                with m.Elif(ex.shares == 0):
                    pass
                with m.Elif(free.any()):
                    m.d.comb += [
                        tbl_we.eq(1), tbl_way.eq(free_way),
                        tbl_data.valid.eq(1), tbl_data.tag.eq(key_tag), tbl_data.slot.eq(slot),
                        tbl_data.sell.eq(add_sell), tbl_data.price.eq(ex.price),
                        tbl_data.shares.eq(ex.shares),
                        op_join.eq(1), op_sell.eq(add_sell), op_price.eq(ex.price),
                        op_qty.eq(ex.shares),
                    ]
                    m.d.sync += live.eq(live + 1)
                with m.Else():
                    m.d.comb += [self.count_table_full.eq(1), lose_slot.eq(1),
                                 lost_set.eq(Const(1, self.slots) << slot)]

            remaining = entry.shares
            whole = is_remove | (ex.shares >= remaining)
            with m.If(is_reduce | is_remove):
                with m.If(~hit.any()):
                    m.d.comb += self.count_unknown.eq(1)
                with m.Elif(is_reduce & (ex.shares == 0)):
                    pass
                with m.Else():
                    m.d.comb += [tbl_we.eq(1), tbl_way.eq(hit_way), tbl_data.eq(entry)]
                    with m.If(whole):
                        m.d.comb += tbl_data.valid.eq(0)
                        m.d.sync += live.eq(live - 1)
                    with m.Else():
                        m.d.comb += tbl_data.shares.eq(remaining - ex.shares)
                    with m.If(entry.slot != slot):
                        # the order belongs to another symbol: both books are handed to the host
                        m.d.comb += [self.count_mismatch.eq(1), lose_slot.eq(1),
                                     lost_set.eq((Const(1, self.slots) << slot)
                                                      | (Const(1, self.slots) << entry.slot))]
                    with m.Else():
                        m.d.comb += [
                            op_leave.eq(1), op_sell.eq(entry.sell), op_price.eq(entry.price),
                            op_qty.eq(Mux(whole, remaining, ex.shares)), op_leaves.eq(whole),
                        ]
            with m.If(is_remove & (kind == EventKind.REPLACE)):
                m.d.sync += [u_ok.eq(hit.any() & (entry.slot == slot)), u_sell.eq(entry.sell)]

            flags = ex.level_flags
            with m.If(is_level):
                m.d.comb += [op_sell.eq(flags[_LEVEL_SELL] | ex.sell), op_price.eq(ex.price),
                             op_qty.eq(ex.shares)]
                with m.If(flags[_LEVEL_DELETE] | (ex.shares == 0)):
                    m.d.comb += op_del.eq(1)
                with m.Else():
                    m.d.comb += op_set.eq(1)

            with m.If(tbl_we):
                for w in range(ways):
                    m.d.comb += tbl_wr[w].en.eq(tbl_way == w)

            # ---- execute: levels
            # One side is rewritten per cycle: the side of the operation, or the staged side of
            # an install. A clear (or a snapshot's first level) empties both sides through the
            # meta row's live bits; the written side becomes live again.
            meta = Signal(self.meta_layout)
            m.d.comb += meta.eq(meta_rd.data)
            clearing = is_clear | (is_level & flags[_LEVEL_BEGIN])
            bid_live = Signal(name="bid_live")
            ask_live = Signal(name="ask_live")
            m.d.comb += [bid_live.eq(meta.bid_live & ~clearing),
                         ask_live.eq(meta.ask_live & ~clearing)]
            wsell = Signal(name="wsell")            # the side this cycle writes
            m.d.comb += wsell.eq(Mux(ex_inst, st_sell, op_sell))
            side = Signal(self.side_layout)
            with m.If(ex_inst):
                m.d.comb += side.eq(st_side)
            with m.Elif(op_sell):
                with m.If(ask_live):
                    m.d.comb += side.eq(side_rd[1].data)
            with m.Else():
                with m.If(bid_live):
                    m.d.comb += side.eq(side_rd[0].data)
            new_side = self._side_update(m, side, op_sell, op_price, op_qty, op_join, op_leave,
                                         op_set, op_del, op_leaves, is_level)
            # The new meta row is assembled from separate parts: the published top is computed
            # from the new sides, and a row that fed its own top back into itself would be a
            # (false) combinational loop that the simulator resolves by evaluating it again.
            new_in_snapshot = Signal(name="new_in_snapshot")
            new_last_seq = Signal(64, name="new_last_seq")
            new_pub = Signal(self.top_layout, name="new_pub")
            m.d.comb += [new_in_snapshot.eq(meta.in_snapshot), new_last_seq.eq(meta.last_seq),
                         new_pub.eq(meta.pub)]
            with m.If(is_level & flags[_LEVEL_BEGIN]):
                m.d.comb += new_in_snapshot.eq(1)
            with m.If(is_level & flags[_LEVEL_END]):
                m.d.comb += new_in_snapshot.eq(0)
            with m.If(is_book):
                m.d.comb += new_last_seq.eq(ex.seq)

            # ---- execute: refill install (no event is in execute with it)
            # The slot's lost bit, a signal of its own: an expression is written out again at
            # each use, and a simulator computes each copy (here a shift of all the slots' bits).
            lost_bit = Signal()
            m.d.comb += lost_bit.eq(lost.bit_select(slot, 1))
            inst_rejected = Signal()
            m.d.comb += inst_rejected.eq(ex_inst & (~inst_slot_ok | st_bad | lost_bit))
            inst_stale = ex_inst & ~inst_rejected & (meta.last_seq > st_seq)
            inst_ok = Signal()
            m.d.comb += [
                inst_ok.eq(ex_inst & ~inst_rejected & ~inst_stale),
                self.count_refill_applied.eq(inst_ok),
                self.count_refill_stale.eq(inst_stale),
                self.count_refill_rejected.eq(inst_rejected),
            ]

            # ---- execute: the published top
            lost_now = Signal()
            m.d.comb += lost_now.eq(lost_bit | lose_slot)
            # the best level and deep count of each side after this cycle: the written side's
            # from the new side, the other's from its row (empty unless live)
            bid0 = Signal(self.level_layout, name="bid0")
            ask0 = Signal(self.level_layout, name="ask0")
            bid_deep = Signal(_DEEP_BITS, name="bid_deep")
            ask_deep = Signal(_DEEP_BITS, name="ask_deep")
            with m.If(wsell):
                m.d.comb += [ask0.eq(new_side.lv[0]), ask_deep.eq(new_side.deep)]
                with m.If(bid_live):
                    m.d.comb += [bid0.eq(side_rd[0].data.lv[0]),
                                 bid_deep.eq(side_rd[0].data.deep)]
            with m.Else():
                m.d.comb += [bid0.eq(new_side.lv[0]), bid_deep.eq(new_side.deep)]
                with m.If(ask_live):
                    m.d.comb += [ask0.eq(side_rd[1].data.lv[0]),
                                 ask_deep.eq(side_rd[1].data.deep)]
            bid_blind = ~bid0.valid & (bid_deep != 0)
            ask_blind = ~ask0.valid & (ask_deep != 0)
            # the valid bits are signals of their own: fields computed from other fields of the
            # same signal would be a (false) combinational loop for the simulator
            bid_valid, ask_valid = Signal(name="top_bid_valid"), Signal(name="top_ask_valid")
            m.d.comb += [bid_valid.eq(bid0.valid & ~lost_now), ask_valid.eq(ask0.valid & ~lost_now)]
            top = Signal(self.top_layout)
            m.d.comb += [
                top.bid_valid.eq(bid_valid),
                top.ask_valid.eq(ask_valid),
                top.refill.eq(lost_now | bid_blind | ask_blind),
                top.bid_price.eq(Mux(bid_valid, bid0.price, 0)),
                top.bid_size.eq(Mux(bid_valid, bid0.size, 0)),
                top.ask_price.eq(Mux(ask_valid, ask0.price, 0)),
                top.ask_size.eq(Mux(ask_valid, ask0.size, 0)),
            ]
            reports = ((is_book & ~replace_first) | inst_ok) & ~new_in_snapshot
            changed = Signal()
            m.d.comb += changed.eq(reports & (top.as_value() != meta.pub.as_value()))
            with m.If(changed):
                m.d.comb += new_pub.eq(top)
            new_meta = Signal(self.meta_layout)
            m.d.comb += [new_meta.pub.eq(new_pub), new_meta.in_snapshot.eq(new_in_snapshot),
                         new_meta.last_seq.eq(new_last_seq),
                         new_meta.bid_live.eq(Mux(wsell, bid_live, 1)),
                         new_meta.ask_live.eq(Mux(wsell, 1, ask_live))]

            with m.If(is_book | inst_ok):
                m.d.comb += [meta_wr.en.eq(1), side_wr[0].en.eq(~wsell), side_wr[1].en.eq(wsell)]
            with m.If(lose_slot):
                m.d.sync += [lost.eq(lost | lost_set), lost_count.eq(popcount(lost | lost_set))]

            record = Signal(wire.BBO_UPDATE.layout)
            m.d.comb += [
                record.seq.eq(Mux(ex_inst, st_seq, ex.seq)),
                record.bid_price.eq(top.bid_price),
                record.bid_size.eq(top.bid_size),
                record.ask_price.eq(top.ask_price),
                record.ask_size.eq(top.ask_size),
                record.ingress_cycle.eq(Mux(ex_inst, st_ingress, ex.ingress)),
                record.egress_cycle.eq(self.cycle[:wire.CYCLE_STAMP_BITS]),
                record.slot.eq(slot),
                record.flags.bid_valid.eq(bid_valid),
                record.flags.ask_valid.eq(ask_valid),
                record.flags.refill.eq(top.refill),
                record.flags.crossed.eq(bid_valid & ask_valid
                                        & (top.bid_price >= top.ask_price)),
                record.locate.eq(Mux(ex_inst, st_locate, ex.locate)),
                fifo.w_en.eq(changed),
                self.count_bbo.eq(changed),
                self.count_refill.eq(changed & top.refill & ~meta.pub.refill),
            ]

        # The write ports' address and data, and the FIFO's data, are the execute's values on
        # every cycle (zero without one); only the enables above are conditional. A simulator
        # then needs no copy of them: each port reads the execute's signal itself.
        for w in range(ways):
            m.d.comb += [tbl_wr[w].addr.eq(key_set), tbl_wr[w].data.eq(tbl_data)]
        for port in side_wr:
            m.d.comb += [port.addr.eq(slot), port.data.eq(new_side)]
        m.d.comb += [meta_wr.addr.eq(slot), meta_wr.data.eq(new_meta), fifo.w_data.eq(record)]

        # Activity, for the simulation harness (nothing in the gateware reads it). With it low
        # no register, memory or FIFO of the block changes on the next edge: every write above
        # happens under an event or refill offered, an event or install in execute, a staged
        # batch waiting (its patience counts), or a record leaving the FIFO.
        m.d.comb += self.busy.eq(ResetSignal() | self.events.valid | self.refill.valid
                                 | ex_valid | ex_inst | st_ready | fifo.r_rdy)
        return m


def _sat_add(value, inc):
    total = value + inc
    return Mux(total[_DEEP_BITS:].any(), (1 << _DEEP_BITS) - 1, total[:_DEEP_BITS])
