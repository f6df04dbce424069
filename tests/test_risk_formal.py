"""Formal properties of the risk gate, checked with SymbiYosys (BMC and k-induction).

The gate is built small (2 slots, 2 open orders, 6-bit prices and quantities) and every input is
free on every cycle: requests, fills, BBO records, output ready, shadow limits, commit strobe and
kill switch. A harness keeps its own *ghost* copies, built only from what crossed the ports: the
limit set as of the last commit, the kill switch, the BBO per slot and the position per slot.
At every decision it asserts against the ghosts, not against the gate's own registers:

* atomic commit: the active set equals the ghost set, all of it from one commit, every cycle;
  shadow writes without a commit change nothing;
* an accepted new or replace order fits the committed quantity and notional limits, is within the
  collar of the BBO the gate received (side present, not stale), keeps the worst-case position
  within max long / max short, books an entry only while fewer entries than the committed
  open-order limit (and the table's size) are in use, and is never accepted while the kill switch
  (global or symbol) is on;
* the request that leaves on ``order_out`` is the one that was checked;
* bookkeeping: each open-quantity counter equals the sum of its open orders' remaining quantity,
  and the open-order counter the number of valid table entries;
* an accepted new or replace order's id is held by no open order, so no two valid table entries
  hold the same id, and a fill or done releases the order it names.
"""

from __future__ import annotations

import os

import pytest
from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cat, Elaboratable, Module, Mux, Signal, signed

from hdl import wire
from hdl.bits import popcount
from hdl.risk import PreTradeRisk
from hdl.risk.limits import LIMIT_REGISTERS, PER_SYMBOL, member_name
from sim.formal import FormalToolMissing, run_sby

SLOTS, OPEN, DUP, PB, QB, BB = 2, 2, 2, 6, 6, 6


class GateProperties(Elaboratable):
    def __init__(self):
        self.gate = PreTradeRisk(slots=SLOTS, open_orders=OPEN, dup_depth=DUP, price_bits=PB,
                                 qty_bits=QB, band_bits=BB)

    def elaborate(self, platform):
        m = Module()
        gate = self.gate
        m.submodules.gate = gate.elaborate(platform)   # elaborated here to reach its state
        gate._MustUse__silence = True
        st, dec, act = gate.state, gate.decision, gate.active

        # ---- free inputs ---------------------------------------------------------------------
        for port in (gate.order_in, gate.fill_in, gate.bbo_in):
            m.d.comb += [port.valid.eq(AnySeq(1)),
                         port.payload.as_value().eq(AnySeq(len(port.payload.as_value())))]
        m.d.comb += [gate.verdict_out.ready.eq(AnySeq(1)), gate.order_out.ready.eq(AnySeq(1)),
                     gate.regs.commit.eq(AnySeq(1)), gate.regs.kill.eq(AnySeq(32)),
                     gate.regs.counters_clear.eq(AnySeq(1))]
        shadow = {}
        for reg in LIMIT_REGISTERS:
            port = getattr(gate.regs, member_name(reg.name))
            ports = [port[i] for i in range(SLOTS)] if reg.name in PER_SYMBOL else [port]
            for p in ports:
                m.d.comb += p.eq(AnySeq(32))
            shadow[member_name(reg.name)] = ports
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        m.d.comb += gate.cycle.eq(cycle)

        # ---- ghosts from the ports --------------------------------------------------------------
        ghost = {name: [Signal(32, name=f"ghost_{name}_{i}") for i in range(len(ports))]
                 for name, ports in shadow.items()}
        with m.If(gate.regs.commit):
            for name, ports in shadow.items():
                m.d.sync += [g.eq(p) for g, p in zip(ghost[name], ports)]
        ghost_kill = Signal()
        m.d.sync += ghost_kill.eq(gate.regs.kill[0])
        g_bid = [Signal(32, name=f"ghost_bid_{i}") for i in range(SLOTS)]
        g_ask = [Signal(32, name=f"ghost_ask_{i}") for i in range(SLOTS)]
        g_bid_ok = [Signal(name=f"ghost_bid_ok_{i}") for i in range(SLOTS)]
        g_ask_ok = [Signal(name=f"ghost_ask_ok_{i}") for i in range(SLOTS)]
        g_stamp = [Signal(64, name=f"ghost_stamp_{i}") for i in range(SLOTS)]
        g_pos = [Signal(signed(64), name=f"ghost_position_{i}") for i in range(SLOTS)]
        bbo, fill = gate.bbo_in.payload, gate.fill_in.payload
        for i in range(SLOTS):
            with m.If(gate.bbo_in.valid & (bbo.slot == i)):
                m.d.sync += [g_bid[i].eq(bbo.bid_price), g_ask[i].eq(bbo.ask_price),
                             g_bid_ok[i].eq(bbo.flags.bid_valid),
                             g_ask_ok[i].eq(bbo.flags.ask_valid), g_stamp[i].eq(cycle)]
            with m.If(gate.fill_in.valid & (fill.slot == i)):
                m.d.sync += g_pos[i].eq(g_pos[i] + Mux(fill.flags.sell, -fill.quantity,
                                                       fill.quantity))

        # ---- atomic commit and state agreement, every cycle -------------------------------------
        for name, sigs in ghost.items():
            active = act[name]
            for i, g in enumerate(sigs):
                m.d.comb += Assert((active[i] if name in (n.lower()[5:] for n in PER_SYMBOL)
                                    else active) == g)
        m.d.comb += Assert(st["kill"] == ghost_kill)
        for i in range(SLOTS):
            m.d.comb += [
                Assert(st["position"][i] == g_pos[i]),
                Assert(st["bbo_stamp"][i] == g_stamp[i]),
                Assert(st["bid_valid"][i] == (g_bid_ok[i] & (g_bid[i] >> PB == 0))),
                Assert(st["ask_valid"][i] == (g_ask_ok[i] & (g_ask[i] >> PB == 0))),
                Assert(st["bid"][i] == g_bid[i][:PB]),
                Assert(st["ask"][i] == g_ask[i][:PB]),
            ]
            for side in (0, 1):
                total = sum(Mux(st["t_valid"][j] & (st["t_slot"][j] == i)
                                & (st["t_sell"][j] == side), st["t_rem"][j], 0)
                            for j in range(OPEN))
                m.d.comb += Assert(st["open_qty"][2 * i + side] == total)

        # The open-order counter is the number of valid table entries.
        in_use = popcount(Cat(*(st["t_valid"][j] for j in range(OPEN))))
        m.d.comb += Assert(st["open_count"] == in_use)

        # No two valid entries hold the same id.
        for j in range(OPEN):
            for k in range(j + 1, OPEN):
                m.d.comb += Assert(~(st["t_valid"][j] & st["t_valid"][k]
                                     & (st["t_id"][j] == st["t_id"][k])))

        # ---- the decision --------------------------------------------------------------------
        req = dec["request"]
        # The products registered with the request belong to it (needed for induction).
        m.d.comb += [Assert(dec["notional"] == req.price[:PB] * req.quantity[:QB]),
                     Assert(dec["price_bps"] == req.price[:PB] * 10_000)]
        # So do the BBO side and its products registered a cycle ahead, on every cycle with a
        # request, stalled or not: they equal the live BBO and its products with the live band.
        live = req.slot[:1]
        live_ref = Mux(req.flags.sell, st["bid"][live], st["ask"][live])
        with m.If(dec["valid"]):
            m.d.comb += [Assert(dec["ref"] == live_ref),
                         Assert(dec["side_valid"] == Mux(req.flags.sell, st["bid_valid"][live],
                                                         st["ask_valid"][live])),
                         Assert(dec["stamp"] == st["bbo_stamp"][live]),
                         Assert(dec["ref_bps"] == live_ref * 10_000),
                         Assert(dec["ref_band"] == live_ref * dec["band"])]
        sell = req.flags.sell
        accepted_open = dec["decide"] & dec["accept"] & dec["opening"]
        slot = req.slot[:1]
        pick = lambda sigs: Mux(slot, sigs[1], sigs[0])  # noqa: E731
        ctl = pick(ghost["symbol_control"])
        band = Mux(ghost["collar_band"][0] >= (1 << BB) - 1, (1 << BB) - 1,
                   ghost["collar_band"][0])
        ref = Mux(sell, pick(g_bid), pick(g_ask))
        ref_ok = Mux(sell, pick(g_bid_ok), pick(g_ask_ok)) & (ref >> PB == 0)
        age = (cycle - pick(g_stamp))[:64]
        max_age = ghost["bbo_max_age"][0]
        cfg = ghost["collar_config"][0]
        # Narrow operands keep the solver fast: an accepted order's price fits PB bits (asserted
        # below) and a usable reference price fits PB bits (ref_ok).
        price, ref_n = req.price[:PB], ref[:PB]
        in_ticks = Mux(sell, price + band >= ref_n, price <= ref_n + band)
        in_bps = Mux(sell, price * 10_000 + ref_n * band >= ref_n * 10_000,
                     price * 10_000 <= ref_n * (10_000 + band))
        worst = Mux(sell, pick(g_pos) - st["open_qty"][Cat(sell, slot)] - req.quantity,
                    pick(g_pos) + st["open_qty"][Cat(sell, slot)] + req.quantity)
        notional = Cat(ghost["max_notional_lo"][0], ghost["max_notional_hi"][0])
        with m.If(accepted_open):
            m.d.comb += [
                Assert(req.slot < SLOTS),
                Assert(~ghost_kill & ~ctl[1] & ctl[0]),
                Assert((req.price >> PB == 0) & (req.quantity >> QB == 0)),
                Assert(req.quantity <= pick(ghost["max_order_qty"])),
                Assert(req.price[:PB] * req.quantity[:QB] <= notional),
                Assert(Mux(sell, -worst <= pick(ghost["max_short"]),
                           worst <= pick(ghost["max_long"]))),
                # the order it books stays within the open-order limit and the table
                Assert(in_use < ghost["max_open_orders"][0]),
                Assert(in_use < OPEN),
                # and its id is held by no open order
                Assert(~Cat(st["t_valid"][j] & (st["t_id"][j] == req.client_order_id)
                            for j in range(OPEN)).any()),
            ]
            with m.If(cfg[0]):
                m.d.comb += [
                    Assert(ref_ok),
                    Assert((max_age == 0) | (age <= max_age)),
                    Assert(Mux(cfg[1], in_bps, in_ticks)),
                ]

        # ---- what leaves is what was checked -----------------------------------------------------
        checked = Signal(wire.ORDER_REQUEST.width)
        fresh = Signal()
        m.d.sync += fresh.eq(dec["decide"] & dec["accept"])
        with m.If(dec["decide"] & dec["accept"]):
            m.d.sync += checked.eq(req.as_value())
        with m.If(fresh):
            m.d.comb += [Assert(gate.order_out.valid),
                         Assert(gate.order_out.payload.as_value() == checked)]
        return m


def _run_sby(task: str, depth: int, induction: int):
    try:
        return run_sby(GateProperties(), "risk", task, depth=depth, induction=induction,
                       workdir=os.environ.get("RISK_FORMAL_DIR") or None, timeout_s=600)
    except FormalToolMissing as e:
        pytest.skip(str(e))


# k-induction closes at depth 2 in about 12 s, which proves the properties for every cycle.
# BMC grows by about 2^k: depth 6 takes ~20 s here, depth 20 far longer than the suite can
# afford, so the suite runs depth 6 and RISK_FORMAL_BMC_DEPTH=20 runs the deep one by hand.
BMC_DEPTH = int(os.environ.get("RISK_FORMAL_BMC_DEPTH", "6"))
INDUCTION_DEPTH = 2


def test_bmc_finds_no_accepted_order_beyond_limits_from_reset():
    # Arrange / Act
    result = _run_sby("bmc", depth=BMC_DEPTH, induction=INDUCTION_DEPTH)
    # Assert
    assert result.returncode == 0 and "DONE (PASS" in result.stdout, result.stdout[-3000:]


def test_k_induction_proves_the_properties_for_all_cycles():
    # Arrange / Act
    result = _run_sby("prove", depth=BMC_DEPTH, induction=INDUCTION_DEPTH)
    # Assert
    assert result.returncode == 0 and "DONE (PASS" in result.stdout, result.stdout[-3000:]
