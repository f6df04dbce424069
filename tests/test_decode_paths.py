"""``ticklane decode``: the gateware path and the model path print the same messages, and both
print what the specification says each message holds.

The expected output is built here without the feed stage or its model: the host's reference
decoder on every message of a historical file, and on every message a
:class:`host.feed.framing.MoldSequencer` delivers from a MoldUDP64 capture.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hdl import wire
from host.decode import decode_file, decode_stream, feed_harness
from host.feed.framing import (MoldSequencer, build_end_of_session, build_heartbeat,
                               build_packet, frame_historical, iter_historical, parse_packet)
from host.feed.itch import MESSAGE_SPECS, decode_message
from host.feed.records import reference_decode
from sim.gen.itchgen import generate_messages
from tb_feed_streams import level_update

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "itch50" / "sample.itch"
ITCH_TYPES = set("SRHYLVWKJhAFECXDUPQBINO")


@pytest.fixture(scope="module")
def harness():
    return feed_harness(256)


def _flow(seed: int) -> list[bytes]:
    """Every ITCH type and level updates (reserved flag bits too); locates with no R before."""
    rng = random.Random(seed)
    msgs = generate_messages(seed, 9000, n_symbols=40, edge_cases=True)
    # Drop half the directory: those locates' messages come with no R before them.
    msgs = msgs[:1] + msgs[1:41:2] + msgs[41:]
    lus = [level_update(rng, rng.randrange(300)) for _ in range(25)]
    lus.append(wire.LEVEL_UPDATE.pack(message_type=wire.LEVEL_UPDATE_TYPE, flags=0xF5, slot=3,
                                      price=5, size=7, exchange_seq=9))
    for lu in lus:
        msgs.insert(rng.randrange(len(msgs)), lu)
    return msgs


def _mold_capture(msgs: list[bytes], seed: int) -> tuple[bytes, list[bytes]]:
    """A capture file of three interleaved sessions with lost packets, duplicates, overlaps,
    heartbeats (some revealing gaps) and an end of session; and the messages a MoldUDP64
    receiver delivers from it, in order."""
    rng = random.Random(seed)
    names = [f"SESS{k:06d}".encode() for k in range(3)]
    nxt = {s: 1 for s in names}
    sent: dict[bytes, list] = {s: [] for s in names}
    packets, i = [], 0
    while i < len(msgs):
        s = rng.choice(names)
        r = rng.random()
        if r < 0.08 and sent[s]:
            seq, block = rng.choice(sent[s])
            packets.append(build_packet(s, seq, block))
        elif r < 0.14 and sent[s]:
            seq, block = sent[s][-1]
            new = msgs[i:i + rng.randint(1, 3)]
            i += len(new)
            packets.append(build_packet(s, seq, list(block) + new))
            sent[s].append((seq, tuple(block) + tuple(new)))
            nxt[s] = seq + len(block) + len(new)
        elif r < 0.20:
            nxt[s] += rng.choice([0, 0, 4])
            packets.append(build_heartbeat(s, nxt[s]))
        elif r < 0.25:
            nxt[s] += rng.randint(1, 5)               # a packet never sent
        else:
            block = msgs[i:i + rng.randint(1, 12)]
            i += len(block)
            packets.append(build_packet(s, nxt[s], block))
            sent[s].append((nxt[s], tuple(block)))
            nxt[s] += len(block)
    packets.append(build_end_of_session(names[0], nxt[names[0]]))
    packets.append(build_packet(names[0], nxt[names[0]], msgs[:3]))   # after the end
    seqr = MoldSequencer()
    delivered = [m for p in packets for m in seqr.accept(parse_packet(p)).messages]
    capture = b"".join(len(p).to_bytes(2, "big") + p for p in packets)
    return capture, delivered


def test_sample_itch_decodes_to_the_reference_decoding_on_both_paths(harness):
    if not SAMPLE.exists():
        pytest.skip(f"real sample data not found at {SAMPLE} (it lives in ../shared/data)")
    data = SAMPLE.read_bytes()
    expected = [decode_message(m) for _, m in iter_historical(data)]
    model = decode_stream(data, model=True)
    gateware = decode_stream(data)
    assert len(expected) == 1000
    assert model.messages == expected
    assert gateware.messages == expected
    assert gateware.counters == model.counters
    # a real non-Nasdaq listing: its blank one-byte alpha fields decode empty
    blank = next(d for d in expected if d["message_type"] == "R"
                 and d["financial_status_indicator"] == "")
    assert blank["market_category"] in "NAPZV"


def test_generated_flow_of_every_type_prints_the_same_json_on_both_paths(harness, tmp_path,
                                                                        capsys):
    # Arrange
    from host.cli import main
    msgs = _flow(31)
    path = tmp_path / "flow.itch"
    path.write_bytes(frame_historical(msgs))
    expected = [reference_decode(m) for m in msgs]
    # Act
    assert main(["decode", str(path), "--jsonl"]) == 0
    gateware = capsys.readouterr().out.splitlines()
    assert main(["decode", str(path), "--jsonl", "--model"]) == 0
    model = capsys.readouterr().out.splitlines()
    # Assert
    assert gateware == model
    assert [json.loads(x) for x in model] == expected
    assert {d["message_type"] for d in expected} == ITCH_TYPES | {"l"}
    for d in expected:
        if d["message_type"] != "l":
            assert tuple(d) == MESSAGE_SPECS[d["message_type"]].field_names


def test_moldudp64_capture_prints_each_delivered_message_once_on_both_paths(harness, tmp_path,
                                                                           capsys):
    # Arrange
    from host.cli import main
    capture, delivered = _mold_capture(_flow(32)[:4000], 5)
    path = tmp_path / "capture.mold"
    path.write_bytes(capture)
    # Act
    assert main(["decode", str(path), "--mold"]) == 0
    out = capsys.readouterr()
    gateware = out.out.splitlines()
    assert main(["decode", str(path), "--mold", "--model"]) == 0
    model = capsys.readouterr().out.splitlines()
    # Assert
    assert gateware == model
    assert [json.loads(x) for x in model] == [reference_decode(m) for m in delivered]
    assert "MOLD_GAPS=" in out.err and "MOLD_DUPLICATE_PACKETS=" in out.err
    assert decode_stream(capture, mold=True).gaps == decode_stream(capture, mold=True,
                                                                   model=True).gaps


def test_a_malformed_file_prints_what_the_stage_decodes_and_fails_with_the_causes(
        harness, tmp_path, capsys):
    # Arrange: a length that disagrees with its type in the middle of the file
    from host.cli import main
    msgs = generate_messages(6, 200, n_symbols=4)
    good = frame_historical(msgs)
    cut = len(frame_historical(msgs[:100]))
    bad = good[:cut] + b"\x00\x0bA" + bytes(10) + good[cut:]
    path = tmp_path / "bad.itch"
    path.write_bytes(bad)
    # Act
    assert main(["decode", str(path)]) == 1
    gateware = capsys.readouterr()
    assert main(["decode", str(path), "--model"]) == 1
    model = capsys.readouterr()
    # Assert: the messages before the bad one are all there; the error is named
    assert gateware.out == model.out
    got = [json.loads(x) for x in model.out.splitlines()]
    assert got[:100] == [decode_message(m) for m in msgs[:100]]
    assert "DROP_BAD_LENGTH=1" in gateware.err and "DROP_BAD_LENGTH=1" in model.err


def test_a_non_ascii_alpha_byte_is_a_clear_error_on_both_paths(harness, tmp_path, capsys):
    from host.cli import main
    msgs = generate_messages(7, 30, n_symbols=2)
    k = next(i for i, m in enumerate(msgs) if m[0] == ord("A"))
    raw = bytearray(msgs[k])
    raw[24] = 0xE9                                  # a byte of the stock field
    msgs[k] = bytes(raw)
    path = tmp_path / "latin.itch"
    path.write_bytes(frame_historical(msgs))
    for extra in ([], ["--model"]):
        assert main(["decode", str(path), *extra]) == 1
        err = capsys.readouterr().err
        assert f"sequence number {k + 1}" in err and "non-ASCII byte 0xe9" in err


def test_decode_file_lists_the_same_messages_as_decode_stream():
    msgs = generate_messages(8, 40, n_symbols=2)
    data = frame_historical(msgs)
    assert decode_file(data, model=True) == decode_stream(data, model=True).messages


def test_the_model_delivers_what_a_moldudp64_receiver_delivers():
    from sim.model.feed import FeedConfig, run_feed_model
    from host.decode import mold_frames
    capture, delivered = _mold_capture(_flow(33)[:1500], 9)
    r = run_feed_model(mold_frames(capture), FeedConfig(mold=True, pass_all=True))
    assert [m for _, m in r.delivered] == delivered
    assert r.counters["MOLD_DUPLICATE_PACKETS"] > 0 and r.counters["MOLD_GAPS"] > 0


def test_split_frames_stops_at_the_first_bad_message_and_keeps_the_rest_as_one_frame():
    from host.decode import split_frames
    msgs = generate_messages(9, 300, n_symbols=3)
    good = frame_historical(msgs[:130])
    bad = good + b"\x00\x05" + frame_historical(msgs[130:])
    frames = split_frames(bad, 64)
    assert frames[:2] == [frame_historical(msgs[:64]), frame_historical(msgs[64:128])]
    assert frames[2:] == [bad[len(frame_historical(msgs[:128])):]]
    assert b"".join(frames) == bad
