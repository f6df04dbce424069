"""The seeded ITCH order-flow generator (sim.gen.itchgen), checked by an independent replay."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import pytest

from host.feed.framing import frame_historical, scan_historical
from host.feed.itch import MESSAGE_SPECS, PRICE4_MAX, decode_message, encode_message
from sim.gen.itchgen import EDGE_TOP_PRICE, ItchFlowGenerator, generate, generate_messages


@dataclass
class Replay:
    """What replaying a stream found; any rule broken is listed in ``violations``."""
    counts: collections.Counter = field(default_factory=collections.Counter)
    violations: list[str] = field(default_factory=list)
    live: dict = field(default_factory=dict)  # ref -> [locate, side, price, shares]
    max_live: int = 0
    locked: int = 0
    crossed: int = 0
    replace_across: int = 0
    emptied_levels: int = 0
    same_order_same_ns: int = 0
    prices: set = field(default_factory=set)
    shares: set = field(default_factory=set)


def replay(messages: list[bytes], n_symbols: int) -> Replay:
    """Apply the stream to a book written here, independently of the generator."""
    r = Replay()
    bad = r.violations.append
    used_refs: set[int] = set()
    matches: set[int] = set()
    levels = collections.defaultdict(collections.Counter)  # (locate, side) -> price -> orders
    last_ts = -1
    prev_ref, prev_ts = None, None

    def best(locate, side):
        lv = levels[(locate, side)]
        if not lv:
            return None
        return max(lv) if side == "B" else min(lv)

    def check_cross(i, locate):
        bid, ask = best(locate, "B"), best(locate, "S")
        if bid is not None and ask is not None:
            if bid == ask:
                r.locked += 1
            elif bid > ask:
                r.crossed += 1

    def add(i, ref, locate, side, price, shares):
        if ref in used_refs:
            bad(f"#{i}: order reference {ref} reused")
        used_refs.add(ref)
        if not 1 <= price <= PRICE4_MAX:
            bad(f"#{i}: price {price} outside Price(4) range")
        if shares < 1:
            bad(f"#{i}: add of {shares} shares")
        r.live[ref] = [locate, side, price, shares]
        levels[(locate, side)][price] += 1
        r.prices.add(price)
        r.shares.add(shares)
        r.max_live = max(r.max_live, len(r.live))

    def remove(ref):
        locate, side, price, _ = r.live.pop(ref)
        lv = levels[(locate, side)]
        lv[price] -= 1
        if lv[price] == 0:
            del lv[price]
            r.emptied_levels += 1

    def target(i, d, key="order_reference_number"):
        ref = d[key]
        if ref not in r.live:
            bad(f"#{i}: {d['message_type']} on order {ref} that is not live")
            return None
        if r.live[ref][0] != d["stock_locate"]:
            bad(f"#{i}: {d['message_type']} locate {d['stock_locate']} != order's {r.live[ref][0]}")
        return ref

    for i, raw in enumerate(messages):
        d = decode_message(raw)
        t = d["message_type"]
        r.counts[t] += 1
        if d["timestamp"] < last_ts:
            bad(f"#{i}: timestamp went back")
        last_ts = d["timestamp"]
        if i == 0 and (t, d["event_code"]) != ("S", "O"):
            bad("stream does not start with the start-of-messages event")
        if 1 <= i <= n_symbols and (t != "R" or d["stock_locate"] != i):
            bad(f"#{i}: expected the Stock Directory of locate {i}")
        if t in "AF":
            add(i, d["order_reference_number"], d["stock_locate"], d["buy_sell_indicator"],
                d["price"], d["shares"])
            check_cross(i, d["stock_locate"])
        elif t in "ECX":
            ref = target(i, d)
            n = d["cancelled_shares" if t == "X" else "executed_shares"]
            if ref is not None:
                if not 1 <= n <= r.live[ref][3]:
                    bad(f"#{i}: {t} of {n} shares on an order with {r.live[ref][3]}")
                r.live[ref][3] -= n
                if r.live[ref][3] <= 0:
                    remove(ref)
            if t in "EC":
                if d["match_number"] in matches:
                    bad(f"#{i}: match number reused")
                matches.add(d["match_number"])
        elif t == "D":
            ref = target(i, d)
            if ref is not None:
                remove(ref)
        elif t == "U":
            ref = target(i, d, "original_order_reference_number")
            if ref is not None:
                locate, side = r.live[ref][0], r.live[ref][1]
                remove(ref)
                other = best(locate, "S" if side == "B" else "B")
                if other is not None and (d["price"] >= other if side == "B" else d["price"] <= other):
                    r.replace_across += 1
                add(i, d["new_order_reference_number"], locate, side, d["price"], d["shares"])
                check_cross(i, locate)
        elif t in "PQ":
            if d["match_number"] in matches:
                bad(f"#{i}: match number reused")
            matches.add(d["match_number"])
        elif t == "B" and d["match_number"] not in matches:
            bad(f"#{i}: broken trade of unknown match {d['match_number']}")
        ref = d.get("order_reference_number", d.get("original_order_reference_number"))
        if t in "ECXDU" and ref == prev_ref and d["timestamp"] == prev_ts:
            r.same_order_same_ns += 1
        if t in "AFU":
            prev_ref = d.get("order_reference_number", d.get("new_order_reference_number"))
        elif t in "ECXD":
            prev_ref = ref
        prev_ts = d["timestamp"]
    return r


# ------------------------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    a = generate(11, 3000, edge_cases=True)
    b = generate(11, 3000, edge_cases=True)
    c = generate(12, 3000, edge_cases=True)
    assert a == b
    assert a != c


def test_generate_is_the_framed_message_list_and_frames_cleanly():
    msgs = generate_messages(3, 500)
    buf = generate(3, 500)
    assert buf == frame_historical(msgs)
    offsets, err = scan_historical(buf)
    assert err is None and len(offsets) == 500


def test_stream_starts_with_s_and_one_directory_per_symbol_with_padded_tickers():
    msgs = generate_messages(5, 40, n_symbols=12)
    assert msgs[0][0] == ord("S")
    dirs = [decode_message(m) for m in msgs[1:13]]
    assert [d["stock_locate"] for d in dirs] == list(range(1, 13))
    assert dirs[0]["stock"] == "AAPL" and msgs[1][11:19] == b"AAPL    "
    assert len({d["stock"] for d in dirs}) == 12


def test_normal_flow_is_valid_and_never_locks_or_crosses():
    msgs = generate_messages(1, 20_000, n_symbols=8)
    r = replay(msgs, 8)
    assert r.violations == []
    assert (r.locked, r.crossed) == (0, 0)
    assert r.counts["E"] > 100 and r.counts["X"] > 100 and r.counts["U"] > 100


def test_every_message_type_appears_in_a_long_enough_stream():
    msgs = generate_messages(2, 30_000)
    counts = collections.Counter(chr(m[0]) for m in msgs)
    assert set(counts) == set(MESSAGE_SPECS)


@pytest.mark.parametrize("seed", [4, 5])
def test_edge_cases_stay_valid_and_cover_every_scenario(seed):
    msgs = generate_messages(seed, 25_000, n_symbols=6, edge_cases=True)
    r = replay(msgs, 6)
    assert r.violations == []
    assert 1 in r.prices
    assert any(p >= EDGE_TOP_PRICE for p in r.prices)
    assert 2**32 - 1 in r.shares
    assert r.locked > 0 and r.crossed > 0
    assert r.replace_across > 0
    assert r.emptied_levels > 0
    assert r.same_order_same_ns >= 20  # plain flow has a handful at most, by chance


def test_types_restriction_emits_only_those_types():
    msgs = generate_messages(6, 2000, types="RA")
    assert {chr(m[0]) for m in msgs} == {"S", "R", "A"}
    msgs = generate_messages(6, 3000, types="AEXD", edge_cases=True)
    assert {chr(m[0]) for m in msgs} == {"S", "R", "A", "E", "X", "D"}
    assert replay(msgs, 8).violations == []


@pytest.mark.parametrize("types,match", [
    ("E", "A or F must be allowed"),
    ("AB", "B breaks a printed match"),
    ("Az", "ITCH message types"),
    ("", "ITCH message types"),
])
def test_impossible_type_sets_are_refused(types, match):
    with pytest.raises(ValueError, match=match):
        generate(1, 100, types=types)


def test_too_few_messages_for_the_preamble_is_refused():
    with pytest.raises(ValueError, match="shorter than the preamble"):
        generate(1, 5, n_symbols=8)


def test_thousands_of_live_orders_across_many_symbols_match_the_replay():
    # Arrange
    gen = ItchFlowGenerator(9, n_symbols=300, target_live_orders=4000)
    # Act
    msgs = gen.messages(30_000)
    r = replay(msgs, 300)
    # Assert: the book is large, valid, and the generator's own accounting agrees with it
    assert r.violations == []
    assert r.max_live >= 4000
    assert len(r.live) == len(gen.live_orders)
    assert {ref: (o.locate, o.side, o.price, o.shares) for ref, o in gen.live_orders.items()} \
        == {ref: tuple(v) for ref, v in r.live.items()}
    assert len({v[0] for v in r.live.values()}) > 250


def test_edge_case_stream_continues_validly_across_calls_and_accounting_stays_exact():
    gen = ItchFlowGenerator(13, n_symbols=4, edge_cases=True, target_live_orders=300)
    msgs = []
    for n in (1000, 7, 13, 2000, 1, 3000):
        msgs += gen.messages(n)
        r = replay(msgs, 4)
        assert len(msgs) == r.counts.total()
        assert r.violations == []
        assert set(r.live) == set(gen.live_orders)


def test_max_live_orders_caps_the_book():
    gen = ItchFlowGenerator(10, types="AD", target_live_orders=50, max_live_orders=60)
    r = replay(gen.messages(5000), 8)
    assert r.violations == [] and r.max_live <= 60


def test_replay_catches_an_execution_of_a_dead_order():
    # The validator itself must be able to fail: delete an order, then execute it.
    msgs = generate_messages(7, 200, types="AD")
    dead = next(decode_message(m) for m in msgs if m[0] == ord("D"))
    bogus = encode_message({"message_type": "E", "stock_locate": dead["stock_locate"],
                            "tracking_number": 0, "timestamp": dead["timestamp"] + 10**9,
                            "order_reference_number": dead["order_reference_number"],
                            "executed_shares": 1, "match_number": 1})
    assert any("not live" in v for v in replay(msgs + [bogus], 8).violations)
