"""`ticklane replay`: the CSV equals the reference model's; bad input keeps what came before."""

from pathlib import Path

import pytest

from hdl.top import Top
from host.cli import main
from host.link.sim import SimLink
from host.replay import DEMO_STREAM, replay
from sim.gen.itchgen import generate
from sim.model.bbo_csv import HEADER, model_csv_for_file

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def link():
    with SimLink(Top(slots=256)) as link:
        yield link


def test_demo_stream_csv_equals_model_and_comes_from_gateware(link):
    buf = DEMO_STREAM.read_bytes()
    result = replay(buf, link, slots=256)
    assert result.error is None
    assert result.csv() == model_csv_for_file(buf)
    assert result.host_rows == 0 and len(result.hardware_records) == len(result.changes) > 1000
    # the simulation's own time is reported apart from the packing around it
    assert 0 < result.run_wall_s < result.wall_s


def test_full_order_flow_csv_equals_model_with_host_booking_unsupported_types(link):
    buf = generate(11, 20_000, n_symbols=12, edge_cases=True)
    result = replay(buf, link, slots=256)
    assert result.error is None
    assert result.csv() == model_csv_for_file(buf)


@pytest.fixture(scope="module")
def small():
    # 16 slots and 2 levels per side: symbols beyond the slots, and sides that run out of levels
    with SimLink(Top(slots=16, levels=2)) as link:
        yield link


def test_more_symbols_than_slots_csv_equals_model(small):
    buf = generate(5, 6_000, n_symbols=20, types="AF")
    result = replay(buf, small, slots=16)
    assert result.csv() == model_csv_for_file(buf)
    assert result.counters["FEED_SLOT_OVERFLOW"] == 4
    assert result.host_rows > 0 and len(result.hardware_records) > 0


def test_truncated_file_reports_offset_and_keeps_rows_before(tmp_path, capsys):
    buf = DEMO_STREAM.read_bytes()
    cut = len(buf) - 10
    bad = tmp_path / "cut.itch"
    bad.write_bytes(buf[:cut])
    out = tmp_path / "out.csv"

    rc = main(["replay", str(bad), "--bbo-csv", str(out)])

    err = capsys.readouterr().err
    assert rc == 1
    assert "truncated" in err and "offset" in err
    good_end = int(err.split("byte offset ")[1].split()[0])
    assert good_end < cut
    assert out.read_text() == model_csv_for_file(buf[:good_end])
    assert out.read_text().startswith(HEADER)


def test_unknown_type_reports_offset(tmp_path, capsys):
    buf = bytearray(DEMO_STREAM.read_bytes()[:2000])
    # find the 10th message and corrupt its type byte
    pos = 0
    for _ in range(10):
        pos += 2 + int.from_bytes(buf[pos:pos + 2], "big")
    buf[pos + 2] = ord("?")
    bad = tmp_path / "bad.itch"
    bad.write_bytes(bytes(buf))

    rc = main(["replay", str(bad)])

    err = capsys.readouterr().err
    assert rc == 1 and f"byte offset {pos} " in err and "unknown" in err


def test_real_sample_replays_without_error(link):
    path = SHARED / "itch50" / "sample.itch"
    if not path.exists():
        pytest.skip(f"real ITCH sample not present at {path}")
    buf = path.read_bytes()
    result = replay(buf, link, slots=256)
    assert result.error is None and result.messages == 1000
    assert result.counters["MSGS_IN"] == 1000
    assert result.csv() == model_csv_for_file(buf)


def test_stepwise_replay_refills_flagged_symbols_and_csv_still_equals_model(small):
    # Arrange: few symbols, deep books, 2 levels held: sides run out of held levels often
    buf = generate(21, 12_000, n_symbols=6, target_live_orders=300)

    # Act
    once = replay(buf, small, slots=16)
    stepped = replay(buf, small, slots=16, max_frame=2048, chunk_frames=1)

    # Assert: same CSV; refills applied and the gateware published more of it itself
    assert stepped.csv() == once.csv() == model_csv_for_file(buf)
    assert stepped.counters["BOOK_REFILLS_APPLIED"] > 10
    assert stepped.counters["BOOK_REFILLS_STALE"] == 0
    assert once.counters["BOOK_REFILLS_APPLIED"] == 0
    assert stepped.host_rows < once.host_rows
    assert 0 < stepped.run_wall_s < stepped.wall_s


def test_cli_replay_saves_feed_to_bbo_latency_for_the_report(tmp_path, capsys):
    from tools.latency_report import load_input

    out = tmp_path / "run.npz"
    rc = main(["replay", str(DEMO_STREAM), "--latency-out", str(out)])

    assert rc == 0
    paths, clock, source = load_input(out)
    assert list(paths) == ["md_to_bbo"] and clock == 100.0 and "not timing-closed" in source
    # every gateware BBO record of the demo leaves 3 cycles after its message's last byte
    assert len(paths["md_to_bbo"]) == 1_377 and set(paths["md_to_bbo"].tolist()) == {3}
    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "md_to_bbo.png").exists()
