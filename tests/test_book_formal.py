"""Formal properties of the book stage, checked with SymbiYosys (bounded model check).

Every input is free on every cycle: book events (any kind, slot, reference, price, shares), host
refill records, the BBO output's ready, the counter clear and the cycle counter. The stage is
built small (2 slots, 2 levels per side, a 2 x 4 order table) so the solver sees every corner:
full sets, full sides, lost symbols, refills in any order. For any input and any backpressure:

* the BBO output obeys the stream contract: once ``valid`` is high it stays high, with the same
  payload, until ``ready`` takes the record;
* the stage never locks up: while the host takes every record, the event input is never held
  off for more than :data:`EVENTS_MAX_STALL` cycles in a row and the refill input for more than
  :data:`REFILL_MAX_STALL` (a replace takes two cycles, a refill install one accept slot after at
  most ``_REFILL_PATIENCE`` cycles behind a busy input, a full output FIFO drains one record a
  cycle).

This is a bounded proof: every input sequence of :data:`BMC_DEPTH` cycles from reset, at this
geometry enough to fill a set of the order table and a side's held levels and go deep.
k-induction does not close without invariants on the output FIFO's internal pointers (from an
unreachable state with inconsistent pointers its output can change), so it is not claimed here.

The proof builds the book with a refill patience of 2 cycles instead of 16: the patience is a
counter whose length changes no control path, and the solver's cost grows steeply with the
number of cycles a stall can last. The bounds are the smallest for which the bounded proof holds.
"""

from __future__ import annotations

import os

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Elaboratable, Module, Signal

from hdl.book.stage import BookStage
from sim.formal import FormalToolMissing, run_sby

PATIENCE = 2
# The smallest bounds that hold: the solver refutes 1 for the events and 3 for the refill input.
EVENTS_MAX_STALL = int(os.environ.get("BOOK_FORMAL_EVENTS_MAX_STALL", "2"))
REFILL_MAX_STALL = int(os.environ.get("BOOK_FORMAL_REFILL_MAX_STALL", "4"))


class BookProperties(Elaboratable):
    def __init__(self):
        self.stage = BookStage(slots=2, levels=2, order_ways=2, order_sets=4,
                               assign_slots=False, refill_patience=PATIENCE)

    def elaborate(self, platform):
        m = Module()
        st = self.stage
        m.submodules.stage = st
        for port in (st.events, st.refill):
            m.d.comb += [port.valid.eq(AnySeq(1)),
                         port.payload.as_value().eq(AnySeq(len(port.payload.as_value())))]
        m.d.comb += [st.bbo.ready.eq(AnySeq(1)), st.cycle.eq(AnySeq(64)),
                     st.clear.eq(AnySeq(1))]
        for sig in (*st.control.values(), *st.control_strobe.values()):
            m.d.comb += sig.eq(AnySeq(len(sig)))

        # Stream contract on the BBO output.
        started = Signal()
        m.d.sync += started.eq(1)
        payload = st.bbo.payload.as_value()
        held = Signal()
        past = Signal(len(payload))
        m.d.sync += [held.eq(st.bbo.valid & ~st.bbo.ready), past.eq(payload)]
        with m.If(started & held):
            m.d.comb += [Assert(st.bbo.valid), Assert(payload == past)]

        # No lock-up: with the output taken every cycle, each input is ready within MAX_STALL.
        for name, port, bound in (("events", st.events, EVENTS_MAX_STALL),
                                  ("refill", st.refill, REFILL_MAX_STALL)):
            stall = Signal(range(bound + 2), name=f"{name}_stall")
            with m.If(~st.bbo.ready | port.ready):
                m.d.sync += stall.eq(0)
            with m.Elif(stall <= bound):
                m.d.sync += stall.eq(stall + 1)
            m.d.comb += Assert(stall <= bound)
        return m


def _run_sby(task: str, depth: int, induction: int):
    try:
        return run_sby(BookProperties(), "book", task, depth=depth, induction=induction, timeout_s=600)
    except FormalToolMissing as e:
        pytest.skip(str(e))


BMC_DEPTH = int(os.environ.get("BOOK_FORMAL_BMC_DEPTH", "10"))
INDUCTION_DEPTH = 2


def test_bmc_any_events_and_refills_never_lock_the_book_or_break_its_output_from_reset():
    result = _run_sby("bmc", depth=BMC_DEPTH, induction=INDUCTION_DEPTH)
    assert result.returncode == 0 and "DONE (PASS" in result.stdout, result.stdout[-3000:]
