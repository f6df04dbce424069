"""The reference order-book model and the BBO CSV format."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from sim.model.book import (ASK, BID, FLAG_DELETE, FLAG_SELL, FLAG_SNAPSHOT_BEGIN,
                            FLAG_SNAPSHOT_END, BboChange, BookModel, SlotKey, Top)
from sim.model.bbo_csv import (HEADER, csv_text, format_price, format_row,
                               model_changes_for_file, model_csv_for_file, write_csv)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

PRICE4_HIGHEST = 1_999_999_900  # the highest Price(4) on a $0.01 grid below 200,000.0000


# ------------------------------------------------------------------ message builders

def directory(locate, stock):
    return {"message_type": "R", "stock_locate": locate, "tracking_number": 0, "timestamp": 0,
            "stock": stock}


def add(ref, side, shares, price, locate=1, stock="AAPL", mpid=False):
    msg = {"message_type": "F" if mpid else "A", "stock_locate": locate, "tracking_number": 0,
           "timestamp": 0, "order_reference_number": ref, "buy_sell_indicator": side,
           "shares": shares, "stock": stock, "price": price}
    if mpid:
        msg["attribution"] = "GSCO"
    return msg


def execute(ref, shares, locate=1):
    return {"message_type": "E", "stock_locate": locate, "tracking_number": 0, "timestamp": 0,
            "order_reference_number": ref, "executed_shares": shares, "match_number": 1}


def execute_with_price(ref, shares, price, locate=1):
    return {"message_type": "C", "stock_locate": locate, "tracking_number": 0, "timestamp": 0,
            "order_reference_number": ref, "executed_shares": shares, "match_number": 2,
            "printable": "Y", "execution_price": price}


def cancel(ref, shares, locate=1):
    return {"message_type": "X", "stock_locate": locate, "tracking_number": 0, "timestamp": 0,
            "order_reference_number": ref, "cancelled_shares": shares}


def delete(ref, locate=1):
    return {"message_type": "D", "stock_locate": locate, "tracking_number": 0, "timestamp": 0,
            "order_reference_number": ref}


def replace(orig, new, shares, price, locate=1):
    return {"message_type": "U", "stock_locate": locate, "tracking_number": 0, "timestamp": 0,
            "original_order_reference_number": orig, "new_order_reference_number": new,
            "shares": shares, "price": price}


def run(model, msgs, first_seq=1):
    return [model.apply(m, seq) for seq, m in enumerate(msgs, start=first_seq)]


def quoted_book():
    """AAPL (locate 1): bids 100.00 x 100 (ref 1), 99.99 x 200 (ref 2);
    asks 100.02 x 300 (ref 3), 100.03 x 400 (ref 4)."""
    model = BookModel()
    run(model, [directory(1, "AAPL"),
                add(1, "B", 100, 1_000_000), add(2, "B", 200, 999_900),
                add(3, "S", 300, 1_000_200), add(4, "S", 400, 1_000_300)])
    return model


# ------------------------------------------------------------------ ITCH messages

def test_add_to_empty_book_reports_one_sided_top_with_directory_symbol():
    model = BookModel()
    model.apply(directory(7, "MSFT"), 1)

    change = model.apply(add(10, "B", 100, 1_234_500, locate=7, stock="MSFT"), 2)

    assert change == BboChange(2, 7, "MSFT", 1_234_500, 100, None, None)


def test_add_without_directory_takes_symbol_from_the_add():
    model = BookModel()

    change = model.apply(add(1, "S", 5, 10_000, locate=3, stock="ZVZZT"), 1)

    assert change.symbol == "ZVZZT" and change.ask_price == 10_000 and change.bid_price is None


def test_add_with_mpid_joins_the_level_like_add():
    model = quoted_book()

    change = model.apply(add(5, "B", 50, 1_000_000, mpid=True), 9)

    assert change == BboChange(9, 1, "AAPL", 1_000_000, 150, 1_000_200, 300)


def test_add_behind_the_best_reports_nothing():
    model = quoted_book()

    assert model.apply(add(5, "B", 50, 999_800), 9) is None
    assert model.apply(add(6, "S", 50, 1_000_400), 10) is None
    assert model.top_levels(1, "B", 3) == [(1_000_000, 100), (999_900, 200), (999_800, 50)]


def test_execute_reduces_the_order_at_its_own_level():
    model = quoted_book()

    change = model.apply(execute(3, 120), 9)

    assert change == BboChange(9, 1, "AAPL", 1_000_000, 100, 1_000_200, 180)


def test_execute_with_price_reduces_the_orders_level_whatever_the_execution_price():
    model = quoted_book()

    change = model.apply(execute_with_price(1, 40, price=990_000), 9)

    assert change == BboChange(9, 1, "AAPL", 1_000_000, 60, 1_000_200, 300)
    assert model.top_levels(1, BID, 5) == [(1_000_000, 60), (999_900, 200)]


def test_cancel_at_a_deeper_level_changes_depth_but_reports_nothing():
    model = quoted_book()

    change = model.apply(cancel(4, 100), 9)

    assert change is None
    assert model.top_levels(1, ASK, 2) == [(1_000_200, 300), (1_000_300, 300)]


def test_full_execution_empties_the_level_and_the_next_level_becomes_best():
    model = quoted_book()

    change = model.apply(execute(1, 100), 9)

    assert change == BboChange(9, 1, "AAPL", 999_900, 200, 1_000_200, 300)
    assert model.live_orders() == 3
    assert model.depth(1, "B") == 1


def test_delete_of_the_last_ask_leaves_an_empty_side():
    model = quoted_book()
    model.apply(delete(3), 9)

    change = model.apply(delete(4), 10)

    assert change == BboChange(10, 1, "AAPL", 1_000_000, 100, None, None)
    assert model.bbo(1) == Top(1_000_000, 100, None, None)


def test_deleting_every_order_reports_an_empty_book():
    model = quoted_book()

    changes = run(model, [delete(1), delete(2), delete(3), delete(4)], first_seq=9)

    assert changes[-1] == BboChange(12, 1, "AAPL", None, None, None, None)
    assert model.live_orders() == 0 and model.top_levels(1, "S", 5) == []


def test_replace_moves_the_order_to_the_new_price_on_the_same_side():
    model = quoted_book()

    change = model.apply(replace(2, 20, 500, 1_000_100), 9)

    assert change == BboChange(9, 1, "AAPL", 1_000_100, 500, 1_000_200, 300)
    assert model.top_levels(1, "B", 5) == [(1_000_100, 500), (1_000_000, 100)]


def test_replace_across_the_spread_stays_on_its_side_and_crosses_the_book():
    model = quoted_book()

    change = model.apply(replace(1, 21, 70, 1_000_300), 9)

    assert change == BboChange(9, 1, "AAPL", 1_000_300, 70, 1_000_200, 300)
    assert change.crossed and not change.locked
    assert model.top_levels(1, "S", 5) == [(1_000_200, 300), (1_000_300, 400)]


def test_bid_at_the_ask_price_gives_a_locked_book_flagged_crossed_as_on_the_wire():
    model = quoted_book()

    change = model.apply(add(5, "B", 10, 1_000_200), 9)

    assert change.locked and change.crossed
    assert not model.apply(delete(5), 10).crossed


def test_replaced_reference_is_gone_and_the_new_one_is_live():
    model = quoted_book()
    model.apply(replace(3, 30, 10, 1_000_200), 9)

    assert model.apply(delete(3), 10) is None
    change = model.apply(delete(30), 11)

    assert model.anomalies["unknown_reference"] == 1
    assert change == BboChange(11, 1, "AAPL", 1_000_000, 100, 1_000_300, 400)


def test_replace_that_leaves_the_top_unchanged_reports_nothing():
    model = quoted_book()

    assert model.apply(replace(4, 40, 400, 1_000_400), 9) is None


def test_change_of_best_size_only_is_reported():
    model = quoted_book()

    first = model.apply(add(5, "S", 1, 1_000_200), 9)
    second = model.apply(cancel(5, 1), 10)

    assert (first.ask_size, second.ask_size) == (301, 300)


def test_execution_then_add_restoring_the_same_top_is_reported_twice():
    model = quoted_book()

    changes = run(model, [execute(1, 100), add(5, "B", 100, 1_000_000)], first_seq=9)

    assert [c.bid_price for c in changes] == [999_900, 1_000_000]


def test_two_orders_of_max_shares_aggregate_above_32_bits():
    model = BookModel()
    model.apply(add(1, "B", 2**32 - 1, 500_000), 1)

    change = model.apply(add(2, "B", 2**32 - 1, 500_000), 2)

    assert change.bid_size == 2 * (2**32 - 1) > 2**32
    assert model.apply(execute(1, 2**32 - 1), 3).bid_size == 2**32 - 1


def test_highest_price_is_kept_exactly():
    model = BookModel()

    change = model.apply(add(1, "S", 100, PRICE4_HIGHEST), 1)

    assert change.ask_price == PRICE4_HIGHEST
    assert format_row(change) == "1,AAPL,,,199999.9900,100"


@pytest.mark.parametrize("msg", [execute(99, 1), execute_with_price(99, 1, 5), cancel(99, 1),
                                 delete(99), replace(99, 100, 1, 5)],
                         ids=["E", "C", "X", "D", "U"])
def test_message_for_an_unknown_reference_is_ignored_and_counted(msg):
    model = quoted_book()

    change = model.apply(msg, 9)

    assert change is None
    assert model.anomalies == {"unknown_reference": 1}
    assert model.live_orders() == 4 and model.apply(add(100, "B", 1, 1), 10) is None


def test_executing_more_than_remains_removes_the_order_and_is_counted():
    model = quoted_book()

    change = model.apply(execute(1, 101), 9)

    assert change == BboChange(9, 1, "AAPL", 999_900, 200, 1_000_200, 300)
    assert model.anomalies == {"excess_shares": 1}
    assert model.live_orders() == 3


def test_cancelling_more_than_remains_removes_only_what_remained():
    model = quoted_book()
    model.apply(add(5, "S", 50, 1_000_200), 9)

    change = model.apply(cancel(5, 10_000), 10)

    assert change.ask_size == 300
    assert model.anomalies["excess_shares"] == 1


def test_add_reusing_a_live_reference_is_ignored_and_counted():
    model = quoted_book()

    change = model.apply(add(1, "S", 5, 900_000), 9)

    assert change is None
    assert model.anomalies == {"duplicate_reference": 1}
    assert model.bbo(1) == Top(1_000_000, 100, 1_000_200, 300)


def test_add_with_a_bad_side_is_ignored_and_counted():
    model = BookModel()

    assert model.apply(add(1, "Q", 5, 900_000), 1) is None
    assert model.anomalies == {"bad_side": 1} and model.live_orders() == 0


def test_other_message_types_change_nothing():
    model = quoted_book()
    system_event = {"message_type": "S", "stock_locate": 0, "tracking_number": 0, "timestamp": 0,
                    "event_code": "O"}
    trade = {"message_type": "P", "stock_locate": 1, "tracking_number": 0, "timestamp": 0,
             "order_reference_number": 0, "buy_sell_indicator": "B", "shares": 100,
             "stock": "AAPL", "price": 1_000_100, "match_number": 5}

    assert model.apply(system_event, 9) is None
    assert model.apply(trade, 10) is None
    assert model.bbo(1) == Top(1_000_000, 100, 1_000_200, 300) and not model.anomalies


def test_locate_filter_ignores_other_symbols_without_counting():
    model = BookModel(locates={2})

    assert model.apply(add(1, "B", 10, 100, locate=1), 1) is None
    assert model.apply(execute(1, 10, locate=1), 2) is None
    change = model.apply(add(2, "B", 10, 100, locate=2, stock="IBM"), 3)

    assert change == BboChange(3, 2, "IBM", 100, 10, None, None)
    assert not model.anomalies and model.live_orders() == 1


def test_books_of_different_locates_are_independent():
    model = quoted_book()

    change = model.apply(add(5, "S", 7, 1_000_100, locate=2, stock="IBM"), 9)

    assert change == BboChange(9, 2, "IBM", None, None, 1_000_100, 7)
    assert model.bbo(1) == Top(1_000_000, 100, 1_000_200, 300)


# ------------------------------------------------------------------ random streams against a naive book

def _naive_top(orders, locate):
    bids, asks = {}, {}
    for loc, side, price, shares in orders.values():
        if loc == locate:
            levels = bids if side == "B" else asks
            levels[price] = levels.get(price, 0) + shares
    bp = max(bids) if bids else None
    ap = min(asks) if asks else None
    return (bp, bids.get(bp), ap, asks.get(ap))


def test_random_stream_matches_a_naive_book_recomputed_from_scratch():
    # Arrange: a seeded stream with few prices, so levels empty and refill and heaps go stale.
    rng = random.Random(20240501)
    orders = {}          # the naive book: ref -> (locate, side, price, shares)
    last_top = {}
    model = BookModel()
    next_ref = 1
    for seq in range(1, 6001):
        kind = rng.random()
        if kind < 0.45 or not orders:
            loc = rng.randint(1, 3)
            side = rng.choice("BS")
            price = rng.randint(1, 12) * 100 + (0 if side == "B" else 600)
            shares = rng.choice([1, 10, 100, 2**32 - 1])
            msg = add(next_ref, side, shares, price, locate=loc, stock=f"S{loc}")
            orders[next_ref] = (loc, side, price, shares)
            next_ref += 1
        else:
            ref = rng.choice(list(orders))
            loc, side, price, shares = orders[ref]
            op = rng.choice("ECXDU")
            if op in "ECX":
                take = rng.randint(1, shares)
                msg = (execute(ref, take, loc) if op == "E" else
                       execute_with_price(ref, take, 1, loc) if op == "C" else
                       cancel(ref, take, loc))
                if take == shares:
                    del orders[ref]
                else:
                    orders[ref] = (loc, side, price, shares - take)
            elif op == "D":
                msg = delete(ref, loc)
                del orders[ref]
            else:
                new_price = rng.randint(1, 18) * 100
                new_shares = rng.randint(1, 500)
                msg = replace(ref, next_ref, new_shares, new_price, loc)
                del orders[ref]
                orders[next_ref] = (loc, side, new_price, new_shares)
                next_ref += 1

        # Act
        change = model.apply(msg, seq)

        # Assert
        top = _naive_top(orders, loc)
        if top != last_top.get(loc, (None, None, None, None)):
            assert change == BboChange(seq, loc, f"S{loc}", *top), seq
            last_top[loc] = top
        else:
            assert change is None, seq
    assert model.live_orders() == len(orders) and not model.anomalies


# ------------------------------------------------------------------ crypto level updates

def test_level_updates_set_replace_and_delete_levels():
    model = BookModel(slot_names={3: "BTC-USDT"})

    first = model.apply_level(3, 0, 100, 5, seq=1)
    second = model.apply_level(3, FLAG_SELL, 105, 7, seq=2)
    third = model.apply_level(3, 0, 100, 9, seq=3)
    deeper = model.apply_level(3, 0, 99, 1, seq=4)
    gone = model.apply_level(3, FLAG_DELETE, 100, 0, seq=5)
    zero = model.apply_level(3, FLAG_SELL, 105, 0, seq=6)

    assert first == BboChange(1, 0, "BTC-USDT", 100, 5, None, None, slot=3)
    assert (second.ask_price, second.ask_size) == (105, 7)
    assert third.bid_size == 9 and deeper is None
    assert (gone.bid_price, gone.bid_size) == (99, 1)
    assert zero == BboChange(6, 0, "BTC-USDT", 99, 1, None, None, slot=3)


def test_snapshot_replaces_the_book_and_reports_once_at_its_end():
    model = BookModel()
    model.apply_level(1, 0, 100, 5, seq=1)
    model.apply_level(1, FLAG_SELL, 110, 5, seq=2)

    during = [model.apply_level(1, FLAG_SNAPSHOT_BEGIN, 98, 4, seq=3),
              model.apply_level(1, FLAG_SELL, 108, 6, seq=4)]
    end = model.apply_level(1, FLAG_SELL | FLAG_SNAPSHOT_END, 109, 2, seq=5)

    assert during == [None, None]
    assert end == BboChange(5, 0, "", 98, 4, 108, 6, slot=1)
    assert model.top_levels(SlotKey(1), "S", 5) == [(108, 6), (109, 2)]


def test_snapshot_equal_to_the_previous_top_reports_nothing():
    model = BookModel()
    model.apply_level(1, 0, 100, 5, seq=1)

    end = model.apply_level(1, FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END, 100, 5, seq=2)

    assert end is None


def test_deleting_an_absent_level_is_counted_and_changes_nothing():
    model = BookModel()
    model.apply_level(1, 0, 100, 5, seq=1)

    assert model.apply_level(1, FLAG_DELETE, 101, 0, seq=2) is None
    assert model.anomalies == {"absent_level_delete": 1}


def test_slot_books_do_not_share_a_namespace_with_locates():
    model = quoted_book()

    model.apply_level(1, 0, 5, 5, seq=9)

    assert model.bbo(1) == Top(1_000_000, 100, 1_000_200, 300)
    assert model.bbo(SlotKey(1)) == Top(5, 5, None, None)


def test_many_levels_churning_keep_the_best_exact():
    model = BookModel()
    rng = random.Random(7)
    live = {}
    for seq in range(1, 5001):
        price = rng.randint(1, 300)
        if price in live and rng.random() < 0.6:
            model.apply_level(2, FLAG_DELETE, price, 0, seq)
            del live[price]
        else:
            live[price] = rng.randint(1, 1000)
            model.apply_level(2, 0, price, live[price], seq)
        best = max(live) if live else None
        assert model.bbo(SlotKey(2)).bid_price == best
    assert model.top_levels(SlotKey(2), BID, 10) == sorted(live.items(), reverse=True)[:10]


def test_bad_side_argument_of_a_query_is_refused_with_its_value():
    model = quoted_book()

    with pytest.raises(ValueError, match="'X'"):
        model.top_levels(1, "X", 1)


# ------------------------------------------------------------------ CSV

@pytest.mark.parametrize("price, text", [(1_234_500, "123.4500"), (1, "0.0001"), (0, "0.0000"),
                                         (10_000, "1.0000"), (PRICE4_HIGHEST, "199999.9900"),
                                         (2**32 - 1, "429496.7295")])
def test_price_is_formatted_with_four_places_exactly(price, text):
    assert format_price(price) == text


def test_format_price_refuses_a_float():
    with pytest.raises(ValueError, match="1.5"):
        format_price(1.5)


def test_rows_leave_an_empty_side_as_empty_fields():
    rows = [format_row(BboChange(5, 1, "AAPL", None, None, 1_000_200, 300)),
            format_row(BboChange(6, 1, "AAPL", 1_000_000, 2**33, None, None)),
            format_row(BboChange(7, 1, "AAPL", None, None, None, None))]

    assert rows == ["5,AAPL,,,100.0200,300",
                    "6,AAPL,100.0000,8589934592,,",
                    "7,AAPL,,,,"]


def test_write_csv_to_a_path_and_to_a_file_gives_the_same_exact_text(tmp_path):
    changes = [BboChange(2, 1, "AAPL", 1_000_000, 100, None, None),
               BboChange(3, 1, "AAPL", 1_000_000, 100, 1_000_100, 50)]
    expected = (HEADER + "\n2,AAPL,100.0000,100,,\n3,AAPL,100.0000,100,100.0100,50\n")
    buf = io.StringIO()

    write_csv(changes, tmp_path / "bbo.csv")
    write_csv(changes, buf)

    assert (tmp_path / "bbo.csv").read_bytes() == expected.encode()
    assert buf.getvalue() == expected == csv_text(changes)


def _framed(messages):
    from host.feed.itch import encode_message
    out = bytearray()
    for m in messages:
        raw = encode_message(m)
        out += len(raw).to_bytes(2, "big") + raw
    return bytes(out)


def _full(msg):
    """Complete a hand-built dict with the fields the encoder needs."""
    defaults = {
        "R": dict(market_category="Q", financial_status_indicator="N", round_lot_size=100,
                  round_lots_only="N", issue_classification="C", issue_sub_type="Z",
                  authenticity="P", short_sale_threshold_indicator="N", ipo_flag="N",
                  luld_reference_price_tier="1", etp_flag="N", etp_leverage_factor=0,
                  inverse_indicator="N"),
    }
    return {**msg, **defaults.get(msg["message_type"], {})}


def test_model_csv_for_a_framed_file_numbers_rows_by_message_index():
    pytest.importorskip("host.feed.itch")
    buf = _framed([_full(directory(1, "AAPL")), add(1, "B", 100, 1_000_000),
                   add(2, "B", 50, 999_900), add(3, "S", 300, 1_000_200), execute(1, 100),
                   execute_with_price(3, 300, 1_000_100)])

    text = model_csv_for_file(buf)

    assert text == (HEADER + "\n"
                    "2,AAPL,100.0000,100,,\n"
                    "4,AAPL,100.0000,100,100.0200,300\n"
                    "5,AAPL,99.9900,50,100.0200,300\n"
                    "6,AAPL,99.9900,50,,\n")


def test_undecodable_and_truncated_messages_are_counted_and_keep_the_numbering():
    pytest.importorskip("host.feed.itch")
    good = _framed([add(1, "B", 100, 1_000_000)])
    buf = b"\x00\x03zzz" + good + b"\x00\x24\x41\x00"

    changes, model = model_changes_for_file(buf)

    assert [c.seq for c in changes] == [2]
    assert model.anomalies == {"undecodable_message": 1, "truncated_frame": 1}


def test_sample_day_admin_messages_give_a_header_only_csv():
    sample = DATA / "itch50" / "sample.itch"
    if not sample.exists():
        pytest.skip(f"public sample data absent: {sample}")
    pytest.importorskip("host.feed.itch")

    changes, model = model_changes_for_file(sample.read_bytes())

    assert changes == [] and not model.anomalies
    assert len(model.symbols) == 993


def test_side_levels_count_orders_per_level_and_below_the_window():
    # Arrange: bids at 100 (two orders), 99, 98 (two orders); one of the 100s fully executed
    model = BookModel()
    for ref, shares, price in [(1, 10, 100), (2, 5, 100), (3, 7, 99), (4, 1, 98), (5, 2, 98),
                               (6, 3, 100)]:
        model.apply(add(ref, "B", shares, price), ref)
    model.apply(execute(2, 5), 7)

    # Act
    held, below = model.side_levels(1, BID, 2)

    # Assert
    assert held == [(100, 13, 2), (99, 7, 1)]
    assert below == 2
    assert model.side_levels(1, ASK, 2) == ([], 0)


def test_side_levels_of_a_crypto_book_count_one_order_per_level():
    model = BookModel()
    for price in (10, 11, 12):
        model.apply_level(3, FLAG_SELL, price, 5, price)

    assert model.side_levels(SlotKey(3), ASK, 1) == ([(10, 5, 1)], 2)
