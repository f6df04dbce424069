"""Crypto venue converters: exact integer conversion, LEVEL_UPDATE messages, and the recorded
sessions' own ground truth (Binance bookTicker, OKX checksums) reproduced through BookModel."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from hdl.wire import LEVEL_UPDATE
from host.venues import binance, okx
from host.venues.levels import (FLAG_DELETE, FLAG_SELL, FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END,
                                LEVEL_MESSAGE_LENGTH, Instrument, LevelError, LevelUpdate,
                                decimal_grid, decode_level_message, diff_updates,
                                encode_level_message, snapshot_updates)
from host.venues.recording import RecordingError, read_frames
from sim.model.book import BookModel, SlotKey

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CRYPTO = DATA / "crypto"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"public recording absent: {path}")
    return path


def apply_batch(model: BookModel, batch, seq: int = 0) -> None:
    # Through the wire bytes, so the encoding is part of what the ground truth checks.
    for u in batch.updates:
        d = decode_level_message(u.encode())
        model.apply_level(d.slot, d.flags, d.price, d.size, seq)


# ------------------------------------------------------------------ integer conversion

BTC = Instrument("BTC-USDT", 3, "0.1", "0.00000001")


@pytest.mark.parametrize("text, ticks", [("30244", 302440), ("30243.5", 302435),
                                         ("0.0", 0), ("30243.50000000", 302435)])
def test_price_string_becomes_exact_ticks(text, ticks):
    assert BTC.price_ticks(text) == ticks


def test_size_string_becomes_exact_lots():
    assert BTC.size_lots("0.05426064") == 5_426_064
    assert BTC.size_lots("42.94967295") == 2**32 - 1


def test_price_off_the_tick_grid_is_refused_with_the_value():
    with pytest.raises(LevelError, match=r"BTC-USDT price '30243.55' is not a whole number of "
                                         r"ticks of 0.1"):
        BTC.price_ticks("30243.55")


def test_size_over_32_bits_is_refused_with_the_value():
    with pytest.raises(LevelError, match=r"'42.94967296' is 4294967296 lots .* 32 bits"):
        BTC.size_lots("42.94967296")


@pytest.mark.parametrize("bad", [1.5, "-1", "NaN", "abc", "1E+80"])
def test_float_negative_and_non_numbers_are_refused(bad):
    with pytest.raises(LevelError):
        BTC.price_ticks(bad)


@pytest.mark.parametrize("bad", [" 30243.5 ", "30_243.5", "3.02435e4", "+30243.5", "٣٠٢٤٣",
                                 "30243.", ".5", ""])
def test_only_plain_ascii_decimals_are_taken(bad):
    with pytest.raises(LevelError, match="not a plain decimal number"):
        BTC.price_ticks(bad)
    assert BTC.price_ticks("30243.5") == 302435


def test_instrument_rejects_a_zero_tick_and_a_wide_slot():
    with pytest.raises(LevelError, match="tick must be > 0"):
        Instrument("X", 0, "0", "1")
    with pytest.raises(LevelError, match="65536"):
        Instrument("X", 65536, "1", "1")


def test_ticks_and_lots_format_back_to_the_shortest_venue_string():
    assert [BTC.price_text(302440), BTC.price_text(302435), BTC.size_text(8_000_000),
            BTC.size_text(0)] == ["30244", "30243.5", "0.08", "0"]


def test_decimal_grid_is_the_finest_power_of_ten_sent():
    assert decimal_grid(["0.35130000", "0.3520", "1"]) == Decimal("0.0001")
    assert decimal_grid(["6195.00000000", "10"]) == Decimal("1")


# ------------------------------------------------------------------ LEVEL_UPDATE messages

def test_level_message_is_length_prefixed_little_endian_record():
    msg = encode_level_message(slot=0x0102, price=0x0A0B0C0D, size=7, sell=True,
                               exchange_seq=499869752, snapshot_end=True)

    assert msg[:2] == LEVEL_MESSAGE_LENGTH.to_bytes(2, "big") == b"\x00\x18"
    assert msg[2] == ord("l")
    assert msg[3] == FLAG_SELL | FLAG_SNAPSHOT_END
    assert msg[4:6] == b"\x02\x01" and msg[6:10] == b"\x0d\x0c\x0b\x0a"
    fields = LEVEL_UPDATE.unpack(msg[2:])
    assert (fields["size"], fields["exchange_seq"]) == (7, 499869752)
    assert decode_level_message(msg) == LevelUpdate(0x0102, FLAG_SELL | FLAG_SNAPSHOT_END,
                                                    0x0A0B0C0D, 7, 499869752)


def test_level_message_with_a_wrong_type_byte_is_refused():
    msg = bytearray(encode_level_message(slot=1, price=1, size=1))
    msg[2] = ord("A")

    with pytest.raises(ValueError, match="type byte"):
        decode_level_message(bytes(msg))


def test_snapshot_updates_are_framed_by_begin_and_end_and_skip_empty_levels():
    ups = snapshot_updates(BTC, [["30243.4", "1"], ["30243.3", "0"]],
                           [["30243.5", "0.5", "0", "2"]], 99)

    assert ups == (LevelUpdate(3, FLAG_SNAPSHOT_BEGIN, 302434, 100_000_000, 99),
                   LevelUpdate(3, FLAG_SELL | FLAG_SNAPSHOT_END, 302435, 50_000_000, 99))


def test_empty_snapshot_is_one_message_that_clears_the_book():
    model = BookModel()
    model.apply_level(3, 0, 10, 10, seq=1)
    (only,) = snapshot_updates(BTC, [], [], 5)

    change = model.apply_level(only.slot, only.flags, only.price, only.size, seq=2)

    assert only.flags == FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END | FLAG_DELETE
    assert (change.bid_price, change.ask_price) == (None, None)


def test_diff_with_zero_size_becomes_a_delete():
    ups = diff_updates(BTC, [["30243.4", "0.00000000"]], [["30243.5", "2"]], 7)

    assert [u.delete for u in ups] == [True, False] and ups[1].sell


# ------------------------------------------------------------------ recordings: format

def test_recording_line_without_a_frame_shape_is_refused_with_its_line(tmp_path):
    path = tmp_path / "bad.ws"
    path.write_text("wss://x <-> 1.5\n1.6: {}\nnot a frame\n")

    with pytest.raises(RecordingError, match=r"bad.ws:3"):
        list(read_frames(path))


def test_recording_frames_without_url_inherit_the_connection(tmp_path):
    path = tmp_path / "s.ws"
    path.write_text("wss://a <-> 1.5\n1.25: {\"x\":1}\nhttps://r -> 2.0: {}\n")

    frames = list(read_frames(path))

    assert [(f.url, f.direction, f.local_ts_ns) for f in frames] == [
        ("wss://a", "<->", 1_500_000_000), ("wss://a", "<-", 1_250_000_000),
        ("https://r", "->", 2_000_000_000)]


# ------------------------------------------------------------------ Binance sync rules

def _diff(first, final, bids=(), asks=(), symbol="XY"):
    return binance.DepthDiff(symbol, first, final, tuple(bids), tuple(asks), 0)


def _snap(last, bids=(("10", "1"),), asks=(("12", "1"),), symbol="XY"):
    return binance.DepthSnapshot(symbol, last, tuple(bids), tuple(asks), 0)


XY = {"XY": Instrument("XY", 9, "1", "1")}


def _is_clear(batch, slot):
    """The batch is the empty snapshot that clears ``slot``'s book."""
    return batch.snapshot and [(u.slot, u.flags, u.price, u.size) for u in batch.updates] == [
        (slot, FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END | FLAG_DELETE, 0, 0)]


def test_binance_diffs_before_the_snapshot_are_buffered_then_filtered():
    sync = binance.BinanceDepthSync(XY)
    assert sync.feed(_diff(95, 100, [("9", "5")])) == []
    assert sync.feed(_diff(101, 103, [("11", "5")])) == []

    batches = sync.feed(_snap(101))

    assert [(b.snapshot, b.update_id) for b in batches] == [(True, 101), (False, 103)]
    assert sync.counters == {"stale": 1, "applied": 1}


def test_binance_gap_stops_the_book_until_the_next_snapshot():
    sync = binance.BinanceDepthSync(XY)
    sync.feed(_snap(100))
    sync.feed(_diff(101, 102))

    cleared = sync.feed(_diff(104, 105))
    assert not sync.synced("XY") and sync.counters["gap"] == 1
    # the gateware's copy is emptied, stamped with the last id the book was right at
    assert [(b.update_id, b.snapshot) for b in cleared] == [(102, True)]
    assert _is_clear(cleared[0], 9) and sync.counters["cleared"] == 1
    assert sync.feed(_diff(106, 107)) == []
    resumed = sync.feed(_snap(105))
    assert [b.update_id for b in resumed] == [105, 107]


def test_binance_first_diff_must_straddle_the_snapshot_id():
    sync = binance.BinanceDepthSync(XY)
    sync.feed(_snap(100))

    cleared = sync.feed(_diff(102, 104))
    assert sync.counters["gap"] == 1 and len(cleared) == 1 and _is_clear(cleared[0], 9)


def test_binance_spot_applies_a_diff_that_overlaps_the_book():
    # Binance's spot rule: ignore u <= the book's id, a gap is U > id + 1; an event whose range
    # overlaps the book's id is applied (its quantities are absolute).
    sync = binance.BinanceDepthSync(XY)
    sync.feed(_snap(100))
    sync.feed(_diff(101, 103))

    assert [b.update_id for b in sync.feed(_diff(102, 105, bids=[("10", "4")]))] == [105]
    assert sync.counters["gap"] == 0 and sync.book_update_id("XY") == 105


def test_binance_snapshot_older_than_the_buffered_diffs_is_discarded():
    sync = binance.BinanceDepthSync(XY)
    sync.feed(_diff(105, 106))

    assert sync.feed(_snap(100)) == []         # 101..104 are missing between them
    assert sync.counters["snapshot_too_old"] == 1 and not sync.synced("XY")
    resumed = sync.feed(_snap(105))            # the buffered diff is kept for the next one
    assert [b.update_id for b in resumed] == [105, 106] and sync.synced("XY")


def test_binance_refused_diff_clears_the_book_and_waits_for_a_snapshot():
    sync = binance.BinanceDepthSync(XY)
    sync.feed(_snap(100))
    sync.feed(_diff(101, 101))

    cleared = sync.feed(_diff(102, 102, bids=[("10.5", "1")]))   # off the tick of 1

    assert [b.update_id for b in cleared] == [101] and _is_clear(cleared[0], 9)
    assert sync.counters["refused"] == 1 and sync.counters["applied"] == 1
    assert "10.5" in sync.last_refusal and not sync.synced("XY")
    assert sync.feed(_diff(103, 103, bids=[("11", "1")])) == []   # no longer continuous
    assert [b.update_id for b in sync.feed(_snap(103))] == [103]


def test_binance_refused_snapshot_leaves_the_symbol_unsynced():
    sync = binance.BinanceDepthSync(XY)

    assert sync.feed(_snap(100, bids=[("10", "0.5")])) == []      # off the lot of 1
    assert sync.counters["refused"] == 1 and not sync.synced("XY")
    assert sync.counters["cleared"] == 0       # nothing had been sent for it


def test_binance_futures_continuity_uses_previous_final_id():
    sync = binance.BinanceDepthSync(XY, futures=True)
    sync.feed(_snap(100))
    first = binance.DepthDiff("XY", 95, 100, (), (), 0, 90)
    second = binance.DepthDiff("XY", 120, 130, (), (), 0, 100)
    broken = binance.DepthDiff("XY", 140, 150, (), (), 0, 135)

    assert [b.update_id for b in sync.feed(first) + sync.feed(second)] == [100, 130]
    cleared = sync.feed(broken)
    assert sync.counters["gap"] == 1 and [b.update_id for b in cleared] == [130]
    assert _is_clear(cleared[0], 9)


# ------------------------------------------------------------------ recordings: ground truth

def _binance_ground_truth(events, instruments, futures=False):
    """Apply every batch to the model; compare with each bookTicker whose update id names a
    book state. Returns (matches, mismatches, sync counters)."""
    model = BookModel(slot_names={i.slot: s for s, i in instruments.items()})
    sync = binance.BinanceDepthSync(instruments, futures=futures)
    states, tickers = {}, []
    for event in events:
        if isinstance(event, binance.BookTicker):
            tickers.append(event)
            continue
        for batch in sync.feed(event):
            apply_batch(model, batch)
            states[(batch.symbol, batch.update_id)] = tuple(model.bbo(SlotKey(batch.slot)))
    matches, mismatches = 0, []
    for t in tickers:
        state = states.get((t.symbol, t.update_id))
        if state is None:
            continue
        inst = instruments[t.symbol]
        truth = (inst.price_ticks(t.bid_price), inst.size_lots(t.bid_qty),
                 inst.price_ticks(t.ask_price), inst.size_lots(t.ask_qty))
        if state == truth:
            matches += 1
        else:
            mismatches.append((t, state))
    return matches, mismatches, sync.counters


def test_binance_snapshot_plus_diffs_agree_with_every_book_ticker_at_equal_update_id():
    events = binance.read_session(need(CRYPTO / "BINANCE.ws.1.0"),
                                  need(CRYPTO / "BINANCE.http.0.0"))
    instruments = binance.recording_instruments(events, first_slot=1)

    matches, mismatches, counters = _binance_ground_truth(events, instruments)

    assert mismatches == []
    assert matches >= 20                    # the recording has 26 such tickers
    assert counters["gap"] == 0 and counters["applied"] > 150


@pytest.mark.parametrize("name, futures, at_least", [("BINANCE", False, 20),
                                                     ("BINANCE_FUTURES", True, 40)])
def test_binance_v3_recordings_agree_with_book_ticker(name, futures, at_least):
    pytest.importorskip("zstandard")
    events, _ = binance.read_v3_session(need(CRYPTO / "v3" / f"{name}.jsonl.zst"))
    instruments = binance.recording_instruments(events, first_slot=1)

    matches, mismatches, counters = _binance_ground_truth(events, instruments, futures)

    assert mismatches == [] and matches >= at_least and counters["gap"] == 0


@pytest.mark.parametrize("name, futures", [("BINANCE", False), ("BINANCE_FUTURES", True)])
def test_binance_v3_book_updates_count_as_the_recording_projects_replay(name, futures):
    # expected_counts.json holds the normalised updates the recording project's own replay
    # produces: one l2_book update per snapshot and per diff that follows the sync (the diffs
    # older than the snapshot are dropped), one ticker per bookTicker.
    pytest.importorskip("zstandard")
    expected = json.loads(need(CRYPTO / "v3" / "expected_counts.json").read_text())[name]
    events, _ = binance.read_v3_session(need(CRYPTO / "v3" / f"{name}.jsonl.zst"))
    instruments = binance.recording_instruments(events, first_slot=1)
    sync = binance.BinanceDepthSync(instruments, futures=futures)
    batches = [b for e in events if not isinstance(e, binance.BookTicker) for b in sync.feed(e)]
    snapshots = sum(isinstance(e, binance.DepthSnapshot) for e in events)
    tickers = sum(isinstance(e, binance.BookTicker) for e in events)

    assert len(batches) == snapshots + sync.counters["applied"] == expected["l2_book"]
    assert sync.counters["gap"] == 0
    assert tickers == expected["ticker"]


def test_okx_v3_book_messages_count_as_the_recording_projects_replay():
    pytest.importorskip("zstandard")
    expected = json.loads(need(CRYPTO / "v3" / "expected_counts.json").read_text())["OKX"]
    messages = okx.read_v3_books(need(CRYPTO / "v3" / "OKX.jsonl.zst"))
    sync = okx.OkxBookSync(okx.recording_instruments(messages, first_slot=1))
    batches = [sync.feed(m) for m in messages]

    assert len(batches) == len(messages) == expected["l2_book"]
    assert sync.counters["checksum_ok"] == expected["l2_book"]


def test_binance_exchange_info_grid_refuses_book_sizes_off_its_lot():
    # The recorded exchangeInfo says NKNUSDT trades in whole lots, yet its book holds 11979.3:
    # the conversion must refuse, not round.
    pytest.importorskip("zstandard")
    events, info = binance.read_v3_session(need(CRYPTO / "v3" / "BINANCE.jsonl.zst"))
    nkn = binance.instrument_from_exchange_info(info, "NKNUSDT", 1)
    snap = next(e for e in events if isinstance(e, binance.DepthSnapshot)
                and e.symbol == "NKNUSDT")

    with pytest.raises(LevelError, match="NKNUSDT size"):
        snapshot_updates(nkn, snap.bids, snap.asks, snap.last_update_id)


def _okx_checksums_through_model(messages):
    instruments = okx.recording_instruments(messages, first_slot=1)
    sync = okx.OkxBookSync(instruments)
    model = BookModel()
    results = []
    for msg in messages:
        batch = sync.feed(msg)
        apply_batch(model, batch)
        inst = instruments[msg.inst_id]
        key = SlotKey(inst.slot)
        bids = [(inst.price_text(p), inst.size_text(s)) for p, s in model.top_levels(key, "B", 25)]
        asks = [(inst.price_text(p), inst.size_text(s)) for p, s in model.top_levels(key, "S", 25)]
        results.append(okx.okx_checksum(bids, asks) == msg.checksum)
    return results, sync.counters


def test_okx_checksum_matches_after_every_message_of_the_recording():
    messages = okx.read_books(need(CRYPTO / "OKX.ws.1.0"))

    from_model, counters = _okx_checksums_through_model(messages)

    assert counters["checksum_mismatch"] == 0 and counters["no_checksum"] == 0
    assert counters["checksum_ok"] == len(messages) == 290
    assert all(from_model) and len(from_model) == 290


def test_okx_v3_recording_checksum_matches_after_every_message():
    pytest.importorskip("zstandard")
    messages = okx.read_v3_books(need(CRYPTO / "v3" / "OKX.jsonl.zst"))

    from_model, counters = _okx_checksums_through_model(messages)

    assert counters["checksum_mismatch"] == 0 and counters["checksum_ok"] == len(messages) > 0
    assert all(from_model)


def test_okx_checksum_detects_a_corrupted_level():
    messages = okx.read_books(need(CRYPTO / "OKX.ws.1.0"))
    first = messages[0]
    bad_bid = [first.bids[0][0], str(Decimal(first.bids[0][1]) + 1), *first.bids[0][2:]]
    corrupted = okx.OkxBookMessage(first.inst_id, first.action, (bad_bid, *first.bids[1:]),
                                   first.asks, first.checksum, first.update_id, 0)
    sync = okx.OkxBookSync(okx.recording_instruments(messages))

    other = messages[1]
    assert other.inst_id != first.inst_id

    sync.feed(corrupted)
    sync.feed(other)                 # another instrument's book is unaffected
    dropped = sync.feed(messages[3])  # an update of the corrupted book waits for a snapshot

    assert (sync.counters["checksum_mismatch"], sync.counters["checksum_ok"]) == (1, 1)
    assert messages[3].inst_id == first.inst_id and dropped is None
    assert sync.counters["waiting"] == 1 and sync.top(first.inst_id) == ([], [])


def _okx(action, bids=(), asks=(), seq=None, prev=None, checksum="auto", inst="XY-USDT"):
    bids = tuple(tuple(level) for level in bids)
    asks = tuple(tuple(level) for level in asks)
    return okx.OkxBookMessage(inst, action, bids, asks, None if checksum == "auto" else checksum,
                              seq if seq is not None else 0, 0, seq, prev)


OKX_XY = {"XY-USDT": Instrument("XY-USDT", 5, "1", "1")}


def test_okx_checksum_mismatch_sends_a_clear_not_the_failing_update():
    sync = okx.OkxBookSync(OKX_XY)
    good = okx.okx_checksum([("10", "1")], [("12", "1")])
    first = sync.feed(_okx("snapshot", [("10", "1")], [("12", "1")], checksum=good))
    assert first.snapshot and sync.counters["checksum_ok"] == 1

    # the venue's checksum says 10 holds 2 after this update: the local book (3) is wrong
    wrong = okx.okx_checksum([("10", "2")], [("12", "1")])
    out = sync.feed(_okx("update", [("10", "3")], checksum=wrong))

    assert sync.counters["checksum_mismatch"] == 1 and sync.counters["cleared"] == 1
    assert _is_clear(out, 5)                       # not the update that failed
    assert sync.feed(_okx("update", [("11", "1")])) is None and sync.counters["waiting"] == 1
    assert sync.feed(_okx("snapshot", [("10", "2")], [("12", "1")])).snapshot


def test_okx_update_must_name_the_last_seq_id():
    sync = okx.OkxBookSync(OKX_XY)
    sync.feed(_okx("snapshot", [("10", "1")], [("12", "1")], seq=100, prev=-1))
    assert sync.feed(_okx("update", [("10", "2")], seq=107, prev=100)).update_id == 107
    # no change: the same id again, with prevSeqId equal to it
    assert sync.feed(_okx("update", seq=107, prev=107)).updates == ()

    out = sync.feed(_okx("update", [("10", "5")], seq=130, prev=120))   # 107..120 lost

    assert sync.counters["gap"] == 1 and _is_clear(out, 5) and out.update_id == 107
    assert sync.feed(_okx("update", [("10", "6")], seq=140, prev=130)) is None
    assert sync.feed(_okx("snapshot", [("10", "6")], seq=150, prev=-1)).update_id == 150


def test_okx_refused_update_clears_the_book():
    sync = okx.OkxBookSync(OKX_XY)
    sync.feed(_okx("snapshot", [("10", "1")], [("12", "1")], seq=1, prev=-1))

    out = sync.feed(_okx("update", [("10.5", "1")], seq=2, prev=1))   # off the tick of 1

    assert sync.counters["refused"] == 1 and "10.5" in sync.last_refusal and _is_clear(out, 5)
    assert sync.top("XY-USDT") == ([], [])


def test_okx_message_reads_seq_ids():
    frame = {"arg": {"channel": "books", "instId": "XY-USDT"}, "action": "update",
             "data": [{"bids": [["10", "1", "0", "1"]], "asks": [], "ts": "1",
                       "checksum": 5, "seqId": 8, "prevSeqId": 3}]}
    (msg,) = okx._message_of(frame, 0)
    assert (msg.seq_id, msg.prev_seq_id, msg.update_id) == (8, 3, 8)


def test_okx_checksum_of_the_documented_shape():
    # Interleaving: bid1, ask1, bid2, then the longer side alone.
    text = "3366.1:7:3366.8:9:3366:6"
    import zlib
    expected = zlib.crc32(text.encode())
    expected -= (1 << 32) if expected >= 1 << 31 else 0

    assert okx.okx_checksum([("3366.1", "7"), ("3366", "6")], [("3366.8", "9")]) == expected
