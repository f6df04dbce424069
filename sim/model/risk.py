"""Reference model of the pre-trade risk gate (:class:`hdl.risk.PreTradeRisk`).

The model knows nothing of pipelines or handshakes: it is told, in order, what happened at which
cycle, and answers each order request with the reason bits the gate must give. Time enters only
where the checks themselves depend on it (token buckets, BBO age), so every event carries the
cycle at which the gate acts on it:

* an order request is *decided* at a cycle ``c`` and sees the state as of the start of ``c``;
* fills, BBO records, limit commits and the kill switch that arrive at cycle ``c`` take effect from
  cycle ``c + 1``. They arrive on the gate's ports: a commit in the cycle of the register bank's
  RISK_COMMIT write strobe, the kill bit a cycle after the RISK_KILL write strobe (the bank's
  control register holds it from then), so a kill takes effect one cycle later than a commit
  written at the same time.

Feed the events of one cycle with the decision first (:meth:`RiskModel.order`), then the updates.
Reason bits and register names come from :mod:`hdl.wire` (``RISK_REASONS``, ``RISK_REGISTERS``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

from hdl import wire

__all__ = ["REASON", "RiskLimits", "OpenOrder", "RiskModel", "reason_names",
           "TOKEN_MAX", "SYMBOL_ENABLED", "SYMBOL_KILL", "SYMBOL_REDUCE_ONLY",
           "COLLAR_ENABLE", "COLLAR_BPS"]

REASON = {name: 1 << i for i, name in enumerate(wire.RISK_REASONS)}

# Bits of RISK_SYMBOL_CONTROL and RISK_COLLAR_CONFIG (documented in hdl/wire.py).
SYMBOL_ENABLED, SYMBOL_KILL, SYMBOL_REDUCE_ONLY = 1, 2, 4
COLLAR_ENABLE, COLLAR_BPS = 1, 2

TOKEN_MAX = 0xFFFF  # token buckets are 16-bit; larger bursts saturate
BPS_ONE = 10_000    # basis points in one


def reason_names(reasons: int) -> list[str]:
    """The names of the reason bits set in ``reasons``."""
    return [name for name, bit in REASON.items() if reasons & bit]


@dataclass(frozen=True, kw_only=True)
class RiskLimits:
    """One complete set of risk limits, as committed through the registers.

    Every field defaults to 0, which rejects (fail closed). Per-symbol fields are tuples with one
    entry per symbol slot.

    Attributes
    ----------
    symbol_control : tuple of int
        RISK_SYMBOL_CONTROL: bit 0 enabled, bit 1 kill, bit 2 reduce-only.
    max_order_qty, max_long, max_short : tuple of int
        Per symbol, shares or lots.
    max_notional : int
        Max price * quantity of one order (64-bit).
    collar_config : int
        Bit 0 collar enabled, bit 1 band in basis points.
    collar_band : int
        Band in price units or basis points.
    bbo_max_age : int
        Cycles after which the BBO is stale; 0 never.
    max_open_orders : int
    rate_shift, rate_burst, symbol_rate_shift, symbol_rate_burst : int
        Token buckets: one token every ``2**shift`` cycles, at most ``burst`` tokens.
    """

    symbol_control: tuple = ()
    max_order_qty: tuple = ()
    max_long: tuple = ()
    max_short: tuple = ()
    max_notional: int = 0
    collar_config: int = 0
    collar_band: int = 0
    bbo_max_age: int = 0
    max_open_orders: int = 0
    rate_shift: int = 0
    rate_burst: int = 0
    symbol_rate_shift: int = 0
    symbol_rate_burst: int = 0

    PER_SYMBOL = ("symbol_control", "max_order_qty", "max_long", "max_short")

    @classmethod
    def uniform(cls, slots: int, **kwargs) -> "RiskLimits":
        """Limits with every per-symbol field given as one value for all ``slots``."""
        known = {f.name for f in fields(cls)}
        unknown = set(kwargs) - known
        if unknown:
            raise TypeError(f"RiskLimits has no field(s) {sorted(unknown)!r}")
        values = {}
        for name, value in kwargs.items():
            values[name] = (tuple([value] * slots) if name in cls.PER_SYMBOL
                            and isinstance(value, int) else value)
        for name in cls.PER_SYMBOL:
            values.setdefault(name, tuple([0] * slots))
        return cls(**values)

    def replace(self, **kwargs) -> "RiskLimits":
        """A copy with some fields changed."""
        return type(self)(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **kwargs})

    @classmethod
    def from_registers(cls, regs: Mapping[str, int], slots: int) -> "RiskLimits":
        """The set that the shadow registers ``regs`` (bank keys) hold; missing keys are 0."""
        get = lambda key: regs.get(key, 0)  # noqa: E731
        return cls(
            max_notional=get("RISK_MAX_NOTIONAL_LO") | get("RISK_MAX_NOTIONAL_HI") << 32,
            collar_config=get("RISK_COLLAR_CONFIG"), collar_band=get("RISK_COLLAR_BAND"),
            bbo_max_age=get("RISK_BBO_MAX_AGE"), max_open_orders=get("RISK_MAX_OPEN_ORDERS"),
            rate_shift=get("RISK_RATE_SHIFT"), rate_burst=get("RISK_RATE_BURST"),
            symbol_rate_shift=get("RISK_SYMBOL_RATE_SHIFT"),
            symbol_rate_burst=get("RISK_SYMBOL_RATE_BURST"),
            **{name: tuple(get(f"RISK_{name.upper()}_{i}") for i in range(slots))
               for name in cls.PER_SYMBOL})

    def to_registers(self) -> dict[str, int]:
        """The shadow register values (bank keys ``NAME`` / ``NAME_<i>``) of this set."""
        regs = {
            "RISK_MAX_NOTIONAL_LO": self.max_notional & 0xFFFF_FFFF,
            "RISK_MAX_NOTIONAL_HI": self.max_notional >> 32,
            "RISK_COLLAR_CONFIG": self.collar_config,
            "RISK_COLLAR_BAND": self.collar_band,
            "RISK_BBO_MAX_AGE": self.bbo_max_age,
            "RISK_MAX_OPEN_ORDERS": self.max_open_orders,
            "RISK_RATE_SHIFT": self.rate_shift,
            "RISK_RATE_BURST": self.rate_burst,
            "RISK_SYMBOL_RATE_SHIFT": self.symbol_rate_shift,
            "RISK_SYMBOL_RATE_BURST": self.symbol_rate_burst,
        }
        for name in self.PER_SYMBOL:
            for i, value in enumerate(getattr(self, name)):
                regs[f"RISK_{name.upper()}_{i}"] = value
        for key, value in regs.items():
            if not 0 <= value < 1 << 32:
                raise ValueError(f"register {key} = {value!r} does not fit 32 bits")
        return regs


@dataclass
class OpenOrder:
    """An order the gate holds open until the venue reports it done."""
    client_order_id: int
    slot: int
    sell: bool
    price: int
    remaining: int
    opened_cycle: int


def _ticks_between(a: int, b: int, shift: int) -> int:
    """How many cycles in ``[a, b)`` have their low ``shift`` bits all zero."""
    p = 1 << shift
    return -(-b // p) - -(-a // p)


class RiskModel:
    """The risk gate's checks and state, one event at a time.

    Parameters
    ----------
    slots : int
        Symbol slots.
    open_orders : int
        Size of the gate's open-order table.
    dup_depth : int
        How many recent client order ids the duplicate check remembers; it also refuses a new or
        replace order whose id an open order still holds.
    price_bits, qty_bits, band_bits : int
        Widths the gate computes with; wider request values are BAD_REQUEST, a wider BBO price
        makes that side empty, a wider band saturates.
    """

    def __init__(self, *, slots: int = wire.RISK_SLOTS, open_orders: int = 32, dup_depth: int = 16,
                 price_bits: int = 32, qty_bits: int = 32, band_bits: int = 32):
        self.slots = slots
        self.open_orders = open_orders
        self.dup_depth = dup_depth
        self.price_bits, self.qty_bits, self.band_bits = price_bits, qty_bits, band_bits
        self.limits = RiskLimits.uniform(slots)
        self.kill = False
        self.position = [0] * slots
        self.open_qty = [[0, 0] for _ in range(slots)]      # [buy, sell] per slot
        self.table: list[OpenOrder | None] = [None] * open_orders
        self.recent: list[int | None] = [None] * dup_depth
        self.recent_next = 0
        self.bbo = [dict(bid=0, ask=0, bid_valid=False, ask_valid=False, cycle=0)
                    for _ in range(slots)]
        self.tokens = 0
        self.symbol_tokens = [0] * slots
        self.now = 0  # cycles before this one have been applied to the buckets
        self.counters = {r.name: ([0] * r.count if r.count > 1 else 0)
                         for r in wire.RISK_REGISTERS if r.access == "r"}

    # -- time -----------------------------------------------------------------------------
    def _advance(self, cycle: int) -> None:
        if cycle < self.now:
            raise ValueError(f"event at cycle {cycle} after cycle {self.now} was applied")
        if cycle == self.now:
            return
        lim = self.limits
        burst = min(lim.rate_burst, TOKEN_MAX)
        n = _ticks_between(self.now, cycle, lim.rate_shift & 63)
        self.tokens = min(burst, self.tokens + n)
        burst = min(lim.symbol_rate_burst, TOKEN_MAX)
        n = _ticks_between(self.now, cycle, lim.symbol_rate_shift & 63)
        self.symbol_tokens = [min(burst, t + n) for t in self.symbol_tokens]
        self.now = cycle

    # -- host controls ----------------------------------------------------------------------
    def commit(self, limits: RiskLimits, cycle: int) -> None:
        """Make ``limits`` the active set from ``cycle + 1`` on."""
        for name in RiskLimits.PER_SYMBOL:
            if len(getattr(limits, name)) != self.slots:
                raise ValueError(f"limits.{name} has {len(getattr(limits, name))} entries; "
                                 f"the gate has {self.slots} slots")
        self._advance(cycle + 1)
        self.limits = limits

    def set_kill(self, on: bool, cycle: int) -> None:
        """Set the global kill switch from ``cycle + 1`` on."""
        self._advance(cycle + 1)
        self.kill = bool(on)

    # -- lookups ---------------------------------------------------------------------------
    def _find_open(self, client_order_id: int, before: int | None = None) -> int | None:
        for i, entry in enumerate(self.table):
            if entry is not None and entry.client_order_id == client_order_id and (
                    before is None or entry.opened_cycle < before):
                return i
        return None

    def open_count(self) -> int:
        return sum(entry is not None for entry in self.table)

    # -- the decision -------------------------------------------------------------------------
    def check(self, req: Mapping[str, int], cycle: int) -> int:
        """Reason bits for ``req`` (ORDER_REQUEST fields) decided at ``cycle``, without effects."""
        self._advance(cycle)
        lim = self.limits
        kind = req["kind"]
        sell = bool(req["flags"] & wire.ORDER_REQUEST.flag("flags", "sell"))
        slot = req["slot"]
        slot_ok = slot < self.slots
        price = req["price"] & ((1 << self.price_bits) - 1)
        qty = req["quantity"] & ((1 << self.qty_bits) - 1)
        opening = kind in (wire.ORDER_KIND_NEW, wire.ORDER_KIND_REPLACE)
        reasons = 0

        def flag(name, cond):
            nonlocal reasons
            if cond:
                reasons |= REASON[name]

        flag("SYMBOL_DISABLED", not slot_ok)
        # An id among the recent requests, or (new and replace) one an open order still holds:
        # a fill or done naming it could otherwise release the wrong order.
        flag("DUPLICATE_ID", req["client_order_id"] in self.recent or opening
             and self._find_open(req["client_order_id"]) is not None)
        flag("BAD_REQUEST", kind not in (1, 2, 3) or opening and (
            price == 0 or qty == 0 or req["price"] >> self.price_bits
            or req["quantity"] >> self.qty_bits))
        if kind in (wire.ORDER_KIND_CANCEL, wire.ORDER_KIND_REPLACE):
            flag("UNKNOWN_ORDER", self._find_open(req["orig_client_order_id"]) is None)
        if not opening:
            return reasons

        flag("KILL_SWITCH", self.kill)
        flag("MAX_NOTIONAL", price * qty > lim.max_notional)
        flag("OPEN_ORDERS", self.open_count() >= min(lim.max_open_orders, self.open_orders))
        flag("RATE_GLOBAL", self.tokens == 0)
        if not slot_ok:
            return reasons
        ctl = lim.symbol_control[slot]
        flag("KILL_SWITCH", ctl & SYMBOL_KILL)
        flag("SYMBOL_DISABLED", not ctl & SYMBOL_ENABLED)
        pos = self.position[slot]
        open_buy, open_sell = self.open_qty[slot]
        if sell:
            worst = pos - open_sell - qty          # lowest position reachable
            flag("RESTRICTED", ctl & SYMBOL_REDUCE_ONLY and worst < 0)
            flag("POSITION_LIMIT", -worst > lim.max_short[slot])
        else:
            worst = pos + open_buy + qty           # highest position reachable
            flag("RESTRICTED", ctl & SYMBOL_REDUCE_ONLY and worst > 0)
            flag("POSITION_LIMIT", worst > lim.max_long[slot])
        flag("MAX_QUANTITY", qty > lim.max_order_qty[slot])
        flag("RATE_SYMBOL", self.symbol_tokens[slot] == 0)
        flag("PRICE_COLLAR", lim.collar_config & COLLAR_ENABLE and not self._inside_collar(
            slot, sell, price, cycle))
        flag("SELF_TRADE", any(
            e is not None and e.slot == slot and e.sell != sell
            and (e.price >= price if sell else e.price <= price) for e in self.table))
        return reasons

    def _inside_collar(self, slot: int, sell: bool, price: int, cycle: int) -> bool:
        """Whether ``price`` passes the collar: one-sided, against the opposite best.

        A buy passes at or below ``ask + band``, a sell at or above ``bid - band`` (the bounds
        included); a buy far below the ask or a sell far above the bid passes. With the band in
        basis points the bounds are ``ask * (1 + band / 10^4)`` and ``bid * (1 - band / 10^4)``.
        An empty opposite side, or a stale BBO, fails.
        """
        lim = self.limits
        bbo = self.bbo[slot]
        if not (bbo["bid_valid"] if sell else bbo["ask_valid"]):
            return False
        if lim.bbo_max_age and cycle - bbo["cycle"] > lim.bbo_max_age:
            return False
        band = min(lim.collar_band, (1 << self.band_bits) - 1)
        ref = bbo["bid"] if sell else bbo["ask"]
        if lim.collar_config & COLLAR_BPS:
            # buy: price / ask <= 1 + band / 10^4; sell: price / bid >= 1 - band / 10^4;
            # compared exactly in integers
            if sell:
                return price * BPS_ONE + ref * band >= ref * BPS_ONE
            return price * BPS_ONE <= ref * (BPS_ONE + band)
        if sell:
            return price + band >= ref
        return price <= ref + band

    def order(self, req: Mapping[str, int], cycle: int) -> int:
        """Decide ``req`` at ``cycle``, apply its effects, return its reason bits (0: accepted)."""
        reasons = self.check(req, cycle)
        slot = req["slot"]
        self.recent[self.recent_next] = req["client_order_id"]
        self.recent_next = (self.recent_next + 1) % self.dup_depth
        if reasons:
            self.counters["RISK_REJECTED"] += 1
            for i in range(len(wire.RISK_REASONS)):
                if reasons >> i & 1:
                    self.counters["RISK_REJECTS"][i] += 1
            return reasons
        self.counters["RISK_ACCEPTED"] += 1
        if req["kind"] in (wire.ORDER_KIND_NEW, wire.ORDER_KIND_REPLACE):
            sell = bool(req["flags"] & wire.ORDER_REQUEST.flag("flags", "sell"))
            free = self.table.index(None)
            self.table[free] = OpenOrder(client_order_id=req["client_order_id"], slot=slot,
                                         sell=sell, price=req["price"],
                                         remaining=req["quantity"], opened_cycle=cycle)
            self.open_qty[slot][sell] += req["quantity"]
            self.tokens -= 1
            self.symbol_tokens[slot] -= 1
        return 0

    # -- state from the venue and the book ------------------------------------------------------
    def fill(self, fill: Mapping[str, int], cycle: int) -> None:
        """Apply a FILL record that arrived at ``cycle``.

        The position moves by the fill; the open order it names (if the gate holds it) loses
        the filled quantity, and all of its remaining quantity when ``done`` is set. A fill
        with quantity 0 and ``done`` is how the host reports a cancel or a replace confirmed.
        """
        self._advance(cycle + 1)
        slot = fill["slot"]
        if slot >= self.slots:
            self.counters["RISK_DROPPED"] += 1
            return
        self.counters["RISK_FILLS"] += 1
        sell = bool(fill["flags"] & wire.FILL.flag("flags", "sell"))
        done = bool(fill["flags"] & wire.FILL.flag("flags", "done"))
        qty = fill["quantity"]
        self.position[slot] += -qty if sell else qty
        i = self._find_open(fill["client_order_id"], before=cycle)
        if i is None:
            self.counters["RISK_FILLS_UNKNOWN"] += 1
            return
        entry = self.table[i]
        released = entry.remaining if done else min(qty, entry.remaining)
        entry.remaining -= released
        self.open_qty[entry.slot][entry.sell] -= released
        if done:
            self.table[i] = None

    def bbo_update(self, rec: Mapping[str, int], cycle: int) -> None:
        """Apply a BBO_UPDATE record that arrived at ``cycle``."""
        self._advance(cycle + 1)
        slot = rec["slot"]
        if slot >= self.slots:
            self.counters["RISK_DROPPED"] += 1
            return
        flags = rec["flags"]
        fits = 1 << self.price_bits
        self.bbo[slot] = dict(
            bid=rec["bid_price"] % fits, ask=rec["ask_price"] % fits,
            bid_valid=bool(flags & wire.BBO_UPDATE.flag("flags", "bid_valid"))
            and rec["bid_price"] < fits,
            ask_valid=bool(flags & wire.BBO_UPDATE.flag("flags", "ask_valid"))
            and rec["ask_price"] < fits,
            cycle=cycle)

    def status(self) -> dict[str, int]:
        """Read-only register values (bank keys) the gate should show now."""
        out = {}
        for name, value in self.counters.items():
            if isinstance(value, list):
                out.update({f"{name}_{i}": v & 0xFFFF_FFFF for i, v in enumerate(value)})
            else:
                out[name] = value & 0xFFFF_FFFF
        out["RISK_OPEN_ORDERS"] = self.open_count()
        out["RISK_OPEN_CAPACITY"] = self.open_orders
        return out
