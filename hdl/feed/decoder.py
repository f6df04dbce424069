"""Sequence, decode and route delimited units: book events, host records, gap records.

# Ref: NASDAQ TotalView-ITCH 5.0 specification (rev. 2023-04-28), sections 1.1-1.8 (message
# formats; every integer big-endian); NASDAQ MoldUDP64 Protocol Specification v1.00 (downstream
# packets, heartbeats, end of session); ticklane's LEVEL_UPDATE (hdl/wire.py, little-endian).

One cycle per unit: every field sits at a fixed offset of the gathered vector (the deframer
aligns each unit to byte 0), so decoding is wiring, a few comparators and one output register.

* MoldUDP64 header units are checked against the session table (:data:`SESSIONS` entries, each a
  session name, its next expected sequence number and whether it ended), with the rules of
  :class:`host.feed.framing.MoldSequencer`; a gap sends a :data:`hdl.wire.FEED_GAP` record, and
  the packet's repeated (or all its) messages are marked to be dropped as they arrive. Blocks a
  packet announced and did not bring are missing again when the next header arrives (that header
  waits one cycle).
* Messages A F E C X D U and the level update 'l' become book events with the slot resolved;
  R becomes a DIRECTORY event when its locate is (or becomes) subscribed. Book messages of an
  unsubscribed locate are dropped and counted, unless ``pass_all`` (then slot 0xFFFF; a level
  update keeps its own slot, which is then out of range).
* Every other ITCH type, and R, goes to the host whole as a :data:`hdl.wire.HOST_MESSAGE`.
"""

from __future__ import annotations

from amaranth import Module, Signal, Cat, Mux
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out

from .. import wire
from .deframer import UnitLayout
from .events import BookEventLayout, EventKind
from .messages import MAX_MESSAGE, type_lookup

__all__ = ["Decoder", "entry_layout", "SESSIONS", "TICKERS", "NO_SLOT",
           "SUB_AUTO", "SUB_TICKERS", "SUB_HOST"]

PREFIX = 2          # the length prefix precedes the message in the vector
SESSIONS = 4        # MoldUDP64 sessions tracked at once
TICKERS = 8         # host-written tickers of the SUB_TICKERS mode
NO_SLOT = 0xFFFF
SUB_AUTO, SUB_TICKERS, SUB_HOST = 0, 1, 2



def entry_layout(slots: int) -> data.StructLayout:
    """A subscription table entry: valid, and a slot just wide enough for ``slots`` slots
    (8 bits for 256: the 65,536-entry table then takes 16 BRAM36, not the 32 of a 16-bit slot).
    """
    return data.StructLayout({"valid": 1, "slot": max(1, (slots - 1).bit_length())})

_BOOK_TYPES = {ord("A"): EventKind.ADD, ord("F"): EventKind.ADD, ord("E"): EventKind.EXECUTE,
               ord("C"): EventKind.EXECUTE, ord("X"): EventKind.CANCEL,
               ord("D"): EventKind.DELETE, ord("U"): EventKind.REPLACE}


def big_endian(vec, offset: int, length: int):
    """Field of ``length`` bytes at message ``offset``, big-endian."""
    start = PREFIX + offset
    return Cat(*[vec[start + i] for i in reversed(range(length))])


def wire_order(vec, offset: int, length: int):
    """Bytes kept in wire order (byte 0 of the field in the low bits): alpha fields and the
    little-endian level update."""
    start = PREFIX + offset
    return Cat(*[vec[start + i] for i in range(length)])


class Decoder(wiring.Component):
    """Stage two of the feed: one unit per cycle in, at most one record per output out.

    Parameters
    ----------
    slots : int
        Symbol slots handed out by directory messages (and the bound of level-update slots).

    The subscription table itself lives outside (:class:`hdl.feed.subscriptions.
    SubscriptionTable`): ``entry`` is its read data for the unit presented, ``sub_*`` asks it to
    write one entry.
    """

    def __init__(self, *, slots: int = 256):
        if not 1 <= slots < NO_SLOT:
            self._MustUse__silence = True   # a refused component is not an unused one
            raise ValueError(f"slots must be in 1..{NO_SLOT - 1}, not {slots!r}")
        self.slots = slots
        super().__init__({
            "units": In(stream.Signature(UnitLayout)),
            "events": Out(stream.Signature(BookEventLayout)),
            "host": Out(stream.Signature(wire.HOST_MESSAGE.layout)),
            "gaps": Out(stream.Signature(wire.FEED_GAP.layout)),
            "mold": In(1),
            "mold_join": In(1),
            "mold_reset": In(1),
            "sub_mode": In(2),
            "pass_all": In(1),
            "tickers": In(data.ArrayLayout(64, TICKERS)),
            "entry": In(entry_layout(slots)),
            "sub_en": Out(1),
            "sub_addr": Out(16),
            "sub_slot": Out(16),
            "subscribed": Out(range(slots + 1)),
            # counters: one-cycle pulses, or amounts to add
            "count_decoded": Out(1),
            "count_event": Out(1),
            "count_host": Out(1),
            "count_gap": Out(1),
            "count_unsubscribed": Out(1),
            "count_slot_overflow": Out(1),
            "count_packet": Out(1),
            "count_heartbeat": Out(1),
            "count_end_of_session": Out(1),
            "count_overlap": Out(1),
            "count_duplicate": Out(1),
            "count_after_end": Out(1),
            "count_bad_count": Out(1),
            "count_session_overflow": Out(1),
            "add_missing": Out(32),
            "add_duplicate_messages": Out(16),
        })
        # High for the one cycle a MoldUDP64 header waits while the packet before it, which
        # brought fewer blocks than it announced, is accounted (the only cycle the decoder
        # refuses a unit while its outputs can take records).
        self.fix_now = Signal(name="fix_now")

    def elaborate(self, platform):
        m = Module()
        u = self.units.payload
        b = u.bytes

        # ---------------- output registers and the one ready ----------------
        ev = Signal(BookEventLayout)
        host = Signal(wire.HOST_MESSAGE.layout)
        gap = Signal(wire.FEED_GAP.layout)
        ev_valid, host_valid, gap_valid = Signal(), Signal(), Signal()
        m.d.comb += [
            self.events.valid.eq(ev_valid), self.events.payload.eq(ev),
            self.host.valid.eq(host_valid), self.host.payload.eq(host),
            self.gaps.valid.eq(gap_valid), self.gaps.payload.eq(gap),
        ]
        with m.If(self.events.ready):
            m.d.sync += ev_valid.eq(0)
        with m.If(self.host.ready):
            m.d.sync += host_valid.eq(0)
        with m.If(self.gaps.ready):
            m.d.sync += gap_valid.eq(0)
        ready = Signal()
        # A header waits one cycle while the packet before it, if it came short, is accounted
        # (``fix_now``, below).
        m.d.comb += ready.eq((~ev_valid | self.events.ready) & (~host_valid | self.host.ready)
                             & (~gap_valid | self.gaps.ready) & ~self.fix_now)
        m.d.comb += self.units.ready.eq(ready)
        fire = Signal()
        m.d.comb += fire.eq(self.units.valid & ready)

        # ---------------- MoldUDP64 sessions ----------------
        s_valid = Signal(SESSIONS)
        s_ended = Signal(SESSIONS)
        s_name = [Signal(80, name=f"session_name{i}") for i in range(SESSIONS)]
        s_expected = [Signal(64, name=f"session_expected{i}") for i in range(SESSIONS)]

        session = Cat(*[b[i] for i in range(10)])
        h_seq = Cat(*[b[10 + i] for i in reversed(range(8))])
        h_count = Cat(b[19], b[18])
        hit = Signal(SESSIONS)
        free = Signal(SESSIONS)
        # A packet that brings fewer message blocks than its header announced (cut short, or
        # its rest dropped by the deframer) has moved its session's expected number past
        # blocks that never came. When the next header arrives those become missing again: the
        # header waits one cycle while its session is set to expect the first block not seen
        # (never less than it expected before that packet), so the next packet of the session
        # reports them as a gap.
        p_idx = Signal(range(SESSIONS))   # the last packet's session entry
        # the packet moved the session's expected number to its end and some of its blocks
        # have not come (yet)
        p_fix = Signal()
        # the session table's expected numbers have one write path (a header, or a fix)
        tw_en = Signal()
        tw_idx = Signal(range(SESSIONS))
        tw_expected = Signal(64)
        idx = Signal(range(SESSIONS))
        found = Signal()
        new_session = Signal()
        cur_expected = Signal(64)
        cur_ended = Signal()
        seq_end = Signal(65)
        ahead = Signal()
        behind_by = Signal(64)
        # Read only for a header unit, so computed only for one (zero otherwise): a simulator
        # then skips the session table's compares on every other unit and idle cycle.
        with m.If(u.header):
            for i in range(SESSIONS):
                m.d.comb += hit[i].eq(s_valid[i] & (s_name[i] == session))
            m.d.comb += free.eq(~s_valid)
            for i in reversed(range(SESSIONS)):
                with m.If(hit[i]):
                    m.d.comb += [idx.eq(i), found.eq(1)]
            with m.If(~hit.any()):
                for i in reversed(range(SESSIONS)):
                    with m.If(free[i]):
                        m.d.comb += [idx.eq(i), found.eq(1), new_session.eq(1)]
            with m.If(new_session):
                m.d.comb += cur_expected.eq(Mux(self.mold_join, h_seq, 1))
            with m.Else():
                for i in range(SESSIONS):
                    with m.If(idx == i):
                        m.d.comb += [cur_expected.eq(s_expected[i]), cur_ended.eq(s_ended[i])]
            m.d.comb += [seq_end.eq(h_seq + h_count), ahead.eq(h_seq > cur_expected),
                         behind_by.eq(cur_expected - h_seq)]

        msg_seq = Signal(64)       # MoldUDP64: sequence number of the next message block
        hist_seq = Signal(64)      # historical: messages delivered so far
        skip = Signal(16)          # message blocks of this packet still to drop as old
        remaining = Signal(17)     # message blocks the header announced and not yet seen
        drop_frame = Signal()      # this packet's session found no table entry

        new_expected = Signal(64)
        new_ended = Signal()
        m.d.comb += [new_expected.eq(cur_expected), new_ended.eq(cur_ended)]
        is_hb = Signal()
        is_eos = Signal()
        m.d.comb += [is_hb.eq(h_count == 0), is_eos.eq(h_count == 0xFFFF)]

        m.d.comb += self.fix_now.eq(self.units.valid & u.header & p_fix)
        with m.If(self.fix_now):
            # msg_seq is the first block not seen. An overlap packet skips its old blocks first:
            # while some are left to skip, msg_seq + skip is what the session expected before
            # the packet, which it keeps; after them, skip is 0.
            m.d.comb += [tw_en.eq(1), tw_idx.eq(p_idx), tw_expected.eq(msg_seq + skip)]
            m.d.sync += p_fix.eq(0)
        with m.If(fire & u.header):
            m.d.comb += self.count_packet.eq(1)
            m.d.sync += [msg_seq.eq(h_seq), skip.eq(0), drop_frame.eq(0),
                         p_fix.eq(0), p_idx.eq(idx)]
            m.d.sync += remaining.eq(Mux(is_hb | is_eos, 0, h_count))
            with m.If(u.frame_end & ~is_hb & ~is_eos):
                m.d.comb += self.count_bad_count.eq(1)
            with m.If(~found):
                m.d.comb += self.count_session_overflow.eq(1)
                m.d.sync += drop_frame.eq(1)
            with m.Else():
                report_gap = Signal()
                with m.If(is_hb | is_eos):
                    m.d.comb += [self.count_heartbeat.eq(is_hb),
                                 self.count_end_of_session.eq(is_eos)]
                    with m.If(~cur_ended):
                        with m.If(ahead):
                            m.d.comb += [report_gap.eq(1), new_expected.eq(h_seq)]
                        with m.If(is_eos):
                            m.d.comb += new_ended.eq(1)
                with m.Elif(cur_ended):
                    m.d.comb += self.count_after_end.eq(1)
                    m.d.sync += skip.eq(h_count)
                with m.Elif(h_seq == cur_expected):
                    m.d.comb += new_expected.eq(seq_end)
                    m.d.sync += p_fix.eq(1)
                with m.Elif(ahead):
                    m.d.comb += [report_gap.eq(1), new_expected.eq(seq_end)]
                    m.d.sync += p_fix.eq(1)
                with m.Elif(seq_end > cur_expected):
                    m.d.comb += [self.count_overlap.eq(1), new_expected.eq(seq_end),
                                 self.add_duplicate_messages.eq(behind_by)]
                    m.d.sync += [skip.eq(behind_by), p_fix.eq(1)]
                with m.Else():
                    m.d.comb += [self.count_duplicate.eq(1),
                                 self.add_duplicate_messages.eq(h_count)]
                    m.d.sync += skip.eq(h_count)
                m.d.comb += [tw_en.eq(1), tw_idx.eq(idx), tw_expected.eq(new_expected)]
                for i in range(SESSIONS):
                    with m.If(idx == i):
                        m.d.sync += [s_valid[i].eq(1), s_name[i].eq(session),
                                     s_ended[i].eq(new_ended)]
                with m.If(report_gap):
                    m.d.comb += [self.count_gap.eq(1),
                                 self.add_missing.eq((h_seq - cur_expected)[:32])]
                    m.d.sync += [
                        gap_valid.eq(1),
                        gap.expected.eq(cur_expected),
                        gap.received.eq(h_seq),
                        gap.session_head.eq(session[:64]),
                        gap.session_tail.eq(session[64:]),
                        gap.session_index.eq(idx),
                        gap.flags.heartbeat.eq(is_hb),
                        gap.flags.end_of_session.eq(is_eos),
                        gap.ingress_cycle.eq(u.ingress),
                    ]

        for i in range(SESSIONS):
            with m.If(tw_en & (tw_idx == i)):
                m.d.sync += s_expected[i].eq(tw_expected)

        with m.If(self.mold_reset):   # after the header logic: forgetting wins
            m.d.sync += [s_valid.eq(0), s_ended.eq(0)]

        # ---------------- messages: sequence number and MoldUDP64 drops ----------------
        is_msg = Signal()
        m.d.comb += is_msg.eq(fire & ~u.header)
        seq = Signal(64)
        deliver = Signal()
        m.d.comb += seq.eq(Mux(self.mold, msg_seq, hist_seq + 1))
        with m.If(is_msg):
            with m.If(self.mold):
                m.d.sync += msg_seq.eq(msg_seq + 1)
                with m.If(remaining == 0):
                    m.d.comb += self.count_bad_count.eq(1)      # a block beyond the count
                with m.Else():
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.d.sync += p_fix.eq(0)                 # every block came
                    with m.If(u.frame_end & (remaining != 1)):
                        m.d.comb += self.count_bad_count.eq(1)  # the packet ended early
                    with m.If(skip != 0):
                        m.d.sync += skip.eq(skip - 1)
                    with m.Elif(~drop_frame):
                        m.d.comb += deliver.eq(1)
            with m.Else():
                m.d.sync += hist_seq.eq(hist_seq + 1)
                m.d.comb += deliver.eq(1)
        m.d.comb += self.count_decoded.eq(deliver)

        # ---------------- decode ----------------
        mtype = b[PREFIX]
        locate = big_endian(b, 1, 2)
        is_level = Signal()
        m.d.comb += is_level.eq(mtype == wire.LEVEL_UPDATE_TYPE)
        book_kind = type_lookup(m, "book_kind", mtype,
                                {t: kind.value for t, kind in _BOOK_TYPES.items()}, 4)
        is_dir = Signal()
        m.d.comb += is_dir.eq(mtype == ord("R"))

        # subscription of this message
        entry = self.entry
        next_free = Signal(range(self.slots + 1))
        m.d.comb += self.subscribed.eq(next_free)
        stock_r = wire_order(b, 11, 8)
        ticker_hit = Signal()
        # compared only for a directory message in the tickers mode, the one place it is read
        with m.If(is_dir & (self.sub_mode == SUB_TICKERS)):
            for i in range(TICKERS):
                with m.If((self.tickers[i] != 0) & (self.tickers[i] == stock_r)):
                    m.d.comb += ticker_hit.eq(1)
        wants = Signal()
        m.d.comb += wants.eq((self.sub_mode == SUB_AUTO) |
                             ((self.sub_mode == SUB_TICKERS) & ticker_hit))
        level_slot = wire_order(b, 2, 2)
        subscribed = Signal()
        slot = Signal(16)
        m.d.comb += [subscribed.eq(entry.valid), slot.eq(entry.slot)]
        with m.If(is_level):
            m.d.comb += [subscribed.eq(level_slot < self.slots), slot.eq(level_slot)]
        with m.If(deliver & is_dir & ~entry.valid & wants):
            with m.If(next_free < self.slots):
                m.d.comb += [self.sub_en.eq(1), self.sub_addr.eq(locate),
                             self.sub_slot.eq(next_free), subscribed.eq(1), slot.eq(next_free)]
                m.d.sync += next_free.eq(next_free + 1)
            with m.Else():
                m.d.comb += self.count_slot_overflow.eq(1)

        # the event: written straight into the output register, under the condition that loads
        # it (below), so a simulator extracts the fields only for a message that makes an event
        def load_event():
            m.d.sync += [
                ev_valid.eq(1),
                ev.eq(0),
                # a level update names its slot itself: kept, in range or not, for the host's view
                ev.slot.eq(Mux(subscribed | is_level, slot, NO_SLOT)),
                ev.locate.eq(locate),
                ev.seq.eq(seq),
                ev.ingress.eq(u.ingress),
                ev.tracking.eq(big_endian(b, 3, 2)),
                ev.timestamp.eq(big_endian(b, 5, 6)),
                ev.msg_type.eq(mtype),
            ]
            with m.Switch(mtype):
                with m.Case(ord("R")):
                    m.d.sync += [ev.kind.eq(EventKind.DIRECTORY), ev.stock.eq(stock_r)]
                with m.Case(ord("A"), ord("F")):   # F is A plus a 4-byte attribution at 36
                    side = b[PREFIX + 19]
                    m.d.sync += [
                        # Buy/Sell Indicator: 'B' or 'S' (section 1.3.1). An add with any other
                        # byte books nothing: it travels as an event of no kind, as the
                        # reference book ignores it (and counts it as an anomaly)
                        ev.kind.eq(Mux((side == ord("B")) | (side == ord("S")), EventKind.ADD,
                                       EventKind.NONE)),
                        ev.order_ref.eq(big_endian(b, 11, 8)),
                        ev.code.eq(b[PREFIX + 19]),
                        ev.sell.eq(b[PREFIX + 19] == ord("S")),
                        ev.shares.eq(big_endian(b, 20, 4)),
                        ev.stock.eq(wire_order(b, 24, 8)),
                        ev.price.eq(big_endian(b, 32, 4)),
                    ]
                    with m.If(mtype == ord("F")):
                        m.d.sync += ev.attribution.eq(wire_order(b, 36, 4))
                with m.Case(ord("E"), ord("C")):
                    m.d.sync += [
                        ev.kind.eq(EventKind.EXECUTE),
                        ev.order_ref.eq(big_endian(b, 11, 8)),
                        ev.shares.eq(big_endian(b, 19, 4)),
                        ev.match_number.eq(big_endian(b, 23, 8)),
                    ]
                    with m.If(mtype == ord("C")):
                        m.d.sync += [ev.code.eq(b[PREFIX + 31]),
                                     ev.exec_price.eq(big_endian(b, 32, 4))]
                with m.Case(ord("X")):
                    m.d.sync += [
                        ev.kind.eq(EventKind.CANCEL),
                        ev.order_ref.eq(big_endian(b, 11, 8)),
                        ev.shares.eq(big_endian(b, 19, 4)),
                    ]
                with m.Case(ord("D")):
                    m.d.sync += [ev.kind.eq(EventKind.DELETE),
                                 ev.order_ref.eq(big_endian(b, 11, 8))]
                with m.Case(ord("U")):
                    m.d.sync += [
                        ev.kind.eq(EventKind.REPLACE),
                        ev.order_ref.eq(big_endian(b, 11, 8)),
                        ev.new_order_ref.eq(big_endian(b, 19, 8)),
                        ev.shares.eq(big_endian(b, 27, 4)),
                        ev.price.eq(big_endian(b, 31, 4)),
                    ]
                with m.Case(wire.LEVEL_UPDATE_TYPE):
                    flags = b[PREFIX + 1]
                    m.d.sync += [
                        ev.kind.eq(EventKind.LEVEL),
                        ev.locate.eq(0), ev.tracking.eq(0), ev.timestamp.eq(0),
                        ev.sell.eq(flags[0]),
                        ev.level_flags.eq(flags[:4]),
                        ev.price.eq(wire_order(b, 4, 4)),
                        ev.shares.eq(wire_order(b, 8, 4)),
                        ev.exchange_seq.eq(wire_order(b, 16, 8)),
                    ]

        # routing
        book_msg = Signal()
        m.d.comb += book_msg.eq((book_kind != EventKind.NONE) | is_level)
        with m.If(deliver):
            with m.If(book_msg):
                with m.If(subscribed | self.pass_all):
                    m.d.comb += self.count_event.eq(1)
                    load_event()
                with m.Else():
                    m.d.comb += self.count_unsubscribed.eq(1)
            with m.Else():
                with m.If(is_dir & subscribed):
                    m.d.comb += self.count_event.eq(1)
                    load_event()
                length = big_endian(b, -2, 2)
                # the message's bytes, zero past its length (an expression, not a signal: a
                # simulator computes it only where the record is loaded)
                raw = Cat(*[Mux(length > j, b[PREFIX + j], 0)
                            for j in range(MAX_MESSAGE - PREFIX)])
                m.d.comb += self.count_host.eq(1)
                m.d.sync += [
                    host_valid.eq(1),
                    host.seq.eq(seq),
                    host.ingress_cycle.eq(u.ingress),
                    host.slot.eq(Mux(subscribed, slot, NO_SLOT)),
                    host.length.eq(length),
                    host.flags.subscribed.eq(subscribed),
                ]
                for k in range(7):
                    m.d.sync += getattr(host, f"bytes{k}").eq(raw[64 * k:64 * k + 64])
        return m
