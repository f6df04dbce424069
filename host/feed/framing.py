"""How ITCH messages travel: the historical-file framing and MoldUDP64 packets.

Two framings carry the same ITCH 5.0 messages (:mod:`host.feed.itch`):

* The NASDAQ historical file (the public ``*.NASDAQ_ITCH50`` files): each message is preceded by
  its length as a 2-byte big-endian integer, with nothing else in the file.
* MoldUDP64 downstream packets. Ref: NASDAQ MoldUDP64 Protocol Specification v1.00, "Downstream
  Packets": a 20-byte header (session: 10 ASCII bytes; sequence number of the first message: 8
  bytes big-endian; message count: 2 bytes big-endian), then ``count`` message blocks, each a
  2-byte big-endian length followed by the message. A packet with count 0 is a heartbeat and one
  with count 0xFFFF marks the end of the session; both carry the sequence number of the next
  message the session will send, and no message blocks.

:class:`MoldSequencer` is the reference model of the gateware's MoldUDP64 stage: it says, packet
by packet, which messages go downstream and what is counted as a gap or a duplicate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from host.feed.itch import MESSAGE_LENGTHS

__all__ = [
    "FramingError", "scan_historical", "iter_historical", "frame_historical",
    "MoldError", "MoldPacket", "MOLD_HEADER_LENGTH", "MOLD_SESSION_LENGTH",
    "MOLD_HEARTBEAT_COUNT", "MOLD_END_OF_SESSION_COUNT", "MOLD_MAX_MESSAGES",
    "build_packet", "build_heartbeat", "build_end_of_session", "parse_packet",
    "MoldPacketKind", "MoldVerdict", "MoldCounters", "MoldSequencer",
]

# Indexed by type byte; -1 marks a byte that is not an ITCH 5.0 type (and can never equal a
# length, not even a zero one).
_LENGTH_BY_BYTE = [-1] * 256
for _b, _n in MESSAGE_LENGTHS.items():
    _LENGTH_BY_BYTE[_b] = _n

FRAMING_REASONS = ("truncated", "bad_length", "unknown_type")


# --------------------------------------------------------------------------------------------
# Historical-file framing
# --------------------------------------------------------------------------------------------

class FramingError(ValueError):
    """A historical ITCH file that cannot be read past some message.

    Attributes
    ----------
    offset : int
        Byte offset of the bad message's 2-byte length prefix.
    index : int
        1-based number of the bad message (the good messages before it number ``index - 1``).
    reason : str
        ``"truncated"`` (the file ends inside a length prefix or a message), ``"bad_length"``
        (the prefix disagrees with the length of the message's type) or ``"unknown_type"``
        (the type byte is not ITCH 5.0, or the length is zero so there is no type byte).
    """

    def __init__(self, offset: int, index: int, reason: str, detail: str):
        if reason not in FRAMING_REASONS:
            raise ValueError(f"unknown framing error reason {reason!r}")
        self.offset = offset
        self.index = index
        self.reason = reason
        self.detail = detail
        super().__init__(f"ITCH framing error at byte offset {offset} (message {index}): "
                         f"{reason}: {detail}")

    def __reduce__(self):
        return (type(self), (self.offset, self.index, self.reason, self.detail))


def _type_repr(b: int) -> str:
    ch = chr(b)
    return f"0x{b:02x} ({ch!r})" if ch.isprintable() else f"0x{b:02x}"


def _scan(buf) -> tuple[list[int], FramingError | None]:
    """The framing walk: offsets of the good messages and the first error."""
    mv = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
    n = len(mv)
    lengths = _LENGTH_BY_BYTE
    offsets: list[int] = []
    append = offsets.append
    pos = 0
    # Hot loop: every good message costs two byte reads, one list lookup and one compare.
    while pos + 2 < n:
        size = (mv[pos] << 8) | mv[pos + 1]
        if size != lengths[mv[pos + 2]] or pos + 2 + size > n:
            break
        append(pos)
        pos += 2 + size
    if pos >= n:
        return offsets, None
    return offsets, _diagnose(mv, n, pos, len(offsets) + 1)


def _diagnose(mv, n: int, pos: int, index: int) -> FramingError:
    if pos + 2 > n:
        return FramingError(pos, index, "truncated",
                            f"length prefix cut short: {n - pos} of 2 bytes left")
    size = (mv[pos] << 8) | mv[pos + 1]
    if size == 0:
        return FramingError(pos, index, "unknown_type", "zero length: the message has no type byte")
    if pos + 2 >= n:
        return FramingError(pos, index, "truncated",
                            f"file ends after the length prefix (length {size}), no message")
    t = mv[pos + 2]
    want = _LENGTH_BY_BYTE[t]
    if want < 0:
        return FramingError(pos, index, "unknown_type",
                            f"unknown ITCH message type {_type_repr(t)} (length {size})")
    if size != want:
        return FramingError(pos, index, "bad_length",
                            f"length {size} but an ITCH {chr(t)!r} message is {want} bytes")
    return FramingError(pos, index, "truncated",
                        f"ITCH {chr(t)!r} message of {size} bytes cut short: "
                        f"{n - pos - 2} bytes left")


def scan_historical(buf: bytes) -> tuple[np.ndarray, FramingError | None]:
    """Find every message of a historical ITCH file.

    Parameters
    ----------
    buf : bytes-like
        The file contents: messages, each preceded by a 2-byte big-endian length.

    Returns
    -------
    offsets : numpy.ndarray of int64
        Byte offset of each good message's length prefix; the message itself starts 2 bytes
        later and its length is that of its type.
    error : FramingError or None
        The first error, or None if the whole buffer frames cleanly. The scan stops there;
        every message before it is in ``offsets``.
    """
    offsets, err = _scan(buf)
    return np.asarray(offsets, dtype=np.int64), err


def iter_historical(buf: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, message)`` for each message of a historical ITCH file.

    Parameters
    ----------
    buf : bytes-like
        The file contents.

    Yields
    ------
    offset : int
        Byte offset of the message's length prefix.
    message : bytes
        The message, starting at its type byte, without the prefix.

    Raises
    ------
    FramingError
        After the good messages have been yielded, if the buffer does not frame cleanly.
    """
    mv = memoryview(buf).cast("B")
    offsets, err = _scan(mv)
    for pos in offsets:
        size = (mv[pos] << 8) | mv[pos + 1]
        yield pos, bytes(mv[pos + 2:pos + 2 + size])
    if err is not None:
        raise err


def frame_historical(messages: Sequence[bytes]) -> bytes:
    """Join messages into a historical ITCH file (2-byte big-endian length before each).

    Parameters
    ----------
    messages : sequence of bytes-like
        Messages starting at their type byte. They are framed as given, not validated, so that
        tests can build deliberately broken files.

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        If a message is longer than 65535 bytes, which the 2-byte prefix cannot express.
    """
    parts = []
    for i, m in enumerate(messages):
        n = len(m)
        if n > 0xFFFF:
            raise ValueError(f"message {i} is {n} bytes; a 2-byte length prefix holds at most 65535")
        parts.append(n.to_bytes(2, "big"))
        parts.append(bytes(m))
    return b"".join(parts)


# --------------------------------------------------------------------------------------------
# MoldUDP64 downstream packets
# --------------------------------------------------------------------------------------------

MOLD_SESSION_LENGTH = 10
MOLD_HEADER_LENGTH = 20
MOLD_HEARTBEAT_COUNT = 0
MOLD_END_OF_SESSION_COUNT = 0xFFFF
# 0xFFFF is reserved for end of session, so a data packet carries at most 0xFFFE messages.
MOLD_MAX_MESSAGES = 0xFFFE
_SEQ_LIMIT = 1 << 64


class MoldError(ValueError):
    """A MoldUDP64 packet that cannot be parsed or built."""


@dataclass(frozen=True)
class MoldPacket:
    """One parsed MoldUDP64 downstream packet.

    Attributes
    ----------
    session : bytes
        The 10-byte session name, as sent.
    seq : int
        Sequence number of the first message (for a heartbeat or end of session: of the next
        message the session will send).
    count : int
        The header's message count: 0 for a heartbeat, 0xFFFF for end of session.
    messages : tuple of bytes
        The messages, without their 2-byte length prefixes.
    """

    session: bytes
    seq: int
    count: int
    messages: tuple[bytes, ...]

    @property
    def is_heartbeat(self) -> bool:
        return self.count == MOLD_HEARTBEAT_COUNT

    @property
    def is_end_of_session(self) -> bool:
        return self.count == MOLD_END_OF_SESSION_COUNT

    @property
    def next_seq(self) -> int:
        """Sequence number that follows this packet."""
        return self.seq + len(self.messages)


def _check_session(session: bytes | str) -> bytes:
    if isinstance(session, str):
        try:
            session = session.encode("ascii")
        except UnicodeEncodeError:
            raise MoldError(f"MoldUDP64 session must be ASCII, got {session!r}") from None
    session = bytes(session)
    if len(session) != MOLD_SESSION_LENGTH:
        raise MoldError(f"MoldUDP64 session must be exactly {MOLD_SESSION_LENGTH} bytes, "
                        f"got {len(session)}: {session!r}")
    return session


def _check_seq(seq: int) -> int:
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < _SEQ_LIMIT:
        raise MoldError(f"MoldUDP64 sequence number must be an int in [0, 2**64), got {seq!r}")
    return seq


def _header(session: bytes | str, seq: int, count: int) -> bytes:
    return _check_session(session) + _check_seq(seq).to_bytes(8, "big") + count.to_bytes(2, "big")


def build_packet(session: bytes | str, seq: int, messages: Sequence[bytes]) -> bytes:
    """Build a MoldUDP64 downstream packet carrying ``messages``.

    Parameters
    ----------
    session : bytes or str
        Exactly 10 ASCII bytes.
    seq : int
        Sequence number of the first message.
    messages : sequence of bytes-like
        At least one and at most 0xFFFE messages of at most 65535 bytes each. (Use
        :func:`build_heartbeat` for a packet without messages.)

    Returns
    -------
    bytes

    Raises
    ------
    MoldError
        On a bad session, sequence number, message count or message length.
    """
    if not 1 <= len(messages) <= MOLD_MAX_MESSAGES:
        raise MoldError(f"a MoldUDP64 data packet carries 1 to {MOLD_MAX_MESSAGES} messages, "
                        f"got {len(messages)}")
    if _check_seq(seq) + len(messages) > _SEQ_LIMIT:
        raise MoldError(f"sequence numbers {seq}..{seq + len(messages) - 1} overflow 64 bits")
    parts = [_header(session, seq, len(messages))]
    for i, m in enumerate(messages):
        if len(m) > 0xFFFF:
            raise MoldError(f"message {i} is {len(m)} bytes; a MoldUDP64 block holds at most 65535")
        parts.append(len(m).to_bytes(2, "big"))
        parts.append(bytes(m))
    return b"".join(parts)


def build_heartbeat(session: bytes | str, seq: int) -> bytes:
    """Build a MoldUDP64 heartbeat (count 0); ``seq`` is the next sequence number to be sent."""
    return _header(session, seq, MOLD_HEARTBEAT_COUNT)


def build_end_of_session(session: bytes | str, seq: int) -> bytes:
    """Build a MoldUDP64 end-of-session packet (count 0xFFFF); ``seq`` is the next sequence
    number, i.e. one past the last message of the session."""
    return _header(session, seq, MOLD_END_OF_SESSION_COUNT)


def parse_packet(buf: bytes) -> MoldPacket:
    """Parse one MoldUDP64 downstream packet.

    Parameters
    ----------
    buf : bytes-like
        The UDP payload.

    Returns
    -------
    MoldPacket

    Raises
    ------
    MoldError
        If the header is short, a message block runs past the end of the packet, bytes follow
        the last announced block, or a heartbeat / end of session carries a payload.
    """
    mv = memoryview(buf).cast("B")
    n = len(mv)
    if n < MOLD_HEADER_LENGTH:
        raise MoldError(f"MoldUDP64 packet of {n} bytes is shorter than the "
                        f"{MOLD_HEADER_LENGTH}-byte header")
    session = bytes(mv[0:10])
    seq = int.from_bytes(mv[10:18], "big")
    count = int.from_bytes(mv[18:20], "big")
    if count in (MOLD_HEARTBEAT_COUNT, MOLD_END_OF_SESSION_COUNT):
        if n != MOLD_HEADER_LENGTH:
            what = "heartbeat" if count == MOLD_HEARTBEAT_COUNT else "end-of-session packet"
            raise MoldError(f"MoldUDP64 {what} (count {count}) has {n - MOLD_HEADER_LENGTH} "
                            f"bytes after the header; it must have none")
        return MoldPacket(session, seq, count, ())
    messages = []
    pos = MOLD_HEADER_LENGTH
    for i in range(count):
        if pos + 2 > n:
            raise MoldError(f"MoldUDP64 packet announces {count} messages but ends at byte {n} "
                            f"before the length of message {i + 1}")
        size = (mv[pos] << 8) | mv[pos + 1]
        if pos + 2 + size > n:
            raise MoldError(f"MoldUDP64 message {i + 1} of {count} at byte {pos} has length "
                            f"{size} but only {n - pos - 2} bytes remain")
        messages.append(bytes(mv[pos + 2:pos + 2 + size]))
        pos += 2 + size
    if pos != n:
        raise MoldError(f"MoldUDP64 packet has {n - pos} bytes after its {count} announced "
                        f"messages (from byte {pos})")
    return MoldPacket(session, seq, count, tuple(messages))


# --------------------------------------------------------------------------------------------
# Sequencing
# --------------------------------------------------------------------------------------------

class MoldPacketKind(enum.Enum):
    """How :class:`MoldSequencer` classified a packet."""
    IN_ORDER = "in_order"
    GAP = "gap"
    OVERLAP = "overlap"
    DUPLICATE = "duplicate"
    HEARTBEAT = "heartbeat"
    END_OF_SESSION = "end_of_session"
    AFTER_END = "after_end"


@dataclass(frozen=True)
class MoldVerdict:
    """What :meth:`MoldSequencer.accept` decided about one packet.

    Attributes
    ----------
    kind : MoldPacketKind
    session : bytes
    seq : int
        The packet's sequence number.
    expected : int
        The sequence number the session expected before this packet.
    messages : tuple of bytes
        Messages to deliver downstream, in order (possibly none).
    first_seq : int
        Sequence number of ``messages[0]`` (meaningful when there are messages).
    gap : tuple of (int, int) or None
        ``(expected, received)`` when the packet revealed missing messages: sequence numbers
        ``expected .. received - 1`` were never delivered.
    dropped : int
        Messages of this packet that were not delivered because they had been delivered
        already, or because the session had ended.
    """

    kind: MoldPacketKind
    session: bytes
    seq: int
    expected: int
    messages: tuple[bytes, ...] = ()
    first_seq: int = 0
    gap: tuple[int, int] | None = None
    dropped: int = 0


@dataclass
class MoldCounters:
    """Running totals of a :class:`MoldSequencer` (the counters the gateware stage exposes)."""
    packets: int = 0
    messages_delivered: int = 0
    in_order_packets: int = 0
    gap_events: int = 0
    missing_messages: int = 0
    overlap_packets: int = 0
    duplicate_packets: int = 0
    duplicate_messages: int = 0
    heartbeats: int = 0
    end_of_sessions: int = 0
    after_end_packets: int = 0


@dataclass
class _SessionState:
    expected: int
    ended: bool = False


class MoldSequencer:
    """Reference model of MoldUDP64 sequencing: which messages go downstream, what is counted.

    The sequencer keeps, per session name, the next expected sequence number ``E`` (the first
    packet of a session not seen before is compared against ``first_expected``; with
    ``first_expected=None`` the first packet of a session defines ``E`` and is in order).
    A data packet with sequence number ``S`` and ``N`` messages (they are ``S .. S+N-1``) is
    classified as follows, in this order:

    * **after end**: the session has ended (an end-of-session packet was accepted): the
      packet is dropped, counted in ``after_end_packets``, and ``E`` does not move.
    * **in order** (``S == E``): all ``N`` messages are delivered; ``E = S + N``.
    * **gap** (``S > E``): messages ``E .. S-1`` are lost. The gap ``(E, S)`` is reported
      (``gap_events += 1``, ``missing_messages += S - E``), then all ``N`` messages are
      delivered and ``E = S + N``. No message is held back waiting for a retransmission:
      the stage downstream learns of the gap from the verdict and its counter.
    * **overlap** (``S < E < S + N``): the packet repeats ``E - S`` messages already delivered
      and carries ``S + N - E`` new ones. Only the new ones are delivered (``first_seq = E``);
      the repeated ones are dropped and counted in ``duplicate_messages``; ``E = S + N``.
    * **duplicate or old** (``S + N <= E``): nothing is new. The packet is dropped:
      ``duplicate_packets += 1``, ``duplicate_messages += N``; ``E`` does not move.

    A heartbeat (count 0) carries the next sequence number the session will send. If it is
    greater than ``E`` it reveals a gap ``(E, S)``, reported and counted as above, and ``E``
    becomes ``S``; otherwise it changes nothing. An end-of-session packet (count 0xFFFF) is
    treated the same way and then marks the session ended. Heartbeats and end of session are
    counted in ``heartbeats`` and ``end_of_sessions`` whatever their sequence number.

    A packet may bring fewer message blocks than its count (cut short, or its rest unreadable).
    The stage that reads the blocks then calls :meth:`cut_short`: the blocks not brought were not
    received, so ``E`` goes back to the first of them (never below where it was before the
    packet), and the session's next packet reports them as a gap.

    Sessions are independent: a packet of another session never moves this session's ``E``.

    Parameters
    ----------
    first_expected : int or None, keyword-only
        Sequence number expected from a session not seen before. The default is 1, where MoldUDP64
        sessions start; ``None`` joins a session wherever its first packet is.
    """

    def __init__(self, *, first_expected: int | None = 1):
        if first_expected is not None:
            _check_seq(first_expected)
        self.first_expected = first_expected
        self.counters = MoldCounters()
        self._sessions: dict[bytes, _SessionState] = {}

    def expected(self, session: bytes | str) -> int | None:
        """Next expected sequence number of ``session`` (None if the session was never seen)."""
        st = self._sessions.get(_check_session(session))
        return None if st is None else st.expected

    def ended(self, session: bytes | str) -> bool:
        """Whether ``session`` has received its end-of-session packet."""
        st = self._sessions.get(_check_session(session))
        return st is not None and st.ended

    def cut_short(self, verdict: MoldVerdict, first_missing: int) -> None:
        """The packet of ``verdict`` brought its messages only up to ``first_missing`` (its last
        blocks never arrived, or could not be read): the session expects that message again,
        never less than it expected before the packet, so the next packet reports the rest as
        a gap. Only an in-order, gap or overlap verdict moved ``E``; the others leave it."""
        if verdict.kind not in (MoldPacketKind.IN_ORDER, MoldPacketKind.GAP,
                                MoldPacketKind.OVERLAP):
            return
        st = self._sessions.get(verdict.session)
        if st is not None:
            st.expected = max(first_missing, verdict.expected)

    def accept_bytes(self, buf: bytes) -> MoldVerdict:
        """Parse a raw packet (see :func:`parse_packet`, whose errors propagate) and accept it."""
        return self.accept(parse_packet(buf))

    def accept(self, packet: MoldPacket) -> MoldVerdict:
        """Classify one packet and update the session state and the counters.

        Parameters
        ----------
        packet : MoldPacket

        Returns
        -------
        MoldVerdict
        """
        c = self.counters
        c.packets += 1
        seq = packet.seq
        st = self._sessions.get(packet.session)
        if st is None:
            st = _SessionState(seq if self.first_expected is None else self.first_expected)
            self._sessions[packet.session] = st
        exp = st.expected
        kind = MoldPacketKind
        base = dict(session=packet.session, seq=seq, expected=exp)

        if packet.is_heartbeat or packet.is_end_of_session:
            if packet.is_heartbeat:
                c.heartbeats += 1
                k = kind.HEARTBEAT
            else:
                c.end_of_sessions += 1
                k = kind.END_OF_SESSION
            if st.ended:
                return MoldVerdict(k, **base)
            gap = None
            if seq > exp:
                gap = (exp, seq)
                c.gap_events += 1
                c.missing_messages += seq - exp
                st.expected = seq
            if packet.is_end_of_session:
                st.ended = True
            return MoldVerdict(k, gap=gap, **base)

        n = len(packet.messages)
        if st.ended:
            c.after_end_packets += 1
            return MoldVerdict(kind.AFTER_END, dropped=n, **base)
        if seq == exp:
            c.in_order_packets += 1
            c.messages_delivered += n
            st.expected = seq + n
            return MoldVerdict(kind.IN_ORDER, messages=packet.messages, first_seq=seq, **base)
        if seq > exp:
            c.gap_events += 1
            c.missing_messages += seq - exp
            c.messages_delivered += n
            st.expected = seq + n
            return MoldVerdict(kind.GAP, messages=packet.messages, first_seq=seq,
                               gap=(exp, seq), **base)
        if seq + n > exp:
            old = exp - seq
            c.overlap_packets += 1
            c.duplicate_messages += old
            c.messages_delivered += n - old
            st.expected = seq + n
            return MoldVerdict(kind.OVERLAP, messages=packet.messages[old:], first_seq=exp,
                               dropped=old, **base)
        c.duplicate_packets += 1
        c.duplicate_messages += n
        return MoldVerdict(kind.DUPLICATE, dropped=n, **base)
