"""The paper venue: a deterministic local matching simulator, the default venue.

It fills our orders against the replayed market, of which it sees only the top of book
(``wire.BBO_UPDATE`` records). Our orders are not in the replayed book, so the market never
reacts to them; the rules below estimate what would have happened.

Rules
-----
* Latency: a request submitted at venue time ``t`` arrives at ``t + latency_ns``. Arrivals due at
  or before a BBO update's time are processed before that update; arrivals at equal times in
  submission order.
* On arrival a new order is acknowledged (or rejected: a post-only order that would cross, a
  reused client order id, a zero price or quantity). A buy priced at or above the best
  ask takes liquidity at the ask, up to the displayed ask size; a sell at or below the best bid
  likewise. Liquidity we took at a price stays taken while that price remains the best, so two of
  our orders cannot both take the same displayed size.
* Immediate-or-cancel remainders are cancelled at once; fill-or-kill orders fill completely from
  the displayed size or are cancelled without a fill.
* A remainder rests at its limit. Resting at the best price it joins the queue behind the
  displayed size there (the queue-position estimate ``ahead``); improving the best price it is
  first in a new level (``ahead = 0``); behind the best price its queue is unknown until its
  level becomes the best, when the displayed size is taken as the volume ahead (conservative).
* A decrease of the displayed size at our level is taken as volume traded from the front of the
  queue: it consumes the volume ahead of our orders first, then our orders in time order.
* When our level disappears with the best price moving through it, the level traded through:
  every resting order at that price fills completely at its limit.
* When the opposite best comes to or through a resting order's limit, the order takes liquidity
  as on arrival, at the opposite best price.
* Among our own orders: price-time priority (best price first, then arrival order).
* A replace names its target and carries the replacement's own client order id, price and
  quantity (the quantity it leaves open; what the target filled before the replace arrived
  stays filled). It is rejected when its target is no longer working (``UNKNOWN_ORDER``), when
  it would change the side (``INVALID``) or, post-only, would cross; the target is then left
  as it was. Otherwise the venue acknowledges the replacement and reports the target
  ``Replaced``. As on NASDAQ, a replace that keeps the price and does not increase the open
  quantity keeps the target's place in the queue (time priority and the volume estimated ahead);
  one that changes the price or increases the quantity loses it and arrives as a new order
  would: it may take liquidity, and it rests at the back of its level.

All prices and quantities are integers. Given the same calls with the same arguments the venue
produces the same events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from hdl import wire
from host.types import Fill, OrderKind, Side
from host.venue.events import Ack, Cancelled, Reject, Replaced, VenueEvent, VenueRejectReason

__all__ = ["PaperVenueConfig", "PaperVenue", "WorkingOrder"]

_REQ_SELL = wire.ORDER_REQUEST.flag("flags", "sell")
_REQ_IOC = wire.ORDER_REQUEST.flag("flags", "ioc")
_REQ_FOK = wire.ORDER_REQUEST.flag("flags", "fok")
_REQ_POST_ONLY = wire.ORDER_REQUEST.flag("flags", "post_only")
_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
_BBO_FIELDS = ["bid_price", "ask_price", "bid_size", "ask_size", "slot", "flags"]


@dataclass(frozen=True, kw_only=True)
class PaperVenueConfig:
    """Paper venue settings.

    Parameters
    ----------
    latency_ns : int
        Venue time between a request's submission and its arrival at the venue, nanoseconds.
        Default 0 (requests arrive when submitted).
    """

    latency_ns: int = 0

    def __post_init__(self):
        if not isinstance(self.latency_ns, int) or self.latency_ns < 0:
            raise ValueError(f"PaperVenueConfig.latency_ns must be a non-negative integer, "
                             f"got {self.latency_ns!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "PaperVenueConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"PaperVenueConfig has no field(s) {unknown!r}; "
                             f"known fields are {sorted(known)!r}")
        return cls(**values)


@dataclass(slots=True, kw_only=True)
class WorkingOrder:
    """One of our orders resting at the paper venue.

    Attributes
    ----------
    ahead : int or None
        Estimated market volume ahead of the order in its level's queue; None while the level
        is behind the best price and has never been seen.
    behind_top : bool
        The market's best price has been at or better than our limit since arrival (so our
        level is part of the market's book and can trade through).
    """

    client_order_id: int
    slot: int
    side: Side
    price: int
    quantity: int
    filled: int = 0
    arrival: int = 0
    ahead: int | None = 0
    behind_top: bool = False

    @property
    def leaves(self) -> int:
        return self.quantity - self.filled


@dataclass(slots=True)
class _Top:
    bid: int = 0
    ask: int = 0
    bid_size: int = 0
    ask_size: int = 0
    bid_valid: bool = False
    ask_valid: bool = False
    # Displayed size we already took at the current best price of each side: (price, quantity).
    taken_bid: tuple[int, int] = (0, 0)
    taken_ask: tuple[int, int] = (0, 0)

    def copy(self) -> "_Top":
        return _Top(self.bid, self.ask, self.bid_size, self.ask_size, self.bid_valid,
                    self.ask_valid, self.taken_bid, self.taken_ask)


@dataclass(order=True, slots=True)
class _Pending:
    arrival_ns: int
    seq: int
    request: dict = field(compare=False)


class PaperVenue:
    """A matching simulator for our orders against the replayed top of book.

    Parameters
    ----------
    config : PaperVenueConfig, optional

    Attributes
    ----------
    now_ns : int
        Venue time of the last call.
    counters : dict of str to int
    """

    def __init__(self, config: PaperVenueConfig | None = None):
        self.config = config if config is not None else PaperVenueConfig()
        self.now_ns = 0
        self._pending: list[_Pending] = []
        self._submitted = 0
        self._arrivals = 0
        self._seen_ids: set[int] = set()
        self._working: dict[int, WorkingOrder] = {}
        # The same orders by slot, so that a BBO update looks only at its own slot's orders.
        self._by_slot: dict[int, dict[int, WorkingOrder]] = {}
        self._tops: dict[int, _Top] = {}
        self.counters = {"requests": 0, "acks": 0, "rejects": 0, "cancels": 0, "replaced": 0,
                         "fills": 0, "filled_quantity": 0, "bbo_updates": 0}

    # ----------------------------------------------------------------------------------------
    def submit(self, requests: np.ndarray, now_ns: int) -> list[VenueEvent]:
        """Send order requests (``wire.ORDER_REQUEST.dtype``) at venue time ``now_ns``.

        Returns
        -------
        list of VenueEvent
            Events of every arrival due by ``now_ns`` (with zero latency, these requests').
        """
        requests = _records(requests, wire.ORDER_REQUEST)
        self._clock(now_ns)
        for r in requests:
            req = {name: int(r[name]) for name in ("client_order_id", "orig_client_order_id",
                                                   "price", "quantity", "slot", "kind", "flags")}
            self._pending.append(_Pending(now_ns + self.config.latency_ns, self._submitted, req))
            self._submitted += 1
            self.counters["requests"] += 1
        self._pending.sort()
        return self._arrive_until(now_ns)

    def advance(self, now_ns: int) -> list[VenueEvent]:
        """Move venue time to ``now_ns`` and process the arrivals due by then."""
        self._clock(now_ns)
        return self._arrive_until(now_ns)

    def on_bbo(self, records: np.ndarray, now_ns: int) -> list[VenueEvent]:
        """Apply market top-of-book updates (``wire.BBO_UPDATE.dtype``) at venue time ``now_ns``.

        Arrivals due by ``now_ns`` are processed first, then each update in order, each followed
        by matching of our resting orders of its slot.
        """
        records = _records(records, wire.BBO_UPDATE)
        self._clock(now_ns)
        events = self._arrive_until(now_ns)
        # Only slots where we rest orders need the previous top and the matching pass; fills
        # only ever remove orders, so the set cannot grow during the batch.
        resting = {slot for slot, orders in self._by_slot.items() if orders}
        tops = self._tops
        # One list per column: a multi-field view of a structured array costs more to make
        # than the whole batch's columns.
        for bid, ask, bid_size, ask_size, slot, flags in zip(
                *(records[name].tolist() for name in _BBO_FIELDS)):
            top = tops.get(slot)
            if top is None:
                top = tops[slot] = _Top()
            prev = top.copy() if slot in resting else None
            top.bid_valid = bool(flags & _BID_VALID)
            top.ask_valid = bool(flags & _ASK_VALID)
            top.bid, top.bid_size = bid, bid_size
            top.ask, top.ask_size = ask, ask_size
            if not (top.bid_valid and top.bid == top.taken_bid[0]):
                top.taken_bid = (0, 0)
            if not (top.ask_valid and top.ask == top.taken_ask[0]):
                top.taken_ask = (0, 0)
            if prev is not None:
                self._match_resting(slot, prev, events)
        self.counters["bbo_updates"] += len(records)
        return events

    def working_orders(self, slot: int | None = None) -> list[WorkingOrder]:
        """Our resting orders, in arrival order (a replacement that kept its place, at it)."""
        return sorted((o for o in self._working.values() if slot is None or o.slot == slot),
                      key=lambda o: o.arrival)

    # ----------------------------------------------------------------------------------------
    def _clock(self, now_ns: int) -> None:
        if now_ns < self.now_ns:
            raise ValueError(f"venue time went backwards: {now_ns} ns after {self.now_ns} ns")
        self.now_ns = now_ns

    def _arrive_until(self, now_ns: int) -> list[VenueEvent]:
        events: list[VenueEvent] = []
        n = 0
        while n < len(self._pending) and self._pending[n].arrival_ns <= now_ns:
            p = self._pending[n]
            self._arrive(p.request, p.arrival_ns, events)
            n += 1
        del self._pending[:n]
        return events

    def _reject(self, coid: int, reason: VenueRejectReason, ts: int, events: list) -> None:
        events.append(Reject(client_order_id=coid, reason=reason, ts_ns=ts))
        self.counters["rejects"] += 1

    def _arrive(self, req: dict, ts: int, events: list) -> None:
        coid = req["client_order_id"]
        if coid in self._seen_ids:
            self._reject(coid, VenueRejectReason.DUPLICATE_ID, ts, events)
            return
        self._seen_ids.add(coid)
        kind = req["kind"]
        if kind == OrderKind.CANCEL:
            target = self._unwork(req["orig_client_order_id"])
            if target is None:
                self._reject(coid, VenueRejectReason.UNKNOWN_ORDER, ts, events)
                return
            events.append(Ack(client_order_id=coid, ts_ns=ts))
            events.append(Cancelled(client_order_id=target.client_order_id, request_id=coid,
                                    ts_ns=ts))
            self.counters["acks"] += 1
            self.counters["cancels"] += 1
            return
        if kind not in (OrderKind.NEW, OrderKind.REPLACE):
            self._reject(coid, VenueRejectReason.UNSUPPORTED, ts, events)
            return
        target = None
        if kind == OrderKind.REPLACE:
            target = self._working.get(req["orig_client_order_id"])
            if target is None or target.slot != req["slot"]:
                self._reject(coid, VenueRejectReason.UNKNOWN_ORDER, ts, events)
                return
        if req["price"] == 0 or req["quantity"] == 0:
            self._reject(coid, VenueRejectReason.INVALID, ts, events)
            return
        flags = req["flags"]
        order = WorkingOrder(client_order_id=coid, slot=req["slot"],
                             side=Side.SELL if flags & _REQ_SELL else Side.BUY,
                             price=req["price"], quantity=req["quantity"],
                             arrival=self._arrivals)
        if target is not None and target.side is not order.side:
            self._reject(coid, VenueRejectReason.INVALID, ts, events)
            return
        top = self._tops.setdefault(order.slot, _Top())
        crossing = self._crosses(order, top)
        if flags & _REQ_POST_ONLY and crossing:
            self._reject(coid, VenueRejectReason.POST_ONLY_WOULD_CROSS, ts, events)
            return
        self._arrivals += 1
        events.append(Ack(client_order_id=coid, ts_ns=ts))
        self.counters["acks"] += 1
        if target is not None:
            self._unwork(target.client_order_id)
            events.append(Replaced(client_order_id=target.client_order_id, replacement_id=coid,
                                   ts_ns=ts))
            self.counters["replaced"] += 1
            if (order.price == target.price and order.quantity <= target.leaves
                    and not flags & (_REQ_IOC | _REQ_FOK)):
                # Same price, no more shares: the replacement keeps the target's place. (An
                # immediate-or-cancel replacement goes the new order's way: it cannot rest.)
                order.arrival, order.ahead = target.arrival, target.ahead
                order.behind_top = target.behind_top
                self._work(order)
                return
        if flags & _REQ_FOK and (not crossing or self._available(order, top) < order.quantity):
            self._cancel_remainder(order, ts, events)
            return
        if crossing:
            self._take(order, top, ts, events)
        if order.leaves == 0:
            return
        if flags & (_REQ_IOC | _REQ_FOK):
            self._cancel_remainder(order, ts, events)
            return
        self._rest(order, top)

    def _cancel_remainder(self, order: WorkingOrder, ts: int, events: list) -> None:
        events.append(Cancelled(client_order_id=order.client_order_id, request_id=0, ts_ns=ts))
        self.counters["cancels"] += 1

    @staticmethod
    def _crosses(order: WorkingOrder, top: _Top) -> bool:
        if order.side is Side.BUY:
            return top.ask_valid and order.price >= top.ask
        return top.bid_valid and order.price <= top.bid

    @staticmethod
    def _available(order: WorkingOrder, top: _Top) -> int:
        if order.side is Side.BUY:
            taken = top.taken_ask[1] if top.taken_ask[0] == top.ask else 0
            return max(0, top.ask_size - taken)
        taken = top.taken_bid[1] if top.taken_bid[0] == top.bid else 0
        return max(0, top.bid_size - taken)

    def _take(self, order: WorkingOrder, top: _Top, ts: int, events: list) -> None:
        qty = min(order.leaves, self._available(order, top))
        if qty == 0:
            return
        if order.side is Side.BUY:
            price = top.ask
            top.taken_ask = (price, (top.taken_ask[1] if top.taken_ask[0] == price else 0) + qty)
        else:
            price = top.bid
            top.taken_bid = (price, (top.taken_bid[1] if top.taken_bid[0] == price else 0) + qty)
        self._fill(order, price, qty, ts, events)

    def _fill(self, order: WorkingOrder, price: int, qty: int, ts: int, events: list) -> None:
        order.filled += qty
        done = order.leaves == 0
        events.append(Fill(client_order_id=order.client_order_id, slot=order.slot,
                           side=order.side, price=price, quantity=qty, done=done, ts_ns=ts))
        self.counters["fills"] += 1
        self.counters["filled_quantity"] += qty
        if done:
            self._unwork(order.client_order_id)

    def _rest(self, order: WorkingOrder, top: _Top) -> None:
        best_valid, best, size = ((top.bid_valid, top.bid, top.bid_size)
                                  if order.side is Side.BUY
                                  else (top.ask_valid, top.ask, top.ask_size))
        better = order.side.sign  # +1: a higher buy is better; -1: a lower sell is better
        if best_valid and best == order.price:
            order.ahead, order.behind_top = size, True
        elif best_valid and (best - order.price) * better > 0:
            order.ahead, order.behind_top = None, True
        else:
            order.ahead, order.behind_top = 0, False
        if order.ahead is not None:
            # Never ahead of our own earlier orders at the same price (time priority).
            for o in self._by_slot.get(order.slot, {}).values():
                if (o.side, o.price) == (order.side, order.price) and o.ahead is not None:
                    order.ahead = max(order.ahead, o.ahead)
        self._work(order)

    def _work(self, order: WorkingOrder) -> None:
        self._working[order.client_order_id] = order
        self._by_slot.setdefault(order.slot, {})[order.client_order_id] = order

    def _unwork(self, client_order_id: int) -> WorkingOrder | None:
        order = self._working.pop(client_order_id, None)
        if order is not None:
            del self._by_slot[order.slot][client_order_id]
        return order

    # ----------------------------------------------------------------------------------------
    def _match_resting(self, slot: int, prev: _Top, events: list) -> None:
        top = self._tops[slot]
        ts = self.now_ns
        # A side of the market that did not move cannot change anything it decides: our
        # orders on the other side already took what its best offered (liquidity we took only
        # comes back with a new price), and our orders on its own side already saw its queue.
        bid_moved = (top.bid_valid, top.bid, top.bid_size) != (prev.bid_valid, prev.bid,
                                                                prev.bid_size)
        ask_moved = (top.ask_valid, top.ask, top.ask_size) != (prev.ask_valid, prev.ask,
                                                                prev.ask_size)
        if not (bid_moved or ask_moved):
            return
        buys: list[WorkingOrder] = []
        sells: list[WorkingOrder] = []
        for o in self._by_slot[slot].values():
            (buys if o.side is Side.BUY else sells).append(o)
        for side, orders, own_moved, other_moved in ((Side.BUY, buys, bid_moved, ask_moved),
                                                     (Side.SELL, sells, ask_moved, bid_moved)):
            if not orders or not (own_moved or other_moved):
                continue
            if len(orders) > 1:
                orders.sort(key=lambda o: (-o.price * side.sign, o.arrival))
            # Resting orders the opposite best has come to take liquidity there.
            if other_moved:
                for o in orders:
                    if self._crosses(o, top):
                        self._take(o, top, ts, events)
            if not own_moved:
                continue
            levels: dict[int, list[WorkingOrder]] = {}
            for o in orders:
                if o.leaves and not self._crosses(o, top):
                    levels.setdefault(o.price, []).append(o)
            if side is Side.BUY:
                valid, best, size = top.bid_valid, top.bid, top.bid_size
                pvalid, pbest, psize = prev.bid_valid, prev.bid, prev.bid_size
            else:
                valid, best, size = top.ask_valid, top.ask, top.ask_size
                pvalid, pbest, psize = prev.ask_valid, prev.ask, prev.ask_size
            if not valid:
                continue  # an empty side says nothing about our levels
            for price, level in levels.items():
                depth = (best - price) * side.sign  # > 0: our level is behind the best
                if depth == 0:
                    if pvalid and pbest == price and size < psize:
                        self._consume_queue(level, psize - size, ts, events)
                    for o in level:
                        if o.ahead is None:
                            o.ahead = size
                        o.behind_top = True
                elif depth > 0:
                    for o in level:
                        o.behind_top = True
                else:
                    for o in level:
                        if o.behind_top and o.leaves:
                            self._fill(o, o.price, o.leaves, ts, events)

    def _consume_queue(self, level: list[WorkingOrder], traded: int, ts: int,
                       events: list) -> None:
        left = traded
        consumed = 0  # market volume consumed from the front of the queue
        known = [o for o in level if o.ahead is not None]
        for o in known:
            gap = max(0, o.ahead - consumed)
            m = min(gap, left)
            left -= m
            consumed += m
            if left == 0:
                break
            f = min(o.leaves, left)
            left -= f
            self._fill(o, o.price, f, ts, events)
        for o in known:
            o.ahead = max(0, o.ahead - consumed)


def _records(arr: np.ndarray, record: wire.Record) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != record.dtype:
        raise TypeError(f"expected an array of {record.name} records ({record.dtype}), "
                        f"got dtype {arr.dtype}")
    return arr.reshape(-1)

