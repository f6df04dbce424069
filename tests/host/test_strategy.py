"""Strategies: built-in logic, evaluator agreement, hot reload with queued intents."""

import logging
import os
import textwrap

import numpy as np
import pytest

from hdl.wire import BBO_UPDATE
from host.ml.train import synthetic_bbo
from host.strategy import (ImbalanceMomentum, MarketMaker, MlSignal, OpenOrder,
                           ProcessPoolEvaluator, SerialEvaluator, Strategy, StrategyContext,
                           StrategyError, StrategyHost, StrategySpec, VectorisedEvaluator,
                           empty_context, make_evaluator)
from host.strategy.engine import SERIAL_BELOW
from host.strategy.builtin import RowKernel
from host.types import OrderIntent, OrderKind, Side


def _book(slot, bid, ask, bid_size=100, ask_size=100, flags=3):
    batch = BBO_UPDATE.array(1)
    batch["slot"], batch["bid_price"], batch["ask_price"] = slot, bid, ask
    batch["bid_size"], batch["ask_size"], batch["flags"] = bid_size, ask_size, flags
    return batch


def _mixed_strategies():
    out = []
    for i in range(9):
        out.append(MarketMaker(name=f"mm{i}", slot=i % 3, half_spread_ticks=i % 3,
                               skew_unit=40 + 10 * i, quote_qty=100, max_position=400))
        out.append(ImbalanceMomentum(name=f"imb{i}", slot=i % 3, threshold_bp=500 + 400 * i,
                                     max_position=300))
        out.append(MlSignal(name=f"ml{i}", slot=i % 3, buy_above=0.55 + 0.03 * i,
                            sell_below=0.3))
    return out


def _contexts():
    rng = np.random.default_rng(11)
    for k in range(200):
        positions = {s: int(rng.integers(-500, 500)) for s in range(3)}
        orders = tuple(OpenOrder(client_order_id=100 + j, strategy=f"{p}{j}", slot=j % 3,
                                 side=Side(int(rng.integers(0, 2))),
                                 price=int(rng.integers(9_990, 10_010)) * 100, quantity=100)
                       for j in range(9) for p in ("mm", "imb") if rng.random() < 0.4)
        yield StrategyContext(now_ns=k, positions=positions, open_orders=orders)


# -- built-in strategies ------------------------------------------------------------------

def test_market_maker_quotes_on_tick_grid_around_mid_when_flat():
    mm = MarketMaker(name="mm", slot=1, tick_size=100, quote_qty=50, half_spread_ticks=2)

    intents = mm.on_bbo(_book(1, 1_000_000, 1_000_300), empty_context())

    assert intents == [
        OrderIntent(strategy="mm", slot=1, side=Side.BUY, price=999_900, quantity=50),
        OrderIntent(strategy="mm", slot=1, side=Side.SELL, price=1_000_400, quantity=50),
    ]


def test_market_maker_long_inventory_skews_both_quotes_down():
    mm = MarketMaker(name="mm", slot=0, tick_size=100, half_spread_ticks=3, skew_unit=100)
    flat = mm.on_bbo(_book(0, 1_000_000, 1_000_200), empty_context())

    long = mm.on_bbo(_book(0, 1_000_000, 1_000_200), StrategyContext(positions={0: 250}))

    assert [i.price for i in long] == [i.price - 200 for i in flat]


def test_market_maker_never_locks_the_book_with_zero_half_spread():
    mm = MarketMaker(name="mm", slot=0, tick_size=100, half_spread_ticks=0)

    bid, ask = mm.on_bbo(_book(0, 1_000_000, 1_000_100), StrategyContext(positions={0: -900}))

    assert bid.price <= 1_000_000 and ask.price >= 1_000_100


def test_market_maker_replaces_moved_quote_and_cancels_side_at_position_limit():
    mm = MarketMaker(name="mm", slot=0, tick_size=100, quote_qty=100, half_spread_ticks=1,
                     max_position=100)
    ctx = StrategyContext(positions={0: 100}, open_orders=(
        OpenOrder(client_order_id=7, strategy="mm", slot=0, side=Side.BUY, price=990_000,
                  quantity=100),
        OpenOrder(client_order_id=8, strategy="mm", slot=0, side=Side.SELL, price=1, quantity=100),
    ))

    intents = mm.on_bbo(_book(0, 1_000_000, 1_000_200), ctx)

    assert [(i.kind, i.side, i.target) for i in intents] == [
        (OrderKind.CANCEL, Side.BUY, 7), (OrderKind.REPLACE, Side.SELL, 8)]


def test_market_maker_leaves_quotes_alone_on_one_sided_book():
    mm = MarketMaker(name="mm", slot=0)

    assert mm.on_bbo(_book(0, 1_000_000, 0, flags=1), empty_context()) == []


def test_imbalance_momentum_buys_ioc_at_ask_when_bids_dominate_and_mid_rises():
    strategy = ImbalanceMomentum(name="imb", slot=0, quantity=10, threshold_bp=3000)
    strategy.on_bbo(_book(0, 1_000_000, 1_000_100, 100, 100), empty_context())

    intents = strategy.on_bbo(_book(0, 1_000_100, 1_000_200, 900, 100), empty_context())

    assert intents == [OrderIntent(strategy="imb", slot=0, side=Side.BUY, price=1_000_200,
                                   quantity=10, ioc=True)]


def test_imbalance_momentum_stays_out_against_falling_mid():
    strategy = ImbalanceMomentum(name="imb", slot=0, threshold_bp=3000)
    strategy.on_bbo(_book(0, 1_000_100, 1_000_200), empty_context())

    assert strategy.on_bbo(_book(0, 1_000_000, 1_000_100, 900, 100), empty_context()) == []


@pytest.mark.parametrize("kind,target,ioc", [(OrderKind.NEW, 0, False),
                                             (OrderKind.REPLACE, 41, False),
                                             (OrderKind.CANCEL, 7, False),
                                             (OrderKind.NEW, 0, True)])
def test_quick_intent_equals_the_keyword_constructors_and_stays_frozen(kind, target, ioc):
    # Act
    quick = OrderIntent.quick("mm-1", 3, Side.SELL, 1_000_100, 200, kind, target, ioc)
    full = OrderIntent(strategy="mm-1", slot=3, side=Side.SELL, price=1_000_100, quantity=200,
                       kind=kind, target=target, ioc=ioc)

    # Assert: every field, equality, hash and immutability
    assert quick == full and hash(quick) == hash(full) and repr(quick) == repr(full)
    with pytest.raises(AttributeError):
        quick.price = 1


def test_context_answers_open_order_lookups_without_a_scan():
    orders = [OpenOrder(client_order_id=1, strategy="a", slot=2, side=Side.BUY, price=10,
                        quantity=5),
              OpenOrder(client_order_id=2, strategy="b", slot=2, side=Side.SELL, price=11,
                        quantity=5)]
    ctx = StrategyContext(open_orders=orders)

    assert ctx.has_open_orders("a", 2) and ctx.has_open_orders("b", 2)
    assert not ctx.has_open_orders("a", 3) and not ctx.has_open_orders("c", 2)
    assert [bool(ctx.orders_of(s, slot)) for s, slot in (("a", 2), ("a", 3), ("b", 2))] == [
        ctx.has_open_orders(s, slot) for s, slot in (("a", 2), ("a", 3), ("b", 2))]


def test_context_lookup_gives_the_first_of_several_open_orders_on_a_side():
    def order(coid, side):
        return OpenOrder(client_order_id=coid, strategy="a", slot=1, side=side, price=coid,
                         quantity=5)
    ctx = StrategyContext(open_orders=[order(7, Side.SELL), order(3, Side.BUY),
                                       order(5, Side.SELL), order(1, Side.BUY)])

    assert ctx.open_order("a", 1, Side.SELL).client_order_id == 7
    assert ctx.open_order("a", 1, Side.BUY).client_order_id == 3
    assert ctx.open_order("a", 2, Side.BUY) is None


def test_context_at_another_time_shares_the_books_and_leaves_the_original():
    orders = [OpenOrder(client_order_id=1, strategy="a", slot=2, side=Side.BUY, price=10,
                        quantity=5)]
    ctx = StrategyContext(now_ns=5, positions={2: 100}, open_orders=orders)

    later = ctx.at(9)

    assert ctx.at(5) is ctx
    assert (later.now_ns, ctx.now_ns) == (9, 5)
    assert later == StrategyContext(now_ns=9, positions={2: 100}, open_orders=orders)
    assert later.open_order("a", 2, Side.BUY) is orders[0] and later.has_open_orders("a", 2)
    with pytest.raises(AttributeError):
        later.now_ns = 1


def test_quick_open_order_equals_the_keyword_constructor_and_stays_frozen():
    quick = OpenOrder.quick(12, "mm-1", 3, Side.SELL, 1_000_100, 200)
    full = OpenOrder(client_order_id=12, strategy="mm-1", slot=3, side=Side.SELL,
                     price=1_000_100, quantity=200)

    assert quick == full and hash(quick) == hash(full) and repr(quick) == repr(full)
    with pytest.raises(AttributeError):
        quick.price = 1


def test_bad_parameter_is_refused_with_its_value():
    with pytest.raises(ValueError, match=r"tick_size must be an int >= 1, got 0"):
        MarketMaker(name="mm", slot=0, tick_size=0)


def test_context_positions_cannot_be_written_by_a_strategy():
    ctx = StrategyContext(positions={0: 5})

    with pytest.raises(TypeError):
        ctx.positions[0] = 6  # type: ignore[index]


# -- evaluators ---------------------------------------------------------------------------

@pytest.mark.parametrize("vector_from", [1, 10**9], ids=["numpy-pass", "per-row"])
def test_vectorised_evaluator_gives_same_intents_as_serial_on_random_stream(vector_from,
                                                                           monkeypatch):
    # Arrange: kernels in either mode (one numpy pass over all instances, or row by row)
    monkeypatch.setattr(RowKernel, "VECTOR_FROM", vector_from)
    records = synthetic_bbo(200 * 48, slots=3, seed=21)
    serial = SerialEvaluator(_mixed_strategies())
    vectorised = VectorisedEvaluator(_mixed_strategies())
    seen = []

    # Act / Assert
    for k, ctx in enumerate(_contexts()):
        batch = records[k * 48:(k + 1) * 48]
        expected = serial.evaluate(batch, ctx)
        assert vectorised.evaluate(batch, ctx) == expected, f"batch {k}"
        seen.extend(expected)
    # The comparison covered every kind of intent and every strategy class.
    assert {i.kind for i in seen} == set(OrderKind)
    assert {i.strategy[:2] for i in seen} == {"mm", "im", "ml"}


class _TimedQuoter(MarketMaker):
    """A market maker that also asks for one buy on every timer tick."""

    def on_timer(self, now_ns, ctx):
        return [OrderIntent(strategy=self.name, slot=self.slot, side=Side.BUY, price=now_ns,
                            quantity=1)]


@pytest.mark.parametrize("kind", ["serial", "vectorised"])
def test_timer_ticks_reach_every_strategy_that_overrides_on_timer_in_order(kind):
    strategies = [MarketMaker(name="mm0", slot=0), _TimedQuoter(name="t1", slot=1),
                  ImbalanceMomentum(name="imb2", slot=0), _TimedQuoter(name="t3", slot=2)]

    intents = make_evaluator(strategies, kind).on_timer(4_200, empty_context())

    assert [(i.strategy, i.slot, i.price) for i in intents] == [("t1", 1, 4_200),
                                                                ("t3", 2, 4_200)]


def test_process_pool_evaluator_gives_same_intents_as_serial():
    records = synthetic_bbo(30 * 32, slots=3, seed=4)
    serial = SerialEvaluator(_mixed_strategies())

    with ProcessPoolEvaluator(_mixed_strategies(), workers=2) as pool:
        for k, ctx in zip(range(30), _contexts()):
            batch = records[k * 32:(k + 1) * 32]
            assert pool.evaluate(batch, ctx) == serial.evaluate(batch, ctx), f"batch {k}"


def test_auto_evaluator_is_vectorised_for_many_strategies_and_serial_for_few():
    many = make_evaluator(_mixed_strategies())
    few = make_evaluator(_mixed_strategies()[:SERIAL_BELOW - 1])

    assert isinstance(many, VectorisedEvaluator)
    assert type(few) is SerialEvaluator


def test_duplicate_strategy_names_are_refused():
    with pytest.raises(ValueError, match="repeated"):
        SerialEvaluator([MarketMaker(name="x", slot=0), MarketMaker(name="x", slot=1)])


def test_raising_strategy_is_reported_by_name():
    class Broken(Strategy):
        def on_bbo(self, batch, ctx):
            raise ZeroDivisionError("boom")

    with pytest.raises(StrategyError, match=r"'broken'\.on_bbo raised ZeroDivisionError"):
        VectorisedEvaluator([Broken(name="broken")]).evaluate(_book(0, 1, 2), empty_context())


@pytest.mark.parametrize("kind", ["serial", "vectorised"])
def test_strategy_returning_one_intent_instead_of_a_list_is_refused(kind):
    class Bare(Strategy):
        def on_bbo(self, batch, ctx):
            return OrderIntent(strategy=self.name, slot=0, side=Side.BUY, price=1, quantity=1)

    evaluator = make_evaluator([Bare(name="bare"), MarketMaker(name="mm", slot=0)], kind)
    with pytest.raises(StrategyError, match=r"'bare'\.on_bbo returned one OrderIntent"):
        evaluator.evaluate(_book(0, 1_000_000, 1_000_200), empty_context())


# -- hot reload ---------------------------------------------------------------------------

_MODULE = """
from host.strategy.api import Strategy
from host.types import OrderIntent, Side

VERSION = {version}

class Echo(Strategy):
    def __init__(self, *, name, slot=0):
        super().__init__(name=name)
        self.slot = slot
        self.batches = 0

    def export_state(self):
        return {{"batches": self.batches}}

    def import_state(self, state):
        self.batches = state["batches"]

    def on_bbo(self, batch, ctx):
        self.batches += 1
        return [OrderIntent(strategy=self.name, slot=self.slot, side=Side.BUY,
                            price=100 * self.batches, quantity=VERSION)]
"""


def _write_module(path, text):
    path.write_text(textwrap.dedent(text))
    st = os.stat(path)
    # Move mtime forward explicitly: two writes within the file system's timestamp
    # granularity would otherwise look unchanged.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_reload_between_batches_keeps_queued_intents_exactly_once(tmp_path):
    # Arrange: two batches of version-1 intents queued and not drained
    path = tmp_path / "echo_strategy.py"
    _write_module(path, _MODULE.format(version=1))
    host = StrategyHost([StrategySpec(module=str(path), class_name="Echo", name="echo")])
    ctx = empty_context()
    host.on_bbo(_book(0, 1, 2), ctx)
    host.on_bbo(_book(0, 1, 2), ctx)

    # Act: the module changes, the next batch runs version 2
    _write_module(path, _MODULE.format(version=2))
    host.on_bbo(_book(0, 1, 2), ctx)
    drained = host.drain_intents()

    # Assert: old intents once each, then the new version's, state carried over
    assert host.reloads == 1 and host.last_error is None
    assert [(i.quantity, i.price) for i in drained] == [(1, 100), (1, 200), (2, 300)]
    assert host.pending == 0


def test_reload_with_syntax_error_keeps_old_version_running_and_reports(tmp_path, caplog):
    path = tmp_path / "echo_strategy.py"
    _write_module(path, _MODULE.format(version=1))
    host = StrategyHost([StrategySpec(module=str(path), class_name="Echo", name="echo")])
    host.on_bbo(_book(0, 1, 2), empty_context())

    _write_module(path, _MODULE.format(version=3) + "\ndef broken(:\n")
    with caplog.at_level(logging.ERROR, logger="ticklane.strategy"):
        host.on_bbo(_book(0, 1, 2), empty_context())
        host.on_bbo(_book(0, 1, 2), empty_context())

    assert [(i.quantity, i.price) for i in host.drain_intents()] == [(1, 100), (1, 200),
                                                                      (1, 300)]
    assert host.reload_failures == 1  # the same bad file is not retried every batch
    assert "SyntaxError" in host.last_error
    assert "old version kept" in caplog.text
    # Fixing the file brings the new version in.
    _write_module(path, _MODULE.format(version=4))
    host.on_bbo(_book(0, 1, 2), empty_context())
    assert host.drain_intents()[0].quantity == 4 and host.last_error is None


def test_reload_that_drops_the_class_keeps_old_version(tmp_path):
    path = tmp_path / "echo_strategy.py"
    _write_module(path, _MODULE.format(version=1))
    host = StrategyHost([StrategySpec(module=str(path), class_name="Echo", name="echo")])

    _write_module(path, "X = 1\n")
    host.on_bbo(_book(0, 1, 2), empty_context())

    assert host.drain_intents()[0].quantity == 1
    assert "not a Strategy subclass" in host.last_error


def test_strategy_host_builds_builtins_from_dotted_module_and_config_params():
    specs = [StrategySpec(module="host.strategy.builtin", class_name="MarketMaker",
                          params={"slot": 0, "half_spread_ticks": 1})]

    with StrategyHost(specs) as host:
        queued = host.on_bbo(_book(0, 1_000_000, 1_000_200), empty_context())

    assert queued == 2 and host.strategies[0].name == "MarketMaker#0"
