"""The host's software book: its field decoder and its catch-up against the reference model."""

import random

import pytest

from host.feed.framing import scan_historical
from host.feed.itch import ItchError, decode_message
from host.hostbook import BOOK_FIELDS, HostBook, decode_book_fields
from sim.gen.itchgen import generate
from sim.model.book import BookModel


@pytest.fixture(scope="module")
def flow():
    buf = generate(11, 6000, n_symbols=6, target_live_orders=200)
    offsets, error = scan_historical(buf)
    assert error is None
    return buf, offsets


def test_book_fields_equal_the_full_decoders_for_every_applied_message(flow):
    buf, offsets = flow
    seen = set()
    for pos in offsets.tolist():
        n = (buf[pos] << 8) | buf[pos + 1]
        full = decode_message(buf[pos + 2:pos + 2 + n])
        if full["message_type"] not in BOOK_FIELDS:
            continue
        lean = decode_book_fields(buf, pos + 2, n)
        seen.add(full["message_type"])

        assert set(lean) == {"message_type", *BOOK_FIELDS[full["message_type"]]}
        assert lean == {k: full[k] for k in lean}
    assert seen >= set("RAEXDU")


def test_book_fields_of_a_bad_message_raise_the_decoders_error():
    add = bytearray(b"A" + bytes(35))
    add[19] = 0xFF                       # a non-ASCII buy/sell indicator
    with pytest.raises(ItchError, match="non-ASCII"):
        decode_book_fields(bytes(add), 0, 36)
    with pytest.raises(ItchError, match="must be 36 bytes"):
        decode_book_fields(bytes(add[:30]), 0, 30)


def test_catch_up_publishes_exactly_the_reference_models_changes_as_publish_sets_change(flow):
    buf, offsets = flow
    reference = BookModel()
    expected = []
    for i, pos in enumerate(offsets.tolist()):
        n = (buf[pos] << 8) | buf[pos + 1]
        change = reference.apply(decode_message(buf[pos + 2:pos + 2 + n]), i + 1)
        if change is not None:
            expected.append(change)
    locates = sorted({c.locate for c in expected})
    book = HostBook(buf, offsets)
    rng = random.Random(3)
    got, wanted, at = [], [], 0
    while at < len(offsets):
        upto = min(len(offsets), at + rng.randint(1, 150))
        # Symbols join and leave the published set between batches, as refills come and go.
        publish = set(rng.sample(locates, rng.randint(0, len(locates)))) if rng.random() < .5 \
            else set()
        got += book.advance(upto, publish)
        wanted += [c for c in expected if at < c.seq <= upto and c.locate in publish]
        at = upto

    assert got == wanted and len(wanted) > 100
    for locate in locates:
        assert book.top(locate) == tuple(reference.bbo(locate))


def test_locate_mask_equals_isin():
    import numpy as np

    from host.hostbook import locate_mask
    locates = np.array([3, 7, 7, 1, 9, 3], np.uint16)

    for wanted in ({7}, {3, 9}, set(), {1, 3, 7, 9, 11}, set(range(0, 40, 3))):
        assert np.array_equal(locate_mask(locates, wanted),
                              np.isin(locates, list(wanted)))
