"""Journal framing, torn tails, snapshots, deterministic replay and SIGKILL crash drills."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host.journal import (FsyncPolicy, Journal, JournalCorrupt, JournalLocked, RecordKind,
                          ReplayDivergence, Session, recover, replay, scan)
from host.journal import journal as journal_module
from host.journal.journal import JournalSyncError
from host.journal import drill
from host.journal.framing import HEADER, TRAILER, frame
from host.journal.journal import JOURNAL_FILE
from host.oms import OrderManager

ROOT = Path(__file__).resolve().parents[2]


def write_records(path, payloads):
    with Journal(path, next_seq=1, policy=FsyncPolicy(mode="never")) as j:
        for p in payloads:
            j.append(RecordKind.BBO, p)


def test_frame_layout_is_length_kind_seq_payload_crc_little_endian():
    raw = frame(RecordKind.VERDICTS, 7, b"abc")

    assert raw[:4] == (3).to_bytes(4, "little")
    assert raw[4] == RecordKind.VERDICTS
    assert raw[5:13] == (7).to_bytes(8, "little")
    assert raw[13:16] == b"abc"
    assert len(raw) == HEADER.size + 3 + TRAILER.size


def test_truncating_the_last_record_at_every_byte_drops_exactly_that_record(tmp_path):
    path = tmp_path / "j"
    payloads = [bytes([i]) * (5 + 3 * i) for i in range(4)]
    write_records(path, payloads)
    full = path.read_bytes()
    last_start = len(full) - len(frame(RecordKind.BBO, 4, payloads[3]))

    for cut in range(last_start + 1, len(full)):
        path.write_bytes(full[:cut])

        result = scan(path)

        assert [r.payload for r in result.records] == payloads[:3], cut
        assert result.torn.offset == last_start and result.torn.size == cut - last_start
        assert result.end == last_start
    path.write_bytes(full[:last_start])
    assert scan(path).torn is None and scan(path).last_seq == 3


def test_corrupt_last_record_is_dropped_and_reported(tmp_path):
    path = tmp_path / "j"
    write_records(path, [b"one", b"two"])
    raw = bytearray(path.read_bytes())
    raw[-6] ^= 0xFF   # a payload byte of the last record
    path.write_bytes(bytes(raw))

    result = scan(path)

    assert [r.payload for r in result.records] == [b"one"]
    assert "crc32" in result.torn.why


@pytest.mark.parametrize("zeros", [5, 13, 20, 400])
def test_zero_bytes_after_the_last_record_are_a_torn_tail(tmp_path, zeros):
    # A file system can leave a file extended with zeros after a power loss: a header of
    # zeros has sequence number 0, which must not stop the recovery.
    path = tmp_path / "j"
    write_records(path, [b"one", b"two"])
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(bytes(zeros))

    result = scan(path)

    assert [r.payload for r in result.records] == [b"one", b"two"]
    assert result.end == good and result.torn.offset == good and result.torn.size == zeros


def test_a_bad_header_followed_by_anything_but_zeros_is_still_an_error(tmp_path):
    path = tmp_path / "j"
    write_records(path, [b"one", b"two"])
    with open(path, "ab") as f:
        f.write(bytes(19) + b"\x01")

    with pytest.raises(JournalCorrupt, match="sequence number 0, expected 3"):
        scan(path)


def test_corruption_in_the_middle_is_an_error_naming_the_offset(tmp_path):
    path = tmp_path / "j"
    write_records(path, [b"one", b"two", b"three"])
    raw = bytearray(path.read_bytes())
    second = len(frame(RecordKind.BBO, 1, b"one"))
    raw[second + HEADER.size] ^= 0x01
    path.write_bytes(bytes(raw))

    with pytest.raises(JournalCorrupt, match=f"at byte offset {second}: record 2 fails its crc32"):
        scan(path)


def test_out_of_sequence_record_is_an_error(tmp_path):
    path = tmp_path / "j"
    path.write_bytes(frame(RecordKind.BBO, 1, b"a") + frame(RecordKind.BBO, 3, b"b"))

    with pytest.raises(JournalCorrupt, match="sequence number 3, expected 2"):
        scan(path)


def test_fsync_policy_always_syncs_each_record_and_interval_every_n(tmp_path):
    always = Journal(tmp_path / "a", next_seq=1, policy=FsyncPolicy(mode="always"))
    every3 = Journal(tmp_path / "b", next_seq=1,
                     policy=FsyncPolicy(mode="interval", every_records=3, every_ms=60_000))
    for _ in range(7):
        always.append(RecordKind.BBO, b"x")
        every3.append(RecordKind.BBO, b"x")

    assert always.fsyncs == 7 and always.durable_seq == 7
    assert every3.fsyncs == 2 and every3.durable_seq == 6
    with pytest.raises(ValueError, match="mode must be one of"):
        FsyncPolicy(mode="sometimes")
    always.close()
    every3.close()


def _wait_for(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_group_commit_writes_every_record_before_append_returns_and_fsyncs_off_the_caller(
        tmp_path):
    j = Journal(tmp_path / "g", next_seq=1,
                policy=FsyncPolicy(mode="group", every_records=1000, every_ms=60_000))
    payloads = [bytes([i]) * 10 for i in range(5)]
    for p in payloads:
        j.append(RecordKind.BBO, p)

    # Written (a killed process loses nothing), not yet fsynced (the interval is a minute).
    assert [r.payload for r in scan(tmp_path / "g").records] == payloads
    assert j.fsyncs == 0 and j.durable_seq == 0
    j.sync()
    assert j.fsyncs == 1 and j.durable_seq == 5
    j.close()


def test_group_commit_thread_fsyncs_within_the_interval_and_at_the_record_count(tmp_path):
    by_time = Journal(tmp_path / "t", next_seq=1,
                      policy=FsyncPolicy(mode="group", every_records=1000, every_ms=5))
    by_count = Journal(tmp_path / "c", next_seq=1,
                       policy=FsyncPolicy(mode="group", every_records=3, every_ms=60_000))
    for _ in range(3):
        by_time.append(RecordKind.BBO, b"x")
        by_count.append(RecordKind.BBO, b"x")

    assert _wait_for(lambda: by_time.durable_seq == 3)
    assert _wait_for(lambda: by_count.durable_seq == 3)
    by_time.close()
    by_count.close()


def test_group_commit_close_stops_the_thread_and_leaves_everything_durable(tmp_path):
    j = Journal(tmp_path / "g", next_seq=1,
                policy=FsyncPolicy(mode="group", every_records=1000, every_ms=60_000))
    thread = j._thread
    for _ in range(7):
        j.append(RecordKind.BBO, b"y")

    j.close()

    assert not thread.is_alive()
    assert j.durable_seq == 7 and j.fsyncs == 1
    assert scan(tmp_path / "g").last_seq == 7
    j.close()   # idempotent
    with pytest.raises(ValueError, match="closed"):
        j.append(RecordKind.BBO, b"z")


def test_group_commit_fsync_error_is_raised_by_the_next_append_sync_and_close(
        tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    j = Journal(tmp_path / "g", next_seq=1,
                policy=FsyncPolicy(mode="group", every_records=1, every_ms=60_000))
    thread = j._thread
    monkeypatch.setattr(journal_module.os, "fsync", failing_fsync)
    j.append(RecordKind.BBO, b"a")   # wakes the thread, whose fsync fails

    assert _wait_for(lambda: not thread.is_alive())
    with pytest.raises(JournalSyncError, match="records after 0 may not be durable"):
        j.append(RecordKind.BBO, b"b")
    with pytest.raises(JournalSyncError):
        j.sync()
    with pytest.raises(JournalSyncError):
        j.close()
    assert j.durable_seq == 0 and scan(tmp_path / "g").last_seq == 1
    j.close()   # closed: nothing more to raise


def test_session_on_a_group_commit_journal_recovers_the_same_state(tmp_path):
    session = drill.run(tmp_path, steps=80, seed=3, snapshot_every=30, fsync="group")
    assert session.journal._thread.is_alive()
    expected = session.oms.to_state()
    session.close()

    state = recover(tmp_path)
    assert state.oms.to_state() == expected
    state.journal.close()


def test_recovery_from_snapshot_plus_tail_equals_full_replay(tmp_path):
    drill.run(tmp_path, steps=120, seed=5, snapshot_every=40).close()

    state = recover(tmp_path)
    full = OrderManager()
    replay(full, scan(tmp_path / JOURNAL_FILE).records)

    assert state.report.snapshot_seq > 0 and state.report.torn_tail is None
    assert state.oms.to_state() == full.to_state()
    assert state.oms.counters["fills"] > 0 and state.oms.counters["replaced"] > 0
    state.journal.close()


def test_replay_reproduces_the_same_orders_and_detects_divergence(tmp_path):
    drill.run(tmp_path, steps=60, seed=2, snapshot_every=0).close()
    records = scan(tmp_path / JOURNAL_FILE).records
    orders = [r for r in records if r.kind == RecordKind.ORDERS]
    assert any(len(r.payload) for r in orders)

    replay(OrderManager(), records)   # compares every ORDERS record; raises on a difference

    i = next(i for i, r in enumerate(records) if r.kind == RecordKind.ORDERS and r.payload)
    bad = bytearray(records[i].payload)
    bad[0] ^= 1   # a different client order id
    tampered = records[:i] + [type(records[i])(records[i].offset, records[i].kind,
                                               records[i].seq, bytes(bad))]
    with pytest.raises(ReplayDivergence, match=f"record {records[i].seq}"):
        replay(OrderManager(), tampered)


def test_recovery_truncates_a_torn_tail_and_appends_after_it(tmp_path):
    drill.run(tmp_path, steps=30, seed=4, snapshot_every=0).close()
    path = tmp_path / JOURNAL_FILE
    good = scan(path)
    with open(path, "ab") as f:
        f.write(frame(RecordKind.BBO, good.last_seq + 1, b"x" * 40)[:25])

    state = recover(tmp_path)
    session = Session(state)
    session.reconfigure(state.oms.config)
    session.close()

    assert state.report.torn_tail.offset == good.end
    after = scan(path)
    assert after.torn is None and after.last_seq == good.last_seq + 1


def test_newest_snapshot_corrupt_falls_back_to_the_older_one(tmp_path):
    drill.run(tmp_path, steps=120, seed=6, snapshot_every=40).close()
    snaps = sorted(tmp_path.glob("snapshot-*.json"))
    assert len(snaps) == 2
    snaps[-1].write_bytes(snaps[-1].read_bytes()[:-10])
    (tmp_path / ".snapshot-leftover.json.tmp").write_bytes(b"{half")

    state = recover(tmp_path)
    full = OrderManager()
    replay(full, scan(tmp_path / JOURNAL_FILE).records)

    assert state.report.snapshot_seq == int(snaps[0].stem.split("-")[1])
    assert "unreadable" in state.report.notes[0]
    assert state.oms.to_state() == full.to_state()
    state.journal.close()


@pytest.mark.parametrize("fsync", ["never", "group"])
def test_sigkill_at_random_points_loses_and_duplicates_nothing_acknowledged(tmp_path, fsync):
    steps, seed = 150, 9
    reference_dir = tmp_path / "reference"
    drill.run(reference_dir, steps=steps, seed=seed, snapshot_every=30).close()
    reference = scan(reference_dir / JOURNAL_FILE).records
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    for point in range(5):
        run_dir = tmp_path / f"kill{point}"
        kill_after = rng.randint(1, 300)
        proc = subprocess.Popen(
            [sys.executable, "-m", "host.journal.drill", str(run_dir), "--steps", str(steps),
             "--seed", str(seed), "--snapshot-every", "30", "--fsync", fsync],
            stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        acked = 0
        for n, line in enumerate(proc.stdout, 1):
            if line.startswith("acked"):
                acked = int(line.split()[1])
            if n >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait()
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        # A torn record, as a kill during a write at power loss would leave it.
        written = scan(run_dir / JOURNAL_FILE).last_seq
        if point % 2 and written < len(reference):
            nxt = reference[written]
            with open(run_dir / JOURNAL_FILE, "ab") as f:
                f.write(frame(nxt.kind, nxt.seq, nxt.payload)[:HEADER.size + 3])

        state = recover(run_dir)
        state.journal.close()
        got = scan(run_dir / JOURNAL_FILE).records

        assert state.report.last_seq >= acked
        assert [(r.seq, r.kind, r.payload) for r in got] == \
            [(r.seq, r.kind, r.payload) for r in reference[:len(got)]]
        assert (state.report.torn_tail is not None) == bool(point % 2 and written < len(reference))
        expected = OrderManager()
        replay(expected, reference[:state.report.last_seq])
        assert state.oms.to_state() == expected.to_state()


def test_replaced_event_round_trips_through_the_journal_codec():
    from host.journal import codec
    from host.venue.events import Replaced
    events = [Replaced(client_order_id=7, replacement_id=9, ts_ns=123)]

    assert codec.decode_events(codec.encode_events(events)) == events


def test_intents_round_trip_through_the_journal_codec_with_every_field():

    from host.journal import codec
    from host.types import OrderIntent, OrderKind, Side
    intents = [OrderIntent(strategy="mm-1", slot=3, side=Side.SELL, price=1_234_500,
                           quantity=700, kind=OrderKind.REPLACE, target=42, ioc=True, fok=True,
                           post_only=True),
               OrderIntent(strategy="x", slot=0, side=Side.BUY, price=1, quantity=1)]

    payload = codec.encode_intents(intents)

    assert codec.decode_intents(payload) == intents
    import json
    assert sorted(json.loads(payload)[0]) == sorted(OrderIntent._fields)


def test_intents_payload_is_canonical_sorted_key_json():
    import json

    from host.journal import codec
    from host.types import OrderIntent, Side
    intents = [OrderIntent(strategy="mm", slot=1, side=Side.BUY, price=100, quantity=5)]

    payload = codec.encode_intents(intents)

    assert payload == json.dumps(json.loads(payload), sort_keys=True,
                                 separators=(",", ":")).encode()


def test_a_second_session_on_an_open_journal_is_refused_until_the_first_closes(tmp_path):
    # Two writers would interleave their sequence numbers and leave a journal no recovery reads.
    first = Session.open(tmp_path / "s", policy=FsyncPolicy(mode="never"))

    with pytest.raises(JournalLocked, match="open in another session"):
        Session.open(tmp_path / "s", policy=FsyncPolicy(mode="never"))
    code = ("import sys; from host.journal import recover, JournalLocked\n"
            "try:\n    recover(sys.argv[1])\nexcept JournalLocked:\n    sys.exit(3)\n")
    other = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], cwd=ROOT)
    assert other.returncode == 3

    first.close()
    again = Session.open(tmp_path / "s", policy=FsyncPolicy(mode="never"))
    again.close()
    assert scan(tmp_path / "s" / JOURNAL_FILE).torn is None
