"""Reference model of the gateware feed stage (:class:`hdl.feed.stage.FeedStage`).

For a market-data stream cut into frames, it says which book events, host records and gap
records the stage must produce, and what its counters must read. It decodes with
:func:`host.feed.itch.decode_message` and sequences MoldUDP64 with
:class:`host.feed.framing.MoldSequencer`; what it adds is the stage's own rules:

* Delimiting (see :mod:`hdl.feed.deframer`). Frames start on a fresh beat; byte ``o`` of a frame
  is in beat ``o // 8``. A length no message has (zero included) is detected in the beat after
  the one that completes its prefix; an unknown type or a length that disagrees with the type in
  the beat that ends the message. Whatever is not detected by the frame's last beat is a
  truncated frame. After any error the rest of the frame is dropped.
* MoldUDP64: the first 20 bytes of a frame are the header; a table of :data:`SESSIONS` sessions
  (a packet of a new session when it is full is dropped and counted); message blocks beyond the
  header's count are dropped and counted, as is a packet that ends before its count.
* Subscriptions: locate → slot, filled by directory messages (mode ``auto``: the next free slot;
  ``tickers``: only for listed stocks; ``host``: never) and by host-written entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hdl import wire
from hdl.feed.decoder import SESSIONS, NO_SLOT, SUB_AUTO, SUB_TICKERS, SUB_HOST  # noqa: F401
from hdl.feed.deframer import MOLD_HEADER
from hdl.feed.events import EventKind
from hdl.feed.messages import MESSAGE_LENGTHS, VALID_LENGTHS
from host.feed.framing import MoldPacket, MoldPacketKind, MoldSequencer
from host.feed.itch import MESSAGE_SPECS, decode_message

__all__ = ["FeedConfig", "FeedResult", "FeedModel", "BOOK_TYPES", "HOST_TYPES", "run_feed_model"]

BOOK_TYPES = "AFECXDU"
HOST_TYPES = "SRHYLVWKJhPQBINO"
_KIND = {"A": EventKind.ADD, "F": EventKind.ADD, "E": EventKind.EXECUTE, "C": EventKind.EXECUTE,
         "X": EventKind.CANCEL, "D": EventKind.DELETE, "U": EventKind.REPLACE}
_MODES = {"auto": SUB_AUTO, "tickers": SUB_TICKERS, "host": SUB_HOST}


@dataclass(frozen=True, kw_only=True)
class FeedConfig:
    """How the stage is set up (its control registers).

    Parameters
    ----------
    mold : bool
        MoldUDP64 framing (default False: historical).
    mold_join : bool
        A new session starts at its first packet's sequence number (default False: at 1).
    sub_mode : str
        ``"auto"`` (default), ``"tickers"`` or ``"host"``.
    pass_all : bool
        Book events of unsubscribed locates go on with slot 0xFFFF (default False).
    tickers : tuple of str
        Up to 8 stocks for ``"tickers"`` mode.
    entries : tuple of (int, int)
        Host-written (locate, value) entries, written in order before the stream: the value as
        ``FEED_SUB_SLOT`` takes it (bits 0-15 the slot; bit 31 removes the locate's entry). A
        slot beyond ``slots`` is refused and counted (``FEED_SUB_REFUSED``).
    slots : int
        Slots of the stage (default 256).
    """

    mold: bool = False
    mold_join: bool = False
    sub_mode: str = "auto"
    pass_all: bool = False
    tickers: tuple = ()
    entries: tuple = ()
    slots: int = 256

    def __post_init__(self):
        if self.sub_mode not in _MODES:
            raise ValueError(f"sub_mode must be one of {sorted(_MODES)}, got {self.sub_mode!r}")
        if len(self.tickers) > 8:
            raise ValueError(f"at most 8 tickers, got {len(self.tickers)}")

    def ticker_words(self) -> list[int]:
        """The tickers as the FEED_SUB_TICKER registers hold them (LO | HI << 32)."""
        return [int.from_bytes(t.encode("ascii").ljust(8, b" "), "little") for t in self.tickers]

    def mode_register(self) -> int:
        return _MODES[self.sub_mode] | (4 if self.pass_all else 0)


@dataclass
class FeedResult:
    """What the stage must produce: records as dicts of integers, and counters by register.

    ``delivered`` is not a stage output: it lists ``(seq, message bytes)`` of every message the
    stage decodes (it is neither dropped nor a MoldUDP64 repeat), in stream order, so that the
    reference decoder can say what each of them holds (``ticklane decode --model``).
    """

    events: list = field(default_factory=list)
    host: list = field(default_factory=list)
    gaps: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    delivered: list = field(default_factory=list)


def _be(raw: bytes, off: int, n: int) -> int:
    return int.from_bytes(raw[off:off + n], "big")


def _le(raw: bytes, off: int, n: int) -> int:
    return int.from_bytes(raw[off:off + n], "little")


def _wire_field(msg: bytes, mtype: str, name: str) -> int:
    f = MESSAGE_SPECS[mtype].field(name)
    return _le(msg, f.offset, f.length)


def _decode_numbers(msg: bytes) -> dict:
    """decode_message, with any non-ASCII byte of an alpha field (fuzzed input) made a space:
    the stage reads integers and keeps alpha bytes raw, so their content cannot matter here."""
    spec = MESSAGE_SPECS[chr(msg[0])]
    clean = bytearray(msg)
    for f in spec.fields[1:]:
        if f.kind == "alpha":
            for i in range(f.offset, f.end):
                if clean[i] >= 0x80:
                    clean[i] = 0x20
    return decode_message(bytes(clean))


class FeedModel:
    """The stage's state across frames; feed it with :meth:`frame`."""

    def __init__(self, config: FeedConfig = FeedConfig()):
        self.config = config
        self.result = FeedResult()
        self.counters = {r.name: 0 for r in wire.FEED_REGISTERS if r.access == "r"}
        self.table: dict[int, int] = {}
        for locate, value in config.entries:
            locate &= 0xFFFF
            if value >> 31 & 1:
                self.table.pop(locate, None)
            elif value & 0xFFFF < config.slots:
                self.table[locate] = value & 0xFFFF
            else:
                self.counters["FEED_SUB_REFUSED"] += 1
        self.next_free = 0
        self.hist_seq = 0
        self.sequencer = MoldSequencer(first_expected=None if config.mold_join else 1)
        self.sessions: list[bytes] = []
        self.tickers = {t.encode("ascii").ljust(8, b" ") for t in config.tickers}
        # per MoldUDP64 packet
        self.msg_seq = 0
        self.skip = 0
        self.remaining = 0
        self.drop_frame = False
        self.last_verdict = None   # the sequencer's verdict on the last packet

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = (self.counters[name] + n) & 0xFFFF_FFFF

    # ------------------------------------------------------------------ delimiting
    def frame(self, data: bytes) -> None:
        """One frame (a MoldUDP64 packet, or a chunk of a historical file)."""
        data = bytes(data)
        n = len(data)
        c = self._count
        c("MD_BEATS", max(1, -(-n // 8)))
        c("MD_FRAMES")
        last_beat = (n - 1) // 8
        pos = 0
        if self.config.mold:
            if n < MOLD_HEADER:
                if n:
                    c("DROP_TRUNCATED")
                return
            self._header(data[:MOLD_HEADER], n == MOLD_HEADER)
            pos = MOLD_HEADER
        while pos < n:
            if pos + 2 > n:
                c("DROP_TRUNCATED")
                return
            length = _be(data, pos, 2)
            if length not in VALID_LENGTHS:
                if (pos + 1) // 8 + 1 <= last_beat:
                    c("DROP_ZERO_LENGTH" if length == 0 else "DROP_BAD_LENGTH")
                else:
                    c("DROP_TRUNCATED")
                return
            end = pos + 2 + length
            if end > n:
                c("DROP_TRUNCATED")
                return
            t = data[pos + 2]
            if t not in MESSAGE_LENGTHS:
                c("DROP_UNKNOWN_TYPE")
                return
            if MESSAGE_LENGTHS[t] != length:
                c("DROP_BAD_LENGTH")
                return
            c("MSGS_IN")
            self._message(data[pos + 2:end], end == n)
            pos = end

    # ------------------------------------------------------------------ MoldUDP64
    def _header(self, hdr: bytes, frame_end: bool) -> None:
        c = self._count
        c("MOLD_PACKETS")
        session, seq, count = hdr[:10], _be(hdr, 10, 8), _be(hdr, 18, 2)
        if self.last_verdict is not None and self.remaining:
            # the previous packet brought fewer blocks than it announced (see the decoder)
            self.sequencer.cut_short(self.last_verdict, self.msg_seq)
        self.last_verdict = None
        special = count in (0, 0xFFFF)
        self.msg_seq, self.skip, self.drop_frame = seq, 0, False
        self.remaining = 0 if special else count
        if frame_end and not special:
            c("MOLD_BAD_COUNT")
        if session not in self.sessions:
            if len(self.sessions) == SESSIONS:
                c("MOLD_SESSION_OVERFLOW")
                self.drop_frame = True
                return
            self.sessions.append(session)
        before = dict(vars(self.sequencer.counters))
        msgs = () if special else (b"",) * count
        v = self.sequencer.accept(MoldPacket(session, seq, count, msgs))
        self.last_verdict = v
        after = vars(self.sequencer.counters)
        for reg, key in (("MOLD_HEARTBEATS", "heartbeats"), ("MOLD_END_OF_SESSION", "end_of_sessions"),
                         ("MOLD_GAPS", "gap_events"), ("MOLD_MISSING_MESSAGES", "missing_messages"),
                         ("MOLD_OVERLAP_PACKETS", "overlap_packets"),
                         ("MOLD_DUPLICATE_PACKETS", "duplicate_packets"),
                         ("MOLD_DUPLICATE_MESSAGES", "duplicate_messages"),
                         ("MOLD_AFTER_END", "after_end_packets")):
            c(reg, after[key] - before[key])
        if v.kind in (MoldPacketKind.DUPLICATE, MoldPacketKind.AFTER_END):
            self.skip = count
        elif v.kind is MoldPacketKind.OVERLAP:
            self.skip = v.dropped
        if v.gap is not None:
            c("FEED_GAP_RECORDS")
            self.result.gaps.append({
                "expected": v.gap[0], "received": v.gap[1],
                "session_head": _le(session, 0, 8), "session_tail": _le(session, 8, 2),
                "session_index": self.sessions.index(session),
                "flags": (1 if count == 0 else 0) | (2 if count == 0xFFFF else 0)})

    # ------------------------------------------------------------------ messages
    def _message(self, msg: bytes, frame_end: bool) -> None:
        c = self._count
        if self.config.mold:
            seq = self.msg_seq
            self.msg_seq += 1
            if self.remaining == 0:
                c("MOLD_BAD_COUNT")
                return
            self.remaining -= 1
            if frame_end and self.remaining != 0:
                c("MOLD_BAD_COUNT")
            if self.skip:
                self.skip -= 1
                return
            if self.drop_frame:
                return
        else:
            self.hist_seq += 1
            seq = self.hist_seq
        c("MSGS_DECODED")
        self.result.delivered.append((seq, msg))
        self._decode(msg, seq)

    def _decode(self, msg: bytes, seq: int) -> None:
        c = self._count
        cfg = self.config
        t = chr(msg[0])
        if msg[0] == wire.LEVEL_UPDATE_TYPE:
            slot = _le(msg, 2, 2)
            subscribed = slot < cfg.slots
            lu = wire.LEVEL_UPDATE.unpack(msg)
            ev = self._event(EventKind.LEVEL, slot, seq, msg[0],
                             sell=lu["flags"] & 1, level_flags=lu["flags"] & 0xF,
                             price=lu["price"], shares=lu["size"],
                             exchange_seq=lu["exchange_seq"])
            self._book(ev, subscribed)
            return
        d = _decode_numbers(msg)
        locate = d["stock_locate"]
        slot = self.table.get(locate)
        if t == "R" and slot is None:
            stock = msg[11:19]
            wants = cfg.sub_mode == "auto" or (cfg.sub_mode == "tickers" and stock in self.tickers)
            if wants:
                if self.next_free < cfg.slots:
                    slot = self.table[locate] = self.next_free
                    self.next_free += 1
                    self.counters["FEED_SUBSCRIBED"] = self.next_free
                else:
                    c("FEED_SLOT_OVERFLOW")
        subscribed = slot is not None
        rslot = slot if subscribed else NO_SLOT
        common = dict(locate=locate, tracking=d["tracking_number"], timestamp=d["timestamp"])
        if t in BOOK_TYPES:
            f = dict(common)
            if t in "AF":
                side = msg[19]
                f.update(order_ref=d["order_reference_number"], code=side,
                         sell=int(side == ord("S")), shares=d["shares"],
                         stock=_wire_field(msg, t, "stock"), price=d["price"])
                if t == "F":
                    f["attribution"] = _wire_field(msg, t, "attribution")
            elif t in "EC":
                f.update(order_ref=d["order_reference_number"], shares=d["executed_shares"],
                         match_number=d["match_number"])
                if t == "C":
                    f.update(code=msg[31], exec_price=d["execution_price"])
            elif t == "X":
                f.update(order_ref=d["order_reference_number"], shares=d["cancelled_shares"])
            elif t == "D":
                f.update(order_ref=d["order_reference_number"])
            else:
                f.update(order_ref=d["original_order_reference_number"],
                         new_order_ref=d["new_order_reference_number"], shares=d["shares"],
                         price=d["price"])
            kind = _KIND[t]
            if t in "AF" and msg[19] not in b"BS":
                kind = EventKind.NONE      # a Buy/Sell Indicator other than B or S books nothing
            self._book(self._event(kind, rslot, seq, msg[0], **f), subscribed)
            return
        if t == "R" and subscribed:
            c("FEED_EVENTS")
            self.result.events.append(self._event(EventKind.DIRECTORY, rslot, seq, msg[0],
                                                  stock=_wire_field(msg, t, "stock"), **common))
        c("FEED_HOST_RECORDS")
        self.result.host.append({"seq": seq, "slot": rslot, "length": len(msg),
                                 "flags": int(subscribed), "message": msg})

    def _book(self, ev: dict, subscribed: bool) -> None:
        if subscribed or self.config.pass_all:
            self._count("FEED_EVENTS")
            self.result.events.append(ev)
        else:
            self._count("FEED_DROP_UNSUBSCRIBED")

    @staticmethod
    def _event(kind, slot: int, seq: int, msg_type: int, **fields) -> dict:
        ev = dict.fromkeys(EVENT_FIELDS, 0)
        ev.update(kind=kind.value, slot=slot, seq=seq, msg_type=msg_type, **fields)
        return ev

    def finish(self) -> FeedResult:
        self.result.counters = dict(self.counters)
        return self.result


#: Event fields the model predicts (all of BookEventLayout but the ingress stamp).
EVENT_FIELDS = ("kind", "sell", "slot", "locate", "order_ref", "new_order_ref", "shares", "price",
                "level_flags", "stock", "seq", "tracking", "timestamp", "match_number", "code",
                "attribution", "exec_price", "exchange_seq", "msg_type")


def run_feed_model(frames, config: FeedConfig = FeedConfig()) -> FeedResult:
    """Run the model over ``frames`` (a sequence of bytes, one per frame).

    Parameters
    ----------
    frames : iterable of bytes
    config : FeedConfig

    Returns
    -------
    FeedResult
    """
    model = FeedModel(config)
    for f in frames:
        model.frame(f)
    return model.finish()
