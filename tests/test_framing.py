"""Historical-file framing, MoldUDP64 packets and the MoldUDP64 sequencer (host.feed.framing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from host.feed.framing import (
    FramingError, MoldError, MoldPacket, MoldPacketKind, MoldSequencer, build_end_of_session,
    build_heartbeat, build_packet, frame_historical, iter_historical, parse_packet,
    scan_historical,
)
from host.feed.itch import MESSAGE_SPECS, encode_message

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "itch50"
SESSION = b"0000012345"


def _msg(mtype: str, ref: int = 1) -> bytes:
    """A valid message of ``mtype`` with an identifying reference/locate value."""
    fields = {}
    for f in MESSAGE_SPECS[mtype].fields:
        if f.name == "message_type":
            fields[f.name] = mtype
        elif f.kind == "alpha":
            fields[f.name] = "B" if f.length == 1 else "X"
        else:
            fields[f.name] = ref % (1 << (8 * f.length))
    return encode_message(fields)


@pytest.fixture
def three() -> list[bytes]:
    return [_msg("S", 1), _msg("A", 2), _msg("E", 3)]


# ------------------------------------------------------------------------------------------
# Historical framing
# ------------------------------------------------------------------------------------------

def test_clean_file_gives_every_prefix_offset_and_no_error(three):
    buf = frame_historical(three)
    offsets, err = scan_historical(buf)
    assert err is None
    assert offsets.dtype == np.int64
    assert offsets.tolist() == [0, 2 + 12, 2 + 12 + 2 + 36]
    assert len(buf) == 3 * 2 + 12 + 36 + 31


def test_empty_file_has_no_messages_and_no_error():
    offsets, err = scan_historical(b"")
    assert offsets.tolist() == [] and err is None


def test_iter_yields_offsets_and_message_bytes(three):
    got = list(iter_historical(frame_historical(three)))
    assert got == [(0, three[0]), (14, three[1]), (52, three[2])]


def test_frame_historical_writes_big_endian_lengths(three):
    buf = frame_historical(three)
    assert buf[:2] == b"\x00\x0c" and buf[14:16] == b"\x00\x24"


def test_frame_historical_refuses_a_message_the_prefix_cannot_express():
    with pytest.raises(ValueError, match="65535"):
        frame_historical([b"A" * 70000])


def _assert_error(buf: bytes, good: int, offset: int, reason: str) -> FramingError:
    offsets, err = scan_historical(buf)
    assert isinstance(err, FramingError) and isinstance(err, ValueError)
    assert (err.offset, err.index, err.reason) == (offset, good + 1, reason)
    assert f"byte offset {offset}" in str(err)
    assert len(offsets) == good
    return err


def test_body_cut_short_is_truncated_at_its_prefix_and_keeps_earlier_messages(three):
    buf = frame_historical(three)
    _assert_error(buf[:-5], good=2, offset=52, reason="truncated")


def test_prefix_cut_short_is_truncated(three):
    buf = frame_historical(three) + b"\x00"
    _assert_error(buf, good=3, offset=len(buf) - 1, reason="truncated")


def test_prefix_without_any_message_byte_is_truncated(three):
    buf = frame_historical(three[:1]) + b"\x00\x24"
    _assert_error(buf, good=1, offset=14, reason="truncated")


def test_length_disagreeing_with_type_is_bad_length(three):
    bad = frame_historical(three[:1]) + b"\x00\x23" + three[1][:35] + frame_historical(three[2:])
    err = _assert_error(bad, good=1, offset=14, reason="bad_length")
    assert "length 35" in str(err) and "36 bytes" in str(err)


def test_unknown_type_byte_is_unknown_type(three):
    buf = frame_historical([three[0], b"z" + bytes(10), three[2]])
    err = _assert_error(buf, good=1, offset=14, reason="unknown_type")
    assert "0x7a" in str(err)


def test_zero_length_is_unknown_type(three):
    buf = frame_historical(three[:2]) + b"\x00\x00" + frame_historical(three[2:])
    err = _assert_error(buf, good=2, offset=52, reason="unknown_type")
    assert "zero length" in str(err)


def test_iter_raises_the_error_after_yielding_the_good_messages(three):
    buf = frame_historical(three)[:-1]
    seen = []
    with pytest.raises(FramingError) as info:
        for off, m in iter_historical(buf):
            seen.append(m)
    assert seen == three[:2]
    assert (info.value.offset, info.value.index, info.value.reason) == (52, 3, "truncated")


def _reference_walk(buf: bytes) -> tuple[list[int], int | None]:
    """The framing rule written the slow, obvious way: good offsets and the first bad offset."""
    lengths = {ord(t): s.length for t, s in MESSAGE_SPECS.items()}
    good, pos = [], 0
    while pos < len(buf):
        if pos + 3 > len(buf):
            return good, pos
        size = int.from_bytes(buf[pos:pos + 2], "big")
        if size == 0 or lengths.get(buf[pos + 2]) != size or pos + 2 + size > len(buf):
            return good, pos
        good.append(pos)
        pos += 2 + size
    return good, None


def test_corrupted_files_are_cut_exactly_where_a_plain_walk_says():
    # Arrange: a clean file of every type, then 300 copies with one byte changed or cut
    rng = np.random.default_rng(2024)
    clean = frame_historical([_msg(t, i) for i, t in enumerate("SRHYLVWKJhAFECXDUPQBINO" * 3)])
    for _ in range(300):
        buf = bytearray(clean)
        if rng.random() < 0.5:
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
        else:
            del buf[int(rng.integers(len(buf))):]
        buf = bytes(buf)
        # Act
        offsets, err = scan_historical(buf)
        # Assert
        good, bad_at = _reference_walk(buf)
        assert offsets.tolist() == good
        assert (err is None) == (bad_at is None)
        if err is not None:
            assert (err.offset, err.index) == (bad_at, len(good) + 1)


def test_framing_error_survives_pickling():
    import pickle
    err = FramingError(10, 2, "bad_length", "detail")
    back = pickle.loads(pickle.dumps(err))
    assert (back.offset, back.index, back.reason, str(back)) == (10, 2, "bad_length", str(err))


def test_real_sample_frames_cleanly_into_1000_messages():
    path = DATA / "sample.itch"
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (it lives in ../shared/data)")
    buf = path.read_bytes()
    offsets, err = scan_historical(buf)
    assert err is None and len(offsets) == 1000
    msgs = [m for _, m in iter_historical(buf)]
    assert frame_historical(msgs) == buf


# ------------------------------------------------------------------------------------------
# MoldUDP64 packets
# ------------------------------------------------------------------------------------------

def test_packet_round_trips_with_header_fields(three):
    raw = build_packet(SESSION, 2**40 + 5, three)
    assert raw[:10] == SESSION
    assert raw[10:18] == (2**40 + 5).to_bytes(8, "big")
    assert raw[18:20] == b"\x00\x03"
    assert raw[20:22] == b"\x00\x0c" and raw[22:34] == three[0]
    p = parse_packet(raw)
    assert p == MoldPacket(SESSION, 2**40 + 5, 3, tuple(three))
    assert p.next_seq == 2**40 + 8 and not p.is_heartbeat and not p.is_end_of_session


def test_heartbeat_is_a_bare_header_with_count_zero():
    raw = build_heartbeat("SESSION001", 77)
    assert len(raw) == 20 and raw[18:20] == b"\x00\x00"
    p = parse_packet(raw)
    assert p.is_heartbeat and p.seq == 77 and p.messages == () and p.session == b"SESSION001"


def test_end_of_session_is_a_bare_header_with_count_ffff():
    raw = build_end_of_session(SESSION, 9)
    assert len(raw) == 20 and raw[18:20] == b"\xff\xff"
    p = parse_packet(raw)
    assert p.is_end_of_session and p.count == 0xFFFF and p.seq == 9 and p.messages == ()


@pytest.mark.parametrize("raw,match", [
    (b"0123456789" + bytes(9), "shorter than the 20-byte header"),
    (SESSION + bytes(8) + b"\x00\x02" + b"\x00\x01A", "announces 2 messages but ends"),
    (SESSION + bytes(8) + b"\x00\x01" + b"\x00\x05AB", "has length 5 but only 2 bytes remain"),
    (SESSION + bytes(8) + b"\x00\x01" + b"\x00\x01A" + b"junk", "4 bytes after its 1 announced"),
    (SESSION + bytes(8) + b"\x00\x00" + b"x", "heartbeat .* must have none"),
    (SESSION + bytes(8) + b"\xff\xff" + b"x", "end-of-session packet .* must have none"),
])
def test_malformed_packets_are_rejected_with_a_clear_reason(raw, match):
    with pytest.raises(MoldError, match=match):
        parse_packet(raw)


@pytest.mark.parametrize("session,seq,messages,match", [
    (b"SHORT", 1, [b"A"], "exactly 10 bytes"),
    (SESSION, -1, [b"A"], r"\[0, 2\*\*64\)"),
    (SESSION, 2**64, [b"A"], r"\[0, 2\*\*64\)"),
    (SESSION, 1, [], "1 to 65534 messages"),
    (SESSION, 2**64 - 1, [b"A", b"B"], "overflow 64 bits"),
    (SESSION, 1, [b"A" * 70000], "at most 65535"),
])
def test_build_packet_rejects_what_the_header_cannot_carry(session, seq, messages, match):
    with pytest.raises(MoldError, match=match):
        build_packet(session, seq, messages)


# ------------------------------------------------------------------------------------------
# MoldUDP64 sequencing
# ------------------------------------------------------------------------------------------

def _pkt(seq: int, n: int, session: bytes = SESSION) -> MoldPacket:
    return parse_packet(build_packet(session, seq, [_msg("D", seq + i) for i in range(n)]))


def _refs(verdict) -> list[int]:
    return [int.from_bytes(m[11:19], "big") for m in verdict.messages]


def test_in_order_packets_deliver_everything_and_advance():
    sq = MoldSequencer()
    v1 = sq.accept(_pkt(1, 3))
    v2 = sq.accept(_pkt(4, 2))
    assert (v1.kind, v2.kind) == (MoldPacketKind.IN_ORDER, MoldPacketKind.IN_ORDER)
    assert _refs(v1) + _refs(v2) == [1, 2, 3, 4, 5]
    assert sq.expected(SESSION) == 6
    assert sq.counters.messages_delivered == 5 and sq.counters.gap_events == 0


def test_gap_is_reported_with_expected_and_received_and_messages_still_delivered():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 2))
    v = sq.accept(_pkt(10, 2))
    assert v.kind is MoldPacketKind.GAP and v.gap == (3, 10)
    assert _refs(v) == [10, 11] and v.first_seq == 10
    assert sq.expected(SESSION) == 12
    assert (sq.counters.gap_events, sq.counters.missing_messages) == (1, 7)


def test_first_packet_after_sequence_one_is_a_gap_by_default_and_in_order_when_joining():
    assert MoldSequencer().accept(_pkt(5, 1)).gap == (1, 5)
    v = MoldSequencer(first_expected=None).accept(_pkt(5, 1))
    assert v.kind is MoldPacketKind.IN_ORDER and v.gap is None


def test_exact_duplicate_is_dropped_and_counted():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 3))
    v = sq.accept(_pkt(1, 3))
    assert v.kind is MoldPacketKind.DUPLICATE and v.messages == () and v.dropped == 3
    assert sq.expected(SESSION) == 4
    assert (sq.counters.duplicate_packets, sq.counters.duplicate_messages) == (1, 3)


def test_old_packet_before_expected_is_dropped_and_counted():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 10))
    v = sq.accept(_pkt(3, 2))
    assert v.kind is MoldPacketKind.DUPLICATE and v.dropped == 2
    assert sq.expected(SESSION) == 11 and sq.counters.messages_delivered == 10


def test_partial_overlap_delivers_only_the_new_messages():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 4))
    v = sq.accept(_pkt(3, 5))  # 3, 4 already seen; 5, 6, 7 new
    assert v.kind is MoldPacketKind.OVERLAP
    assert _refs(v) == [5, 6, 7] and v.first_seq == 5 and v.dropped == 2
    assert sq.expected(SESSION) == 8
    assert sq.counters.duplicate_messages == 2 and sq.counters.messages_delivered == 7


def test_heartbeat_ahead_of_expected_reveals_a_gap_and_moves_expected():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 2))
    quiet = sq.accept(parse_packet(build_heartbeat(SESSION, 3)))
    ahead = sq.accept(parse_packet(build_heartbeat(SESSION, 6)))
    assert quiet.kind is MoldPacketKind.HEARTBEAT and quiet.gap is None
    assert ahead.kind is MoldPacketKind.HEARTBEAT and ahead.gap == (3, 6)
    assert sq.expected(SESSION) == 6
    assert sq.counters.heartbeats == 2 and sq.counters.missing_messages == 3


def test_stale_heartbeat_changes_nothing():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 5))
    v = sq.accept(parse_packet(build_heartbeat(SESSION, 2)))
    assert v.gap is None and sq.expected(SESSION) == 6


def test_end_of_session_ends_it_and_later_packets_are_dropped():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 2))
    end = sq.accept_bytes(build_end_of_session(SESSION, 3))
    late = sq.accept(_pkt(3, 1))
    assert end.kind is MoldPacketKind.END_OF_SESSION and end.gap is None
    assert sq.ended(SESSION)
    assert late.kind is MoldPacketKind.AFTER_END and late.messages == () and late.dropped == 1
    assert sq.counters.end_of_sessions == 1 and sq.counters.after_end_packets == 1


def test_sessions_are_sequenced_independently():
    sq = MoldSequencer()
    sq.accept(_pkt(1, 3, b"SESSIONAAA"))
    v = sq.accept(_pkt(1, 1, b"SESSIONBBB"))
    assert v.kind is MoldPacketKind.IN_ORDER
    assert (sq.expected(b"SESSIONAAA"), sq.expected(b"SESSIONBBB")) == (4, 2)
    assert sq.expected(b"SESSIONCCC") is None


def test_sequencer_delivers_each_message_once_under_reordering_and_repeats():
    # Arrange: 40 messages in packets of 1-3, each sent twice, with neighbours swapped
    rng = np.random.default_rng(7)
    packets, seq = [], 1
    while seq <= 40:
        n = min(int(rng.integers(1, 4)), 41 - seq)
        packets.append(_pkt(seq, n))
        seq += n
    stream = []
    for p in packets:
        stream += [p, p]
    for i in range(0, len(stream) - 3, 5):
        stream[i + 1], stream[i + 2] = stream[i + 2], stream[i + 1]
    # Act
    sq = MoldSequencer()
    delivered = []
    for p in stream:
        delivered += _refs(sq.accept(p))
    c = sq.counters
    # Assert: every sequence number at most once, in increasing order; totals add up
    assert delivered == sorted(set(delivered))
    assert c.messages_delivered == len(delivered)
    assert len(delivered) + c.missing_messages == 40
    assert c.messages_delivered + c.duplicate_messages == 2 * 40  # every arrival is one or the other


def test_sequencer_cut_short_makes_the_blocks_not_brought_expected_again():
    seqr = MoldSequencer()
    s = b"SESSION001"
    v = seqr.accept(MoldPacket(s, 1, 5, (b"",) * 5))          # in order, E = 6
    seqr.cut_short(v, 3)                                      # only 1 and 2 came
    assert seqr.expected(s) == 3
    v = seqr.accept(MoldPacket(s, 1, 2, (b"",) * 2))          # old: E stays
    seqr.cut_short(v, 2)
    assert seqr.expected(s) == 3
    v = seqr.accept(MoldPacket(s, 2, 4, (b"",) * 4))          # overlap from 3, E = 6
    seqr.cut_short(v, 2)                                      # nothing new came: back to 3,
    assert seqr.expected(s) == 3                              # never below what it expected
    v = seqr.accept(MoldPacket(s, 3, 0, ()))                  # a heartbeat is left alone
    seqr.cut_short(v, 1)
    assert seqr.expected(s) == 3
