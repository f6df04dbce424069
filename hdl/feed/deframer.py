"""Delimit length-prefixed messages in a 64-bit byte stream, one beat per cycle.

# Ref: NASDAQ TotalView-ITCH 5.0 historical files: each message is preceded by a 2-byte big-endian
# length (the length does not count the prefix itself).
# Ref: NASDAQ MoldUDP64 Protocol Specification v1.00, "Downstream Packets": a 20-byte header
# (session 10, sequence number 8, message count 2), then message blocks with the same 2-byte
# big-endian length prefix.

A message may start at any byte lane of a beat. Every ITCH 5.0 message (and ticklane's level
update) is at least 12 bytes long, so with its 2-byte prefix at least 14: a beat can end one
message and start the next, but never end two. The MoldUDP64 header (20 bytes) is delimited the
same way, as a unit of its own, so a beat never ends two units and this stage accepts a beat on
every cycle.

Each unit, prefix included, is gathered into a :data:`MAX_MESSAGE`-byte vector aligned to byte 0,
so the decoder reads every field at a fixed offset with no shifting. Byte ``j`` is taken either
from the gather buffer (bytes of earlier beats) or from lane ``j - n`` of the current beat, where
``n`` is the number of bytes gathered so far.

The stock locate (message bytes 1-2, vector bytes 3-4) always arrives in a beat before the one
that ends the message (the last beat holds at most 8 of the 14 or more bytes), so the stage
offers it as :attr:`lookup_addr` with :attr:`lookup_en` in the cycle the message ends: the
subscription table's synchronous read then completes in step with the registered message.

Error handling, per cause, each followed by discarding bytes up to the end of the frame:

* zero length, or a length no message has: detected in the first beat after the one that
  completes the prefix (``DROP_ZERO_LENGTH`` / ``DROP_BAD_LENGTH``);
* unknown type, or a length that disagrees with the type: detected in the beat that ends the
  message (``DROP_UNKNOWN_TYPE`` / ``DROP_BAD_LENGTH``);
* a frame that ends before any of the above is detected, in the middle of a unit
  (``DROP_TRUNCATED``).

It never stalls on bad input: only the output's ready holds it.
"""

from __future__ import annotations

from amaranth import Module, Signal, Cat, Const, Mux
from amaranth.lib import wiring, stream, data
from amaranth.lib.wiring import In, Out

from .. import wire
from .messages import MAX_MESSAGE, VALID_LENGTHS, MESSAGE_LENGTHS, type_lookup

__all__ = ["UnitLayout", "Deframer", "MOLD_HEADER"]

MOLD_HEADER = 20

# Every valid length is below 64: the length check is one bit of a 64-bit mask (a function of
# six bits, and a zero test of the other ten), not a compare per length.
_LENGTH_MASK = sum(1 << n for n in VALID_LENGTHS)
assert max(VALID_LENGTHS) < 64


def valid_length(length):
    """The 16-bit ``length`` is one a message has."""
    return (length[6:] == 0) & Const(_LENGTH_MASK, 64).bit_select(length[:6], 1)

# A delimited unit (a message, or a MoldUDP64 header) as it travels between the feed's stages
# (internal: never crosses the FPGA boundary, so it is not in hdl/wire.py).
UnitLayout = data.StructLayout({
    "bytes": data.ArrayLayout(8, MAX_MESSAGE),   # message: bytes 0-1 prefix, 2 type; header: 0-19
    "ingress": wire.CYCLE_STAMP_BITS,            # cycle the last byte entered
    "header": 1,                                 # a MoldUDP64 header, not a message
    "frame_end": 1,                              # the frame ended right after this unit
})


class Deframer(wiring.Component):
    """Historical-file framing or MoldUDP64 payloads (``mold``), delimited into units.

    Ports
    -----
    beats : In(stream of MD_BEAT)
    units : Out(stream of UnitLayout)
    cycle : In(64)
        The free-running cycle counter; its low bits stamp each unit's ingress.
    mold : In(1)
        Frames are MoldUDP64 packets: the first 20 bytes of each are a header unit.
    lookup_addr, lookup_en : Out(16), Out(1)
        Stock locate of the message that ends this cycle, and the strobe to read it.
    Counters (Out, one-cycle pulses): ``count_beat``, ``count_frame``, ``count_message``,
    ``count_zero_length``, ``count_bad_length``, ``count_unknown_type``, ``count_truncated``.
    """

    def __init__(self):
        super().__init__({
            "beats": In(stream.Signature(wire.MD_BEAT.layout)),
            "units": Out(stream.Signature(UnitLayout)),
            "cycle": In(64),
            "mold": In(1),
            "lookup_addr": Out(16),
            "lookup_en": Out(1),
            "count_beat": Out(1),
            "count_frame": Out(1),
            "count_message": Out(1),
            "count_zero_length": Out(1),
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
        n = Signal(range(MAX_MESSAGE + 1))       # bytes of the current unit gathered
        discard = Signal()                       # resynchronising: drop bytes until `last`
        # No byte of the current frame taken yet: the next unit is a header iff `mold` (read
        # live, so the host may switch framing between frames).
        frame_start = Signal(init=1)
        header_rest = Signal()                   # the header started in an earlier beat
        hdr = Signal()
        m.d.comb += hdr.eq(((frame_start & self.mold) | (~frame_start & header_rest)))

        # Number of bytes in this beat: keep is contiguous from lane 0.
        count = Signal(range(9))
        with m.Switch(keep):
            for k in range(9):
                with m.Case((1 << k) - 1):
                    m.d.comb += count.eq(k)
            with m.Default():
                # A hole in keep is a protocol violation of the sender: count the lanes up to
                # the first hole, which is what a packed stream would have meant.
                for k in reversed(range(8)):
                    with m.If(~keep[k]):
                        m.d.comb += count.eq(k)

        length = Signal(16)
        m.d.comb += length.eq(Cat(buf[1], buf[0]))   # big-endian prefix
        total = Signal(range(1 << 17))
        m.d.comb += total.eq(Mux(hdr, MOLD_HEADER, length + 2))
        length_known = Signal()
        m.d.comb += length_known.eq(hdr | (n >= 2))
        length_valid = Signal()
        m.d.comb += length_valid.eq(valid_length(length))
        length_ok = Signal()
        m.d.comb += length_ok.eq(hdr | length_valid)

        # The type byte is always gathered before the beat that ends a message (every message is
        # at least 14 bytes with its prefix), so the type/length check reads registers only.
        # the type's length, with bit 6 set for a known type
        type_entry = type_lookup(m, "type_entry", buf[2],
                                 {t: (1 << 6) | n for t, n in MESSAGE_LENGTHS.items()}, 7)
        type_len = type_entry[:6]
        type_known = type_entry[6]

        # Bytes this beat still owes to the current unit, and whether it ends here.
        need = Signal(range(1 << 17))
        m.d.comb += need.eq(total - n)
        ends_here = Signal()
        m.d.comb += ends_here.eq(length_known & length_ok & (need <= count) & ~discard)
        bad_now = Signal()
        m.d.comb += bad_now.eq(length_known & ~length_ok & ~discard)

        # The output unit: gathered bytes, then lanes from the current beat. lanes[k] lands at
        # byte n + k, over whatever the buffer holds there; bytes past the buffer's end are
        # dropped. The buffer is taken as 64-bit words: the beat, shifted up by n mod 8 bytes,
        # covers the top of word n // 8 (``low``) and the bottom of the next (``high``). Only
        # those two words change, at constant offsets, so a simulator updates two words of the
        # vector instead of shifting all of it by a variable amount.
        out_bytes = Signal(data.ArrayLayout(8, MAX_MESSAGE))
        out_words = out_bytes.as_value()
        buf_words = buf.as_value()
        low, high, low_mask = Signal(64), Signal(64), Signal(64)
        with m.Switch(n[:3]):
            for b in range(8):
                with m.Case(b):
                    m.d.comb += [low.eq(beat.data << 8 * b),
                                 high.eq(beat.data >> (64 - 8 * b) if b else 0),
                                 low_mask.eq(Const((1 << 64) - 1, 64) << 8 * b)]
        m.d.comb += out_words.eq(buf_words)
        with m.Switch(n[3:]):
            for w in range(MAX_MESSAGE // 8):
                with m.Case(w):
                    word = slice(64 * w, 64 * w + 64)
                    m.d.comb += out_words[word].eq((buf_words[word] & ~low_mask) | low)
                    if w + 1 < MAX_MESSAGE // 8:
                        word = slice(64 * w + 64, 64 * w + 128)
                        m.d.comb += out_words[word].eq((buf_words[word] & low_mask) | high)

        # Bytes of the beat after the end of this unit start the next one: lane need + i goes
        # to byte i of the fresh buffer (nothing when need is 8 or more).
        spill = Signal(data.ArrayLayout(8, 8))
        m.d.comb += spill.as_value().eq(beat.data >> Cat(Const(0, 3), need))

        out_valid = Signal()
        out_payload = Signal(UnitLayout)
        m.d.comb += [
            self.units.valid.eq(out_valid),
            self.units.payload.eq(out_payload),
        ]
        m.d.comb += self.beats.ready.eq(~out_valid | self.units.ready)
        with m.If(self.units.ready):
            m.d.sync += out_valid.eq(0)

        take = Signal()
        m.d.comb += take.eq(self.beats.valid & self.beats.ready)
        m.d.comb += self.count_beat.eq(take)
        m.d.comb += self.lookup_addr.eq(Cat(buf[4], buf[3]))

        with m.If(take):
            last = beat.flags.last
            m.d.comb += self.count_frame.eq(last)
            m.d.sync += frame_start.eq(last)
            with m.If(discard):
                with m.If(last):
                    m.d.sync += [discard.eq(0), n.eq(0)]
            with m.Elif(bad_now):
                with m.If(length == 0):
                    m.d.comb += self.count_zero_length.eq(1)
                with m.Else():
                    m.d.comb += self.count_bad_length.eq(1)
                m.d.sync += [discard.eq(~last), n.eq(0)]
            with m.Elif(ends_here & ~hdr & ~type_known):
                m.d.comb += self.count_unknown_type.eq(1)
                m.d.sync += [discard.eq(~last), n.eq(0)]
            with m.Elif(ends_here & ~hdr & (type_len != length)):
                m.d.comb += self.count_bad_length.eq(1)
                m.d.sync += [discard.eq(~last), n.eq(0)]
            with m.Elif(ends_here):
                rest = Signal(range(9))
                m.d.comb += rest.eq(count - need)
                m.d.sync += [
                    out_valid.eq(1),
                    out_payload.bytes.eq(out_bytes),
                    out_payload.ingress.eq(self.cycle[:wire.CYCLE_STAMP_BITS]),
                    out_payload.header.eq(hdr),
                    out_payload.frame_end.eq(last & (rest == 0)),
                    header_rest.eq(0),
                ]
                m.d.comb += [
                    self.count_message.eq(~hdr),
                    self.lookup_en.eq(~hdr),
                ]
                for i in range(8):
                    m.d.sync += buf[i].eq(spill[i])
                m.d.sync += n.eq(rest)
                with m.If(last & (rest != 0)):
                    m.d.comb += self.count_truncated.eq(1)
                    m.d.sync += n.eq(0)
            with m.Else():
                for j in range(MAX_MESSAGE):
                    m.d.sync += buf[j].eq(out_bytes[j])
                m.d.sync += header_rest.eq(hdr)
                with m.If(last):
                    with m.If(n + count != 0):
                        m.d.comb += self.count_truncated.eq(1)
                    m.d.sync += n.eq(0)
                with m.Else():
                    # Never gather past the buffer: a length the check has not yet seen (n < 2
                    # at the start of this beat) is checked at the next beat.
                    m.d.sync += n.eq(n + count)
        return m
