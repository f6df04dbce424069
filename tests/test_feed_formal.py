"""Formal properties of the feed stage, checked with SymbiYosys (BMC and k-induction).

Every input of the stage is free on every cycle: the market-data beats (any bytes, any byte
enables, ``last`` anywhere, ``valid`` any time), the ready of each of its three outputs, every
control register and strobe, the cycle counter. So the properties hold for any byte stream,
well-formed or not, under any backpressure:

* the stage never stalls its input on its own: whenever its outputs can take a record, it takes a
  beat (``beats.ready``), whatever bytes came before, except in the one cycle a MoldUDP64 header
  waits after a packet that brought fewer message blocks than its header announced, a wait that
  never lasts two cycles; bad input can only be dropped and counted, never hang the stage;
* every output obeys the stream contract: once ``valid`` is high it stays high, with the same
  payload, until ``ready`` takes the record, so nothing offered downstream is lost or changes
  under the reader.

k-induction closes the proof, so it holds on every cycle of every run, not only the first few.
The subscription table is elaborated with 16 locates instead of 65,536: its depth changes no
control path (the address is truncated, the entry read is free either way), and a 65,536-entry
memory costs the solver minutes of set-up for nothing.
"""

from __future__ import annotations

import os

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Elaboratable, Module, Signal

from hdl.feed.stage import FeedStage
from hdl.feed.subscriptions import SubscriptionTable
from sim.formal import FormalToolMissing, run_sby

OUTPUTS = ("events", "host_records", "gaps")


class FeedProperties(Elaboratable):
    def __init__(self):
        self.stage = FeedStage(slots=4, host_streams=True, locates=16)

    def elaborate(self, platform):
        m = Module()
        st = self.stage
        m.submodules.stage = st

        beats = st.beats
        m.d.comb += [beats.valid.eq(AnySeq(1)),
                     beats.payload.as_value().eq(AnySeq(len(beats.payload.as_value()))),
                     st.cycle.eq(AnySeq(64)), st.clear.eq(AnySeq(1))]
        for sig in (*st.control.values(), *st.control_strobe.values()):
            m.d.comb += sig.eq(AnySeq(len(sig)))
        outs = [getattr(st, name) for name in OUTPUTS]
        for port in outs:
            m.d.comb += port.ready.eq(AnySeq(1))

        # Never stalls on its own: all outputs ready => a beat is taken, but for the one cycle
        # a MoldUDP64 header waits after a packet that brought fewer blocks than it announced,
        # and that wait never lasts two cycles.
        all_ready = Signal()
        m.d.comb += all_ready.eq(outs[0].ready & outs[1].ready & outs[2].ready)
        m.d.comb += Assert(~all_ready | beats.ready | st.header_wait)
        waited = Signal()
        m.d.sync += waited.eq(st.header_wait)
        m.d.comb += Assert(~(waited & st.header_wait))

        # Stream contract on every output: a record offered and not taken stays, unchanged.
        started = Signal()        # no past before the first cycle
        m.d.sync += started.eq(1)
        for name, port in zip(OUTPUTS, outs):
            payload = port.payload.as_value()
            held = Signal(name=f"{name}_held")
            past = Signal(len(payload), name=f"{name}_past")
            m.d.sync += [held.eq(port.valid & ~port.ready), past.eq(payload)]
            with m.If(started & held):
                m.d.comb += [Assert(port.valid), Assert(payload == past)]
        return m


def _run_sby(task: str, depth: int, induction: int):
    try:
        return run_sby(FeedProperties(), "feed", task, depth=depth, induction=induction, timeout_s=600)
    except FormalToolMissing as e:
        pytest.skip(str(e))


BMC_DEPTH = int(os.environ.get("FEED_FORMAL_BMC_DEPTH", "4"))
INDUCTION_DEPTH = 2


def test_bmc_any_bytes_never_stall_the_stage_or_break_an_output_stream_from_reset():
    result = _run_sby("bmc", depth=BMC_DEPTH, induction=INDUCTION_DEPTH)
    assert result.returncode == 0 and "DONE (PASS" in result.stdout, result.stdout[-3000:]


def test_k_induction_proves_no_stall_and_the_stream_contract_for_all_cycles():
    result = _run_sby("prove", depth=BMC_DEPTH, induction=INDUCTION_DEPTH)
    assert result.returncode == 0 and "DONE (PASS" in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize("locates", [0, 3, 1 << 17])
def test_subscription_table_rejects_a_depth_that_is_not_a_locate_power_of_two(locates):
    with pytest.raises(ValueError, match=rf"locates must be a power of two in 2\.\.65536, "
                                         rf"not {locates}"):
        SubscriptionTable(locates=locates)
