"""The daemon and its order path on the Verilated top.

A build holding 2 levels per side, fed deep books over few symbols, flags symbols for a refill
often. The strategies must only ever see the reference model's BBO, record for record, and the
gateware's levels must be reloaded through the link's ``refill_in`` stream. The gate must hold a
replaced order open beside its replacement until the host releases it.
"""

from __future__ import annotations

import numpy as np
import pytest

from hdl import wire
from hdl.top import Top
from host.daemon import Daemon, demo_config
from host.link.sim import SimLink
from host.oms.order import OrderState
from sim.gen.itchgen import generate
from sim.model.bbo_csv import model_changes_for_file, model_csv_for_file

_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
_REFILL = wire.BBO_UPDATE.flag("flags", "refill")


@pytest.fixture(scope="module")
def small():
    # the build tests/test_replay.py uses: 16 slots, 2 levels per side (cached once for both)
    with SimLink(Top(slots=16, levels=2)) as link:
        yield link


def _rows(batch: np.ndarray) -> list[tuple]:
    out = []
    for r in batch.tolist():
        seq, bid_p, ask_p, bid_s, ask_s, _, _, _, flags, locate, _ = r
        out.append((seq, locate,
                    bid_p if flags & _BID_VALID else None, bid_s if flags & _BID_VALID else None,
                    ask_p if flags & _ASK_VALID else None, ask_s if flags & _ASK_VALID else None))
    return out


def daemon_orders(daemon):
    return list(daemon.orders_at_stop.values())


def _run(link, buf, tmp_path, *, slots=16, batch=64):
    daemon = Daemon(demo_config(journal_dir=str(tmp_path / "journal")), link, feed=buf,
                    slots=slots, batch_messages=batch, bbo_csv=tmp_path / "bbo.csv")
    seen: list[np.ndarray] = []
    on_bbo = daemon.strategies.on_bbo

    def spy(records, ctx):
        seen.append(records.copy())
        return on_bbo(records, ctx)

    daemon.strategies.on_bbo = spy
    oms = daemon.session.oms
    summary = daemon.run()
    daemon.orders_at_stop = oms.orders
    return daemon, summary, seen


def test_strategies_see_the_model_bbo_while_the_gateware_needs_refills(small, tmp_path):
    # Arrange: few symbols, deep books; 2 levels held per side
    buf = generate(21, 12_000, n_symbols=6, target_live_orders=300)
    expected = [(c.seq, c.locate, c.bid_price, c.bid_size, c.ask_price, c.ask_size)
                for c in model_changes_for_file(buf)[0]]

    # Act
    daemon, summary, seen = _run(small, buf, tmp_path)

    # Assert: record for record the reference model's, no flagged record ever seen
    got = np.concatenate(seen)
    assert not np.any(got["flags"] & _REFILL)
    assert _rows(got) == expected
    assert (tmp_path / "bbo.csv").read_text() == model_csv_for_file(buf)
    # The refill path ran through the link and the gateware took the levels back
    assert summary.refill_flagged > 10 and summary.refills_sent > 10
    assert summary.refills_cleared > 10 and summary.refills_abandoned == 0
    counters = small.counters()
    assert counters["BOOK_REFILLS_APPLIED"] == summary.refills_sent
    assert counters["BOOK_REFILLS_STALE"] == 0 and counters["BOOK_REFILLS_REJECTED"] == 0
    assert summary.bbo_host > 0 and summary.bbo_hardware > summary.bbo_host
    assert summary.bbo_hardware + summary.bbo_host == summary.bbo_records == len(expected)
    # Quote replaces went through the Verilated gate as REPLACE; every target was released
    assert any(o.state is OrderState.REPLACED for o in daemon_orders(daemon))
    assert counters["RISK_OPEN_ORDERS"] == 0 and counters["RISK_FILLS_UNKNOWN"] == 0
    metric = daemon.metrics.registry.get_sample_value
    assert metric("ticklane_book_refills_total", {"event": "sent"}) == summary.refills_sent
    assert metric("ticklane_book_refills_total", {"event": "flagged"}) == summary.refill_flagged


def test_refills_with_symbols_beyond_the_slots_and_one_message_batches(small, tmp_path):
    # Arrange: more symbols than slots (host-booked) and deep books, batches of 7 messages
    buf = generate(5, 4_000, n_symbols=20, target_live_orders=200)

    # Act
    _, summary, seen = _run(small, buf, tmp_path, batch=7)

    # Assert
    expected = [(c.seq, c.locate, c.bid_price, c.bid_size, c.ask_price, c.ask_size)
                for c in model_changes_for_file(buf)[0]]
    assert _rows(np.concatenate(seen)) == expected
    assert (tmp_path / "bbo.csv").read_text() == model_csv_for_file(buf)
    assert summary.refills_sent > 0


@pytest.fixture(scope="module")
def default_build():
    with SimLink(Top(slots=256)) as link:
        yield link


def test_symbols_lost_to_a_full_order_table_stay_with_the_host_book(default_build, tmp_path):
    # Arrange: adds only over 32 symbols: the 8,192-order table fills and its symbols are lost
    buf = generate(9, 20_000, n_symbols=32, types="AF")

    # Act
    _, summary, seen = _run(default_build, buf, tmp_path, slots=256)

    # Assert: the host's book carries them, exactly; their refills were refused, then not retried
    expected = [(c.seq, c.locate, c.bid_price, c.bid_size, c.ask_price, c.ask_size)
                for c in model_changes_for_file(buf)[0]]
    assert _rows(np.concatenate(seen)) == expected
    assert (tmp_path / "bbo.csv").read_text() == model_csv_for_file(buf)
    counters = default_build.counters()
    assert counters["BOOK_TABLE_FULL"] > 0 and counters["BOOK_SYMBOLS_LOST"] > 0
    assert summary.refills_abandoned == counters["BOOK_SYMBOLS_LOST"]
    assert counters["BOOK_REFILLS_REJECTED"] == summary.refills_sent
    assert summary.refills_sent == 2 * summary.refills_abandoned
    # records of the book's slots beyond the gate's do not reach it: nothing was dropped there
    assert (np.concatenate(seen)["slot"] >= wire.RISK_SLOTS).any()
    assert counters["RISK_DROPPED"] == 0


def _gate_requests(*rows):
    reqs = wire.ORDER_REQUEST.array(len(rows))
    for rec, (coid, kind, orig, qty) in zip(reqs, rows):
        rec["client_order_id"], rec["kind"], rec["orig_client_order_id"] = coid, kind, orig
        rec["price"], rec["quantity"], rec["slot"] = 1_000_000, qty, 0
    return reqs


def _decide(link, *rows):
    link.send("order_in", _gate_requests(*rows))
    assert link.run().drained
    link.receive("order_out")
    return [(int(v["client_order_id"]), int(v["reasons"])) for v in link.receive("verdict_out")]


def test_verilated_gate_holds_a_replaced_order_open_until_the_host_releases_it(small):
    # Arrange: the gate with max long 500 on slot 0, no collar (no market data here)
    from host.config import RiskConfig
    from host.daemon import gate_registers
    small.power_on()
    for name, index, value in gate_registers(RiskConfig(max_position=500), {}):
        small.write_reg(name, value, index)
    small.write_reg("RISK_COLLAR_CONFIG", 0)
    small.write_reg("RISK_KILL", 0)
    small.write_reg("RISK_COMMIT", 1)
    new, replace = wire.ORDER_KIND_NEW, wire.ORDER_KIND_REPLACE
    limit = 1 << wire.RISK_REASONS.index("POSITION_LIMIT")
    unknown = 1 << wire.RISK_REASONS.index("UNKNOWN_ORDER")

    # Act / Assert: a buy of 300 rests; replacing it counts the target beside the replacement
    assert _decide(small, (1, new, 0, 300)) == [(1, 0)]
    # (order 4 replaces an order the gate never saw, and would also pass the limit)
    assert _decide(small, (2, replace, 1, 250), (3, replace, 1, 200), (4, replace, 99, 10)) == \
        [(2, limit), (3, 0), (4, unknown | limit)]
    # Target and replacement both open (300 + 200): another 100 would pass 500 ...
    assert _decide(small, (5, new, 0, 100)) == [(5, limit)]
    # ... until the venue's "replaced" reaches the gate as a release of the target
    release = wire.FILL.array(1)
    release["client_order_id"], release["flags"] = 1, wire.FILL.flag("flags", "done")
    small.send("fill_in", release)
    assert small.run().drained
    assert _decide(small, (6, new, 0, 300)) == [(6, 0)]
    assert small.read_reg("RISK_OPEN_ORDERS") == 2   # orders 3 and 6
