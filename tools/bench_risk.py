"""Benchmark of the pre-trade risk gate: millions of random orders and fills against the model.

The gate (:class:`hdl.risk.PreTradeRisk`) runs alone in :class:`StandaloneRiskGate` (the gate, a
register bank laid out by :data:`hdl.wire.REGISTERS`, a cycle counter and a monitor stream) in the
C++ batch harness. Traffic comes in *phases*: seeded orders, fills and BBO records pushed together
(so they interleave cycle by cycle), often with new limits written and committed while the phase
is in flight, then drained. Every verdict, every accepted order and the counters are compared with
:class:`sim.model.risk.RiskModel` fed the same events at the cycles the gate applied them.

Prints one table of measured numbers (nothing here passes or fails on timing): orders, verdict
latency histogram in cycles, orders per cycle sustained with the output always ready, wall time,
mismatches.

The same pieces (:class:`StandaloneRiskGate`, :class:`RiskTraffic`, :class:`RiskScoreboard`,
:func:`run_harness_phase`) drive the tests ``tests/test_risk_harness.py`` and, through cocotb,
``tests/tb_risk.py``.

Usage::

    python -m tools.bench_risk [--orders 2000000] [--seed 1] [--stress 0.25]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out, connect

from hdl import wire
from hdl.regs import RegisterBank, RegisterBusSignature
from hdl.risk import LATENCY, PreTradeRisk, connect_registers
from sim.model.risk import (COLLAR_BPS, COLLAR_ENABLE, SYMBOL_ENABLED, SYMBOL_KILL,
                            SYMBOL_REDUCE_ONLY, RiskLimits, RiskModel, reason_names)

if TYPE_CHECKING:
    from sim.harness import Harness

__all__ = ["APPLIED_LAYOUT", "StandaloneRiskGate", "RiskPhase", "RiskTraffic", "RiskScoreboard",
           "records_array", "register_ref", "register_word", "decode_applied",
           "build_harness", "run_harness_phase", "read_status_harness", "run_random", "main"]

SLOTS = wire.RISK_SLOTS

# What the gate took in one cycle, reported by the monitor stream ``applied``: the cycle, and
# which of fill_in / bbo_in handshakes and RISK_COMMIT / RISK_KILL write strobes happened in it.
# ``overrun`` is sticky: the monitor had a record not taken when the next one came (the testbench
# must keep ``applied`` always ready, so it stays 0).
APPLIED_CYCLE_BITS = 48
APPLIED_LAYOUT = data.StructLayout({
    "cycle": APPLIED_CYCLE_BITS, "fill": 1, "bbo": 1, "commit": 1, "kill": 1, "overrun": 1,
    "_reserved": 64 - APPLIED_CYCLE_BITS - 5,
})
_FILL_BIT, _BBO_BIT, _COMMIT_BIT, _KILL_BIT, _OVERRUN_BIT = (APPLIED_CYCLE_BITS + i
                                                             for i in range(5))

SELL = wire.ORDER_REQUEST.flag("flags", "sell")
OTHER_ORDER_FLAGS = (wire.ORDER_REQUEST.flag("flags", "ioc") | wire.ORDER_REQUEST.flag("flags", "fok")
                     | wire.ORDER_REQUEST.flag("flags", "post_only"))
FILL_SELL = wire.FILL.flag("flags", "sell")
FILL_DONE = wire.FILL.flag("flags", "done")
BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
NEW, CANCEL, REPLACE = wire.ORDER_KIND_NEW, wire.ORDER_KIND_CANCEL, wire.ORDER_KIND_REPLACE
STAMP = 1 << wire.CYCLE_STAMP_BITS


class StandaloneRiskGate(wiring.Component):
    """The risk gate alone: gate, register bank, cycle counter and an ``applied`` monitor.

    Ports: ``order_in``, ``fill_in``, ``bbo_in`` (streams in), ``verdict_out``, ``order_out``,
    ``applied`` (streams out; ``applied`` is one :data:`APPLIED_LAYOUT` record per cycle in which a
    fill or BBO record was taken or RISK_COMMIT / RISK_KILL was written), ``cycle`` (the counter
    the gate sees, 0 in the first cycle after reset) and ``csr`` (the register bus of
    :class:`hdl.regs.RegisterBank` over :data:`hdl.wire.REGISTERS`, wired as in the top).

    Parameters
    ----------
    open_orders, dup_depth : int
        As :class:`hdl.risk.PreTradeRisk`; the slots are always ``hdl.wire.RISK_SLOTS`` (the
        register map has that many per-symbol registers).
    """

    def __init__(self, *, open_orders: int = 32, dup_depth: int = 16):
        for name, value in (("open_orders", open_orders), ("dup_depth", dup_depth)):
            if not isinstance(value, int) or not 1 <= value <= 1024:
                self._MustUse__silence = True   # a refused component is not an unused one
                raise ValueError(f"{name} must be an integer in [1, 1024], not {value!r}")
        self.open_orders, self.dup_depth = open_orders, dup_depth
        super().__init__({
            "order_in": In(stream.Signature(wire.ORDER_REQUEST.layout)),
            "fill_in": In(stream.Signature(wire.FILL.layout)),
            "bbo_in": In(stream.Signature(wire.BBO_UPDATE.layout)),
            "verdict_out": Out(stream.Signature(wire.VERDICT.layout)),
            "order_out": Out(stream.Signature(wire.ORDER_REQUEST.layout)),
            "applied": Out(stream.Signature(APPLIED_LAYOUT)),
            "cycle": Out(64),
            "csr": In(RegisterBusSignature()),
        })

    @property
    def config(self) -> str:
        """Every constructor parameter, for the build cache key."""
        return f"risk-s{SLOTS}-o{self.open_orders}-d{self.dup_depth}"

    def elaborate(self, platform):
        m = Module()
        # Built here, not in __init__: a cached build never elaborates, and an unelaborated
        # submodule would be reported as unused.
        m.submodules.gate = gate = PreTradeRisk(slots=SLOTS, open_orders=self.open_orders,
                                                dup_depth=self.dup_depth)
        m.submodules.bank = bank = RegisterBank(wire.REGISTERS)
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        m.d.comb += [gate.cycle.eq(cycle), self.cycle.eq(cycle)]
        connect(m, wiring.flipped(self.order_in), gate.order_in)
        connect(m, wiring.flipped(self.fill_in), gate.fill_in)
        connect(m, wiring.flipped(self.bbo_in), gate.bbo_in)
        connect(m, gate.verdict_out, wiring.flipped(self.verdict_out))
        connect(m, gate.order_out, wiring.flipped(self.order_out))
        connect(m, wiring.flipped(self.csr), bank.bus)
        connect_registers(m, bank, gate.regs)

        mon = self.applied
        took_fill = self.fill_in.valid & self.fill_in.ready
        took_bbo = self.bbo_in.valid & self.bbo_in.ready
        commit = bank.write_strobe["RISK_COMMIT"]
        kill = bank.write_strobe["RISK_KILL"]
        overrun = Signal()
        lost = mon.valid & ~mon.ready
        with m.If(took_fill | took_bbo | commit | kill):
            m.d.sync += [
                mon.valid.eq(1),
                mon.payload.cycle.eq(cycle[:APPLIED_CYCLE_BITS]),
                mon.payload.fill.eq(took_fill),
                mon.payload.bbo.eq(took_bbo),
                mon.payload.commit.eq(commit),
                mon.payload.kill.eq(kill),
                mon.payload.overrun.eq(overrun | lost),
                overrun.eq(overrun | lost),
            ]
        with m.Elif(mon.ready):
            m.d.sync += mon.valid.eq(0)
        return m


# ---- registers ------------------------------------------------------------------------------

_REFS: dict[str, tuple[str, int]] = {}
for _reg in wire.RISK_REGISTERS:
    for _i in range(_reg.count):
        _REFS[_reg.name if _reg.count == 1 else f"{_reg.name}_{_i}"] = (_reg.name, _i)


def register_ref(key: str) -> tuple[str, int]:
    """Bank key (``RISK_MAX_LONG_3``) -> register name and instance (``RISK_MAX_LONG``, 3)."""
    try:
        return _REFS[key]
    except KeyError:
        raise KeyError(f"{key!r} is not a risk register instance") from None


def register_word(key: str) -> int:
    """Word address of the risk register instance ``key`` in :data:`hdl.wire.REGISTERS`."""
    name, index = register_ref(key)
    return wire.REGISTERS.address(name, index) // 4


# ---- records --------------------------------------------------------------------------------

def records_array(record: wire.Record, rows: list[dict]) -> np.ndarray:
    """A numpy array of ``record`` from dicts of field values (missing fields are 0)."""
    arr = record.array(len(rows))
    if rows:
        for f in record.fields:
            if f.name in rows[0]:
                arr[f.name] = [r[f.name] for r in rows]
    return arr


def decode_applied(words: np.ndarray) -> dict[str, np.ndarray]:
    """Columns of ``applied`` monitor records (uint64 words)."""
    w = np.asarray(words, dtype=np.uint64)
    bit = lambda b: ((w >> np.uint64(b)) & np.uint64(1)).astype(bool)  # noqa: E731
    return dict(cycle=(w & np.uint64((1 << APPLIED_CYCLE_BITS) - 1)).astype(np.int64),
                fill=bit(_FILL_BIT), bbo=bit(_BBO_BIT), commit=bit(_COMMIT_BIT),
                kill=bit(_KILL_BIT), overrun=bit(_OVERRUN_BIT))


# ---- traffic --------------------------------------------------------------------------------

@dataclass
class RiskPhase:
    """One batch of traffic: streams pushed together, register writes in flight, then drained.

    Attributes
    ----------
    orders, fills, bbos : list of dict
        ORDER_REQUEST, FILL and BBO_UPDATE field values, in stream order.
    writes : list of (str, int)
        Register writes (bank keys), issued in order ``write_after`` cycles into the phase.
    write_after : int
    commits : list of RiskLimits
        The shadow set each RISK_COMMIT in ``writes`` makes active, in order.
    kills : list of bool
        The value of each RISK_KILL write, in order.
    """

    orders: list
    fills: list
    bbos: list
    writes: list = field(default_factory=list)
    write_after: int = 0
    commits: list = field(default_factory=list)
    kills: list = field(default_factory=list)


class RiskTraffic:
    """Seeded phases of orders, fills, BBO records and limit changes for the risk gate.

    Orders: new (mostly), cancel and replace of orders the model holds open, unknown kinds,
    duplicate ids, out-of-range slots, zero and oversized prices and quantities. Fills: partial,
    complete, over-filled and zero-quantity ``done`` (a confirmed cancel) fills of open orders,
    fills of orders of the same phase, unknown ids, out-of-range slots. BBO records around each
    symbol's mid with empty sides. Limits: random sets with collars in ticks and basis points,
    stale-BBO ages, token buckets, reduce-only, kills; changed in part or whole mid-phase.

    Parameters
    ----------
    seed : int
    open_orders, dup_depth : int
        The gate's table size and duplicate window (the traffic aims at their edges).
    orders_per_phase : tuple of int
        Inclusive range of orders in one phase.
    change_rate : float
        Probability that a phase writes limits (and usually commits them) mid-stream.
    """

    def __init__(self, seed: int, *, open_orders: int = 32, dup_depth: int = 16,
                 orders_per_phase: tuple[int, int] = (8, 160), change_rate: float = 0.4):
        self.rng = random.Random(seed)
        self.open_orders, self.dup_depth = open_orders, dup_depth
        self.orders_per_phase = orders_per_phase
        self.change_rate = change_rate
        self.mid = [10_000 + 1_500 * s for s in range(SLOTS)]   # price units (ITCH Price(4))
        self.next_id = 1
        self.bbo_seq = 1
        self.shadow = RiskLimits.uniform(SLOTS).to_registers()
        self.kill = False
        self.first = True

    def random_limits(self) -> RiskLimits:
        """A complete, mostly permissive limit set with a few tight checks."""
        rng = self.rng
        per = lambda lo, hi: tuple(rng.randint(lo, hi) for _ in range(SLOTS))  # noqa: E731
        return RiskLimits(
            symbol_control=tuple(SYMBOL_ENABLED * (rng.random() < 0.93)
                                 | SYMBOL_KILL * (rng.random() < 0.03)
                                 | SYMBOL_REDUCE_ONLY * (rng.random() < 0.06)
                                 for _ in range(SLOTS)),
            max_order_qty=per(50, 160),
            max_long=per(200, 3000),
            max_short=per(200, 3000),
            max_notional=rng.choice([30_000 * 120, 1 << 40, (1 << 64) - 1]),
            collar_config=rng.choice([0, COLLAR_ENABLE, COLLAR_ENABLE | COLLAR_BPS]),
            collar_band=rng.choice([5, 60, 150, 400, (1 << 32) - 1]),
            bbo_max_age=rng.choice([0, 0, 150, 2_000]),
            max_open_orders=rng.choice([self.open_orders, self.open_orders,
                                        rng.randint(0, self.open_orders),
                                        self.open_orders + 3]),
            rate_shift=rng.choice([0, 0, 1, 3]),
            rate_burst=rng.choice([2, 16, 200, 70_000]),
            symbol_rate_shift=rng.choice([0, 1, 2, 4]),
            symbol_rate_burst=rng.choice([1, 4, 32]),
        )

    def _limit_writes(self, phase: RiskPhase) -> None:
        rng = self.rng
        fresh = self.random_limits().to_registers()
        if self.first or rng.random() < 0.4:
            keys = sorted(fresh)                      # a whole new set
        else:
            keys = rng.sample(sorted(fresh), rng.randint(1, 8))
        for key in keys:
            phase.writes.append((key, fresh[key]))
            self.shadow[key] = fresh[key]
        # Mostly commit; sometimes leave the writes in the shadow set for a later commit.
        if self.first or rng.random() < 0.85:
            phase.writes.append(("RISK_COMMIT", 1))
            phase.commits.append(RiskLimits.from_registers(self.shadow, SLOTS))
        # The kill switch: rarely on, soon off again; the other bits of the register are ignored.
        if not self.first and rng.random() < (0.6 if self.kill else 0.05):
            self.kill = not self.kill
            value = int(self.kill) | (rng.getrandbits(31) << 1 if rng.random() < 0.2 else 0)
            phase.writes.append(("RISK_KILL", value))
            phase.kills.append(self.kill)
        self.first = False

    def next_phase(self, model: RiskModel) -> RiskPhase:
        """The next phase, aimed at the orders ``model`` holds open now."""
        rng = self.rng
        n = rng.randint(*self.orders_per_phase)
        open_entries = [e for e in model.table if e is not None]
        orders = [self._order(open_entries) for _ in range(n)]
        fills = self._fills(open_entries, orders)
        bbos = [self._bbo() for _ in range(rng.randint(0, max(1, n // 3)))]
        phase = RiskPhase(orders=orders, fills=fills, bbos=bbos)
        if self.first or rng.random() < self.change_rate:
            self._limit_writes(phase)
            # Anywhere in the phase; before the first commit the gate must reject (fail closed).
            phase.write_after = rng.randint(0, n)
        return phase

    def _order(self, open_entries) -> dict:
        rng = self.rng
        kind = rng.choices([NEW, CANCEL, REPLACE, 0, 4, 255], [72, 12, 12, 1, 1, 1])[0]
        if rng.random() < 0.02:
            slot = SLOTS + rng.randint(0, 3)
        elif kind in (CANCEL, REPLACE) and open_entries and rng.random() < 0.7:
            slot = rng.choice(open_entries).slot
        else:
            slot = rng.randrange(SLOTS)
        if rng.random() < 0.02 and self.next_id > 1:
            cid = max(1, self.next_id - rng.randint(1, 2 * self.dup_depth))
        else:
            cid = self.next_id
            self.next_id += 1
        orig = 0
        if kind in (CANCEL, REPLACE):
            r = rng.random()
            if open_entries and r < 0.85:
                orig = rng.choice(open_entries).client_order_id
            elif r < 0.95:
                orig = max(1, self.next_id - rng.randint(1, 50))
            else:
                orig = rng.getrandbits(64)
        mid = self.mid[slot % SLOTS]
        r = rng.random()
        sell = rng.random() < 0.5
        # Mostly on the passive side of the mid (so our own orders rarely cross), some through it.
        away = rng.randint(-40, 200)
        price = (0 if r < 0.01 else rng.randint(1 << 31, (1 << 32) - 1) if r < 0.015
                 else max(1, mid + away if sell else mid - away))
        r = rng.random()
        qty = (0 if r < 0.01 else rng.randint(1 << 20, (1 << 32) - 1) if r < 0.02
               else rng.randint(1, 100))
        flags = SELL * sell | (rng.getrandbits(8) & OTHER_ORDER_FLAGS)
        return dict(client_order_id=cid, orig_client_order_id=orig, price=price, quantity=qty,
                    slot=slot, kind=kind, flags=flags)

    def _fills(self, open_entries, orders) -> list[dict]:
        rng = self.rng
        fills = []

        def fill_of(cid, slot, sell, remaining):
            r = rng.random()
            if r < 0.15:
                qty, done = 0, True                  # cancel confirmed
            elif r < 0.2:
                qty, done = remaining + rng.randint(1, 50), True   # over-fill
            else:
                qty = rng.randint(1, max(1, remaining))
                done = qty >= remaining or rng.random() < 0.6
            return dict(client_order_id=cid, price=self.mid[slot % SLOTS], quantity=qty,
                        slot=slot, flags=FILL_SELL * sell | FILL_DONE * done)

        for e in open_entries:
            if rng.random() < 0.85:
                fills.append(fill_of(e.client_order_id, e.slot, e.sell, e.remaining))
        for _ in range(rng.randint(0, 2)):
            slot = SLOTS + rng.randint(0, 3) if rng.random() < 0.3 else rng.randrange(SLOTS)
            fills.append(dict(client_order_id=rng.getrandbits(64), price=1, slot=slot,
                              quantity=rng.randint(0, 20),
                              flags=FILL_SELL * (rng.random() < 0.5) | FILL_DONE * (
                                  rng.random() < 0.5)))
        rng.shuffle(fills)
        # Fills of this phase's own new orders, behind the others in the stream: whether each
        # finds its order open depends on the cycle it arrives, which is the point.
        early = [o for o in orders[: max(1, len(orders) // 2)] if o["kind"] == NEW
                 and o["slot"] < SLOTS and 0 < o["quantity"] < 1 << 20]
        for o in rng.sample(early, min(len(early), rng.randint(0, 12))):
            fills.append(fill_of(o["client_order_id"], o["slot"], bool(o["flags"] & SELL),
                                 o["quantity"]))
        return fills

    def _bbo(self) -> dict:
        rng = self.rng
        slot = SLOTS + rng.randint(0, 3) if rng.random() < 0.02 else rng.randrange(SLOTS)
        mid = self.mid[slot % SLOTS]
        bid = mid + rng.randint(-150, 100)
        self.bbo_seq += 1
        return dict(seq=self.bbo_seq, bid_price=bid, ask_price=bid + rng.randint(1, 80),
                    bid_size=rng.randint(1, 10_000), ask_size=rng.randint(1, 10_000), slot=slot,
                    flags=BID_VALID * (rng.random() < 0.93) | ASK_VALID * (rng.random() < 0.93))


# ---- scoreboard -----------------------------------------------------------------------------

class RiskScoreboard:
    """The model fed with what the gate took, in the order the gate applied it; the differences.

    Parameters
    ----------
    open_orders, dup_depth : int
        The gate's parameters.
    max_messages : int
        Mismatch descriptions kept (all are counted).
    """

    def __init__(self, *, open_orders: int = 32, dup_depth: int = 16, max_messages: int = 20):
        self.model = RiskModel(slots=SLOTS, open_orders=open_orders, dup_depth=dup_depth)
        self.latency_ready: Counter = Counter()    # latency in cycles -> verdicts, outputs ready
        self.latency_stalled: Counter = Counter()  # ... with output back-pressure
        self.commits = 0
        self.kills = 0
        self.orders = 0
        self.accepted = 0
        self.mismatches = 0
        self.messages: list[str] = []
        self.max_messages = max_messages
        self.sustained_orders = 0   # orders of phases offered back to back with outputs ready
        self.sustained_cycles = 0   # ... and the cycles from the first to the last handshake

    def _miss(self, text: str) -> None:
        self.mismatches += 1
        if len(self.messages) < self.max_messages:
            self.messages.append(text)

    def check_phase(self, phase: RiskPhase, verdicts: np.ndarray, orders_out: np.ndarray,
                    applied: np.ndarray, *, start_cycle: int, stalled: bool,
                    back_to_back: bool = False) -> None:
        """Replay one drained phase into the model and compare the gate's outputs with it.

        Parameters
        ----------
        phase : RiskPhase
            What was offered.
        verdicts, orders_out : numpy.ndarray
            What ``verdict_out`` and ``order_out`` gave (VERDICT / ORDER_REQUEST dtypes).
        applied : numpy.ndarray
            The ``applied`` monitor's uint64 words of the phase.
        start_cycle : int
            A gate cycle at or before the phase's first handshake (unwraps 32-bit stamps).
        stalled : bool
            Outputs had back-pressure: latency may exceed the gate's LATENCY.
        back_to_back : bool
            Orders were offered on every cycle with the outputs always ready: they must have been
            taken one per cycle.
        """
        n = len(phase.orders)
        if len(verdicts) != n:
            self._miss(f"{len(verdicts)} verdicts for {n} orders")
            return
        mon = decode_applied(applied)
        if mon["overrun"].any():
            self._miss("the applied monitor lost records: keep its output ready")
        counts = dict(fill=int(mon["fill"].sum()), bbo=int(mon["bbo"].sum()),
                      commit=int(mon["commit"].sum()), kill=int(mon["kill"].sum()))
        offered = dict(fill=len(phase.fills), bbo=len(phase.bbos), commit=len(phase.commits),
                       kill=len(phase.kills))
        if counts != offered:
            self._miss(f"monitor saw {counts}, phase offered {offered}")
            return

        ingress = (start_cycle + ((verdicts["ingress_cycle"].astype(np.int64) - start_cycle)
                                  % STAMP))
        egress = start_cycle + ((verdicts["egress_cycle"].astype(np.int64) - start_cycle) % STAMP)
        latency = egress - ingress
        (self.latency_stalled if stalled else self.latency_ready).update(latency.tolist())
        self.commits += len(phase.commits)
        self.kills += len(phase.kills)
        if stalled:
            bad = np.flatnonzero(latency < LATENCY)
        else:
            bad = np.flatnonzero(latency != LATENCY)
        for i in bad[:3]:
            self._miss(f"order #{i}: latency {latency[i]} cycles, gate LATENCY is {LATENCY}")
        if n and np.any(np.diff(ingress) <= 0):
            self._miss("ingress cycles not increasing")
        if back_to_back and n:
            span = int(ingress[-1] - ingress[0]) + 1
            self.sustained_orders += n
            self.sustained_cycles += span
            if span != n:
                self._miss(f"{n} orders offered back to back took {span} cycles to enter")

        events = [(int(d) - 1, 0, i, "order") for i, d in enumerate(egress)]
        k = dict(fill=0, bbo=0, commit=0, kill=0)
        seq = n
        for c, f, b, cm, kl in zip(mon["cycle"].tolist(), mon["fill"].tolist(),
                                   mon["bbo"].tolist(), mon["commit"].tolist(),
                                   mon["kill"].tolist()):
            for kind, happened in (("fill", f), ("bbo", b), ("commit", cm), ("kill", kl)):
                if happened:
                    # the kill register takes a write one cycle after the bank does
                    events.append((c + 1 if kind == "kill" else c, 1, seq, kind, k[kind]))
                    k[kind] += 1
                    seq += 1
        events.sort()

        model = self.model
        expected_out = []
        for ev in events:
            cycle, kind = ev[0], ev[3]
            if kind == "order":
                i = ev[2]
                req, v = phase.orders[i], verdicts[i]
                reasons = model.order(req, cycle)
                got = int(v["reasons"])
                if (int(v["client_order_id"]), int(v["slot"]), int(v["kind"])) != (
                        req["client_order_id"], req["slot"], req["kind"]):
                    self._miss(f"order #{i}: verdict {v} answers another request than {req}")
                if got != reasons or int(v["flags"]) != int(reasons == 0):
                    self._miss(f"order #{i} {req} decided at cycle {cycle}: gate "
                               f"{reason_names(got)} (flags {int(v['flags'])}), model "
                               f"{reason_names(reasons)}")
                if reasons == 0:
                    expected_out.append(req)
            elif kind == "fill":
                model.fill(phase.fills[ev[4]], cycle)
            elif kind == "bbo":
                model.bbo_update(phase.bbos[ev[4]], cycle)
            elif kind == "commit":
                model.commit(phase.commits[ev[4]], cycle)
            else:
                model.set_kill(phase.kills[ev[4]], cycle)
        self.orders += n
        self.accepted += len(expected_out)
        want = records_array(wire.ORDER_REQUEST, expected_out)
        if len(orders_out) != len(want) or not np.array_equal(
                np.asarray(orders_out).view(np.uint8), want.view(np.uint8)):
            self._miss(f"order_out gave {len(orders_out)} requests, the model accepted "
                       f"{len(want)} (or their bytes differ)")

    def check_status(self, values: dict[str, int]) -> None:
        """Compare read-only risk registers (bank keys -> values read) with the model's."""
        want = self.model.status()
        for key, value in values.items():
            if want[key] != value:
                self._miss(f"register {key}: gate {value}, model {want[key]}")

    @staticmethod
    def status_keys() -> list[str]:
        """The read-only risk register instances (bank keys) the model predicts."""
        return [key for key, (name, _) in _REFS.items()
                if wire.REGISTERS[name].access == "r"]


# ---- the batch harness --------------------------------------------------------------------

def build_harness(*, open_orders: int = 32, dup_depth: int = 16) -> "Harness":
    """Build (cached) and load the harness of :class:`StandaloneRiskGate`, reset.

    The returned harness carries ``cycle_base``, its :attr:`~sim.harness.Harness.cycle` when the
    gate's counter read 0 (set it again after another reset, or on a :meth:`spawn`).
    """
    from sim.harness import Harness

    top = StandaloneRiskGate(open_orders=open_orders, dup_depth=dup_depth)
    h = Harness.build(top, "ticklane_risk", config=top.config, settle=8,
                      dtypes={"order_in": wire.ORDER_REQUEST.dtype, "fill_in": wire.FILL.dtype,
                              "bbo_in": wire.BBO_UPDATE.dtype,
                              "verdict_out": wire.VERDICT.dtype,
                              "order_out": wire.ORDER_REQUEST.dtype,
                              "applied": np.dtype("<u8")})
    h.reset()
    h.cycle_base = h.cycle   # the gate's counter reads 0 in the first cycle after reset
    return h


def run_harness_phase(h: "Harness", phase: RiskPhase, board: RiskScoreboard, *, idle: float = 0.0,
                      backpressure: float = 0.0) -> None:
    """Push one phase, issue its register writes in flight, drain it and score it."""
    start = h.cycle - h.cycle_base
    h.push("order_in", records_array(wire.ORDER_REQUEST, phase.orders))
    h.push("fill_in", records_array(wire.FILL, phase.fills))
    h.push("bbo_in", records_array(wire.BBO_UPDATE, phase.bbos))
    throttle = dict(idle={"order_in": idle, "fill_in": idle, "bbo_in": idle},
                    backpressure={"verdict_out": backpressure, "order_out": backpressure})
    budget = 64 * (len(phase.orders) + len(phase.fills) + len(phase.bbos)) + 1_000
    if phase.writes:
        h.run(phase.write_after, stop_when_drained=False, **throttle)
        for key, value in phase.writes:
            h.write_reg(register_word(key), value)
    h.run(budget, **throttle)
    if any(h.pending(s) for s in ("order_in", "fill_in", "bbo_in")):
        raise RuntimeError(f"the gate did not drain a phase within {budget} cycles")
    board.check_phase(phase, h.pop("verdict_out"), h.pop("order_out"), h.pop("applied"),
                      start_cycle=start, stalled=backpressure > 0,
                      back_to_back=idle == 0 and backpressure == 0)


def read_status_harness(h: "Harness") -> dict[str, int]:
    """The read-only risk registers, read over the register bus."""
    return {key: h.read_reg(register_word(key)) for key in RiskScoreboard.status_keys()}


def run_random(h: "Harness", *, orders: int, seed: int, stress: float = 0.25, open_orders: int = 32,
               dup_depth: int = 16, status_every: int = 16) -> RiskScoreboard:
    """At least ``orders`` random orders in phases; a fraction ``stress`` of the phases with idle
    inputs and output back-pressure. Returns the scoreboard (check ``mismatches``)."""
    traffic = RiskTraffic(seed, open_orders=open_orders, dup_depth=dup_depth)
    board = RiskScoreboard(open_orders=open_orders, dup_depth=dup_depth)
    rng = random.Random(seed ^ 0x5EED)
    h.run(0, seed=seed)
    k = 0
    while board.orders < orders:
        phase = traffic.next_phase(board.model)
        if rng.random() < stress:
            run_harness_phase(h, phase, board, idle=rng.choice([0.1, 0.3, 0.6]),
                              backpressure=rng.choice([0.1, 0.4, 0.8]))
        else:
            run_harness_phase(h, phase, board)
        k += 1
        if k % status_every == 0:
            board.check_status(read_status_harness(h))
    board.check_status(read_status_harness(h))
    return board


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stress", type=float, default=0.25,
                        help="fraction of phases with idle inputs and output back-pressure")
    parser.add_argument("--open-orders", type=int, default=32)
    parser.add_argument("--dup-depth", type=int, default=16)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    h = build_harness(open_orders=args.open_orders, dup_depth=args.dup_depth)
    t1 = time.perf_counter()
    c0 = h.cycle
    board = run_random(h, orders=args.orders, seed=args.seed, stress=args.stress,
                       open_orders=args.open_orders, dup_depth=args.dup_depth)
    t2 = time.perf_counter()
    cycles = h.cycle - c0
    stats = h.stats()

    rows = [
        ("orders", f"{board.orders:,}"),
        ("accepted", f"{board.accepted:,} ({board.accepted / max(1, board.orders):.1%})"),
        ("fills (unknown id)", f"{board.model.counters['RISK_FILLS']:,} "
                               f"({board.model.counters['RISK_FILLS_UNKNOWN']:,})"),
        ("BBO records", f"{stats['bbo_in']['records']:,}"),
        ("limit commits / kill writes", f"{board.commits:,} / {board.kills:,}"),
        ("cycles simulated", f"{cycles:,}"),
        ("orders/cycle sustained, output ready",
         f"{board.sustained_orders / max(1, board.sustained_cycles):.4f} "
         f"({board.sustained_orders:,} orders in {board.sustained_cycles:,} cycles)"),
        ("wall time: build / run", f"{t1 - t0:.1f} s / {t2 - t1:.1f} s "
                                   f"({board.orders / (t2 - t1):,.0f} orders/s with the model)"),
        ("mismatches", f"{board.mismatches}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"Risk gate vs model, seed {args.seed}, {args.stress:.0%} of phases with idle and "
          f"back-pressure; gate LATENCY = {LATENCY}")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print("\n  verdict latency (order handshake to verdict), cycles")
    print(f"  {'cycles':>8}  {'output ready':>14}  {'back-pressure':>14}")
    bins = [(lat, lat) for lat in range(LATENCY, LATENCY + 8)]
    hi = LATENCY + 8
    while hi <= max(max(board.latency_stalled, default=0), max(board.latency_ready, default=0)):
        bins.append((hi, 2 * hi - 1))
        hi *= 2
    for lo, top in bins:
        ready = sum(n for lat, n in board.latency_ready.items() if lo <= lat <= top)
        stalled = sum(n for lat, n in board.latency_stalled.items() if lo <= lat <= top)
        label = f"{lo}" if lo == top else f"{lo}-{top}"
        print(f"  {label:>8}  {ready:>14,}  {stalled:>14,}")
    print("\n  rejected orders by reason (a request may have several)")
    for name, n in zip(wire.RISK_REASONS, board.model.counters["RISK_REJECTS"]):
        print(f"  {name:<16}  {n:>12,}")
    for msg in board.messages:
        print("  MISMATCH", msg)
    return 1 if board.mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
