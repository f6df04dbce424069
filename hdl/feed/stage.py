"""The feed stage: market-data beats in, book events out.

Walking-skeleton version: historical-file framing (:class:`Deframer`) and the 'R', 'A', 'F'
decoder (:class:`Decoder`).
"""

from amaranth import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out, connect

from .. import wire
from ..stage import CounterBank, register_keys
from .deframer import Deframer
from .decoder import Decoder
from .events import BookEventLayout

__all__ = ["FeedStage"]


class FeedStage(wiring.Component):
    """Deframe and decode the market-data stream."""

    def __init__(self):
        super().__init__({
            "beats": In(stream.Signature(wire.MD_BEAT.layout)),
            "events": Out(stream.Signature(BookEventLayout)),
            "cycle": In(64),
            "clear": In(1),
        })
        self.status = {key: Signal(32, name=f"feed_{key.lower()}")
                       for key in register_keys(wire.FEED_REGISTERS, "r")}
        self.control = {key: Signal(32, name=f"feed_{key.lower()}")
                        for key in register_keys(wire.FEED_REGISTERS, "rw")}
        self.control_strobe = {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.deframer = deframer = Deframer()
        m.submodules.decoder = decoder = Decoder()
        connect(m, wiring.flipped(self.beats), deframer.beats)
        connect(m, deframer.messages, decoder.messages)
        connect(m, decoder.events, wiring.flipped(self.events))
        m.d.comb += deframer.cycle.eq(self.cycle)

        counters = CounterBank({
            "MD_BEATS": deframer.count_beat,
            "MD_FRAMES": deframer.count_frame,
            "MSGS_IN": deframer.count_message,
            "MSGS_DECODED": decoder.count_decoded,
            "DROP_BAD_LENGTH": deframer.count_bad_length,
            "DROP_UNKNOWN_TYPE": deframer.count_unknown_type,
            "DROP_TRUNCATED": deframer.count_truncated,
        }, self.clear)
        counters.elaborate_into(m)
        for key, value in counters.values.items():
            m.d.comb += self.status[key].eq(value)
        return m
