"""Delimit length-prefixed messages in a 64-bit byte stream, one beat per cycle.

# Ref: NASDAQ TotalView-ITCH 5.0 historical files: each message is preceded by a 2-byte big-endian
# length (the length does not count the prefix itself).

A message may start at any byte lane of a beat. Every ITCH 5.0 message (and ticklane's level
update) is at least 12 bytes long, so with its 2-byte prefix at least 14: a beat can end one
message and start the next, but never end two. So this stage emits at most one message per beat
and can accept a beat on every cycle.

The whole message, prefix included, is gathered into a :data:`MAX_MESSAGE`-byte vector aligned to
byte 0, so the decoder reads every field at a fixed offset with no shifting. Byte ``j`` of the
message is taken either from the gather buffer (bytes that arrived in earlier beats) or from lane
``j - n`` of the current beat, where ``n`` is the number of bytes gathered so far.

Error handling: a length that is not the length of any known message, a length that disagrees
with the message's type, an unknown type, and a frame (``last``) that ends in the middle of a
message are counted per cause; the stage then discards bytes up to the end of the frame and starts
again at the next frame. It never stalls on bad input.
"""

from __future__ import annotations

from amaranth import Module, Signal, Const, Cat, Mux, Array
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out

from .. import wire
from .messages import MAX_MESSAGE, VALID_LENGTHS, MESSAGE_LENGTHS

__all__ = ["MessageLayout", "Deframer"]


# A delimited message as it travels between the feed's stages (internal: never crosses the FPGA
# boundary, so it is not in hdl/wire.py).
MessageLayout = data.StructLayout({
    "bytes": data.ArrayLayout(8, MAX_MESSAGE),   # byte 0, 1: length prefix; byte 2: type
    "seq": 64,                                   # 1-based message number in the stream
    "ingress": wire.CYCLE_STAMP_BITS,            # cycle the last byte entered
})


class Deframer(wiring.Component):
    """Historical-file framing: 2-byte big-endian length, then the message.

    Ports
    -----
    beats : In(stream of MD_BEAT)
    messages : Out(stream of MessageLayout)
    cycle : In(64)
        The free-running cycle counter; its low bits stamp each message's ingress.
    Counters (Out, one-cycle pulses): ``frame``, ``message``, ``bad_length``, ``truncated``.
    """

    def __init__(self):
        super().__init__({
            "beats": In(stream.Signature(wire.MD_BEAT.layout)),
            "messages": Out(stream.Signature(MessageLayout)),
            "cycle": In(64),
            "count_beat": Out(1),
            "count_frame": Out(1),
            "count_message": Out(1),
            "count_bad_length": Out(1),
            "count_unknown_type": Out(1),
            "count_truncated": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        beat = self.beats.payload
        lanes = [beat.data[8 * k:8 * k + 8] for k in range(8)]
        keep = beat.keep.as_value()

        buf = Signal(data.ArrayLayout(8, MAX_MESSAGE))
        n = Signal(range(MAX_MESSAGE + 1))       # bytes of the current message gathered
        discard = Signal()                      # resynchronising: drop bytes until `last`
        seq = Signal(64)

        # Number of bytes in this beat: keep is contiguous from lane 0.
        count = Signal(range(9))
        with m.Switch(keep):
            for k in range(9):
                with m.Case((1 << k) - 1):
                    m.d.comb += count.eq(k)
            with m.Default():
                # A hole in keep is a protocol violation of the sender: count the lanes anyway
                # up to the first hole, which is what a packed stream would have meant.
                for k in reversed(range(8)):
                    with m.If(~keep[k]):
                        m.d.comb += count.eq(k)

        length = Signal(16)
        m.d.comb += length.eq(Cat(buf[1], buf[0]))   # big-endian prefix
        total = Signal(range(1 << 17))
        m.d.comb += total.eq(length + 2)
        length_known = Signal()
        m.d.comb += length_known.eq(n >= 2)
        length_ok = Signal()
        m.d.comb += length_ok.eq(0)
        for valid in VALID_LENGTHS:
            with m.If(length == valid):
                m.d.comb += length_ok.eq(1)

        # The type byte is always gathered before the beat that ends a message (every message is
        # at least 14 bytes with its prefix), so the type/length check reads registers only.
        type_len = Signal(8)
        type_known = Signal()
        with m.Switch(buf[2]):
            for t, n_bytes in MESSAGE_LENGTHS.items():
                with m.Case(t):
                    m.d.comb += [type_len.eq(n_bytes), type_known.eq(1)]

        # Bytes this beat still owes to the current message, and whether it ends here.
        need = Signal(range(1 << 17))
        m.d.comb += need.eq(total - n)
        ends_here = Signal()
        m.d.comb += ends_here.eq(length_known & length_ok & (need <= count) & ~discard)
        bad_now = Signal()
        m.d.comb += bad_now.eq(length_known & ~length_ok & ~discard)

        # The output message: gathered bytes, then lanes from the current beat.
        out_bytes = Signal(data.ArrayLayout(8, MAX_MESSAGE))
        for j in range(MAX_MESSAGE):
            # lanes[k] lands at byte n + k, i.e. byte j takes lane j - n when j >= n.
            sel = Signal(8, name=f"out_byte{j}")
            m.d.comb += sel.eq(buf[j])
            for k in range(8):
                with m.If((n + k == j)):
                    m.d.comb += sel.eq(lanes[k])
            m.d.comb += out_bytes[j].eq(sel)

        # Bytes of the beat after the end of this message start the next one: lane need + i goes
        # to byte i of the fresh buffer.
        spill = Signal(data.ArrayLayout(8, 8))
        for i in range(8):
            sel = Signal(8, name=f"spill_byte{i}")
            m.d.comb += sel.eq(0)
            for k in range(i, 8):
                with m.If(need == k - i):
                    m.d.comb += sel.eq(lanes[k])
            m.d.comb += spill[i].eq(sel)

        out_valid = Signal()
        out_payload = Signal(MessageLayout)
        m.d.comb += [
            self.messages.valid.eq(out_valid),
            self.messages.payload.eq(out_payload),
        ]
        m.d.comb += self.beats.ready.eq(~out_valid | self.messages.ready)
        with m.If(self.messages.ready):
            m.d.sync += out_valid.eq(0)

        take = Signal()
        m.d.comb += take.eq(self.beats.valid & self.beats.ready)
        m.d.comb += self.count_beat.eq(take)

        with m.If(take):
            last = beat.flags.last
            m.d.comb += self.count_frame.eq(last)
            with m.If(discard):
                with m.If(last):
                    m.d.sync += [discard.eq(0), n.eq(0)]
            with m.Elif(bad_now):
                m.d.comb += self.count_bad_length.eq(1)
                m.d.sync += [discard.eq(~last), n.eq(0)]
            with m.Elif(ends_here & ~type_known):
                m.d.comb += self.count_unknown_type.eq(1)
                m.d.sync += [discard.eq(~last), n.eq(0)]
            with m.Elif(ends_here & (type_len != length)):
                m.d.comb += self.count_bad_length.eq(1)
                m.d.sync += [discard.eq(~last), n.eq(0)]
            with m.Elif(ends_here):
                m.d.sync += [
                    out_valid.eq(1),
                    out_payload.bytes.eq(out_bytes),
                    out_payload.seq.eq(seq + 1),
                    out_payload.ingress.eq(self.cycle[:wire.CYCLE_STAMP_BITS]),
                    seq.eq(seq + 1),
                ]
                m.d.comb += self.count_message.eq(1)
                rest = Signal(range(9))
                m.d.comb += rest.eq(count - need)
                for i in range(8):
                    m.d.sync += buf[i].eq(spill[i])
                m.d.sync += n.eq(rest)
                with m.If(last & (rest != 0)):
                    m.d.comb += self.count_truncated.eq(1)
                    m.d.sync += n.eq(0)
            with m.Else():
                for j in range(MAX_MESSAGE):
                    m.d.sync += buf[j].eq(out_bytes[j])
                with m.If(last):
                    with m.If(n + count != 0):
                        m.d.comb += self.count_truncated.eq(1)
                    m.d.sync += n.eq(0)
                with m.Else():
                    # Never gather past the buffer: a length the check has not yet seen (n < 2
                    # at the start of this beat) is checked at the next beat.
                    m.d.sync += n.eq(n + count)
        return m
