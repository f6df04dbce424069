"""The feed stage's reference model and the host's decoding of the feed's records (no
simulation): the rules the gateware is scored against."""

import json
import random

import pytest

from hdl.feed.decoder import NO_SLOT
from host.feed.framing import (build_packet, build_heartbeat, build_end_of_session,
                               frame_historical)
from host.feed.itch import decode_message, encode_message
from host.feed.records import event_to_message, reference_decode, decode_host_message
from sim.gen.itchgen import generate_messages
from sim.model.feed import FeedConfig, run_feed_model
from tb_feed_streams import level_update


def directory(locate: int, stock: str) -> bytes:
    return encode_message({
        "message_type": "R", "stock_locate": locate, "tracking_number": 0, "timestamp": 1,
        "stock": stock, "market_category": "Q", "financial_status_indicator": "N",
        "round_lot_size": 100, "round_lots_only": "N", "issue_classification": "C",
        "issue_sub_type": "Z", "authenticity": "P", "short_sale_threshold_indicator": "N",
        "ipo_flag": "N", "luld_reference_price_tier": "1", "etp_flag": "N",
        "etp_leverage_factor": 0, "inverse_indicator": "N"})


def add(locate: int, ref: int) -> bytes:
    return encode_message({
        "message_type": "A", "stock_locate": locate, "tracking_number": 0, "timestamp": 2,
        "order_reference_number": ref, "buy_sell_indicator": "B", "shares": 100,
        "stock": "X", "price": 10_000})


def test_every_directory_message_subscribes_the_next_free_slot_in_order():
    # Arrange
    frames = [frame_historical([directory(7, "AAPL"), directory(3, "MSFT"), add(3, 1),
                                add(9, 2)])]
    # Act
    r = run_feed_model(frames)
    # Assert
    slots = [(e["locate"], e["slot"]) for e in r.events]
    assert slots == [(7, 0), (3, 1), (3, 1)]
    assert r.counters["FEED_SUBSCRIBED"] == 2
    assert r.counters["FEED_DROP_UNSUBSCRIBED"] == 1
    assert [h["slot"] for h in r.host] == [0, 1]


def test_ticker_mode_subscribes_only_listed_stocks_and_host_entries_always_count():
    # Arrange
    frames = [frame_historical([directory(7, "AAPL"), directory(3, "MSFT"), add(3, 1),
                                add(7, 2), add(20, 3)])]
    config = FeedConfig(sub_mode="tickers", tickers=("MSFT",), entries=((20, 99),))
    # Act
    r = run_feed_model(frames, config)
    # Assert
    assert [(e["locate"], e["slot"]) for e in r.events] == [(3, 0), (3, 0), (20, 99)]
    assert r.counters["FEED_DROP_UNSUBSCRIBED"] == 1


def test_pass_all_forwards_unsubscribed_book_events_with_no_slot():
    r = run_feed_model([frame_historical([add(5, 1)])], FeedConfig(pass_all=True))
    assert [e["slot"] for e in r.events] == [NO_SLOT]


def test_zero_length_is_counted_and_the_rest_of_the_frame_dropped():
    # Arrange: a good add, a zero prefix, then a good add in the same frame; then a new frame
    frames = [frame_historical([add(1, 1)]) + b"\x00\x00" + frame_historical([add(1, 2)]) * 3,
              frame_historical([directory(1, "A"), add(1, 3)])]
    # Act
    r = run_feed_model(frames)
    # Assert
    assert r.counters["DROP_ZERO_LENGTH"] == 1
    assert [e["order_ref"] for e in r.events if e["kind"] == 2] == [3]


def test_frame_cut_before_its_length_check_counts_as_truncated_not_bad_length():
    # A bad prefix in the frame's last beat cannot be checked before the frame ends.
    frame = frame_historical([add(1, 1)])[:38] + b"\x00\x05"
    assert len(frame) == 40
    r = run_feed_model([frame])
    assert (r.counters["DROP_TRUNCATED"], r.counters["DROP_BAD_LENGTH"]) == (1, 0)


def test_mold_gap_sends_expected_and_received_and_duplicates_are_dropped():
    # Arrange
    msgs = [add(1, k) for k in range(1, 9)]
    frames = [build_packet("SESSION001", 1, msgs[0:2]),
              build_packet("SESSION001", 5, msgs[4:6]),     # 3 and 4 lost
              build_packet("SESSION001", 5, msgs[4:6]),     # duplicate
              build_packet("SESSION001", 6, msgs[5:8]),     # overlap: 6 old, 7 8 new
              build_heartbeat("SESSION001", 12),            # 9..11 lost
              build_end_of_session("SESSION001", 12),
              build_packet("SESSION001", 12, msgs[:1])]     # after the end
    # Act
    r = run_feed_model(frames, FeedConfig(mold=True, pass_all=True))
    # Assert
    assert [e["seq"] for e in r.events] == [1, 2, 5, 6, 7, 8]
    assert [(g["expected"], g["received"], g["flags"]) for g in r.gaps] == [(3, 5, 0), (9, 12, 1)]
    c = r.counters
    assert (c["MOLD_GAPS"], c["MOLD_MISSING_MESSAGES"], c["MOLD_DUPLICATE_PACKETS"],
            c["MOLD_DUPLICATE_MESSAGES"], c["MOLD_OVERLAP_PACKETS"], c["MOLD_HEARTBEATS"],
            c["MOLD_END_OF_SESSION"], c["MOLD_AFTER_END"]) == (2, 5, 1, 3, 1, 1, 1, 1)


def test_mold_blocks_a_packet_announced_but_did_not_bring_are_missing_again():
    # MoldUDP64's count is the number of blocks in the packet: blocks that never arrived (the
    # packet cut short, or its rest unreadable) were not received, and the next packet of the
    # session reports them as a gap, or brings them in order
    msgs = [add(1, k) for k in range(1, 12)]
    cut = build_packet("SESSION001", 1, msgs[0:3])[:-5]           # block 3 cut short
    announced = bytearray(build_packet("SESSION001", 4, msgs[3:5]))
    announced[18:20] = (4).to_bytes(2, "big")                     # says 4 blocks, brings 2
    frames = [cut, build_packet("SESSION001", 3, msgs[2:3]),      # 3 again: in order now
              bytes(announced),                                  # 4 5, then 6 7 never came
              build_packet("SESSION001", 8, msgs[7:9]),          # 6 7 are a gap
              build_packet("SESSION001", 10, msgs[9:11])[:-5],   # 10, then 11 cut
              build_heartbeat("SESSION001", 12)]                 # 11 is a gap
    # Act
    r = run_feed_model(frames, FeedConfig(mold=True, pass_all=True))
    # Assert
    assert [e["seq"] for e in r.events] == [1, 2, 3, 4, 5, 8, 9, 10]
    assert [(g["expected"], g["received"]) for g in r.gaps] == [(6, 8), (11, 12)]
    c = r.counters
    assert (c["MOLD_DUPLICATE_MESSAGES"], c["MOLD_MISSING_MESSAGES"], c["MOLD_BAD_COUNT"],
            c["DROP_TRUNCATED"]) == (0, 3, 1, 2)


def test_mold_short_packet_never_moves_a_session_back_over_what_it_delivered():
    msgs = [add(1, k) for k in range(1, 9)]
    frames = [build_packet("SESSION001", 1, msgs[0:5]),
              build_packet("SESSION001", 2, msgs[1:6])[:-5],      # overlap, its new 6 cut
              build_packet("SESSION001", 1, msgs[0:3])[:-5],      # old, and cut
              build_packet("SESSION001", 6, msgs[5:8])]           # 6 in order
    r = run_feed_model(frames, FeedConfig(mold=True, pass_all=True))
    assert [e["seq"] for e in r.events] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert r.gaps == [] and r.counters["MOLD_DUPLICATE_MESSAGES"] == 4 + 3   # as announced


def test_add_with_a_side_other_than_b_or_s_becomes_an_event_of_no_kind():
    # ITCH 5.0 section 1.3.1: the Buy/Sell Indicator is "B" or "S"; the book takes nothing else
    bad = bytearray(add(1, 7))
    bad[19] = ord("b")
    r = run_feed_model([frame_historical([directory(1, "X"), bytes(bad), add(1, 8)])])
    assert [(e["msg_type"], e["kind"], e["code"]) for e in r.events] == [
        (ord("R"), 1, 0), (ord("A"), 0, ord("b")), (ord("A"), 2, ord("B"))]


def test_mold_blocks_beyond_the_count_are_dropped_and_counted():
    packet = build_packet("SESSION001", 1, [add(1, 1)])
    packet = packet[:18] + b"\x00\x00" + packet[20:]         # count 0 yet one block
    r = run_feed_model([packet], FeedConfig(mold=True, pass_all=True))
    assert (len(r.events), r.counters["MOLD_BAD_COUNT"]) == (0, 1)


def test_event_fields_give_back_every_field_of_the_reference_decoding():
    # Arrange: every book type and level updates, decoded by the model into event fields
    rng = random.Random(2)
    msgs = generate_messages(3, 8000, n_symbols=4, edge_cases=True)
    msgs += [level_update(rng, rng.randrange(256)) for _ in range(20)]
    r = run_feed_model([frame_historical(msgs)], FeedConfig(pass_all=True))
    by_seq = {i + 1: m for i, m in enumerate(msgs)}
    seen = set()
    # Act / Assert
    for ev in r.events:
        if chr(ev["msg_type"]) == "R":
            continue
        seen.add(chr(ev["msg_type"]))
        assert event_to_message(ev) == reference_decode(by_seq[ev["seq"]])
    for rec in r.host:
        fields = {"length": rec["length"]}
        raw = rec["message"].ljust(56, b"\0")
        fields.update({f"bytes{k}": int.from_bytes(raw[8 * k:8 * k + 8], "little")
                       for k in range(7)})
        assert decode_host_message(fields) == decode_message(by_seq[rec["seq"]])
        seen.add(chr(rec["message"][0]))
    assert seen == set("SRHYLVWKJhAFECXDUPQBINOl")


def test_decode_model_command_prints_one_json_object_per_message(tmp_path, capsys):
    # Arrange
    from host.cli import main
    msgs = generate_messages(4, 60, n_symbols=3)
    path = tmp_path / "day.itch"
    path.write_bytes(frame_historical(msgs))
    # Act
    assert main(["decode", str(path), "--jsonl", "--model"]) == 0
    # Assert
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x) for x in lines] == [decode_message(m) for m in msgs]
