"""The hardware book's reference (sim/model/book_hw.py) and the order table's set index."""

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hdl.book.order_book import OrderBook
from hdl.book.order_table import order_set_index, order_set_index_hdl
from host.feed.framing import frame_historical
from sim.gen.itchgen import generate_messages
from host.feed.itch import decode_message
from sim.model.book import BookModel
from sim.model.book_hw import HardwareBook, itch_events, merge_with_host_book
from sim.reference import expected_bbo_records
from sim.scoreboard import compare_bbo


def test_order_set_index_gateware_equals_python_on_random_references():
    # Arrange
    rng = random.Random(4)
    refs = [rng.getrandbits(64) for _ in range(200)] + [0, 2**64 - 1, 1, 2**40]
    ref = Signal(64)
    index = order_set_index_hdl(ref, 9)
    got = []

    async def bench(ctx):
        for r in refs:
            ctx.set(ref, r)
            got.append(ctx.get(index))

    sim = Simulator(Module())
    sim.add_testbench(bench)

    # Act
    sim.run()

    # Assert
    assert got == [order_set_index(r, 9) for r in refs]


def test_hardware_book_equals_reference_records_when_nothing_overflows():
    # Arrange: ample levels and order table, 12 symbols for 8 slots
    msgs = generate_messages(11, 20_000, n_symbols=12, edge_cases=True, target_live_orders=400)
    expected = expected_bbo_records(frame_historical(msgs), slots=8)
    hw = HardwareBook(slots=8, levels=32, order_ways=16, order_sets=1024)

    # Act
    got = hw.run(itch_events(msgs))

    # Assert
    assert hw.counts["refill"] == 0 and not hw.lost
    compare_bbo(got, expected)
    assert (got["flags"] == expected["flags"]).all()


def test_host_merge_of_refill_records_equals_full_model_message_for_message():
    # Arrange: 2 levels per side and a small order table, so symbols go blind and get lost
    msgs = generate_messages(12, 20_000, n_symbols=8, edge_cases=True, target_live_orders=300)
    hw = HardwareBook(slots=8, levels=2, order_ways=2, order_sets=64)
    records = hw.run(itch_events(msgs))
    # the host's full book: the reference model on the subscribed symbols
    model = BookModel(set(hw.slot_of))
    changes = [c for seq, m in enumerate(msgs, start=1) if m[:1] in b"RAFECXDU"
               for c in [model.apply(decode_message(m), seq)] if c is not None]

    # Act
    merged = merge_with_host_book(records, changes)

    # Assert
    assert hw.counts["refill"] > 0 and hw.counts["table_full"] > 0
    assert merged == [(c.seq, c.locate, c.bid_price, c.bid_size, c.ask_price, c.ask_size)
                      for c in changes]


@pytest.mark.parametrize("kwargs,text", [
    (dict(levels=0), "levels must be an int in 1..32, not 0"),
    (dict(order_ways=3), "order_ways must be a power of two >= 1, not 3"),
    (dict(slots=100), "slots must be a power of two >= 2, not 100"),
    (dict(refill_patience=0), "refill_patience must be a positive int, not 0"),
])
def test_order_book_rejects_bad_geometry_with_the_value(kwargs, text):
    with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(".", r"\.")):
        OrderBook(**kwargs)


def test_itch_events_give_an_add_with_a_bad_side_no_kind_as_the_feed_does():
    from hdl.feed.events import EventKind
    from host.feed.itch import encode_message
    add = bytearray(encode_message({
        "message_type": "A", "stock_locate": 1, "tracking_number": 0, "timestamp": 2,
        "order_reference_number": 5, "buy_sell_indicator": "B", "shares": 100,
        "stock": "X", "price": 10_000}))
    good = bytes(add)
    add[19] = ord("b")
    kinds = [e["kind"] for e in itch_events([bytes(add), good])]
    assert kinds == [EventKind.NONE.value, EventKind.ADD.value]
    def book():
        return HardwareBook(slots=4, levels=2, order_ways=2, order_sets=64, assign_slots=False)
    assert len(book().run(itch_events([bytes(add)]))) == 0
    assert len(book().run(itch_events([good]))) == 1
