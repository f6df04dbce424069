"""Order manager: state machine, pre-trade check, positions and P&L, wire records."""

import random

import numpy as np
import pytest

from hdl import wire
from host.oms import (IllegalTransition, OrderManager, OrderState, Overfill, PreTradeConfig,
                      PreTradeReason, UnknownOrder, mid_price)
from host.oms.positions import Position
from host.types import Fill, OrderIntent, OrderKind, Side
from host.venue.events import Ack, Cancelled, Reject, Replaced, VenueRejectReason

ACCEPTED = wire.VERDICT.flag("flags", "accepted")


def intent(side=Side.BUY, price=1_000_000, quantity=100, slot=0, **kw):
    return OrderIntent(strategy="t", slot=slot, side=side, price=price, quantity=quantity, **kw)


def verdicts(requests, accept=True, reasons=0):
    v = wire.VERDICT.array(len(requests))
    v["client_order_id"] = requests["client_order_id"]
    v["slot"] = requests["slot"]
    v["kind"] = requests["kind"]
    v["flags"] = ACCEPTED if accept else 0
    v["reasons"] = reasons
    return v


def live_order(om, **kw):
    req = om.submit([intent(**kw)])
    om.on_verdicts(verdicts(req))
    coid = int(req["client_order_id"][0])
    om.on_venue_events([Ack(client_order_id=coid)])
    return coid


def fill(coid, price, quantity, side=Side.BUY, slot=0, done=False):
    return Fill(client_order_id=coid, slot=slot, side=side, price=price, quantity=quantity,
                done=done)


def test_client_order_ids_are_assigned_from_one_in_submission_order():
    om = OrderManager()

    first = om.submit([intent(), intent(side=Side.SELL)])
    second = om.submit([intent(price=999_900)])

    assert first.dtype == wire.ORDER_REQUEST.dtype
    assert list(first["client_order_id"]) + list(second["client_order_id"]) == [1, 2, 3]
    assert first["flags"][1] == wire.ORDER_REQUEST.flag("flags", "sell")
    assert int(first["kind"][0]) == wire.ORDER_KIND_NEW


def test_order_walks_new_accepted_acknowledged_partial_filled():
    om = OrderManager()
    req = om.submit([intent(quantity=300)])
    order = om.orders[1]
    assert order.state is OrderState.NEW

    out = om.on_verdicts(verdicts(req))
    assert order.state is OrderState.RISK_ACCEPTED
    assert out.tobytes() == req.tobytes()
    om.on_venue_events([Ack(client_order_id=1)])
    assert order.state is OrderState.ACKNOWLEDGED
    om.on_venue_events([fill(1, 1_000_000, 100)])
    assert order.state is OrderState.PARTIALLY_FILLED
    om.on_venue_events([fill(1, 1_000_000, 200, done=True)])

    assert order.state is OrderState.FILLED
    assert om.position(0).quantity == 300
    assert om.open_orders() == []


def test_fill_before_ack_raises_illegal_transition_naming_order_and_states():
    om = OrderManager()
    req = om.submit([intent()])
    om.on_verdicts(verdicts(req))

    with pytest.raises(IllegalTransition) as exc:
        om.on_venue_events([fill(1, 1_000_000, 100, done=True)])

    assert exc.value.client_order_id == 1
    assert exc.value.from_state is OrderState.RISK_ACCEPTED
    assert exc.value.to_state is OrderState.FILLED
    assert "order 1: illegal transition RISK_ACCEPTED -> FILLED" in str(exc.value)


def test_duplicate_verdict_is_an_illegal_transition():
    om = OrderManager()
    req = om.submit([intent()])
    om.on_verdicts(verdicts(req))

    with pytest.raises(IllegalTransition, match="RISK_ACCEPTED -> RISK_ACCEPTED"):
        om.on_verdicts(verdicts(req))


def test_failed_batch_leaves_orders_positions_and_counters_unchanged():
    om = OrderManager()
    coid = live_order(om, quantity=300)
    before = om.to_state()

    # The first fill is fine, the second one overfills: the whole batch must roll back.
    with pytest.raises(Overfill, match="fill of 250 for order 1 with 200 open"):
        om.on_venue_events([fill(coid, 1_000_000, 100), fill(coid, 1_000_000, 250)])

    assert om.to_state() == before
    assert [o.client_order_id for o in om.open_orders()] == [coid]


def test_verdict_for_an_order_never_sent_raises_unknown_order():
    om = OrderManager()
    v = wire.VERDICT.array(1)
    v["client_order_id"] = 42
    v["flags"] = ACCEPTED

    with pytest.raises(UnknownOrder, match="client order id 42"):
        om.on_verdicts(v)


def test_gate_rejected_order_keeps_reason_bits_and_is_not_forwarded():
    om = OrderManager()
    req = om.submit([intent(), intent(price=999_000)])
    v = verdicts(req)
    v["flags"][1] = 0
    v["reasons"][1] = 0b1010

    out = om.on_verdicts(v)

    assert list(out["client_order_id"]) == [1]
    assert om.orders[2].state is OrderState.RISK_REJECTED
    assert om.orders[2].gate_reasons == 0b1010
    assert [o.client_order_id for o in om.open_orders()] == [1]


def test_venue_reject_moves_accepted_order_to_rejected_with_reason():
    om = OrderManager()
    req = om.submit([intent()])
    om.on_verdicts(verdicts(req))

    om.on_venue_events([Reject(client_order_id=1,
                               reason=VenueRejectReason.POST_ONLY_WOULD_CROSS)])

    assert om.orders[1].state is OrderState.REJECTED
    assert om.orders[1].venue_reason == VenueRejectReason.POST_ONLY_WOULD_CROSS


def test_cancel_request_acknowledged_cancels_its_target():
    om = OrderManager()
    coid = live_order(om)
    req = om.submit([intent(kind=OrderKind.CANCEL, target=coid)])
    assert int(req["kind"][0]) == wire.ORDER_KIND_CANCEL
    assert int(req["orig_client_order_id"][0]) == coid
    om.on_verdicts(verdicts(req))

    om.on_venue_events([Ack(client_order_id=2), Cancelled(client_order_id=coid, request_id=2)])

    assert om.orders[coid].state is OrderState.CANCELLED
    assert om.orders[2].state is OrderState.ACKNOWLEDGED
    assert om.open_orders() == []


def test_order_over_notional_limit_is_rejected_with_reason():
    om = OrderManager(PreTradeConfig(max_notional=1_000_000 * 100 - 1))

    out = om.submit([intent(price=1_000_000, quantity=100)])

    assert len(out) == 0
    assert om.last_rejections[0].reasons == PreTradeReason.NOTIONAL
    assert om.next_client_order_id == 1


def test_order_over_quantity_limit_is_rejected_with_reason():
    om = OrderManager(PreTradeConfig(max_order_quantity=99))

    om.submit([intent(quantity=100)])

    assert om.last_rejections[0].reasons == PreTradeReason.ORDER_QUANTITY


def test_position_limit_counts_open_orders_and_position():
    om = OrderManager(PreTradeConfig(max_long=500, max_short=200))
    coid = live_order(om, quantity=300)
    om.on_venue_events([fill(coid, 1_000_000, 300, done=True)])
    live_order(om, quantity=100)   # position 300 + open 100

    out = om.submit([intent(quantity=100), intent(quantity=200),
                     intent(side=Side.SELL, quantity=500), intent(side=Side.SELL, quantity=501)])

    # 300 + 100 + 100 = 500 passes; then 300 + 200 + 200 = 700 does not.
    assert list(out["quantity"]) == [100, 500]
    assert [r.reasons for r in om.last_rejections] == [PreTradeReason.POSITION_LONG,
                                                      PreTradeReason.POSITION_SHORT]


def test_max_open_orders_and_disabled_symbol_are_rejected_with_reasons():
    om = OrderManager(PreTradeConfig(max_open_orders=2, enabled_slots=frozenset({0})))

    out = om.submit([intent(), intent(), intent(), intent(slot=7)])

    assert len(out) == 2
    assert om.last_rejections[0].reasons == PreTradeReason.OPEN_ORDERS
    assert om.last_rejections[1].reasons & PreTradeReason.SYMBOL_DISABLED


def test_cancel_or_replace_of_unknown_or_finished_order_is_rejected_by_the_precheck():
    om = OrderManager()
    coid = live_order(om)
    om.on_venue_events([fill(coid, 1_000_000, 100, done=True)])

    out = om.submit([intent(kind=OrderKind.CANCEL, target=coid),
                     intent(kind=OrderKind.CANCEL, target=99),
                     intent(kind=OrderKind.REPLACE, target=coid)])

    assert len(out) == 0
    assert [r.reasons for r in om.last_rejections] == [
        PreTradeReason.UNKNOWN_TARGET, PreTradeReason.UNKNOWN_TARGET,
        PreTradeReason.UNKNOWN_TARGET]


def test_config_rejects_unknown_fields_and_negative_limits():
    with pytest.raises(ValueError, match=r"no field\(s\) \['max_lots'\]"):
        PreTradeConfig.from_dict({"max_lots": 3})
    with pytest.raises(TypeError):
        PreTradeConfig(max_lots=3)
    with pytest.raises(ValueError, match="max_long must be a non-negative integer, got -1"):
        PreTradeConfig(max_long=-1)


def test_fills_are_forwarded_to_the_gate_as_wire_fill_records():
    om = OrderManager()
    coid = live_order(om, side=Side.SELL, quantity=200, slot=3)

    out = om.on_venue_events([fill(coid, 999_900, 200, side=Side.SELL, slot=3, done=True)])

    assert out.dtype == wire.FILL.dtype
    rec = wire.FILL.unpack(out.tobytes())
    assert (rec["client_order_id"], rec["price"], rec["quantity"], rec["slot"]) == \
        (coid, 999_900, 200, 3)
    assert rec["flags"] == (wire.FILL.flag("flags", "sell") | wire.FILL.flag("flags", "done"))


def test_fill_with_wrong_side_is_refused():
    om = OrderManager()
    coid = live_order(om)

    with pytest.raises(Overfill, match="says slot 0 SELL"):
        om.on_venue_events([fill(coid, 1_000_000, 100, side=Side.SELL)])


def test_fifo_realised_pnl_of_a_round_trip_is_an_exact_integer():
    pos = Position(0)

    pos.apply_fill(Side.BUY, 100_0001, 3)
    pos.apply_fill(Side.BUY, 100_0004, 2)
    realised = pos.apply_fill(Side.SELL, 100_0010, 4)   # 3 @ +9, 1 @ +6
    assert realised == 3 * 9 + 1 * 6
    assert pos.quantity == 1 and pos.cost == 100_0004
    flip = pos.apply_fill(Side.SELL, 100_0000, 3)       # closes 1 @ -4, opens short 2
    assert flip == -4
    assert pos.quantity == -2 and pos.cost == -2 * 100_0000
    assert pos.unrealised(99_9990) == 2 * 10


def test_average_cost_is_an_exact_rational():
    pos = Position(0)
    pos.apply_fill(Side.BUY, 10, 1)
    pos.apply_fill(Side.BUY, 11, 2)

    assert pos.average_cost.numerator == 32 and pos.average_cost.denominator == 3


def test_realised_plus_unrealised_equals_cash_plus_marked_position_for_random_fills():
    rng = random.Random(7)
    pos = Position(0)
    cash = 0
    for _ in range(2_000):
        side = rng.choice((Side.BUY, Side.SELL))
        price = rng.randint(9_000, 11_000)
        qty = rng.randint(1, 50)
        pos.apply_fill(side, price, qty)
        cash -= side.sign * price * qty
        mark = rng.randint(9_000, 11_000)

        assert pos.realised + pos.unrealised(mark) == cash + pos.quantity * mark
        assert pos.quantity == sum(lot[1] for lot in pos.lots) * (1 if pos.quantity >= 0 else -1)
        assert isinstance(pos.realised, int) and isinstance(pos.cost, int)


def test_unrealised_pnl_uses_floored_mid_of_last_two_sided_bbo():
    om = OrderManager()
    coid = live_order(om, quantity=10)
    om.on_venue_events([fill(coid, 1_000, 10, done=True)])
    bbo = wire.BBO_UPDATE.array(2)
    bbo["flags"][0] = (wire.BBO_UPDATE.flag("flags", "bid_valid")
                       | wire.BBO_UPDATE.flag("flags", "ask_valid"))
    bbo["bid_price"][0], bbo["ask_price"][0] = 1_001, 1_004
    bbo["flags"][1] = wire.BBO_UPDATE.flag("flags", "bid_valid")   # one-sided: ignored
    bbo["bid_price"][1] = 5

    om.on_bbo(bbo)

    assert om.marks[0] == mid_price(1_001, 1_004) == 1_002
    assert om.unrealised_pnl(0) == 10 * 2
    assert om.unrealised_pnl(0, mark=990) == -100


def test_state_round_trips_through_plain_data():
    om = OrderManager(PreTradeConfig(max_open_orders=9, enabled_slots=frozenset({0, 3})))
    coid = live_order(om, quantity=300)
    om.on_venue_events([fill(coid, 1_000_000, 120)])
    om.submit([intent(side=Side.SELL)])

    again = OrderManager.from_state(om.to_state())

    assert again.to_state() == om.to_state()
    assert [o.client_order_id for o in again.open_orders()] == [1, 2]
    assert again.submit([intent()])["client_order_id"][0] == 3


def test_wrong_record_dtype_is_refused():
    om = OrderManager()

    with pytest.raises(TypeError, match="expected an array of Verdict records"):
        om.on_verdicts(np.zeros(1, dtype=wire.FILL.dtype))


# -- replace -------------------------------------------------------------------------------

def _replace(om, target, **kw):
    req = om.submit([intent(kind=OrderKind.REPLACE, target=target, **kw)])
    return req, int(req["client_order_id"][0]) if len(req) else None


def test_replace_is_one_request_whose_target_is_replaced_when_the_venue_confirms():
    # Arrange: a live buy of 300, 100 filled
    om = OrderManager()
    old = live_order(om, quantity=300)
    om.on_venue_events([fill(old, 1_000_000, 100)])

    # Act
    req, new = _replace(om, old, price=999_900, quantity=150)
    accepted = om.on_verdicts(verdicts(req))
    om.on_venue_events([Ack(client_order_id=new),
                        Replaced(client_order_id=old, replacement_id=new)])

    # Assert: one REPLACE request naming its target; target REPLACED keeping its fill
    assert len(req) == 1 and int(req["kind"][0]) == wire.ORDER_KIND_REPLACE
    assert int(req["orig_client_order_id"][0]) == old
    assert accepted.tobytes() == req.tobytes()
    assert om.orders[old].state is OrderState.REPLACED and om.orders[old].filled == 100
    assert om.orders[old].leaves == 0
    assert om.orders[new].state is OrderState.ACKNOWLEDGED
    assert [o.client_order_id for o in om.open_orders()] == [new]
    assert om.counters["replaced"] == 1
    # The replacement trades under its own id
    om.on_venue_events([fill(new, 999_900, 150, done=True)])
    assert om.orders[new].state is OrderState.FILLED and om.position(0).quantity == 250


def test_replace_in_flight_counts_target_and_replacement_against_position_limits():
    # Arrange: max long 500, a live buy of 300
    om = OrderManager(PreTradeConfig(max_long=500))
    old = live_order(om, quantity=300)

    # Act: a replace down to 200 passes (300 + 200 <= 500); one up to 250 does not
    ok, new = _replace(om, old, quantity=200)
    om.on_verdicts(verdicts(ok))
    too_big, _ = _replace(om, old, quantity=250)

    # Assert
    assert len(ok) == 1 and len(too_big) == 0
    assert om.last_rejections[0].reasons == PreTradeReason.POSITION_LONG
    # Strategies see the replacement in place of the target while it is in flight
    assert [o.client_order_id for o in om.intended_orders()] == [new]
    # Once the venue confirms, only the replacement counts
    om.on_venue_events([Ack(client_order_id=new),
                        Replaced(client_order_id=old, replacement_id=new)])
    after, _ = _replace(om, new, quantity=300)
    assert len(after) == 1


def test_replace_rejected_by_the_venue_leaves_the_target_working():
    om = OrderManager()
    old = live_order(om)
    req, new = _replace(om, old, price=999_800)
    om.on_verdicts(verdicts(req))

    om.on_venue_events([Reject(client_order_id=new, reason=VenueRejectReason.UNKNOWN_ORDER)])

    assert om.orders[new].state is OrderState.REJECTED
    assert om.orders[old].state is OrderState.ACKNOWLEDGED
    assert [o.client_order_id for o in om.open_orders()] == [old]


def test_replace_on_the_other_side_or_of_a_cancel_request_is_refused():
    om = OrderManager()
    old = live_order(om)
    cancel = om.submit([intent(kind=OrderKind.CANCEL, target=old)])
    cancel_id = int(cancel["client_order_id"][0])

    out = om.submit([intent(side=Side.SELL, kind=OrderKind.REPLACE, target=old),
                     intent(kind=OrderKind.REPLACE, target=cancel_id)])

    assert len(out) == 0
    assert [r.reasons for r in om.last_rejections] == [PreTradeReason.UNKNOWN_TARGET] * 2


def test_replaced_report_for_a_request_that_is_not_its_replace_is_illegal_and_changes_nothing():
    om = OrderManager()
    old = live_order(om)
    other = live_order(om)
    before = om.to_state()

    with pytest.raises(IllegalTransition, match="not a replace"):
        om.on_venue_events([Replaced(client_order_id=old, replacement_id=other)])

    assert om.to_state() == before


def test_replaced_order_is_terminal():
    om = OrderManager()
    old = live_order(om)
    req, new = _replace(om, old)
    om.on_verdicts(verdicts(req))
    om.on_venue_events([Ack(client_order_id=new),
                        Replaced(client_order_id=old, replacement_id=new)])

    with pytest.raises(Overfill, match="0 open \\(REPLACED\\)"):
        om.on_venue_events([fill(old, 1_000_000, 10)])


def test_request_and_fill_records_carry_every_field_by_name():
    # Arrange: orders and fills with every field distinct
    om = OrderManager()
    om.submit([intent(side=Side.SELL, price=123_400, quantity=77, slot=5, ioc=True)])
    order = om.orders[1]
    f = Fill(client_order_id=9, slot=3, side=Side.SELL, price=4_321, quantity=12, done=True)

    # Act
    req = OrderManager.requests_for([order])[0]
    rec = OrderManager.fill_records([f])[0]

    # Assert
    flag = wire.ORDER_REQUEST.flag
    assert (int(req["client_order_id"]), int(req["orig_client_order_id"]), int(req["price"]),
            int(req["quantity"]), int(req["slot"]), int(req["kind"]), int(req["flags"])) == \
        (1, 0, 123_400, 77, 5, wire.ORDER_KIND_NEW, flag("flags", "sell") | flag("flags", "ioc"))
    assert (int(rec["client_order_id"]), int(rec["price"]), int(rec["quantity"]),
            int(rec["slot"]), int(rec["flags"])) == \
        (9, 4_321, 12, 3, wire.FILL.flag("flags", "sell") | wire.FILL.flag("flags", "done"))


def test_marks_follow_the_last_two_sided_record_of_each_slot():
    om = OrderManager()
    recs = wire.BBO_UPDATE.array(4)
    both = wire.BBO_UPDATE.flag("flags", "bid_valid") | wire.BBO_UPDATE.flag("flags", "ask_valid")
    recs["slot"] = [1, 2, 1, 1]
    recs["flags"] = [both, both, both, wire.BBO_UPDATE.flag("flags", "bid_valid")]
    recs["bid_price"] = [100, 200, 101, 150]
    recs["ask_price"] = [103, 204, 104, 0]

    om.on_bbo(recs)

    assert om.marks == {1: 102, 2: 202}


def test_order_and_position_copies_carry_every_field_and_are_independent():
    import dataclasses

    from host.oms.order import Order
    order = Order(
        client_order_id=3, strategy="s", slot=2, side=Side.SELL, price=5, quantity=9,
        kind=OrderKind.REPLACE, target=1, ioc=True, post_only=True, fok=True,
        state=OrderState.PARTIALLY_FILLED, filled=4, gate_reasons=6, venue_reason=7)
    pos = Position(1)
    pos.apply_fill(Side.BUY, 100, 10)

    o2, p2 = order.copy(), pos.copy()
    p2.apply_fill(Side.SELL, 101, 5)

    assert dataclasses.asdict(o2) == dataclasses.asdict(order)
    assert pos.to_dict() == {"slot": 1, "quantity": 10, "cost": 1000, "realised": 0,
                             "lots": [[100, 10]]}


@pytest.mark.parametrize("field, value", [("price", 100.5), ("quantity", 10.5), ("price", True),
                                          ("quantity", "10"), ("side", 2), ("side", 1.0),
                                          ("slot", 0.0)])
def test_an_intent_whose_numbers_are_not_exact_integers_is_refused_as_invalid(field, value):
    # A float price or quantity would go on the wire truncated while the order kept the float:
    # its leaves never reach zero, and recovery would rebuild another order.
    om = OrderManager()

    out = om.submit([intent(**{field: value})])

    assert len(out) == 0
    assert om.last_rejections[0].reasons & PreTradeReason.INVALID
    assert om.next_client_order_id == 1 and om.open_orders() == []


def test_numpy_integers_are_taken_and_stored_as_plain_ints():
    om = OrderManager()

    out = om.submit([intent(price=np.int64(1_000_000), quantity=np.uint32(100), slot=np.int16(3),
                            side=np.int64(1))])

    order = om.orders[int(out["client_order_id"][0])]
    assert [type(v) for v in (order.price, order.quantity, order.slot)] == [int, int, int]
    assert (order.price, order.quantity, order.slot, order.side) == (1_000_000, 100, 3, Side.SELL)


def test_submit_is_atomic_when_a_batch_fails_part_way(monkeypatch):
    om = OrderManager()
    live_order(om)
    before = (om.next_client_order_id, dict(om.counters), list(om.orders), list(om._live))
    made = []
    original = om._new_order

    def fail_on_third(i):
        if len(made) == 2:
            raise RuntimeError("boom")
        made.append(i)
        return original(i)

    monkeypatch.setattr(om, "_new_order", fail_on_third)
    with pytest.raises(RuntimeError, match="boom"):
        om.submit([intent(), intent(), intent()])

    assert (om.next_client_order_id, dict(om.counters), list(om.orders), list(om._live)) == before
    monkeypatch.undo()
    out = om.submit([intent()])
    assert int(out["client_order_id"][0]) == before[0]


def test_a_disabled_symbols_live_order_can_still_be_cancelled():
    om = OrderManager(PreTradeConfig(enabled_slots=frozenset({0, 7})))
    coid = live_order(om, slot=7)
    om.reconfigure(PreTradeConfig(enabled_slots=frozenset({0})))

    out = om.submit([intent(slot=7, kind=OrderKind.CANCEL, target=coid),
                     intent(slot=7, kind=OrderKind.REPLACE, target=coid),
                     intent(slot=7)])

    assert list(out["kind"]) == [int(OrderKind.CANCEL)]
    assert [r.reasons & PreTradeReason.SYMBOL_DISABLED for r in om.last_rejections] == [
        PreTradeReason.SYMBOL_DISABLED] * 2
