"""Built-in strategies, each with a per-instance ``on_bbo`` and a vectorised kernel.

The kernel of a class evaluates many instances in one numpy pass over a shared
:class:`~host.strategy.summary.BatchSummary`, with the instances' parameters as arrays. It must
give exactly the intents that the instances' own ``on_bbo`` calls would give, in the same
order; the tests compare both on random streams.

All price arithmetic is integer (int64): quotes are multiples of ``tick_size``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from host.ml.features import FeatureExtractor
from host.ml.model import DEFAULT_MODEL_PATH, shared_model
from host.strategy.api import (BOTH_VALID, Strategy, StrategyContext, quote_side_intents)
from host.strategy.summary import BatchSummary, last_record_for_slot
from host.types import OrderIntent, OrderKind, Side

__all__ = ["MarketMaker", "ImbalanceMomentum", "MlSignal", "Kernel", "RowKernel"]


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _trunc_div(a, b):
    """Integer division rounding toward zero (floor division rounds a short position away)."""
    return np.sign(a) * (np.abs(a) // b)


class Kernel:
    """Evaluates a group of instances of one strategy class in one pass.

    Parameters
    ----------
    strategies : list of Strategy
        Instances of the same class, in evaluation order.
    """

    def __init__(self, strategies: list[Strategy]):
        self.strategies = list(strategies)
        self.names = [s.name for s in self.strategies]
        self.slot = np.array([s.slot for s in self.strategies], np.int64)

    def evaluate(self, summary: BatchSummary, ctx: StrategyContext) -> list[list[OrderIntent]]:
        """Intents of each instance (one list per strategy, aligned with ``strategies``)."""
        raise NotImplementedError

    def _positions(self, ctx: StrategyContext) -> np.ndarray:
        return np.fromiter((ctx.position(int(s)) for s in self.slot), np.int64, self.slot.size)


class RowKernel(Kernel):
    """A kernel whose instances can also decide from their slot's last record alone.

    Two ways to evaluate all instances, giving the instances' own ``on_bbo`` intents:

    * :meth:`evaluate_rows`: each instance decides from its slot's row in plain integers (the
      instances' ``on_row``, or the same decision with the lookups hoisted out of the loop),
      sharing the one pass over the batch;
    * :meth:`evaluate_vector`: one numpy pass over all instances, their parameters as arrays.

    A numpy call costs about a microsecond whatever the size of its arrays, a pass makes a few
    dozen, and both ways still build every intent in Python, which is most of the work: per
    row was faster up to 1,024 instances of each of two classes and even at 2,048
    (host/strategy/README.md). So the numpy pass is used only from :attr:`VECTOR_FROM`
    instances when that is set.
    """

    #: Instances of a class from which the numpy pass is used; None: never (the measured
    #: default).
    VECTOR_FROM: int | None = None

    def __init__(self, strategies: list[Strategy]):
        super().__init__(strategies)
        self.vector = (self.VECTOR_FROM is not None
                       and len(self.strategies) >= self.VECTOR_FROM)

    def evaluate(self, summary, ctx):
        if self.vector:
            return self.evaluate_vector(summary, ctx)
        return self.evaluate_rows(summary, ctx)

    def evaluate_rows(self, summary: BatchSummary,
                      ctx: StrategyContext) -> list[list[OrderIntent]]:
        """Each instance's ``on_row`` from its slot's row; a subclass may hoist lookups."""
        rows = summary.rows()
        return [s.on_row(rows.get(s.slot), ctx) for s in self.strategies]

    def evaluate_vector(self, summary: BatchSummary,
                        ctx: StrategyContext) -> list[list[OrderIntent]]:
        raise NotImplementedError


def _row_of(rec) -> tuple[int, int, int, int, int] | None:
    if rec is None:
        return None
    return (int(rec["bid_price"]), int(rec["ask_price"]), int(rec["bid_size"]),
            int(rec["ask_size"]), int(rec["flags"]))


# ------------------------------------------------------------------------------------------
# Market maker
# ------------------------------------------------------------------------------------------

def _mm_quotes(bid, ask, pos, tick, half_spread_ticks, skew_unit, quote_qty, max_position):
    """Quote prices and whether to quote each side; works on ints and on int64 arrays alike."""
    skew_ticks = _trunc_div(pos, skew_unit)
    # Twice the fair price, so that an odd bid + ask stays an exact integer.
    fair2 = bid + ask - 2 * skew_ticks * tick
    bid_q = ((fair2 - 2 * half_spread_ticks * tick) // (2 * tick)) * tick
    ask_q = -((-(fair2 + 2 * half_spread_ticks * tick)) // (2 * tick)) * tick
    # Never lock or cross the market: a quote that would trade is not a quote.
    bid_q = np.minimum(bid_q, ((ask - 1) // tick) * tick)
    ask_q = np.maximum(ask_q, -((-(bid + 1)) // tick) * tick)
    want_bid = (pos + quote_qty <= max_position) & (bid_q > 0)
    want_ask = pos - quote_qty >= -max_position
    return bid_q, ask_q, want_bid, want_ask


def _mm_params(mm: "MarketMaker") -> tuple:
    """What :func:`_mm_decide` needs of an instance, with its constants worked out once: name,
    slot, tick, 2 * tick, 2 * half_spread_ticks * tick, skew_unit, quote_qty, max_position and
    its open-order keys on either side."""
    return (mm.name, mm.slot, mm.tick_size, 2 * mm.tick_size,
            2 * mm.half_spread_ticks * mm.tick_size, mm.skew_unit, mm.quote_qty, mm.max_position,
            (mm.name, mm.slot, Side.BUY), (mm.name, mm.slot, Side.SELL))


def _mm_decide(params: list[tuple], rows, position, first_open) -> list[list[OrderIntent]]:
    """Market makers' intents, one list per instance of ``params`` (:func:`_mm_params`), from
    their slots' rows in Python integers: :func:`_mm_quotes`'s arithmetic, then on each side
    what :func:`quote_side_intents` does, written in the loop. This is each instance's
    ``on_row`` and the row kernel's whole batch: one loop over the instances, its lookups bound
    once (calls per instance cost a fifth of the strategy stage with 32 strategies).

    ``rows`` maps slot to row, ``position`` is ``StrategyContext.positions.get`` and
    ``first_open`` ``StrategyContext.first_open.get``.
    """
    out: list[list[OrderIntent]] = []
    quick, cancel, replace = OrderIntent.quick, OrderKind.CANCEL, OrderKind.REPLACE
    for name, slot, tick, tick2, half2, skew_unit, qty, max_pos, buy_key, sell_key in params:
        row = rows.get(slot)
        if row is None or row[4] & BOTH_VALID != BOTH_VALID or row[0] >= row[1]:
            out.append([])  # one-sided or crossed book: no fair price, leave quotes alone
            continue
        bid, ask = row[0], row[1]
        pos = position(slot, 0)
        skew_ticks = pos // skew_unit if pos >= 0 else -(-pos // skew_unit)
        fair2 = bid + ask - 2 * skew_ticks * tick     # twice the fair price: exact for odd sums
        bid_q = min((fair2 - half2) // tick2 * tick, (ask - 1) // tick * tick)
        ask_q = max(-(-(fair2 + half2) // tick2) * tick, -(-(bid + 1) // tick) * tick)
        intents = []
        for key, want, price in ((buy_key, pos + qty <= max_pos and bid_q > 0, bid_q),
                                 (sell_key, pos - qty >= -max_pos, ask_q)):
            existing = first_open(key)
            if existing is None:
                if want:
                    intents.append(quick(name, slot, key[2], price, qty))
            elif not want:
                intents.append(quick(name, slot, key[2], existing.price, existing.quantity,
                                     cancel, existing.client_order_id))
            elif existing.price != price or existing.quantity != qty:
                intents.append(quick(name, slot, key[2], price, qty, replace,
                                     existing.client_order_id))
        out.append(intents)
    return out


class MarketMaker(Strategy):
    """Two-sided quotes around the BBO mid, skewed against inventory.

    The fair price is the mid moved by one tick against the position per ``skew_unit`` held
    (long: quote lower, to sell). Quotes sit ``half_spread_ticks`` from it on the tick grid,
    never at or through the opposite best. A side is pulled when one more fill there would
    exceed ``max_position``. Resting quotes are replaced when their price changes.

    Parameters
    ----------
    name : str
    slot : int
        Symbol slot to quote.
    tick_size : int
        Price increment in integer price units (100 = one cent at ITCH Price(4)).
    quote_qty : int
        Size of each quote.
    half_spread_ticks : int
        Distance of each quote from the fair price, in ticks (>= 0).
    skew_unit : int
        Position that shifts the fair price by one tick.
    max_position : int
        Absolute position limit the quotes respect.
    """

    def __init__(self, *, name: str, slot: int, tick_size: int = 100, quote_qty: int = 100,
                 half_spread_ticks: int = 1, skew_unit: int = 100, max_position: int = 1000):
        super().__init__(name=name)
        self.slot = _positive_int("slot", slot, 0)
        self.tick_size = _positive_int("tick_size", tick_size)
        self.quote_qty = _positive_int("quote_qty", quote_qty)
        self.half_spread_ticks = _positive_int("half_spread_ticks", half_spread_ticks, 0)
        self.skew_unit = _positive_int("skew_unit", skew_unit)
        self.max_position = _positive_int("max_position", max_position, 0)

    def on_bbo(self, batch: np.ndarray, ctx: StrategyContext) -> list[OrderIntent]:
        return self.on_row(_row_of(last_record_for_slot(batch, self.slot)), ctx)

    def on_row(self, row: tuple[int, int, int, int, int] | None,
               ctx: StrategyContext) -> list[OrderIntent]:
        """Decide from the slot's last record of the batch (:meth:`BatchSummary.row`)."""
        return _mm_decide([_mm_params(self)], {self.slot: row}, ctx.positions.get,
                          ctx.first_open.get)[0]


class _MarketMakerKernel(RowKernel):
    def __init__(self, strategies):
        super().__init__(strategies)
        col = lambda attr: np.array([getattr(s, attr) for s in strategies], np.int64)  # noqa: E731
        self.tick = col("tick_size")
        self.qty = col("quote_qty")
        self.half = col("half_spread_ticks")
        self.skew_unit = col("skew_unit")
        self.max_pos = col("max_position")
        self._params = [_mm_params(s) for s in strategies]

    def evaluate_rows(self, summary, ctx):
        return _mm_decide(self._params, summary.rows(), ctx.positions.get, ctx.first_open.get)

    def evaluate_vector(self, summary, ctx):
        out: list[list[OrderIntent]] = [[] for _ in self.strategies]
        present, idx = summary.locate(self.slot)
        bid, ask = summary.bid_price[idx], summary.ask_price[idx]
        active = present & ((summary.flags[idx] & BOTH_VALID) == BOTH_VALID) & (bid < ask)
        if not active.any():
            return out
        pos = self._positions(ctx)
        bid_q, ask_q, want_bid, want_ask = _mm_quotes(
            bid, ask, pos, self.tick, self.half, self.skew_unit, self.qty, self.max_pos)
        bid_l, ask_l = bid_q.tolist(), ask_q.tolist()
        wb, wa, qty = want_bid.tolist(), want_ask.tolist(), self.qty.tolist()
        for i in np.flatnonzero(active).tolist():
            name, slot = self.names[i], int(self.slot[i])
            out[i] = (quote_side_intents(name, slot, Side.BUY, wb[i], bid_l[i], qty[i],
                                         ctx.open_order(name, slot, Side.BUY))
                      + quote_side_intents(name, slot, Side.SELL, wa[i], ask_l[i], qty[i],
                                           ctx.open_order(name, slot, Side.SELL)))
        return out


MarketMaker.kernel = _MarketMakerKernel


# ------------------------------------------------------------------------------------------
# Order-book imbalance with momentum confirmation
# ------------------------------------------------------------------------------------------

def _imbalance_bp(bid_size, ask_size):
    total = bid_size + ask_size
    return (bid_size - ask_size) * 10_000 // np.maximum(total, 1), total


class ImbalanceMomentum(Strategy):
    """Take liquidity when size imbalance and the mid's move since the last batch agree.

    Buys ``quantity`` IOC at the best ask when the imbalance
    ``(bid_size - ask_size) / (bid_size + ask_size)`` is at least ``threshold_bp`` basis points
    and the mid has not fallen since this slot's previous batch; sells at the best bid in the
    mirror case. It stays out while it has any order open on the slot, and respects
    ``max_position``.

    Parameters
    ----------
    name : str
    slot : int
    quantity : int
    threshold_bp : int
        Imbalance threshold in basis points (1..10000).
    max_position : int
    """

    def __init__(self, *, name: str, slot: int, quantity: int = 100, threshold_bp: int = 3000,
                 max_position: int = 1000):
        super().__init__(name=name)
        self.slot = _positive_int("slot", slot, 0)
        self.quantity = _positive_int("quantity", quantity)
        self.threshold_bp = _positive_int("threshold_bp", threshold_bp)
        if self.threshold_bp > 10_000:
            raise ValueError(f"threshold_bp must be <= 10000, got {threshold_bp!r}")
        self.max_position = _positive_int("max_position", max_position, 0)
        self.prev_mid2 = 0  # doubled mid at this slot's previous batch; 0 = none yet

    def export_state(self) -> dict:
        return {"prev_mid2": self.prev_mid2}

    def import_state(self, state: dict) -> None:
        self.prev_mid2 = int(state.get("prev_mid2", 0))

    def on_bbo(self, batch: np.ndarray, ctx: StrategyContext) -> list[OrderIntent]:
        return self.on_row(_row_of(last_record_for_slot(batch, self.slot)), ctx)

    def on_row(self, row: tuple[int, int, int, int, int] | None,
               ctx: StrategyContext) -> list[OrderIntent]:
        """Decide from the slot's last record of the batch (:meth:`BatchSummary.row`)."""
        return _momentum_decide([self], {self.slot: row}, ctx.positions.get,
                                ctx.first_open)[0]


def _momentum_decide(strategies, rows, position, first_open) -> list[list[OrderIntent]]:
    """Imbalance strategies' intents, one list per instance, from their slots' rows; each
    instance's previous mid is updated. This is each instance's ``on_row`` and the row
    kernel's whole batch (one loop, its lookups bound once).

    ``rows`` maps slot to row, ``position`` is ``StrategyContext.positions.get`` and
    ``first_open`` :attr:`StrategyContext.first_open`.
    """
    out: list[list[OrderIntent]] = []
    buy_side, sell_side = Side.BUY, Side.SELL
    for s in strategies:
        name, slot = s.name, s.slot
        row = rows.get(slot)
        if row is None or row[4] & BOTH_VALID != BOTH_VALID:
            out.append([])
            continue
        bid, ask, bid_size, ask_size, _ = row
        mid2 = bid + ask
        delta = mid2 - s.prev_mid2 if s.prev_mid2 else 0
        s.prev_mid2 = mid2
        total = bid_size + ask_size
        if (total == 0 or (name, slot, buy_side) in first_open
                or (name, slot, sell_side) in first_open):
            out.append([])   # no size, or an order of ours still open on the slot
            continue
        out.append(_momentum_intent(name, slot, (bid_size - ask_size) * 10_000 // total, delta,
                                    position(slot, 0), s.threshold_bp, s.quantity,
                                    s.max_position, bid, ask))
    return out


def _momentum_intent(name, slot, imb, delta, pos, threshold, qty, max_pos, bid, ask):
    if imb >= threshold and delta >= 0 and pos + qty <= max_pos:
        return [OrderIntent.quick(name, slot, Side.BUY, ask, qty, ioc=True)]
    if imb <= -threshold and delta <= 0 and pos - qty >= -max_pos:
        return [OrderIntent.quick(name, slot, Side.SELL, bid, qty, ioc=True)]
    return []


class _MomentumKernel(RowKernel):
    def __init__(self, strategies):
        super().__init__(strategies)
        self.qty = np.array([s.quantity for s in strategies], np.int64)
        self.threshold = np.array([s.threshold_bp for s in strategies], np.int64)
        self.max_pos = np.array([s.max_position for s in strategies], np.int64)
        self.prev_mid2 = np.array([s.prev_mid2 for s in strategies], np.int64)

    def evaluate_rows(self, summary, ctx):
        return _momentum_decide(self.strategies, summary.rows(), ctx.positions.get,
                                ctx.first_open)

    def evaluate_vector(self, summary, ctx):
        out: list[list[OrderIntent]] = [[] for _ in self.strategies]
        present, idx = summary.locate(self.slot)
        active = present & ((summary.flags[idx] & BOTH_VALID) == BOTH_VALID)
        if not active.any():
            return out
        bid, ask = summary.bid_price[idx], summary.ask_price[idx]
        mid2 = bid + ask
        delta = np.where(self.prev_mid2 != 0, mid2 - self.prev_mid2, 0)
        self.prev_mid2 = np.where(active, mid2, self.prev_mid2)
        imb, total = _imbalance_bp(summary.bid_size[idx], summary.ask_size[idx])
        buy = active & (imb >= self.threshold) & (delta >= 0)
        sell = active & (imb <= -self.threshold) & (delta <= 0)
        candidates = np.flatnonzero((buy | sell) & (total > 0))
        # Keep the instances' own state in step, so switching evaluators loses nothing.
        for i in np.flatnonzero(active).tolist():
            self.strategies[i].prev_mid2 = int(self.prev_mid2[i])
        if candidates.size == 0:
            return out
        pos = self._positions(ctx)
        for i in candidates.tolist():
            name, slot = self.names[i], int(self.slot[i])
            if ctx.has_open_orders(name, slot):
                continue
            out[i] = _momentum_intent(name, slot, int(imb[i]), int(delta[i]), int(pos[i]),
                                      int(self.threshold[i]), int(self.qty[i]),
                                      int(self.max_pos[i]), int(bid[i]), int(ask[i]))
        return out


ImbalanceMomentum.kernel = _MomentumKernel


# ------------------------------------------------------------------------------------------
# ML signal
# ------------------------------------------------------------------------------------------

class MlSignal(Strategy):
    """Trade the ONNX model's probability that the slot's mid goes up next.

    Buys ``quantity`` IOC at the best ask when ``p_up >= buy_above``, sells at the best bid
    when ``p_up <= sell_below``; stays out while it has an order open on the slot. The model
    sees float32 features; order prices come from the integer BBO.

    Parameters
    ----------
    name : str
    slot : int
    quantity : int
    buy_above, sell_below : float
        Probability thresholds, ``0 <= sell_below < buy_above <= 1``.
    max_position : int
    model : str
        ONNX file; empty means the shipped ``host/ml/model.onnx``.
    """

    def __init__(self, *, name: str, slot: int, quantity: int = 100, buy_above: float = 0.7,
                 sell_below: float = 0.3, max_position: int = 1000, model: str = ""):
        super().__init__(name=name)
        self.slot = _positive_int("slot", slot, 0)
        self.quantity = _positive_int("quantity", quantity)
        if not 0.0 <= sell_below < buy_above <= 1.0:
            raise ValueError(f"need 0 <= sell_below < buy_above <= 1, got "
                             f"{sell_below!r}, {buy_above!r}")
        self.buy_above = float(buy_above)
        self.sell_below = float(sell_below)
        self.max_position = _positive_int("max_position", max_position, 0)
        self.model_path = str(Path(model) if model else DEFAULT_MODEL_PATH)
        self._features = FeatureExtractor()
        self._model = shared_model(self.model_path)

    def __getstate__(self):
        # An onnxruntime session cannot be pickled; a worker process opens its own.
        state = dict(self.__dict__)
        state.pop("_model")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._model = shared_model(self.model_path)

    def on_bbo(self, batch: np.ndarray, ctx: StrategyContext) -> list[OrderIntent]:
        self._model.maybe_reload()
        hits = np.flatnonzero(batch["slot"] == self.slot)
        rows = [int(hits[-1])] if hits.size else []
        features, valid = self._features.update_rows(batch, rows)   # state advances always
        if not rows or not valid[0]:
            return []
        last = rows[0]
        p = float(self._model.predict(features)[0])
        if ctx.has_open_orders(self.name, self.slot):
            return []
        return _ml_intent(self.name, self.slot, p, ctx.position(self.slot), self.buy_above,
                          self.sell_below, self.quantity, self.max_position,
                          int(batch["bid_price"][last]), int(batch["ask_price"][last]))


def _ml_intent(name, slot, p, pos, buy_above, sell_below, qty, max_pos, bid, ask):
    if p >= buy_above and pos + qty <= max_pos:
        return [OrderIntent(strategy=name, slot=slot, side=Side.BUY, price=ask, quantity=qty,
                            ioc=True)]
    if p <= sell_below and pos - qty >= -max_pos:
        return [OrderIntent(strategy=name, slot=slot, side=Side.SELL, price=bid, quantity=qty,
                            ioc=True)]
    return []


class _MlKernel(Kernel):
    """All ML instances share one feature pass and one model call per model file."""

    def __init__(self, strategies):
        super().__init__(strategies)
        self._features = FeatureExtractor()
        self.models = [shared_model(s.model_path) for s in strategies]
        self.slots = [s.slot for s in strategies]

    def evaluate(self, summary, ctx):
        out: list[list[OrderIntent]] = [[] for _ in self.strategies]
        last = summary.last
        rows = sorted({last[slot] for slot in self.slots if slot in last})
        # The features advance every batch (each slot's previous mid), used or not.
        features, valid = self._features.update_rows(summary.batch, rows)
        at = {r: k for k, r in enumerate(rows) if valid[k]}
        by_model: dict[int, list[tuple[int, int]]] = {}
        for i, slot in enumerate(self.slots):
            r = last.get(slot)
            if r is not None and r in at:
                by_model.setdefault(id(self.models[i]), []).append((i, at[r]))
        for members in by_model.values():
            model = self.models[members[0][0]]
            model.maybe_reload()
            p = model.predict(features[[k for _, k in members]]).tolist()
            for (i, _), p_up in zip(members, p):
                s, slot = self.strategies[i], self.slots[i]
                if ctx.has_open_orders(s.name, slot):
                    continue
                bid, ask = summary.row(slot)[:2]
                out[i] = _ml_intent(s.name, slot, p_up, ctx.position(slot), s.buy_above,
                                    s.sell_below, s.quantity, s.max_position, bid, ask)
        return out


MlSignal.kernel = _MlKernel
