"""The feed stage in the fast Verilator batch harness: ``ticklane decode`` through the gateware
equals the reference decoder, and fuzzed streams of both framings equal the model."""

import json
import random
from pathlib import Path

import pytest

from host.decode import decode_file, feed_harness, run_feed_gateware
from host.feed.framing import frame_historical
from sim.gen.itchgen import generate_messages
from sim.model.feed import EVENT_FIELDS, FeedConfig, run_feed_model
from tb_feed_streams import fuzz_frames, level_update

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def harness():
    return feed_harness(256)


def test_decode_through_gateware_equals_reference_decoder_on_sample_itch(harness):
    path = DATA / "itch50" / "sample.itch"
    if not path.exists():
        pytest.skip(f"real sample data not found at {path}")
    data = path.read_bytes()
    assert decode_file(data) == decode_file(data, model=True)


def test_decode_command_through_gateware_prints_every_type_like_the_model(harness, tmp_path,
                                                                          capsys):
    # Arrange: every ITCH type, level updates, locates with no R message before them
    from host.cli import main
    rng = random.Random(8)
    msgs = generate_messages(9, 8000, n_symbols=300, edge_cases=True)
    msgs = msgs[:1] + msgs[301:] + [level_update(rng, rng.randrange(400)) for _ in range(30)]
    path = tmp_path / "flow.itch"
    path.write_bytes(frame_historical(msgs))
    # Act
    assert main(["decode", str(path), "--jsonl"]) == 0
    got = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    # Assert
    assert got == decode_file(path.read_bytes(), model=True)
    assert {d["message_type"] for d in got} == set("SHYLVWKJhAFECXDUPQBINOl")


@pytest.mark.parametrize("mold", [False, True])
def test_fuzzed_frames_give_the_models_records_and_counters(harness, mold):
    # Arrange
    frames = fuzz_frames(21 + mold, 1500, mold=mold)
    config = FeedConfig(mold=mold, mold_join=True)
    expected = run_feed_model(frames, config)
    # Act
    got = run_feed_gateware(frames, config, harness=harness.spawn(), idle=0.2, backpressure=0.3,
                            seed=3)
    # Assert
    assert [{k: e[k] for k in EVENT_FIELDS} for e in got.events] == expected.events
    assert [(h["seq"], h["slot"]) for h in got.host] == [(h["seq"], h["slot"])
                                                         for h in expected.host]
    assert [{k: g[k] for k in e} for g, e in zip(got.gaps, expected.gaps)] == expected.gaps
    assert len(got.gaps) == len(expected.gaps)
    assert got.counters == expected.counters
    assert sum(expected.counters[k] for k in ("DROP_BAD_LENGTH", "DROP_UNKNOWN_TYPE",
                                              "DROP_TRUNCATED", "DROP_ZERO_LENGTH")) > 100


def test_mold_blocks_a_short_packet_did_not_bring_are_missing_in_the_gateware_too(harness):
    # Arrange: packets that bring fewer blocks than their count (cut, or announced more)
    from host.feed.framing import build_heartbeat, build_packet
    msgs = generate_messages(4, 12, n_symbols=1)
    session = "SESSION001"
    announced = bytearray(build_packet(session, 4, msgs[3:5]))
    announced[18:20] = (4).to_bytes(2, "big")
    frames = [build_packet(session, 1, msgs[0:3])[:-5], build_packet(session, 3, msgs[2:3]),
              bytes(announced), build_packet(session, 8, msgs[7:9]),
              build_packet(session, 10, msgs[9:11])[:-5], build_heartbeat(session, 12)]
    config = FeedConfig(mold=True, pass_all=True)
    expected = run_feed_model(frames, config)
    # Act
    got = run_feed_gateware(frames, config, harness=harness.spawn(), idle=0.3,
                            backpressure=0.3, seed=5)
    # Assert: 3 is taken when it comes again, 6 7 and 11 are reported missing
    assert [d for d, _ in expected.delivered] == [1, 2, 3, 4, 5, 8, 9, 10]
    assert [(g["expected"], g["received"]) for g in expected.gaps] == [(6, 8), (11, 12)]
    assert [{k: g[k] for k in e} for g, e in zip(got.gaps, expected.gaps)] == expected.gaps
    assert len(got.gaps) == 2 and got.counters == expected.counters
    assert [{k: e[k] for k in EVENT_FIELDS} for e in got.events] == expected.events
    assert [(h["seq"], h["slot"]) for h in got.host] == [(h["seq"], h["slot"])
                                                         for h in expected.host]


def test_add_with_a_bad_side_books_nothing_in_the_gateware_either(harness):
    from host.feed.framing import frame_historical as framed
    msgs = generate_messages(6, 40, n_symbols=2)
    adds = [i for i, m in enumerate(msgs) if m[:1] in (b"A", b"F")]
    bad = [bytearray(m) for m in msgs]
    for i in adds[::2]:
        bad[i][19] = b"bs\x00 "[i % 4]
    frames = [framed([bytes(m) for m in bad])]
    expected = run_feed_model(frames)
    got = run_feed_gateware(frames, FeedConfig(), harness=harness.spawn())
    assert [{k: e[k] for k in EVENT_FIELDS} for e in got.events] == expected.events
    assert sum(e["kind"] == 0 for e in expected.events) == len(adds[::2]) > 3


def test_host_written_entries_subscribe_remove_and_refuse_slots_beyond_the_build(harness):
    # Arrange: host-only subscriptions; locate 7 moved, 9 removed, two slots out of range
    # refused and counted (11 keeps its entry, 12 gets none); bits 16-30 are not the slot's
    entries = ((5, 3), (7, 200), (7, 255), (9, 4), (9, 1 << 31), (11, 6), (11, 256),
               (12, 0xFFFF), (13, 0), (14, 0x1_0002))
    config = FeedConfig(sub_mode="host", pass_all=True, entries=entries)
    rng = random.Random(5)
    msgs = generate_messages(4, 3000, n_symbols=16)
    frames = [frame_historical(msgs[i:i + 50]) for i in range(0, len(msgs), 50)]
    expected = run_feed_model(frames, config)
    assert expected.counters["FEED_SUB_REFUSED"] == 2
    slots = {e["slot"] for e in expected.events}
    assert {3, 255, 6, 0, 2, 0xFFFF} <= slots and not slots & {200, 4}

    # Act
    got = run_feed_gateware(frames, config, harness=harness.spawn(), idle=0.1,
                            backpressure=0.2, seed=rng.randrange(1000))

    # Assert
    assert [{k: e[k] for k in EVENT_FIELDS} for e in got.events] == expected.events
    assert got.counters == expected.counters
