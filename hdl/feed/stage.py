"""The feed stage: market-data beats in; book events, host records and gap records out.

Two pipeline registers: the :class:`Deframer` registers each delimited unit (and reads the
subscription table with the message's stock locate in the same cycle), the :class:`Decoder`
registers the decoded result. A message's event is valid two cycles after the beat holding its
last byte was accepted. The stage accepts a beat every cycle while its outputs are ready.

Registers: the ``FEED_REGISTERS`` block of :mod:`hdl.wire`.
"""

from amaranth import Cat, Module, ResetSignal, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from .. import wire
from ..stage import CounterBank, register_keys
from .deframer import Deframer
from .decoder import Decoder, TICKERS
from .events import BookEventLayout
from .subscriptions import LOCATES, SubscriptionTable

__all__ = ["FeedStage"]


class FeedStage(wiring.Component):
    """Deframe, sequence and decode the market-data stream.

    Parameters
    ----------
    slots : int
        Symbol slots the subscription table hands out.
    host_streams : bool
        Give the stage its ``host_records`` and ``gaps`` ports. Without them (the default, for a
        top that does not connect them yet) those records are counted and discarded.
    locates : int
        Entries of the subscription table (:class:`SubscriptionTable`; default every locate).

    Ports
    -----
    beats : In(stream of MD_BEAT)
    events : Out(stream of BookEventLayout)
        Book events (A F E C X D U, R of subscribed locates, level updates), slot resolved.
    host_records : Out(stream of HOST_MESSAGE)
        Every other message (and R), whole.
    gaps : Out(stream of FEED_GAP)
        MoldUDP64 gaps.
    cycle : In(64)
    clear : In(1)
    """

    def __init__(self, *, slots: int = 256, host_streams: bool = False,
                 locates: int = LOCATES):
        self.slots = slots
        self.locates = locates
        self.host_streams = host_streams
        members = {
            "beats": In(stream.Signature(wire.MD_BEAT.layout)),
            "events": Out(stream.Signature(BookEventLayout)),
            "cycle": In(64),
            "clear": In(1),
        }
        if host_streams:
            members["host_records"] = Out(stream.Signature(wire.HOST_MESSAGE.layout))
            members["gaps"] = Out(stream.Signature(wire.FEED_GAP.layout))
        super().__init__(members)
        self.status = {key: Signal(32, name=f"feed_{key.lower()}")
                       for key in register_keys(wire.FEED_REGISTERS, "r")}
        self.control = {key: Signal(32, name=f"feed_{key.lower()}")
                        for key in register_keys(wire.FEED_REGISTERS, "rw")}
        self.control_strobe = {"FEED_MOLD_RESET": Signal(name="feed_mold_reset_stb"),
                               "FEED_SUB_SLOT": Signal(name="feed_sub_slot_stb")}
        # High when the stage's state may change on the next edge; see the end of elaborate().
        self.busy = Signal(name="busy")
        # High for the one cycle a MoldUDP64 header waits after a packet that brought fewer
        # blocks than it announced (:attr:`hdl.feed.decoder.Decoder.fix_now`); for the proofs.
        self.header_wait = Signal(name="header_wait")

    def elaborate(self, platform):
        m = Module()
        m.submodules.deframer = deframer = Deframer()
        m.submodules.decoder = decoder = Decoder(slots=self.slots)
        m.d.comb += self.header_wait.eq(decoder.fix_now)
        m.submodules.table = table = SubscriptionTable(locates=self.locates, slots=self.slots)
        connect(m, wiring.flipped(self.beats), deframer.beats)
        connect(m, deframer.units, decoder.units)
        connect(m, decoder.events, wiring.flipped(self.events))
        if self.host_streams:
            connect(m, decoder.host, wiring.flipped(self.host_records))
            connect(m, decoder.gaps, wiring.flipped(self.gaps))
        else:
            m.d.comb += [decoder.host.ready.eq(1), decoder.gaps.ready.eq(1)]

        ctl = self.control
        mold = ctl["FEED_FRAMING"][0]
        m.d.comb += [
            deframer.cycle.eq(self.cycle),
            deframer.mold.eq(mold),
            decoder.mold.eq(mold),
            decoder.mold_join.eq(ctl["FEED_MOLD_CONFIG"][0]),
            decoder.mold_reset.eq(self.control_strobe["FEED_MOLD_RESET"]),
            decoder.sub_mode.eq(ctl["FEED_SUB_MODE"][:2]),
            decoder.pass_all.eq(ctl["FEED_SUB_MODE"][2]),
            table.rd_addr.eq(deframer.lookup_addr),
            table.rd_en.eq(deframer.lookup_en),
            decoder.entry.eq(table.rd_data),
            table.sub_en.eq(decoder.sub_en),
            table.sub_addr.eq(decoder.sub_addr),
            table.sub_slot.eq(decoder.sub_slot),
            table.host_strobe.eq(self.control_strobe["FEED_SUB_SLOT"]),
            table.host_locate.eq(ctl["FEED_SUB_LOCATE"]),
            table.host_value.eq(ctl["FEED_SUB_SLOT"]),
        ]
        for i in range(TICKERS):
            m.d.comb += decoder.tickers[i].eq(Cat(ctl[f"FEED_SUB_TICKER_LO_{i}"],
                                                  ctl[f"FEED_SUB_TICKER_HI_{i}"]))

        counters = CounterBank({
            "MD_BEATS": deframer.count_beat,
            "MD_FRAMES": deframer.count_frame,
            "MSGS_IN": deframer.count_message,
            "MSGS_DECODED": decoder.count_decoded,
            "DROP_BAD_LENGTH": deframer.count_bad_length,
            "DROP_UNKNOWN_TYPE": deframer.count_unknown_type,
            "DROP_TRUNCATED": deframer.count_truncated,
            "DROP_ZERO_LENGTH": deframer.count_zero_length,
            "FEED_EVENTS": decoder.count_event,
            "FEED_HOST_RECORDS": decoder.count_host,
            "FEED_GAP_RECORDS": decoder.count_gap,
            "FEED_DROP_UNSUBSCRIBED": decoder.count_unsubscribed,
            "FEED_SLOT_OVERFLOW": decoder.count_slot_overflow,
            "FEED_SUB_REFUSED": table.refused,
            "MOLD_PACKETS": decoder.count_packet,
            "MOLD_HEARTBEATS": decoder.count_heartbeat,
            "MOLD_END_OF_SESSION": decoder.count_end_of_session,
            "MOLD_GAPS": decoder.count_gap,
            "MOLD_OVERLAP_PACKETS": decoder.count_overlap,
            "MOLD_DUPLICATE_PACKETS": decoder.count_duplicate,
            "MOLD_AFTER_END": decoder.count_after_end,
            "MOLD_BAD_COUNT": decoder.count_bad_count,
            "MOLD_SESSION_OVERFLOW": decoder.count_session_overflow,
        }, self.clear)
        counters.elaborate_into(m)
        for key, value in counters.values.items():
            m.d.comb += self.status[key].eq(value)
        # Counters that grow by more than one at a time.
        for key, amount in (("MOLD_MISSING_MESSAGES", decoder.add_missing),
                            ("MOLD_DUPLICATE_MESSAGES", decoder.add_duplicate_messages)):
            total = Signal(32, name=f"count_{key.lower()}")
            with m.If(self.clear):
                m.d.sync += total.eq(0)
            with m.Else():
                m.d.sync += total.eq(total + amount)
            m.d.comb += self.status[key].eq(total)
        m.d.comb += self.status["FEED_SUBSCRIBED"].eq(decoder.subscribed)

        # Activity, for the simulation harness (nothing in the gateware reads it). With it low
        # nothing of the stage changes on the next edge: the deframer moves only on a beat
        # offered or a unit waiting, the decoder on a unit, a record waiting on an output or a
        # MoldUDP64 reset, the table on a read, a write or a host write, the counters on those
        # or a clear.
        m.d.comb += self.busy.eq(ResetSignal() | self.beats.valid | deframer.units.valid
                                 | decoder.events.valid | decoder.host.valid
                                 | decoder.gaps.valid | decoder.mold_reset | table.busy
                                 | self.clear)
        return m
