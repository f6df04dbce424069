"""Host refills of the book stage: the standalone book driven chunk by chunk through the harness.

A small build (2 levels per side) runs out of held levels often. Between chunks of events the test
plays the host: for every symbol whose last record carries ``refill`` it sends both sides' best
levels from the full book (:func:`sim.model.book_hw.refill_batch`) on the ``refill`` stream. The
records are scored against :class:`sim.model.book_hw.HardwareBook`, which models the refill.
"""

from collections import defaultdict

import numpy as np
import pytest

from hdl import wire
from hdl.book.standalone import StandaloneBook
from sim.gen.itchgen import generate_messages
from sim.harness import Harness
from sim.model.book import ASK, BID, BookModel, SlotKey
from sim.model.book_hw import HardwareBook, itch_events, pack_events, refill_batch
from sim.scoreboard import compare_bbo

PARAMS = dict(slots=16, levels=2, order_ways=8, order_sets=64)
CHUNK = 400
_REFILL = wire.BBO_UPDATE.flag("flags", "refill")
_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")


@pytest.fixture(scope="module")
def build():
    book = StandaloneBook(**PARAMS)
    return Harness.build(book, "ticklane_book_refill", config=f"refill_{book.config}",
                         dtypes={"bbo": wire.BBO_UPDATE.dtype,
                                 "refill": wire.BOOK_REFILL_LEVEL.dtype})


@pytest.fixture
def harness(build):
    h = build.spawn()
    h.reset()
    yield h
    h.close()


def _events(seed: int = 7, n: int = 6_000) -> list[dict]:
    msgs = generate_messages(seed, n, n_symbols=6, target_live_orders=120)
    return itch_events(msgs)


def _chunks(events: list[dict]):
    for i in range(0, len(events), CHUNK):
        yield events[i:i + CHUNK]


def _batches_for_flagged(hw: HardwareBook, seq: int) -> list[np.ndarray]:
    """The host's refills: both sides of every symbol whose last record carries refill."""
    out = []
    for slot, top in sorted(hw.pub.items()):
        if top[2] and slot not in hw.lost:
            for side in (BID, ASK):
                out.append(refill_batch(hw.model, hw.key_of_slot[slot], slot=slot, side=side,
                                        seq=seq, levels=PARAMS["levels"]))
    return out


def _expect(rows: list) -> np.ndarray:
    out = wire.BBO_UPDATE.array(len(rows))
    for i, r in enumerate(rows):
        for k, v in r.items():
            out[i][k] = v
    return out


def _check(got: np.ndarray, rows: list) -> None:
    expected = _expect(rows)
    compare_bbo(got, expected)
    assert np.array_equal(got["flags"], expected["flags"])


def test_refills_between_chunks_make_records_equal_the_model_again(harness):
    # Arrange
    events = _events()
    hw = HardwareBook(**PARAMS)
    refill_latency = []
    flagged_records = {"with": 0}

    # Act / Assert chunk by chunk
    for chunk in _chunks(events):
        harness.push("events", pack_events(chunk))
        harness.run()
        _check(harness.pop("bbo"), [r for r in map(hw.apply, chunk) if r is not None])
        batches = _batches_for_flagged(hw, chunk[-1]["seq"])
        if not batches:
            continue
        harness.push("refill", np.concatenate(batches))
        harness.run()
        got = harness.pop("bbo")
        _check(got, [r for r in map(hw.refill, batches) if r is not None])
        refill_latency += list((got["egress_cycle"].astype(np.int64) - got["ingress_cycle"])
                               % (1 << 32))
        last = {int(r["slot"]): int(r["flags"]) for r in got}   # the bid's record, then the ask's
        flagged_records["with"] += sum(bool(f & _REFILL) for f in last.values())

    # Assert: refills happened, were applied and cleared flags
    assert hw.counts["refill"] > 20
    assert hw.counts["refills_applied"] > 20 and hw.counts["refills_stale"] == 0
    assert refill_latency and set(refill_latency) == {2}
    # after a refill of both sides a non-lost symbol is exact again: its last record is unflagged
    assert flagged_records["with"] == 0


def test_refill_older_than_the_slots_last_event_is_discarded_as_stale(harness):
    # Arrange: refills are built at the end of one chunk and sent after the next has run
    events = _events(seed=11)
    hw = HardwareBook(**PARAMS)
    late = []

    # Act
    for chunk in _chunks(events):
        harness.push("events", pack_events(chunk))
        harness.run()
        _check(harness.pop("bbo"), [r for r in map(hw.apply, chunk) if r is not None])
        if late:
            harness.push("refill", np.concatenate(late))
            harness.run()
            _check(harness.pop("bbo"), [r for r in map(hw.refill, late) if r is not None])
        late = _batches_for_flagged(hw, chunk[-1]["seq"])
        if len(late) > 2 and chunk[0]["seq"] % 2:
            # on odd chunks the host retries one symbol at once with a current snapshot
            retry, late = late[:2], late[2:]
            harness.push("refill", np.concatenate(retry))
            harness.run()
            _check(harness.pop("bbo"), [r for r in map(hw.refill, retry) if r is not None])

    # Assert: both outcomes occurred and the records matched the model throughout
    assert hw.counts["refills_stale"] > 5 and hw.counts["refills_applied"] > 5


def test_malformed_batch_is_rejected_and_changes_nothing(harness):
    # Arrange: a symbol whose bid side is blind
    events = _events(seed=3, n=2_000)
    hw = HardwareBook(**PARAMS)
    harness.push("events", pack_events(events))
    harness.run()
    _check(harness.pop("bbo"), [r for r in map(hw.apply, events) if r is not None])
    slot = next(s for s, top in sorted(hw.pub.items()) if top[2] and s not in hw.lost)
    good = refill_batch(hw.model, hw.key_of_slot[slot], slot=slot, side=BID,
                        seq=events[-1]["seq"], levels=PARAMS["levels"])
    assert len(good) >= 2
    bad = good.copy()
    bad[1]["level"] = 5                     # indices must run 0, 1, 2, ...

    # Act
    harness.push("refill", bad)
    harness.run()
    after_bad = harness.pop("bbo")
    harness.push("refill", good)
    harness.run()
    after_good = harness.pop("bbo")

    # Assert
    assert len(after_bad) == 0
    _check(after_good, [hw.refill(good)])
    assert after_good[0]["flags"] & _BID_VALID


def _model_tops(events: list[dict], records: np.ndarray) -> dict:
    """The full book's top of each (slot, seq) some record names, as record fields."""
    hw = HardwareBook(**PARAMS)
    wanted = defaultdict(set)
    for r in records:
        wanted[int(r["seq"])].add(int(r["slot"]))
    tops = {}
    for ev in events:
        hw.apply(ev)
        for slot in wanted.get(ev["seq"], ()):
            t = hw.model.bbo(hw.key_of_slot[slot])
            tops[(slot, ev["seq"])] = (t.bid_price or 0, t.bid_size or 0,
                                       t.ask_price or 0, t.ask_size or 0)
    return tops


def test_events_keep_flowing_while_refills_race_them_and_unflagged_records_stay_exact(harness,
                                                                                      build):
    # Arrange
    events = _events(seed=5)
    shadow = HardwareBook(**PARAMS)          # the host's view as of each chunk's end
    plain = build.spawn()
    plain.reset()

    # Act: each chunk's events go in together with the refills for the previous chunk's end
    cycles_with, cycles_without, records, sent = 0, 0, [], 0
    pending, flagged = [], {}
    for chunk in _chunks(events):
        harness.push("events", pack_events(chunk))
        if pending:
            harness.push("refill", np.concatenate(pending))
            sent += len(pending)
        before = harness.cycle
        harness.run()
        cycles_with += harness.cycle - before
        records.append(harness.pop("bbo"))
        plain.push("events", pack_events(chunk))
        before = plain.cycle
        plain.run()
        cycles_without += plain.cycle - before
        plain.pop("bbo")
        for ev in chunk:
            shadow.apply(ev)
        for r in records[-1]:
            flagged[int(r["slot"])] = bool(r["flags"] & _REFILL)
        pending = [refill_batch(shadow.model, shadow.key_of_slot[slot], slot=slot, side=side,
                                seq=chunk[-1]["seq"], levels=PARAMS["levels"])
                   for slot, on in sorted(flagged.items()) if on for side in (BID, ASK)]
    plain_stats = plain.stats()
    plain.close()
    got = np.concatenate(records)

    # Assert: every record without the flag is the full book's top at its seq
    tops = _model_tops(events, got)
    exact = got[got["flags"] & _REFILL == 0]
    assert len(exact) > 200 and sent > 20
    for r in exact:
        top = (int(r["bid_price"]), int(r["bid_size"]), int(r["ask_price"]), int(r["ask_size"]))
        assert top == tops[(int(r["slot"]), int(r["seq"]))], r
    # an install stalls the events for at most one cycle
    stalls = harness.stats()["events"]["stall_cycles"]
    stalls_plain = plain_stats["events"]["stall_cycles"]
    assert stalls - stalls_plain <= sent
    print(f"\nevents {len(events)}, refill batches {sent}, cycles without refills "
          f"{cycles_without}, with {cycles_with}; event stall cycles {stalls_plain} -> {stalls}")
