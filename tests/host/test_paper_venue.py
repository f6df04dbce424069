"""Paper venue: taking, queue position, trade-through, latency, cancels, determinism."""

import random

import pytest

from hdl import wire
from host.types import Fill, OrderKind, Side
from host.venue import Ack, Cancelled, Reject, VenueRejectReason
from host.venue.events import Replaced
from host.venue.paper import PaperVenue, PaperVenueConfig

BID = wire.BBO_UPDATE.flag("flags", "bid_valid")
ASK = wire.BBO_UPDATE.flag("flags", "ask_valid")
F = wire.ORDER_REQUEST.flag


def bbo(bid, bid_size, ask, ask_size, slot=0):
    r = wire.BBO_UPDATE.array(1)
    r["slot"], r["flags"] = slot, BID | ASK
    r["bid_price"], r["bid_size"], r["ask_price"], r["ask_size"] = bid, bid_size, ask, ask_size
    return r


def order(coid, side, price, quantity, slot=0, kind=OrderKind.NEW, target=0, flags=0):
    r = wire.ORDER_REQUEST.array(1)
    r["client_order_id"], r["orig_client_order_id"] = coid, target
    r["price"], r["quantity"], r["slot"], r["kind"] = price, quantity, slot, int(kind)
    r["flags"] = flags | (F("flags", "sell") if side is Side.SELL else 0)
    return r


def fills(events):
    return [(e.client_order_id, e.price, e.quantity, e.done) for e in events
            if isinstance(e, Fill)]


def test_buy_at_the_ask_fills_up_to_ask_size_and_rests_the_remainder():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)

    events = v.submit(order(1, Side.BUY, 102, 500), 10)

    assert events[0] == Ack(client_order_id=1, ts_ns=10)
    assert fills(events) == [(1, 101, 300, False)]
    assert [o.leaves for o in v.working_orders()] == [200]


def test_two_of_our_orders_cannot_take_the_same_displayed_size():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)

    events = v.submit(order(1, Side.SELL, 99, 400), 0) + v.submit(order(2, Side.SELL, 99, 400), 0)

    assert fills(events) == [(1, 99, 400, True), (2, 99, 100, False)]


def test_ioc_remainder_is_cancelled_at_once():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)

    events = v.submit(order(1, Side.BUY, 101, 500, flags=F("flags", "ioc")), 5)

    assert fills(events) == [(1, 101, 300, False)]
    assert events[-1] == Cancelled(client_order_id=1, request_id=0, ts_ns=5)
    assert v.working_orders() == []


def test_fok_that_cannot_fill_completely_is_cancelled_without_a_fill():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)

    events = v.submit(order(1, Side.BUY, 101, 301, flags=F("flags", "fok")), 0)

    assert fills(events) == []
    assert events == [Ack(client_order_id=1), Cancelled(client_order_id=1)]


def test_post_only_order_that_would_cross_is_rejected():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)

    events = v.submit(order(1, Side.BUY, 101, 10, flags=F("flags", "post_only")), 0)
    passive = v.submit(order(2, Side.BUY, 100, 10, flags=F("flags", "post_only")), 0)

    assert events == [Reject(client_order_id=1, reason=VenueRejectReason.POST_ONLY_WOULD_CROSS)]
    assert passive == [Ack(client_order_id=2)]


def test_queue_decrease_consumes_volume_ahead_then_our_order():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)
    v.submit(order(1, Side.BUY, 99, 200), 0)            # 500 ahead

    first = v.on_bbo(bbo(99, 200, 101, 300), 1)          # 300 traded: 200 still ahead
    second = v.on_bbo(bbo(99, 50, 101, 300), 2)          # 150 traded: all ahead of us
    third = v.on_bbo(bbo(99, 0, 101, 300), 3)            # 50 traded: ahead gone, 0 left for us

    assert fills(first) == fills(second) == fills(third) == []
    assert v.working_orders()[0].ahead == 0
    v.on_bbo(bbo(99, 400, 101, 300), 4)                  # others join behind us
    fourth = v.on_bbo(bbo(99, 250, 101, 300), 5)         # 150 traded: all ours
    assert fills(fourth) == [(1, 99, 150, False)]


def test_level_traded_through_fills_the_whole_order_at_its_limit():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)
    v.submit(order(1, Side.SELL, 101, 200), 0)

    events = v.on_bbo(bbo(100, 100, 102, 50), 7)         # the ask level 101 traded through

    assert fills(events) == [(1, 101, 200, True)]
    assert v.working_orders() == []


def test_resting_order_the_opposite_best_comes_to_takes_its_displayed_size():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)
    v.submit(order(1, Side.SELL, 101, 200), 0)

    events = v.on_bbo(bbo(101, 120, 102, 50), 7)         # the bid rose to our limit

    assert fills(events) == [(1, 101, 120, False)]


def test_order_improving_the_bid_fills_when_the_ask_comes_down_to_it():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 102, 300), 0)
    v.submit(order(1, Side.BUY, 100, 200), 0)            # new best bid, nothing ahead

    quiet = v.on_bbo(bbo(99, 400, 102, 300), 1)
    crossed = v.on_bbo(bbo(99, 400, 100, 80), 2)

    assert fills(quiet) == []
    assert fills(crossed) == [(1, 100, 80, False)]


def test_price_time_priority_among_our_own_orders():
    v = PaperVenue()
    v.on_bbo(bbo(99, 100, 103, 300), 0)
    v.submit(order(1, Side.BUY, 99, 100), 0)
    v.submit(order(2, Side.BUY, 100, 100), 0)
    v.submit(order(3, Side.BUY, 99, 100), 0)

    events = v.on_bbo(bbo(99, 100, 99, 250), 1)          # ask crashes to 99 with 250

    assert fills(events) == [(2, 99, 100, True), (1, 99, 100, True), (3, 99, 50, False)]


def test_order_arrives_only_after_the_configured_latency():
    v = PaperVenue(PaperVenueConfig(latency_ns=1_000))
    v.on_bbo(bbo(99, 500, 101, 300), 0)

    at_submit = v.submit(order(1, Side.BUY, 101, 100), 100)
    before = v.on_bbo(bbo(99, 500, 102, 300), 1_099)     # the ask moves away before arrival
    arrival = v.advance(1_100)

    assert at_submit == [] and before == []
    assert arrival == [Ack(client_order_id=1, ts_ns=1_100)]
    assert fills(arrival) == []


def test_cancel_of_working_order_is_acknowledged_and_a_late_cancel_is_rejected():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)
    v.submit(order(1, Side.BUY, 98, 100), 0)
    v.submit(order(2, Side.BUY, 101, 100), 0)            # fills at once

    events = v.submit(order(3, Side.BUY, 98, 100, kind=OrderKind.CANCEL, target=1), 1)
    late = v.submit(order(4, Side.BUY, 101, 100, kind=OrderKind.CANCEL, target=2), 1)

    assert events == [Ack(client_order_id=3, ts_ns=1),
                      Cancelled(client_order_id=1, request_id=3, ts_ns=1)]
    assert late == [Reject(client_order_id=4, reason=VenueRejectReason.UNKNOWN_ORDER, ts_ns=1)]


def test_reused_client_order_id_is_rejected():
    v = PaperVenue()
    v.submit(order(1, Side.BUY, 98, 100), 0)

    dup = v.submit(order(1, Side.BUY, 98, 100), 0)

    assert dup[0].reason is VenueRejectReason.DUPLICATE_ID


def _queue(v, slot=0):
    return [(o.client_order_id, o.price, o.leaves, o.ahead) for o in v.working_orders(slot)]


def _two_bids_behind_40():
    # Our two bids of 100 at 99 behind 100 displayed; 60 trade: 40 left ahead of both.
    v = PaperVenue()
    v.on_bbo(bbo(99, 100, 101, 300), 0)
    v.submit(order(1, Side.BUY, 99, 100), 0)
    v.submit(order(2, Side.BUY, 99, 100), 0)
    v.on_bbo(bbo(99, 40, 101, 300), 1)
    return v


def test_replace_that_shrinks_an_order_keeps_its_place_in_the_queue():
    # Arrange
    v = _two_bids_behind_40()

    # Act: the first order shrinks to 60 at the same price
    events = v.submit(order(3, Side.BUY, 99, 60, kind=OrderKind.REPLACE, target=1), 2)

    # Assert: acknowledged, target replaced, still first with the same volume ahead
    assert events == [Ack(client_order_id=3, ts_ns=2),
                      Replaced(client_order_id=1, replacement_id=3, ts_ns=2)]
    assert _queue(v) == [(3, 99, 60, 40), (2, 99, 100, 40)]
    # Others join behind (40 -> 500), then 100 trade: the 40 ahead, then all of order 3
    v.on_bbo(bbo(99, 500, 101, 300), 3)
    assert fills(v.on_bbo(bbo(99, 400, 101, 300), 4)) == [(3, 99, 60, True)]


def test_replace_that_grows_an_order_goes_to_the_back_of_the_queue():
    # Arrange
    v = _two_bids_behind_40()

    # Act: the first order grows to 150 at the same price
    events = v.submit(order(3, Side.BUY, 99, 150, kind=OrderKind.REPLACE, target=1), 2)

    # Assert: it now waits behind order 2, which takes the first 60 after the 40 ahead
    assert Replaced(client_order_id=1, replacement_id=3, ts_ns=2) in events
    assert [o.client_order_id for o in v.working_orders()] == [2, 3]
    v.on_bbo(bbo(99, 500, 101, 300), 3)
    assert fills(v.on_bbo(bbo(99, 400, 101, 300), 4)) == [(2, 99, 60, False)]


def test_replace_to_a_new_price_loses_priority_and_may_take_liquidity():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)
    v.submit(order(1, Side.BUY, 99, 100), 0)

    events = v.submit(order(2, Side.BUY, 101, 400, kind=OrderKind.REPLACE, target=1), 1)

    assert events[:2] == [Ack(client_order_id=2, ts_ns=1),
                          Replaced(client_order_id=1, replacement_id=2, ts_ns=1)]
    assert fills(events) == [(2, 101, 300, False)]
    assert _queue(v) == [(2, 101, 100, 0)]


def test_replace_of_a_filled_order_or_across_sides_is_rejected_and_target_stays():
    v = PaperVenue()
    v.on_bbo(bbo(99, 500, 101, 300), 0)
    v.submit(order(1, Side.BUY, 98, 100), 0)
    v.submit(order(2, Side.SELL, 99, 500), 0)   # filled at once

    gone = v.submit(order(3, Side.SELL, 100, 10, kind=OrderKind.REPLACE, target=2), 1)
    side = v.submit(order(4, Side.SELL, 100, 10, kind=OrderKind.REPLACE, target=1), 1)

    assert gone == [Reject(client_order_id=3, reason=VenueRejectReason.UNKNOWN_ORDER, ts_ns=1)]
    assert side == [Reject(client_order_id=4, reason=VenueRejectReason.INVALID, ts_ns=1)]
    assert _queue(v) == [(1, 98, 100, None)]


def test_venue_time_going_backwards_is_an_error():
    v = PaperVenue()
    v.advance(10)

    with pytest.raises(ValueError, match="venue time went backwards: 9 ns after 10 ns"):
        v.advance(9)


def _random_session(seed):
    rng = random.Random(seed)
    v = PaperVenue(PaperVenueConfig(latency_ns=500))
    events, mid, now = [], 10_000, 0
    for coid in range(1, 300):
        now += rng.randint(0, 700)
        mid += rng.randint(-2, 2)
        events += v.on_bbo(bbo(mid - 1, rng.randint(0, 9) * 10, mid + 1, rng.randint(0, 9) * 10),
                           now)
        side = rng.choice((Side.BUY, Side.SELL))
        events += v.submit(order(coid, side, mid + rng.randint(-3, 3), rng.randint(1, 40)), now)
    return events


def test_same_inputs_give_the_same_events():
    assert _random_session(3) == _random_session(3)


def test_fills_never_exceed_order_quantity_in_a_random_session():
    events = _random_session(11)
    filled = {}
    for e in events:
        if isinstance(e, Fill):
            filled[e.client_order_id] = filled.get(e.client_order_id, 0) + e.quantity
            assert isinstance(e.price, int)
    assert filled, "the random session should trade"
    assert all(0 < q <= 40 for q in filled.values())
