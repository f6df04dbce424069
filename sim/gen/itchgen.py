"""Seeded generator of valid ITCH 5.0 order flow, in the NASDAQ historical-file framing.

The stream starts like a real day: a System Event "start of messages" (``S``, event code ``O``)
and one Stock Directory message (``R``) per symbol, stock locates ``1 .. n_symbols``. Then comes
order flow on those symbols:

* ``A`` / ``F`` adds on both sides around a per-symbol mid price that drifts. In normal flow a
  buy never locks or crosses the best ask and a sell never the best bid, as on a real book.
* ``E`` / ``C`` executions (mostly of the oldest order at the best level, as price-time priority
  would), ``X`` partial cancels, ``D`` deletes and ``U`` replaces (a new, unique reference
  number; same side; new price and shares). Each refers to a live order, and executed or
  cancelled shares never exceed what the order has left.
* Occasionally every other message type (``H Y L V W K J h P Q B I N O``) with plausible fields;
  ``B`` breaks a match number that was printed before.

Invariants: order reference numbers are unique over the day (they only grow), match numbers are
unique and grow, timestamps never decrease, every price is in ``[1, PRICE4_MAX]``.

``edge_cases=True`` mixes in short scenarios that stress a book builder: prices at the top of
the Price(4) range and price 1, orders of ``2**32 - 1`` shares, locked and crossed books,
replaces across the spread, levels that empty, back-to-back messages on the same order (same
timestamp) and bursts on the same price level.

The output is a pure function of the arguments: ``random.Random`` is used only through
``random()``, whose sequence Python keeps stable across versions.

Ref: NASDAQ TotalView-ITCH 5.0 specification (message fields, value codes of sections 1.1 - 1.8
and Appendix C); the encoding itself is :func:`host.feed.itch.encode_message`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from host.feed.framing import frame_historical
from host.feed.itch import MESSAGE_SPECS, NS_PER_DAY, PRICE4_MAX, encode_message

__all__ = ["generate", "generate_messages", "ItchFlowGenerator", "LiveOrder", "TICKERS",
           "FLOW_TYPES", "EDGE_TOP_PRICE"]

# Common US tickers first, so small streams look like real ones; more are made up as needed.
TICKERS = ("AAPL", "MSFT", "AMZN", "NVDA", "GOOGL", "META", "TSLA", "AVGO", "COST", "NFLX",
           "AMD", "INTC", "CSCO", "QQQ", "SPY", "PEP", "ADBE", "QCOM", "TXN", "AMGN", "SBUX",
           "ZVZZT", "BRK.B", "GOOG", "PYPL", "MU", "MRNA", "ABNB", "CMCSA", "HON")

# Types that may appear after the S / R preamble.
FLOW_TYPES = "AFECXDUHYLVWKJhPQBINO"
_ORDER_TYPES = "ECXDU"
_ADD_TYPES = "AF"
_OTHER_TYPES = "HYLVWKJhPQBINO"

# Brief's top Price(4) on a penny grid: $199,999.99. The spec's absolute maximum, 200,000.0000,
# is used as well.
EDGE_TOP_PRICE = 1_999_999_900
_TICK = 100  # one cent in Price(4)
_MPIDS = ("NITE", "GSCO", "MSCO", "UBSS", "CDRG", "VIRT", "JPMS", "NSDQ")
_REASONS = ("T1", "T2", "T5", "T6", "H10", "LUDP", "MWC1", "IPO1", "M1", "")
_PVI = "L123456789ABC "
# Longest edge-case scenario, in messages (kind 7: 8 adds and 3 executions).
_MAX_SCENARIO = 11

# Relative frequency of each type in the flow (before the live-order steering).
_WEIGHTS = {
    "A": 0.36, "F": 0.04, "E": 0.07, "C": 0.015, "X": 0.08, "D": 0.27, "U": 0.10,
    "P": 0.01, "I": 0.004, "H": 0.002, "Y": 0.001, "L": 0.001, "V": 0.0005, "W": 0.0005,
    "K": 0.0005, "J": 0.001, "h": 0.0005, "Q": 0.001, "B": 0.0005, "N": 0.001, "O": 0.0005,
}


@dataclass
class LiveOrder:
    """An order on the generated book.

    Attributes
    ----------
    locate : int
        Stock locate of its symbol.
    side : str
        ``"B"`` or ``"S"``.
    price : int
        Price(4).
    shares : int
        Shares left.
    """

    locate: int
    side: str
    price: int
    shares: int


def _synthetic_ticker(i: int) -> str:
    # Three or four capital letters, deterministic in i.
    letters = []
    n = i + 26 * 26  # skip the one- and two-letter names
    while n:
        n, r = divmod(n, 26)
        letters.append(chr(ord("A") + r))
    return "".join(reversed(letters))[:8]


def _tickers(n: int) -> list[str]:
    names = list(TICKERS[:n])
    taken = set(names)
    i = 0
    while len(names) < n:
        t = _synthetic_ticker(i)
        i += 1
        if t not in taken:
            taken.add(t)
            names.append(t)
    return names


class ItchFlowGenerator:
    """Stateful generator of ITCH 5.0 messages (see the module docstring for what it emits).

    Parameters
    ----------
    seed : int
        Seed; equal arguments give byte-identical output.
    n_symbols : int, keyword-only
        Number of symbols (stock locates ``1 .. n_symbols``), 1 to 65535. Default 8.
    types : str, keyword-only
        ``"all"`` (default) or the message types allowed after the ``S`` / ``R`` preamble, e.g.
        ``"A"`` or ``"AEXD"`` (``R`` in the string is accepted and changes nothing: the preamble
        is always there). ``E C X D U`` need ``A`` or ``F``; ``B`` needs ``E``, ``C``, ``P`` or ``Q``.
    edge_cases : bool, keyword-only
        Mix in the stress scenarios of the module docstring. Default False.
    target_live_orders : int, keyword-only
        Live order count the add / remove balance steers toward. Default 2,000.
    max_live_orders : int or None, keyword-only
        Hard cap on live orders (adds pause there); default ``4 * target_live_orders``. It
        applies only when a type that removes orders (``D``, ``E`` or ``C``) is allowed;
        otherwise orders only accumulate.
    start_ns : int, keyword-only
        Timestamp of the first message, nanoseconds since midnight. Default 9:30.
    mean_gap_ns : int, keyword-only
        Mean time between messages. Default 2,000 ns.
    """

    def __init__(self, seed: int, *, n_symbols: int = 8, types: str = "all",
                 edge_cases: bool = False, target_live_orders: int = 2000,
                 max_live_orders: int | None = None, start_ns: int = 34_200 * 10**9,
                 mean_gap_ns: int = 2_000):
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        if not 1 <= n_symbols <= 0xFFFF:
            raise ValueError(f"n_symbols must be in 1..65535 (2-byte stock locate), got {n_symbols!r}")
        if types == "all":
            allowed = set(FLOW_TYPES)
        else:
            unknown = sorted(set(types) - set(MESSAGE_SPECS))
            if unknown or not types:
                raise ValueError(f"types must be 'all' or ITCH message types, got {types!r}")
            allowed = set(types) - {"S", "R"}
        if allowed & set(_ORDER_TYPES) and not allowed & set(_ADD_TYPES):
            raise ValueError(f"types {types!r}: {''.join(sorted(allowed & set(_ORDER_TYPES)))} "
                             f"act on live orders, so A or F must be allowed too")
        if "B" in allowed and not allowed & set("ECPQ"):
            raise ValueError(f"types {types!r}: B breaks a printed match; allow E, C, P or Q too")
        if target_live_orders < 1:
            raise ValueError(f"target_live_orders must be >= 1, got {target_live_orders!r}")
        if max_live_orders is None:
            max_live_orders = 4 * target_live_orders
        if max_live_orders < target_live_orders:
            raise ValueError(f"max_live_orders {max_live_orders!r} is below target_live_orders "
                             f"{target_live_orders!r}")
        if not 0 <= start_ns < NS_PER_DAY:
            raise ValueError(f"start_ns must be within the day, got {start_ns!r}")
        if mean_gap_ns < 0:
            raise ValueError(f"mean_gap_ns must be >= 0, got {mean_gap_ns!r}")

        self._rng = random.Random(seed)
        self.allowed = allowed
        self.edge_cases = edge_cases
        self.target_live_orders = target_live_orders
        self.max_live_orders = max_live_orders
        self.mean_gap_ns = mean_gap_ns
        self.tickers = _tickers(n_symbols)
        self.n_symbols = n_symbols
        self.timestamp = start_ns
        self.next_ref = 1 + self._int(0, 1000)
        self.next_match = 1 + self._int(0, 1000)
        self.printed_matches: list[int] = []

        #: Every live order by reference number (the generator's view of the book).
        self.live_orders: dict[int, LiveOrder] = {}
        self._live_refs: list[int] = []  # for O(1) uniform choice; _slot maps ref -> index
        self._slot: dict[int, int] = {}
        # Per locate and side: price -> {ref: None} in arrival order (time priority).
        self._levels = [({}, {}) for _ in range(n_symbols + 1)]
        self._best: list[list[int | None]] = [[None, None] for _ in range(n_symbols + 1)]
        # Start each symbol between $10.00 and $500.00, on the cent grid.
        self._mid = [0] + [self._int(1_000, 50_000) * _TICK for _ in range(n_symbols)]
        self._removing = bool(allowed & set("DEC"))
        self._build_choice_table()
        self._preamble_done = False
        self.count = 0

    # ---- randomness (only random(): stable across Python versions) ----------------------

    def _int(self, lo: int, hi: int) -> int:
        return lo + int(self._rng.random() * (hi - lo + 1))

    def _pick(self, seq):
        return seq[int(self._rng.random() * len(seq))]

    def _chance(self, p: float) -> bool:
        return self._rng.random() < p

    def _build_choice_table(self) -> None:
        self._add_w = {t: w for t, w in _WEIGHTS.items() if t in self.allowed and t in _ADD_TYPES}
        self._rest_w = {t: w for t, w in _WEIGHTS.items()
                        if t in self.allowed and t not in _ADD_TYPES}

    # ---- bookkeeping --------------------------------------------------------------------

    def _tick_clock(self) -> int:
        if self.mean_gap_ns:
            # Mostly short gaps, sometimes none (several messages in the same nanosecond).
            if not self._chance(0.05):
                self.timestamp += self._int(1, 2 * self.mean_gap_ns)
        if self.timestamp >= NS_PER_DAY:
            raise ValueError("the generated stream ran past midnight; lower mean_gap_ns or "
                             "start_ns, or ask for fewer messages")
        return self.timestamp

    def _new_ref(self) -> int:
        ref = self.next_ref
        self.next_ref += 1 if self._chance(0.8) else self._int(2, 50)
        return ref

    def _new_match(self) -> int:
        m = self.next_match
        self.next_match += 1
        if len(self.printed_matches) < 64:
            self.printed_matches.append(m)
        else:
            self.printed_matches[self._int(0, 63)] = m
        return m

    def _side_index(self, side: str) -> int:
        return 0 if side == "B" else 1

    def _book_add(self, ref: int, o: LiveOrder) -> None:
        self.live_orders[ref] = o
        self._slot[ref] = len(self._live_refs)
        self._live_refs.append(ref)
        s = self._side_index(o.side)
        self._levels[o.locate][s].setdefault(o.price, {})[ref] = None
        best = self._best[o.locate][s]
        if best is None or (o.price > best if s == 0 else o.price < best):
            self._best[o.locate][s] = o.price

    def _book_remove(self, ref: int) -> LiveOrder:
        o = self.live_orders.pop(ref)
        i = self._slot.pop(ref)
        last = self._live_refs.pop()
        if last != ref:
            self._live_refs[i] = last
            self._slot[last] = i
        s = self._side_index(o.side)
        levels = self._levels[o.locate][s]
        level = levels[o.price]
        del level[ref]
        if not level:
            del levels[o.price]
            if self._best[o.locate][s] == o.price:
                self._best[o.locate][s] = (max(levels) if s == 0 else min(levels)) if levels else None
        return o

    def _header(self, mtype: str, locate: int) -> dict:
        return {"message_type": mtype, "stock_locate": locate,
                "tracking_number": self._int(0, 3), "timestamp": self._tick_clock()}

    def _emit(self, fields: dict) -> bytes:
        raw = encode_message(fields)
        self.count += 1
        return raw

    # ---- prices -------------------------------------------------------------------------

    def _drift(self, locate: int) -> None:
        if self._chance(0.05):
            mid = self._mid[locate] + (_TICK if self._chance(0.5) else -_TICK)
            bid, ask = self._best[locate]
            # Keep the mid near the book so that new orders join it rather than wander off.
            if ask is not None and mid > ask + 5 * _TICK:
                mid -= 2 * _TICK
            if bid is not None and mid < bid - 5 * _TICK:
                mid += 2 * _TICK
            self._mid[locate] = min(max(mid, 2 * _TICK), EDGE_TOP_PRICE // 2)

    def _passive_price(self, locate: int, side: str) -> int:
        """A price on ``side`` that neither locks nor crosses the other side."""
        depth = 0
        while depth < 30 and self._chance(0.6):
            depth += 1
        bid, ask = self._best[locate]
        mid = self._mid[locate]
        if side == "B":
            p = mid - _TICK * (1 + depth)
            if ask is not None:
                p = min(p, ask - _TICK)
        else:
            p = mid + _TICK * (1 + depth)
            if bid is not None:
                p = max(p, bid + _TICK)
        return min(max(p, 1), PRICE4_MAX)

    def _lot(self) -> int:
        r = self._rng.random()
        if r < 0.6:
            return 100 * self._int(1, 5)
        if r < 0.85:
            return self._int(1, 99)  # odd lot
        return 100 * self._int(6, 100)

    # ---- order messages ------------------------------------------------------------------

    def _add(self, mtype: str, locate: int | None = None, side: str | None = None,
             price: int | None = None, shares: int | None = None) -> bytes:
        if locate is None:
            locate = self._int(1, self.n_symbols)
        if side is None:
            side = "B" if self._chance(0.5) else "S"
        self._drift(locate)
        if price is None:
            price = self._passive_price(locate, side)
        if shares is None:
            shares = self._lot()
        ref = self._new_ref()
        f = self._header(mtype, locate)
        f.update(order_reference_number=ref, buy_sell_indicator=side, shares=shares,
                 stock=self.tickers[locate - 1], price=price)
        if mtype == "F":
            f["attribution"] = self._pick(_MPIDS)
        self._book_add(ref, LiveOrder(locate, side, price, shares))
        return self._emit(f)

    def _pick_order(self) -> int:
        """A live order: usually the oldest at some symbol's best level, else any."""
        if self._chance(0.6):
            locate = self._int(1, self.n_symbols)
            s = 0 if self._chance(0.5) else 1
            best = self._best[locate][s]
            if best is not None:
                return next(iter(self._levels[locate][s][best]))
        return self._pick(self._live_refs)

    def _execute(self, mtype: str, ref: int, shares: int | None = None,
                 price: int | None = None) -> bytes:
        o = self.live_orders[ref]
        if shares is None:
            shares = o.shares if self._chance(0.5) else self._int(1, o.shares)
        f = self._header(mtype, o.locate)
        f.update(order_reference_number=ref, executed_shares=shares, match_number=self._new_match())
        if mtype == "C":
            if price is None:
                price = min(max(o.price + _TICK * self._int(-2, 2), 1), PRICE4_MAX)
            f.update(printable="Y" if self._chance(0.7) else "N", execution_price=price)
        self._reduce(ref, shares)
        return self._emit(f)

    def _reduce(self, ref: int, shares: int) -> None:
        o = self.live_orders[ref]
        if shares == o.shares:
            self._book_remove(ref)  # an order with no shares left is dead (spec 1.4)
        else:
            o.shares -= shares

    def _cancel(self, ref: int, shares: int | None = None) -> bytes:
        o = self.live_orders[ref]
        if shares is None:
            shares = self._int(1, o.shares - 1) if o.shares > 1 else 1
        f = self._header("X", o.locate)
        f.update(order_reference_number=ref, cancelled_shares=shares)
        self._reduce(ref, shares)
        return self._emit(f)

    def _delete(self, ref: int) -> bytes:
        o = self._book_remove(ref)
        f = self._header("D", o.locate)
        f["order_reference_number"] = ref
        return self._emit(f)

    def _replace(self, ref: int, price: int | None = None, shares: int | None = None) -> bytes:
        o = self._book_remove(ref)
        if price is None:
            self._drift(o.locate)
            price = self._passive_price(o.locate, o.side)
        if shares is None:
            shares = self._lot()
        new = self._new_ref()
        f = self._header("U", o.locate)
        f.update(original_order_reference_number=ref, new_order_reference_number=new,
                 shares=shares, price=price)
        self._book_add(new, LiveOrder(o.locate, o.side, price, shares))
        return self._emit(f)

    # ---- other messages ------------------------------------------------------------------

    def _other(self, mtype: str) -> bytes:
        locate = self._int(1, self.n_symbols)
        stock = self.tickers[locate - 1]
        mid = self._mid[locate]
        f = self._header(mtype, locate)
        if mtype == "H":
            f.update(stock=stock, trading_state=self._pick("HPQT"), reserved=" ",
                     reason=self._pick(_REASONS))
        elif mtype == "Y":
            f.update(stock=stock, reg_sho_action=self._pick("012"))
        elif mtype == "L":
            f.update(mpid=self._pick(_MPIDS), stock=stock, primary_market_maker=self._pick("YN"),
                     market_maker_mode=self._pick("NPSRL"), market_participant_state=self._pick("AEWSD"))
        elif mtype == "V":
            f["stock_locate"] = 0  # spec 1.2.5.1: always 0
            base = self._int(3000, 5000) * 10**8  # an index level, Price(8)
            f.update(level_1=base * 93 // 100, level_2=base * 87 // 100, level_3=base * 80 // 100)
        elif mtype == "W":
            f["stock_locate"] = 0
            f["breached_level"] = self._pick("123")
        elif mtype == "K":
            f["stock_locate"] = 0  # spec 1.2.6: always 0
            cancelled = self._chance(0.2)
            f.update(stock=stock,
                     ipo_quotation_release_time=0 if cancelled else self._int(34_200, 57_600),
                     ipo_quotation_release_qualifier="C" if cancelled else "A",
                     ipo_price=0 if cancelled else mid)
        elif mtype == "J":
            f.update(stock=stock, auction_collar_reference_price=mid,
                     upper_auction_collar_price=min(mid * 105 // 100, PRICE4_MAX),
                     lower_auction_collar_price=mid * 95 // 100,
                     auction_collar_extension=self._int(0, 3))
        elif mtype == "h":
            f.update(stock=stock, market_code=self._pick("QBX"),
                     operational_halt_action=self._pick("HT"))
        elif mtype == "P":
            # Spec 1.5.1: reference number zero-filled, side always "B" since 2014.
            f.update(order_reference_number=0, buy_sell_indicator="B", shares=self._lot(),
                     stock=stock, price=mid, match_number=self._new_match())
        elif mtype == "Q":
            f.update(shares=self._int(0, 5_000_000), stock=stock, cross_price=mid,
                     match_number=self._new_match(), cross_type=self._pick("OCH"))
        elif mtype == "B":
            f["match_number"] = self._pick(self.printed_matches)
        elif mtype == "I":
            paired = self._int(0, 2_000_000)
            f.update(paired_shares=paired, imbalance_shares=self._int(0, paired // 2 + 100),
                     imbalance_direction=self._pick("BSNOP"), stock=stock,
                     far_price=min(max(mid + _TICK * self._int(-20, 20), 0), PRICE4_MAX),
                     near_price=min(max(mid + _TICK * self._int(-10, 10), 0), PRICE4_MAX),
                     current_reference_price=mid, cross_type=self._pick("OCHA"),
                     price_variation_indicator=self._pick(_PVI))
        elif mtype == "N":
            f.update(stock=stock, interest_flag=self._pick("BSAN"))
        elif mtype == "O":
            f.update(stock=stock, open_eligibility_status=self._pick("NY"),
                     minimum_allowable_price=mid * 80 // 100,
                     maximum_allowable_price=min(mid * 180 // 100, PRICE4_MAX),
                     near_execution_price=mid, near_execution_time=f["timestamp"],
                     lower_price_range_collar=mid * 90 // 100,
                     upper_price_range_collar=min(mid * 110 // 100, PRICE4_MAX))
        else:  # pragma: no cover - the choice table only holds the types above
            raise AssertionError(mtype)
        return self._emit(f)

    # ---- edge-case scenarios -------------------------------------------------------------

    def _scenario(self) -> list[bytes]:
        out: list[bytes] = []
        adds = sorted(set(_ADD_TYPES) & self.allowed)
        if not adds:
            return out
        add = self._pick(adds)
        kind = self._int(0, 7)
        locate = self._int(1, self.n_symbols)
        if kind == 0:  # extreme prices: the top of Price(4) and one ten-thousandth of a dollar
            out.append(self._add(add, locate, "S", self._pick((EDGE_TOP_PRICE, PRICE4_MAX))))
            out.append(self._add(add, locate, "B", 1))
        elif kind == 1:  # the largest share count the field holds
            out.append(self._add(add, locate, None, None, 2**32 - 1))
        elif kind in (2, 3):  # locked (kind 2) or crossed (kind 3) book
            bid, ask = self._best[locate]
            if ask is not None:
                p = ask + (_TICK * self._int(1, 3) if kind == 3 else 0)
                out.append(self._add(add, locate, "B", min(p, PRICE4_MAX)))
            elif bid is not None:
                p = bid - (_TICK * self._int(1, 3) if kind == 3 else 0)
                out.append(self._add(add, locate, "S", max(p, 1)))
        elif kind == 4 and "U" in self.allowed:  # replace across the spread
            bid, ask = self._best[locate]
            if bid is not None and ask is not None:
                ref = next(iter(self._levels[locate][0][bid]))
                out.append(self._replace(ref, price=min(ask + _TICK * self._int(0, 2), PRICE4_MAX)))
        elif kind == 5 and self.allowed & set("DEX"):  # empty a level, one order after another
            s = self._int(0, 1)
            best = self._best[locate][s]
            if best is not None and len(self._levels[locate][s][best]) <= _MAX_SCENARIO:
                for ref in list(self._levels[locate][s][best]):
                    ops = [t for t in "DEX" if t in self.allowed]
                    op = self._pick(ops)
                    if op == "D":
                        out.append(self._delete(ref))
                    elif op == "E":
                        out.append(self._execute("E", ref, self.live_orders[ref].shares))
                    else:
                        out.append(self._cancel(ref, self.live_orders[ref].shares))
        elif kind == 6:  # back-to-back messages on one order, in the same nanosecond
            out.append(self._add(add, locate, None, None, 100 * self._int(5, 20)))
            ref = self._live_refs[-1]
            gap, self.mean_gap_ns = self.mean_gap_ns, 0
            try:
                for _ in range(self._int(2, 5)):
                    if ref not in self.live_orders:
                        break
                    ops = [t for t in "ECXU" if t in self.allowed]
                    if not ops:
                        break
                    op = self._pick(ops)
                    if op in "EC":
                        out.append(self._execute(op, ref))
                    elif op == "X" and self.live_orders[ref].shares > 1:
                        out.append(self._cancel(ref))
                    elif op == "U":
                        out.append(self._replace(ref))
                        ref = self._live_refs[-1]
            finally:
                self.mean_gap_ns = gap
        elif kind == 7:  # a burst on one price level
            side = "B" if self._chance(0.5) else "S"
            price = self._passive_price(locate, side)
            for _ in range(self._int(3, 8)):
                out.append(self._add(add, locate, side, price))
            if "E" in self.allowed:
                for ref in list(self._levels[locate][self._side_index(side)].get(price, ()))[:3]:
                    out.append(self._execute("E", ref))
        return out

    # ---- driving -------------------------------------------------------------------------

    def preamble(self) -> list[bytes]:
        """The ``S`` start-of-messages event and one ``R`` per symbol."""
        out = [self._emit({**self._header("S", 0), "event_code": "O"})]
        for i, t in enumerate(self.tickers, start=1):
            f = self._header("R", i)
            category = self._pick("QGSNAPZV")
            # Spec 1.2.1: the financial status and the IPO flag are "<space> = not available"
            # for an issue Nasdaq does not list (categories N A P Z V), as in real data.
            nasdaq = category in "QGS"
            f.update(stock=t, market_category=category,
                     financial_status_indicator="N" if nasdaq else "",
                     round_lot_size=100, round_lots_only="N", issue_classification="C",
                     issue_sub_type="Z", authenticity="P", short_sale_threshold_indicator="N",
                     ipo_flag="N" if nasdaq else "", luld_reference_price_tier=self._pick("12"),
                     etp_flag="N", etp_leverage_factor=0, inverse_indicator="N")
            out.append(self._emit(f))
        self._preamble_done = True
        return out

    def step(self, budget: int | None = None) -> list[bytes]:
        """Emit the next message(s) of the flow: usually one, a few for an edge-case scenario.

        Parameters
        ----------
        budget : int or None
            Most messages the caller can take; a scenario starts only when it fits whole.
        """
        if self.edge_cases and (budget is None or budget >= _MAX_SCENARIO) and self._chance(0.02):
            out = self._scenario()
            if out:
                return out
        live = len(self._live_refs)
        can_add = bool(self._add_w) and (not self._removing or live < self.max_live_orders)
        weights = {}
        if can_add:
            # Steer the live count toward the target: add more below it, less above.
            steer = 2.0 if live < self.target_live_orders else 0.5
            for t, w in self._add_w.items():
                weights[t] = w * steer
        for t, w in self._rest_w.items():
            if t in _ORDER_TYPES and live == 0:
                continue
            if t == "B" and not self.printed_matches:
                continue
            weights[t] = w
        if not weights:
            raise ValueError(f"types {''.join(sorted(self.allowed)) or 'S/R only'!r} allow no "
                             f"message after the S / R preamble")
        total = sum(weights.values())
        r = self._rng.random() * total
        for t, w in weights.items():
            r -= w
            if r < 0:
                break
        if t in _ADD_TYPES:
            return [self._add(t)]
        if t in "EC":
            return [self._execute(t, self._pick_order())]
        if t == "X":
            # A cancel is partial (spec 1.4.3); a one-share order can only be cancelled whole.
            return [self._cancel(self._pick_order())]
        if t == "D":
            return [self._delete(self._pick_order())]
        if t == "U":
            return [self._replace(self._pick_order())]
        return [self._other(t)]

    def messages(self, n_messages: int) -> list[bytes]:
        """The next ``n_messages`` messages of the stream; the first call starts with the
        preamble. After it, :attr:`live_orders` is the book those messages leave."""
        if n_messages < 0:
            raise ValueError(f"n_messages must be >= 0, got {n_messages!r}")
        if not self._preamble_done and n_messages < 1 + self.n_symbols:
            raise ValueError(f"n_messages {n_messages} is shorter than the preamble "
                             f"(S and {self.n_symbols} R = {1 + self.n_symbols} messages)")
        out = self.preamble() if not self._preamble_done else []
        while len(out) < n_messages:
            out.extend(self.step(n_messages - len(out)))
        assert len(out) == n_messages, "a scenario overran its budget"
        return out


def generate_messages(seed: int, n_messages: int, *, n_symbols: int = 8, types: str = "all",
                      edge_cases: bool = False, target_live_orders: int = 2000,
                      max_live_orders: int | None = None, start_ns: int = 34_200 * 10**9,
                      mean_gap_ns: int = 2_000) -> list[bytes]:
    """Generate ``n_messages`` valid ITCH 5.0 messages (without length prefixes).

    Parameters are those of :class:`ItchFlowGenerator`; ``n_messages`` counts the ``S`` / ``R``
    preamble too and must be at least ``1 + n_symbols``.

    Returns
    -------
    list of bytes
    """
    gen = ItchFlowGenerator(seed, n_symbols=n_symbols, types=types, edge_cases=edge_cases,
                            target_live_orders=target_live_orders, max_live_orders=max_live_orders,
                            start_ns=start_ns, mean_gap_ns=mean_gap_ns)
    return gen.messages(n_messages)


def generate(seed: int, n_messages: int, *, n_symbols: int = 8, types: str = "all",
             edge_cases: bool = False, target_live_orders: int = 2000,
             max_live_orders: int | None = None, start_ns: int = 34_200 * 10**9,
             mean_gap_ns: int = 2_000) -> bytes:
    """Generate a historical ITCH 5.0 file: :func:`generate_messages`, framed.

    Returns
    -------
    bytes
        Each message preceded by its 2-byte big-endian length.
    """
    return frame_historical(generate_messages(
        seed, n_messages, n_symbols=n_symbols, types=types, edge_cases=edge_cases,
        target_live_orders=target_live_orders, max_live_orders=max_live_orders,
        start_ns=start_ns, mean_gap_ns=mean_gap_ns))


def main(argv: list[str] | None = None) -> int:
    """Write a generated historical ITCH file and print what went into it.

    ``python -m sim.gen.itchgen OUT.itch --seed 1 --messages 1000000``
    """
    import argparse
    import collections
    import time

    ap = argparse.ArgumentParser(prog="python -m sim.gen.itchgen", description=main.__doc__)
    ap.add_argument("out", help="file to write (historical framing)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--symbols", type=int, default=8)
    ap.add_argument("--types", default="all")
    ap.add_argument("--edge-cases", action="store_true")
    ap.add_argument("--target-live-orders", type=int, default=2000)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    msgs = generate_messages(args.seed, args.messages, n_symbols=args.symbols, types=args.types,
                             edge_cases=args.edge_cases, target_live_orders=args.target_live_orders)
    elapsed = time.perf_counter() - t0
    buf = frame_historical(msgs)
    with open(args.out, "wb") as fh:
        fh.write(buf)
    counts = collections.Counter(chr(m[0]) for m in msgs)
    print(f"{'messages':>10} {'bytes':>12} {'seconds':>8} {'msg/s':>10}")
    print(f"{len(msgs):>10} {len(buf):>12} {elapsed:>8.2f} {len(msgs) / elapsed:>10.0f}")
    print(" ".join(f"{t}:{counts[t]}" for t in sorted(counts, key=lambda t: -counts[t])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
