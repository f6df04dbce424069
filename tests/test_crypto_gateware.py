"""Real crypto sessions through the gateware: recorded Binance and OKX books, level by level.

The host turns each venue message into LEVEL_UPDATE messages (host/venues); here they travel
in-band on the market-data stream through the whole simulated top (feed stage, book stage), one
stream frame per venue message, and the BBO the pipeline publishes is scored two ways:

* against the reference book (sim/model/book.py) message for message, with the host's software
  book standing in while a record carries ``refill`` (the venues' snapshots hold hundreds of levels,
  far more than the stage's eight per side, so deleting the held ones sends a side blind);
* against the venue's own ground truth: Binance's ``bookTicker`` at an equal update id.

The recordings are read from ``../shared/data/crypto``; each test skips with the reason when it is
absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hdl import wire
from hdl.top import Top
from host.link.beats import pack_beats
from host.link.sim import SimLink
from host.venues import binance, okx
from host.venues.levels import decode_level_message
from sim.model.book import BookModel, SlotKey
from sim.model.book_hw import merge_with_host_book

CRYPTO = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "crypto"
_REFILL = wire.BBO_UPDATE.flag("flags", "refill")
_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
MAX_FRAME = 8192


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"recorded session {path} is absent (../shared/data is not beside the project)")
    return path


# The default build, and a small one (2 levels per side) whose held levels run out on real
# books, so the refill flag and the host's stand-in book are exercised by real data.
TOPS = {"default": dict(), "levels2": dict(slots=16, levels=2)}


@pytest.fixture(scope="module", params=sorted(TOPS))
def link(request):
    with SimLink(Top(**TOPS[request.param])) as link:
        yield link


def _stream(batches) -> tuple[bytes, np.ndarray, list[tuple[object, int]]]:
    """The batches' messages as one byte stream, frame ends (a frame per venue message, cut to
    MAX_FRAME on message boundaries) and, per batch, (batch, seq of its last message)."""
    parts, ends, marks = [], [], []
    pos = seq = 0
    for batch in batches:
        frame = 0
        for u in batch.updates:
            msg = u.encode()
            if frame and frame + len(msg) > MAX_FRAME:
                ends.append(pos)
                frame = 0
            parts.append(msg)
            pos += len(msg)
            frame += len(msg)
            seq += 1
        if frame:
            ends.append(pos)
        marks.append((batch, seq))
    return b"".join(parts), np.asarray(ends, dtype=np.int64), marks


def _model_changes(buf: bytes, slot_names: dict[int, str]) -> tuple[list, BookModel]:
    """The reference book over the same wire bytes, seq = 1-based message index: its changes,
    and the book after the last message."""
    model = BookModel(slot_names=slot_names)
    changes = []
    size = 2 + wire.LEVEL_UPDATE.size
    for seq, pos in enumerate(range(0, len(buf), size), start=1):
        d = decode_level_message(buf[pos:pos + size])
        change = model.apply_level(d.slot, d.flags, d.price, d.size, seq)
        if change is not None:
            changes.append(change)
    return changes, model


def _through_gateware(link: SimLink, batches, slot_names):
    buf, ends, marks = _stream(batches)
    link.power_on()
    link.send("md_in", pack_beats(buf, ends))
    stats = link.run()
    assert stats.drained, "the top did not take the whole recording"
    records = link.receive("bbo_out")
    for name in ("host_out", "gaps_out"):
        if name in link.streams:
            link.receive(name)
    counters = link.counters()
    changes, model = _model_changes(buf, slot_names)
    return buf, marks, records, changes, counters, model


def _published_by_seq(merged: list[tuple]) -> dict:
    """key -> sorted list of (seq, top) the pipeline published."""
    out: dict = {}
    for seq, key, *top in merged:
        out.setdefault(key, []).append((seq, tuple(top)))
    return out


def _top_at(history: list, seq: int):
    """The last top published at or before ``seq`` (None before the first)."""
    best = None
    for s, top in history:
        if s > seq:
            break
        best = top
    return best


def _check_against_model(link, buf, records, changes, counters):
    """Assert the pipeline published the model's BBO; returns the merged publication."""
    merged = merge_with_host_book(records, changes)
    assert merged == [(c.seq, ("slot", c.slot), c.bid_price, c.bid_size, c.ask_price, c.ask_size)
                      for c in changes]
    # What the gateware published on its own (no refill) is the model's top at that message.
    model_top = {(c.seq, c.slot): (c.bid_price, c.bid_size, c.ask_price, c.ask_size)
                 for c in changes}
    exact = records[(records["flags"] & _REFILL) == 0]
    for r in exact:
        f = int(r["flags"])
        top = (int(r["bid_price"]) if f & _BID_VALID else None,
               int(r["bid_size"]) if f & _BID_VALID else None,
               int(r["ask_price"]) if f & _ASK_VALID else None,
               int(r["ask_size"]) if f & _ASK_VALID else None)
        want = model_top.get((int(r["seq"]), int(r["slot"])))
        if want is not None:
            assert top == want, f"record at seq {int(r['seq'])} slot {int(r['slot'])}"
    assert counters["MSGS_IN"] == len(buf) // (2 + wire.LEVEL_UPDATE.size)
    assert counters["DROP_BAD_LENGTH"] == counters["DROP_UNKNOWN_TYPE"] == 0
    assert counters["FEED_DROP_UNSUBSCRIBED"] == 0
    assert len(exact) > 0
    if link.top.levels == 2:
        assert len(records) > len(exact)    # the refill path ran on real data
    return merged


def _binance_v1():
    return binance.read_session(need(CRYPTO / "BINANCE.ws.1.0"), need(CRYPTO / "BINANCE.http.0.0"))


def _binance_v3(name):
    def read():
        pytest.importorskip("zstandard")
        return binance.read_v3_session(need(CRYPTO / "v3" / f"{name}.jsonl.zst"))[0]
    return read


BINANCE = {"BINANCE.ws.1.0": (_binance_v1, False, 20),
           "v3/BINANCE": (_binance_v3("BINANCE"), False, 20),
           "v3/BINANCE_FUTURES": (_binance_v3("BINANCE_FUTURES"), True, 40)}


@pytest.mark.parametrize("recording", sorted(BINANCE))
def test_binance_session_through_the_gateware_equals_the_model_and_every_book_ticker(
        link, recording):
    # Arrange: snapshot + diffs of a recorded Binance session, the documented U/u sync
    read, futures, at_least = BINANCE[recording]
    events = read()
    instruments = binance.recording_instruments(events, first_slot=1)
    sync = binance.BinanceDepthSync(instruments, futures=futures)
    batches, tickers = [], []
    for event in events:
        if isinstance(event, binance.BookTicker):
            tickers.append((len(batches), event))
        else:
            batches.extend(sync.feed(event))
    slot_names = {i.slot: s for s, i in instruments.items()}

    # Act
    buf, marks, records, changes, counters, _ = _through_gateware(link, batches, slot_names)

    # Assert: the pipeline's BBO equals the reference book's, message for message
    merged = _check_against_model(link, buf, records, changes, counters)
    assert len(merged) > 50
    # ... and the venue's own bookTicker wherever it names a book state we published
    published = _published_by_seq(merged)
    last_seq = {(b.symbol, b.update_id): seq for b, seq in marks}
    checked = 0
    for _, t in tickers:
        seq = last_seq.get((t.symbol, t.update_id))
        if seq is None:
            continue
        inst = instruments[t.symbol]
        truth = (inst.price_ticks(t.bid_price), inst.size_lots(t.bid_qty),
                 inst.price_ticks(t.ask_price), inst.size_lots(t.ask_qty))
        assert _top_at(published[("slot", inst.slot)], seq) == truth, t
        checked += 1
    assert checked >= at_least


def _okx_v3():
    pytest.importorskip("zstandard")
    return okx.read_v3_books(need(CRYPTO / "v3" / "OKX.jsonl.zst"))


OKX = {"OKX.ws.1.0": lambda: okx.read_books(need(CRYPTO / "OKX.ws.1.0")), "v3/OKX": _okx_v3}


@pytest.mark.parametrize("recording", sorted(OKX))
def test_okx_session_through_the_gateware_equals_the_model_message_for_message(link, recording):
    # Arrange: OKX books (snapshots and updates, each checked by its CRC32 on the host)
    messages = OKX[recording]()
    instruments = okx.recording_instruments(messages, first_slot=1)
    sync = okx.OkxBookSync(instruments)
    batches = [b for b in (sync.feed(m) for m in messages) if b is not None]
    slot_names = {i.slot: s for s, i in instruments.items()}

    # Act
    buf, marks, records, changes, counters, model = _through_gateware(link, batches,
                                                                       slot_names)

    # Assert
    assert sync.counters["checksum_ok"] == len(messages)
    merged = _check_against_model(link, buf, records, changes, counters)
    assert len(merged) > 10
    # every instrument's final published top is the host book's (and the venue's) top
    published = _published_by_seq(merged)
    for name, inst in instruments.items():
        history = published.get(("slot", inst.slot))
        if history:
            assert history[-1][1] == tuple(model.bbo(SlotKey(inst.slot))), name


def test_binance_gap_clears_the_symbol_in_the_gateware(link):
    # Arrange: the real session with one applied NKNUSDT diff lost, as a dropped frame would
    events = _binance_v1()
    instruments = binance.recording_instruments(events, first_slot=1)
    probe = binance.BinanceDepthSync(instruments)
    applied = []
    for event in events:
        before = probe.counters["applied"]
        probe.feed(event)
        if probe.counters["applied"] > before and event.symbol == "NKNUSDT":
            applied.append(event)
    lost = applied[1]
    sync = binance.BinanceDepthSync(instruments)
    batches = [b for e in events if e is not lost for b in sync.feed(e)]
    slot_names = {i.slot: s for s, i in instruments.items()}
    slot = instruments["NKNUSDT"].slot

    # Act
    buf, _, records, changes, counters, model = _through_gateware(link, batches, slot_names)

    # Assert: the gap is found, the book is cleared, and the pipeline publishes no top for the
    # symbol from then on (the recording brings no new snapshot), as the model does
    assert sync.counters["gap"] == 1 and sync.counters["cleared"] == 1
    assert not sync.synced("NKNUSDT")
    _check_against_model(link, buf, records, changes, counters)
    last = records[records["slot"] == slot][-1]
    assert int(last["flags"]) & (_BID_VALID | _ASK_VALID) == 0
    assert model.bbo(SlotKey(slot)) == (None, None, None, None)
