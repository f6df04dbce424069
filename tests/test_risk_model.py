"""The risk reference model on hand-written scenarios: one per reason bit, plus state updates."""

from __future__ import annotations

import pytest

from hdl import wire
from sim.model.risk import (COLLAR_BPS, COLLAR_ENABLE, REASON, SYMBOL_ENABLED, SYMBOL_KILL,
                            SYMBOL_REDUCE_ONLY, RiskLimits, RiskModel, reason_names)

SLOTS = 4
SELL = wire.ORDER_REQUEST.flag("flags", "sell")
FILL_SELL, FILL_DONE = wire.FILL.flag("flags", "sell"), wire.FILL.flag("flags", "done")
BOTH_SIDES = wire.BBO_UPDATE.flag("flags", "bid_valid") | wire.BBO_UPDATE.flag("flags",
                                                                               "ask_valid")
START = 200   # cycle of the first order: the buckets have filled by then


def permissive(**changes) -> RiskLimits:
    base = dict(symbol_control=SYMBOL_ENABLED, max_order_qty=1_000, max_long=10_000,
                max_short=10_000, max_notional=1 << 40, collar_config=COLLAR_ENABLE,
                collar_band=100, bbo_max_age=0, max_open_orders=8, rate_shift=0,
                rate_burst=100, symbol_rate_shift=0, symbol_rate_burst=100)
    base.update(changes)
    return RiskLimits.uniform(SLOTS, **base)


class Scenario:
    """A model with limits committed at cycle 0 and a BBO 10_000 / 10_010 on every slot."""

    def __init__(self, limits: RiskLimits | None = None, *, open_orders: int = 8,
                 dup_depth: int = 8):
        self.model = RiskModel(slots=SLOTS, open_orders=open_orders, dup_depth=dup_depth)
        self.model.commit(limits or permissive(), 0)
        for slot in range(SLOTS):
            self.bbo(slot, 10_000, 10_010, cycle=1)
        self.cycle = START
        self.next_id = 1

    def bbo(self, slot, bid, ask, *, cycle=None, flags=BOTH_SIDES):
        self.model.bbo_update(dict(slot=slot, bid_price=bid, ask_price=ask, flags=flags),
                              self.cycle if cycle is None else cycle)

    def order(self, *, price=10_005, qty=10, slot=0, sell=False, kind=1, orig=0, cid=None):
        if cid is None:
            cid, self.next_id = self.next_id, self.next_id + 1
        self.cycle += 1
        return self.model.order(dict(client_order_id=cid, orig_client_order_id=orig,
                                     price=price, quantity=qty, slot=slot, kind=kind,
                                     flags=SELL if sell else 0), self.cycle)

    def fill(self, cid, qty, *, slot=0, sell=False, done=False):
        self.cycle += 1
        self.model.fill(dict(client_order_id=cid, price=10_000, quantity=qty, slot=slot,
                             flags=FILL_SELL * sell | FILL_DONE * done), self.cycle)


def only(name: str) -> int:
    return REASON[name]


def test_order_within_every_limit_is_accepted():
    s = Scenario()
    assert s.order() == 0


def test_global_kill_blocks_new_and_replace_but_passes_cancel():
    # Arrange
    s = Scenario()
    assert s.order(cid=50) == 0
    s.model.set_kill(True, s.cycle)
    # Act / Assert
    assert s.order() == only("KILL_SWITCH")
    assert s.order(kind=3, orig=50) == only("KILL_SWITCH")
    assert s.order(kind=2, orig=50) == 0


def test_symbol_kill_blocks_only_that_symbol():
    s = Scenario(permissive(symbol_control=(SYMBOL_ENABLED | SYMBOL_KILL, SYMBOL_ENABLED,
                                            SYMBOL_ENABLED, SYMBOL_ENABLED)))
    assert s.order(slot=0) == only("KILL_SWITCH")
    assert s.order(slot=1) == 0


def test_disabled_symbol_and_slot_out_of_range_are_rejected():
    s = Scenario(permissive(symbol_control=(0, SYMBOL_ENABLED, SYMBOL_ENABLED, SYMBOL_ENABLED)))
    assert s.order(slot=0) == only("SYMBOL_DISABLED")
    assert s.order(slot=SLOTS) & REASON["SYMBOL_DISABLED"]


def test_reduce_only_symbol_accepts_a_sell_that_closes_a_long_and_rejects_opening():
    # Arrange: long 30 through a fill
    s = Scenario(permissive(symbol_control=SYMBOL_ENABLED | SYMBOL_REDUCE_ONLY))
    s.fill(999, 30)
    # Act / Assert
    assert s.order(qty=1) == only("RESTRICTED")
    assert s.order(sell=True, price=10_000, qty=30) == 0
    assert s.order(sell=True, price=10_000, qty=1) == only("RESTRICTED")


def test_reduce_only_symbol_rejects_a_sell_that_would_cross_from_long_to_short():
    # Arrange: long 100 through a fill
    s = Scenario(permissive(symbol_control=SYMBOL_ENABLED | SYMBOL_REDUCE_ONLY))
    s.fill(999, 100)
    # Act / Assert: selling 150 would shrink the absolute position, but end short
    assert s.order(sell=True, price=10_000, qty=150) == only("RESTRICTED")
    assert s.order(sell=True, price=10_000, qty=100) == 0


def test_zero_quantity_zero_price_and_unknown_kind_are_bad_requests():
    s = Scenario()
    assert s.order(qty=0) == only("BAD_REQUEST")
    assert s.order(price=0) & REASON["BAD_REQUEST"]
    assert s.order(kind=7) == only("BAD_REQUEST")


def test_quantity_above_symbol_max_is_rejected():
    s = Scenario(permissive(max_order_qty=100))
    assert s.order(qty=100) == 0
    assert s.order(qty=101) == only("MAX_QUANTITY")


def test_notional_compares_the_exact_64_bit_product():
    # Arrange: limit exactly at 10_005 * 4_000_000 = 40_020_000_000 (> 2**32)
    s = Scenario(permissive(max_notional=40_020_000_000, max_order_qty=1 << 31,
                            max_long=1 << 31))
    assert s.order(qty=4_000_000) == 0
    assert s.order(qty=4_000_001) == only("MAX_NOTIONAL")


def test_collar_in_ticks_rejects_a_buy_above_ask_plus_band():
    s = Scenario(permissive(collar_band=5))
    assert s.order(price=10_015) == 0
    assert s.order(price=10_016) == only("PRICE_COLLAR")
    assert s.order(price=9_995, sell=True, slot=1) == 0     # slot 1: no own buy to cross
    assert s.order(price=9_994, sell=True, slot=1) == only("PRICE_COLLAR")


def test_collar_in_basis_points_is_an_exact_integer_compare():
    # Arrange: 50 bps of ask 10_010 is 50.05: 10_060 passes, 10_061 does not
    s = Scenario(permissive(collar_config=COLLAR_ENABLE | COLLAR_BPS, collar_band=50))
    assert s.order(price=10_060) == 0
    assert s.order(price=10_061) == only("PRICE_COLLAR")
    # bid 10_000 - 50 bps = 9_950
    assert s.order(price=9_950, sell=True, slot=1) == 0
    assert s.order(price=9_949, sell=True, slot=1) == only("PRICE_COLLAR")


def test_collar_is_one_sided_a_buy_below_the_ask_or_a_sell_above_the_bid_passes_however_far():
    # Arrange: bid 10_000, ask 10_010; bands of 5 ticks and of 50 bps
    for config in (COLLAR_ENABLE, COLLAR_ENABLE | COLLAR_BPS):
        s = Scenario(permissive(collar_config=config, collar_band=5 if config == COLLAR_ENABLE
                                else 50))
        # Act / Assert
        assert s.order(price=1, slot=0) == 0
        assert s.order(price=1_000_000, sell=True, slot=1) == 0


def test_collar_rejects_empty_side_and_stale_bbo():
    s = Scenario(permissive(bbo_max_age=50))
    s.bbo(0, 10_000, 10_010, flags=wire.BBO_UPDATE.flag("flags", "bid_valid"))
    assert s.order(slot=0) == only("PRICE_COLLAR")           # buy needs the ask
    assert s.order(slot=0, sell=True, price=10_000) == 0     # sell needs the bid
    s.bbo(1, 10_000, 10_010, cycle=s.cycle)
    s.cycle += 50
    assert s.order(slot=1) == only("PRICE_COLLAR")           # 51 cycles old


def test_position_counts_fills_plus_open_orders_worst_case():
    # Arrange: max long 100; fill +40, open buy 50
    s = Scenario(permissive(max_long=100, max_short=20))
    s.fill(999, 40)
    assert s.order(qty=50, cid=10) == 0
    # Act / Assert: 40 + 50 + 11 > 100
    assert s.order(qty=11) == only("POSITION_LIMIT")
    assert s.order(qty=10) == 0
    # Sells: 40 - 20 (short limit) allows selling 60 worst case
    # (priced above our resting buys at 10_005 so as not to cross them)
    assert s.order(sell=True, price=10_006, qty=61) == only("POSITION_LIMIT")
    assert s.order(sell=True, price=10_006, qty=60) == 0


def test_fill_done_releases_the_rest_of_the_open_quantity():
    s = Scenario(permissive(max_long=100))
    assert s.order(qty=100, cid=10) == 0
    assert s.order(qty=1) == only("POSITION_LIMIT")
    s.fill(10, 30)                  # position 30, open 70
    assert s.order(qty=1) == only("POSITION_LIMIT")
    s.fill(10, 0, done=True)        # canceled: open 0
    assert s.order(qty=70) == 0
    assert s.model.status()["RISK_OPEN_ORDERS"] == 1


def test_open_orders_limit_and_table_size():
    s = Scenario(permissive(max_open_orders=2))
    assert s.order() == 0 and s.order() == 0
    assert s.order() == only("OPEN_ORDERS")


def test_global_bucket_allows_a_burst_then_one_order_per_refill():
    # Arrange: burst 3, one token every 2**4 cycles
    s = Scenario(permissive(rate_shift=4, rate_burst=3))
    # Act / Assert
    assert [s.order() for _ in range(4)] == [0, 0, 0, only("RATE_GLOBAL")]
    s.cycle = (s.cycle | 15) + 1            # next multiple of 16 refills one token
    assert s.order() == 0
    assert s.order() == only("RATE_GLOBAL")


def test_symbol_bucket_throttles_one_symbol_only():
    s = Scenario(permissive(symbol_rate_shift=10, symbol_rate_burst=1))
    s.cycle = 1100                          # one refill, at cycle 1024
    assert s.order(slot=0) == 0
    assert s.order(slot=0) == only("RATE_SYMBOL")
    assert s.order(slot=1) == 0


def test_duplicate_id_within_window_is_rejected_and_forgotten_after_it():
    s = Scenario()
    assert s.order(cid=42) == 0
    assert s.order(cid=42) == only("DUPLICATE_ID")
    s.fill(42, 0, done=True)            # no longer open: only the window remembers it
    for _ in range(8):
        s.order(kind=2, orig=12345)     # eight other requests push 42 out of the window
    assert s.order(cid=42, price=10_000) == 0


def test_id_still_open_beyond_the_window_is_a_duplicate_so_a_release_frees_the_right_order():
    # Arrange: the default gate's table and window (32 entries, 16 recent ids); max long 200
    s = Scenario(permissive(max_long=200, max_open_orders=32), open_orders=32, dup_depth=16)
    s.next_id = 100                                              # ids of the other orders
    assert s.order(cid=1, qty=100) == 0                          # A
    assert [s.order(slot=1) for _ in range(16)] == [0] * 16      # 1 is out of the window
    # Act / Assert: B reuses A's id while A is open; a replace may not take it either
    assert s.order(cid=1, qty=10) == only("DUPLICATE_ID")
    assert s.order(cid=1, kind=3, orig=1, qty=10) == only("DUPLICATE_ID")
    # A keeps its room: C cannot go beyond max long, and A's fill lands on A
    assert s.order(qty=190) == only("POSITION_LIMIT")
    s.fill(1, 100, done=True)
    assert s.model.position[0] == 100 and s.model.open_qty[0] == [0, 0]
    assert s.model.status()["RISK_OPEN_ORDERS"] == 16


def test_cancel_with_the_id_of_an_open_order_is_judged_by_the_window_only():
    # Arrange: order 1 open, out of the window
    s = Scenario()
    s.next_id = 100
    assert s.order(cid=1) == 0
    for _ in range(8):
        s.order(kind=2, orig=12345)
    # Act / Assert: a cancel opens nothing, so its own id may repeat an open one
    assert s.order(cid=1, kind=2, orig=1) == 0


def test_buy_crossing_our_own_resting_sell_is_a_self_trade():
    s = Scenario()
    assert s.order(sell=True, price=10_004) == 0
    assert s.order(price=10_004) == only("SELF_TRADE")
    assert s.order(price=10_003) == 0
    assert s.order(price=10_004, slot=1) == 0               # other symbol


def test_cancel_or_replace_of_unknown_order_is_rejected():
    s = Scenario()
    assert s.order(kind=2, orig=777) == only("UNKNOWN_ORDER")
    assert s.order(kind=3, orig=777) == only("UNKNOWN_ORDER")


def test_limits_take_effect_only_after_commit_cycle():
    s = Scenario()
    assert s.order(qty=10) == 0
    s.model.commit(permissive(max_order_qty=5), s.cycle)     # same cycle as that decision
    assert s.order(qty=10) == only("MAX_QUANTITY")


def test_counters_count_each_reason_of_a_rejection():
    s = Scenario(permissive(max_order_qty=5, max_notional=10))
    s.order(qty=10)
    status = s.model.status()
    assert status["RISK_REJECTED"] == 1
    assert status[f"RISK_REJECTS_{wire.RISK_REASONS.index('MAX_QUANTITY')}"] == 1
    assert status[f"RISK_REJECTS_{wire.RISK_REASONS.index('MAX_NOTIONAL')}"] == 1


def test_commit_with_wrong_number_of_slots_is_refused():
    model = RiskModel(slots=SLOTS)
    with pytest.raises(ValueError, match=r"limits.symbol_control has 3 entries; the gate has 4"):
        model.commit(RiskLimits.uniform(3), 0)


def test_reason_names_follow_wire_order():
    assert reason_names(REASON["SELF_TRADE"] | 1) == ["KILL_SWITCH", "SELF_TRADE"]
