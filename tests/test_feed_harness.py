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
