"""The risk gate in Amaranth's simulator, scored against the reference model.

One testbench drives every port cycle by cycle from a seeded generator (orders, fills, BBO records,
shadow limit writes, commits, the kill switch, idle input and output back-pressure) and logs what
crossed each port at which cycle. The model then replays the log (decisions of a cycle before the
updates of that cycle) and must give every verdict the same reason bits; accepted requests must
leave on ``order_out`` in order and unchanged; latency is checked in cycles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from amaranth.sim import Simulator

from hdl import wire
from hdl.risk import LATENCY, PreTradeRisk
from hdl.risk.limits import PER_SYMBOL, member_name
from sim.model.risk import (COLLAR_BPS, COLLAR_ENABLE, REASON, SYMBOL_ENABLED, SYMBOL_KILL,
                            SYMBOL_REDUCE_ONLY, RiskLimits, RiskModel, reason_names)

SELL = wire.ORDER_REQUEST.flag("flags", "sell")
FILL_SELL = wire.FILL.flag("flags", "sell")
FILL_DONE = wire.FILL.flag("flags", "done")
BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
MID = 10_000


def to_int(record: wire.Record, **values) -> int:
    return int.from_bytes(record.pack(**values), "little")


def from_int(record: wire.Record, value: int) -> dict:
    return record.unpack(value.to_bytes(record.size, "little"))


def reg_port(gate: PreTradeRisk, key: str):
    """The ``regs`` member for a bank key such as ``RISK_MAX_LONG_3``."""
    for name in PER_SYMBOL:
        if key.startswith(name + "_") and key[len(name) + 1:].isdigit():
            return getattr(gate.regs, member_name(name))[int(key[len(name) + 1:])]
    port = getattr(gate.regs, member_name(key))
    return port[0] if hasattr(port, "__len__") and not hasattr(port, "shape") else port


@dataclass
class Traffic:
    """Probabilities that shape one random run."""
    order_rate: float = 0.8
    verdict_ready: float = 1.0
    order_ready: float = 1.0
    fill_rate: float = 0.2
    bbo_rate: float = 0.2
    shadow_write_rate: float = 0.02
    commit_rate: float = 0.01
    kill_rate: float = 0.005


@dataclass
class Log:
    handed: list = field(default_factory=list)       # (cycle, request dict)
    verdicts: list = field(default_factory=list)     # (first cycle presented, verdict dict)
    orders_out: list = field(default_factory=list)   # request dicts
    updates: list = field(default_factory=list)      # (cycle, kind, payload)
    status: dict = field(default_factory=dict)


def random_limits(rng: random.Random, slots: int) -> RiskLimits:
    def per_symbol(lo, hi):
        return tuple(rng.randint(lo, hi) for _ in range(slots))
    return RiskLimits(
        symbol_control=tuple(SYMBOL_ENABLED * (rng.random() < 0.9)
                             | SYMBOL_KILL * (rng.random() < 0.05)
                             | SYMBOL_REDUCE_ONLY * (rng.random() < 0.1) for _ in range(slots)),
        max_order_qty=per_symbol(60, 130),
        max_long=per_symbol(50, 600),
        max_short=per_symbol(50, 600),
        max_notional=rng.choice([MID * 80, 1 << 40, 1 << 40]),
        collar_config=rng.choice([0, COLLAR_ENABLE, COLLAR_ENABLE | COLLAR_BPS]),
        collar_band=rng.choice([20, 100, 250, 400]),
        bbo_max_age=rng.choice([0, 0, 40, 300]),
        max_open_orders=rng.randint(2, 10),
        rate_shift=rng.choice([0, 1, 3, 6]), rate_burst=rng.randint(1, 12),
        symbol_rate_shift=rng.choice([0, 2, 5, 7]), symbol_rate_burst=rng.randint(1, 4),
    )


def run_random(*, seed: int, cycles: int, traffic: Traffic, slots: int = 4,
               open_orders: int = 8, dup_depth: int = 8) -> tuple[Log, PreTradeRisk]:
    """Drive the gate for ``cycles`` cycles; return the log."""
    rng = random.Random(seed)
    gate = PreTradeRisk(slots=slots, open_orders=open_orders, dup_depth=dup_depth)
    log = Log()
    initial = random_limits(rng, slots).replace(max_open_orders=open_orders)

    async def bench(ctx):
        next_id = 1
        open_ids: list[tuple[int, int, int]] = []   # (id, slot, sell) seen accepted on order_out
        pending = None                              # request offered but not yet taken
        prev_v_valid = prev_v_taken = False
        shadow = initial.to_registers()
        for key, value in shadow.items():
            ctx.set(reg_port(gate, key), value)
        ctx.set(gate.regs.commit, 1)
        log.updates.append((0, "commit", RiskLimits.from_registers(shadow, slots)))
        for c in range(cycles):
            ctx.set(gate.cycle, c)
            if c == 1:
                ctx.set(gate.regs.commit, 0)
            # --- host controls -------------------------------------------------------------
            if c > 1:
                commit = rng.random() < traffic.commit_rate
                ctx.set(gate.regs.commit, int(commit))
                if rng.random() < traffic.shadow_write_rate:
                    fresh = random_limits(rng, slots).to_registers()
                    for key in rng.sample(sorted(fresh), 6):
                        shadow[key] = fresh[key]
                        ctx.set(reg_port(gate, key), fresh[key])
                if commit:
                    log.updates.append((c, "commit", RiskLimits.from_registers(shadow, slots)))
                if rng.random() < traffic.kill_rate:
                    on = rng.random() < 0.25
                    ctx.set(gate.regs.kill, int(on))
                    log.updates.append((c, "kill", on))
            # --- order request ---------------------------------------------------------------
            if pending is None and rng.random() < traffic.order_rate:
                kind = rng.choices([1, 2, 3, 0], [70, 12, 12, 1])[0]
                orig = rng.choice(open_ids)[0] if open_ids and rng.random() < 0.9 else 999_999
                slot = rng.randrange(slots + 1) if rng.random() < 0.03 else rng.randrange(slots)
                cid = max(1, next_id - rng.randint(1, 12)) if rng.random() < 0.03 else next_id
                next_id += 1
                pending = dict(client_order_id=cid, orig_client_order_id=orig if kind in (2, 3)
                               else 0, price=max(0, MID + rng.randint(-300, 300))
                               if rng.random() > 0.01 else 0,
                               quantity=rng.randint(0, 130), slot=slot, kind=kind,
                               flags=SELL * (rng.random() < 0.5), _pad0=0)
                ctx.set(gate.order_in.payload.as_value(), to_int(wire.ORDER_REQUEST, **pending))
            ctx.set(gate.order_in.valid, int(pending is not None))
            # --- fill ---------------------------------------------------------------------------
            fill = None
            if rng.random() < traffic.fill_rate and (open_ids or rng.random() < 0.1):
                if open_ids and rng.random() < 0.9:
                    cid, slot, sell = rng.choice(open_ids)
                else:
                    cid, slot, sell = 777_777, rng.randrange(slots + 1), rng.random() < 0.5
                done = rng.random() < 0.3
                fill = dict(client_order_id=cid, price=MID, quantity=0 if done and
                            rng.random() < 0.5 else rng.randint(1, 60), slot=slot,
                            flags=FILL_SELL * sell | FILL_DONE * done, _pad0=0, _pad1=0)
                if done:
                    open_ids = [o for o in open_ids if o[0] != cid]
                ctx.set(gate.fill_in.payload.as_value(), to_int(wire.FILL, **fill))
            ctx.set(gate.fill_in.valid, int(fill is not None))
            # --- BBO ------------------------------------------------------------------------------
            bbo = None
            if rng.random() < traffic.bbo_rate:
                bid = MID + rng.randint(-120, 60)
                bbo = dict(seq=c, bid_price=bid, ask_price=bid + rng.randint(1, 80),
                           bid_size=100, ask_size=100, ingress_cycle=c, egress_cycle=c,
                           slot=rng.randrange(slots + 1) if rng.random() < 0.03
                           else rng.randrange(slots),
                           flags=BID_VALID * (rng.random() < 0.9) | ASK_VALID * (rng.random() < 0.9),
                           locate=0, _pad0=0)
                ctx.set(gate.bbo_in.payload.as_value(), to_int(wire.BBO_UPDATE, **bbo))
            ctx.set(gate.bbo_in.valid, int(bbo is not None))
            # --- outputs --------------------------------------------------------------------------
            ctx.set(gate.verdict_out.ready, int(rng.random() < traffic.verdict_ready))
            ctx.set(gate.order_out.ready, int(rng.random() < traffic.order_ready))

            # --- what crosses this cycle -------------------------------------------------------
            assert ctx.get(gate.fill_in.ready) and ctx.get(gate.bbo_in.ready)
            if pending is not None and ctx.get(gate.order_in.ready):
                log.handed.append((c, pending))
                pending = None
            if fill is not None:
                log.updates.append((c, "fill", fill))
            if bbo is not None:
                log.updates.append((c, "bbo", bbo))
            v_valid = ctx.get(gate.verdict_out.valid)
            v_taken = v_valid and ctx.get(gate.verdict_out.ready)
            if v_valid and (not prev_v_valid or prev_v_taken):
                log.verdicts.append((c, from_int(wire.VERDICT,
                                                 ctx.get(gate.verdict_out.payload.as_value()))))
            prev_v_valid, prev_v_taken = v_valid, v_taken
            if ctx.get(gate.order_out.valid) and ctx.get(gate.order_out.ready):
                out = from_int(wire.ORDER_REQUEST, ctx.get(gate.order_out.payload.as_value()))
                log.orders_out.append(out)
                if out["kind"] in (1, 3):
                    open_ids.append((out["client_order_id"], out["slot"],
                                     bool(out["flags"] & SELL)))
            await ctx.tick()
        # A decision in the last cycle shows its verdict now; the counters already include it.
        if ctx.get(gate.verdict_out.valid) and (not prev_v_valid or prev_v_taken):
            log.verdicts.append((cycles, from_int(wire.VERDICT,
                                                  ctx.get(gate.verdict_out.payload.as_value()))))
        for reg in wire.RISK_REGISTERS:
            if reg.access == "r":
                port = getattr(gate.regs, member_name(reg.name))
                if reg.count == 1:
                    log.status[reg.name] = ctx.get(port)
                else:
                    log.status.update({f"{reg.name}_{i}": ctx.get(port[i])
                                       for i in range(reg.count)})

    sim = Simulator(gate)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return log, gate


def replay(log: Log, *, slots: int, open_orders: int, dup_depth: int) -> RiskModel:
    """Score the log against the model; assert on the first disagreement."""
    model = RiskModel(slots=slots, open_orders=open_orders, dup_depth=dup_depth)
    assert len(log.verdicts) <= len(log.handed)
    events = []
    for n, (presented, verdict) in enumerate(log.verdicts):
        events.append((presented - 1, 0, n, "order", verdict))
    for n, (c, kind, payload) in enumerate(log.updates):
        events.append((c, 1, n, kind, payload))
    events.sort(key=lambda e: e[:3])
    expected_out = []
    for cycle, _, n, kind, payload in events:
        if kind == "order":
            handed_cycle, req = log.handed[n]
            verdict = payload
            reasons = model.order(req, cycle)
            assert verdict["client_order_id"] == req["client_order_id"], (n, verdict, req)
            assert verdict["ingress_cycle"] == handed_cycle
            assert verdict["egress_cycle"] == cycle + 1
            assert verdict["reasons"] == reasons, (
                f"request #{n} {req} at cycle {cycle}: gate {reason_names(verdict['reasons'])}"
                f", model {reason_names(reasons)}")
            assert verdict["flags"] == int(reasons == 0)
            assert (verdict["slot"], verdict["kind"]) == (req["slot"], req["kind"])
            if reasons == 0:
                expected_out.append(req)
        elif kind == "fill":
            model.fill(payload, cycle)
        elif kind == "bbo":
            model.bbo_update(payload, cycle)
        elif kind == "commit":
            model.commit(payload, cycle)
        else:
            model.set_kill(payload, cycle)
    assert log.orders_out == expected_out[:len(log.orders_out)]
    return model


@pytest.mark.parametrize("seed, traffic", [
    (1, Traffic()),
    (2, Traffic(order_rate=1.0, verdict_ready=0.6, order_ready=0.7)),
    (3, Traffic(order_rate=0.3, verdict_ready=0.9, order_ready=0.4, fill_rate=0.4,
                commit_rate=0.03, shadow_write_rate=0.05)),
], ids=["idle_input", "backpressure_full_input", "idle_and_backpressure_busy_limits"])
def test_random_stream_verdicts_match_reference_model(seed, traffic):
    # Arrange / Act
    log, _ = run_random(seed=seed, cycles=2500, traffic=traffic)
    # Assert
    model = replay(log, slots=4, open_orders=8, dup_depth=8)
    accepted = sum(v["flags"] for _, v in log.verdicts)
    assert accepted > 50 and len(log.verdicts) - accepted > 50, "traffic exercises both outcomes"
    reasons_seen = 0
    for _, v in log.verdicts:
        reasons_seen |= v["reasons"]
    assert reasons_seen == (1 << len(wire.RISK_REASONS)) - 1, reason_names(~reasons_seen)
    # Counters lag the last verdict by nothing: compare those the model can see.
    expected = model.status()
    for key in ("RISK_ACCEPTED", "RISK_REJECTED", "RISK_FILLS", "RISK_FILLS_UNKNOWN",
                "RISK_DROPPED", "RISK_OPEN_ORDERS"):
        assert log.status[key] == expected[key], key
    for i in range(len(wire.RISK_REASONS)):
        assert log.status[f"RISK_REJECTS_{i}"] == expected[f"RISK_REJECTS_{i}"]


def test_back_to_back_requests_get_verdicts_two_cycles_later_one_per_cycle():
    # Arrange: every cycle a request, outputs always ready.
    traffic = Traffic(order_rate=1.0, fill_rate=0.0, bbo_rate=0.3, commit_rate=0.0,
                      shadow_write_rate=0.0, kill_rate=0.0)
    # Act
    log, _ = run_random(seed=7, cycles=400, traffic=traffic)
    # Assert: handed every cycle, verdict exactly LATENCY cycles after, in order.
    assert [c for c, _ in log.handed] == list(range(len(log.handed)))
    assert len(log.verdicts) == len(log.handed) - LATENCY + 1
    for (handed, req), (presented, verdict) in zip(log.handed, log.verdicts):
        assert presented - handed == LATENCY == verdict["egress_cycle"] - verdict["ingress_cycle"]
    replay(log, slots=4, open_orders=8, dup_depth=8)


def test_stalled_outputs_neither_drop_nor_duplicate_verdicts():
    # Arrange: heavy back-pressure on both outputs, full input.
    traffic = Traffic(order_rate=1.0, verdict_ready=0.3, order_ready=0.3)
    # Act
    log, _ = run_random(seed=11, cycles=1500, traffic=traffic)
    # Assert: verdicts are the handed requests, in order, each once.
    ids = [v["client_order_id"] for _, v in log.verdicts]
    assert ids == [req["client_order_id"] for _, req in log.handed[:len(ids)]]
    assert len(log.handed) - len(ids) <= LATENCY + 1
    replay(log, slots=4, open_orders=8, dup_depth=8)


def run_script(script, *, limits: RiskLimits, slots: int = 4, open_orders: int = 32,
               dup_depth: int = 16) -> tuple[Log, dict]:
    """Drive the gate through ``script``, a host that waits for each verdict and acts on it.

    ``script(order, fill)`` is a coroutine function: ``await order(**fields)`` hands over one
    request (ORDER_REQUEST fields over a new buy of 1 at ``MID`` on slot 0) and returns its reason
    bits once its verdict is out; ``await fill(cid, qty, done=..., slot=..., sell=...)`` offers a
    FILL for one cycle. ``limits`` are committed at cycle 0; outputs are always ready. Returns the
    log (for :func:`replay`) and the positions per slot after the script.
    """
    gate = PreTradeRisk(slots=slots, open_orders=open_orders, dup_depth=dup_depth)
    log = Log()
    positions = {}

    async def bench(ctx):
        cycle = 0

        async def tick():
            nonlocal cycle
            if ctx.get(gate.verdict_out.valid):       # always ready: a new verdict every cycle
                log.verdicts.append((cycle, from_int(
                    wire.VERDICT, ctx.get(gate.verdict_out.payload.as_value()))))
            if ctx.get(gate.order_out.valid):
                log.orders_out.append(from_int(
                    wire.ORDER_REQUEST, ctx.get(gate.order_out.payload.as_value())))
            await ctx.tick()
            cycle += 1
            ctx.set(gate.cycle, cycle)

        async def order(**fields):
            req = {**dict(client_order_id=0, orig_client_order_id=0, price=MID, quantity=1,
                          slot=0, kind=wire.ORDER_KIND_NEW, flags=0, _pad0=0), **fields}
            ctx.set(gate.order_in.payload.as_value(), to_int(wire.ORDER_REQUEST, **req))
            ctx.set(gate.order_in.valid, 1)
            assert ctx.get(gate.order_in.ready)
            log.handed.append((cycle, req))
            await tick()
            ctx.set(gate.order_in.valid, 0)
            while len(log.verdicts) < len(log.handed):
                await tick()
            return log.verdicts[-1][1]["reasons"]

        async def fill(cid, qty, *, done, slot=0, sell=False):
            rec = dict(client_order_id=cid, price=MID, quantity=qty, slot=slot,
                       flags=FILL_SELL * sell | FILL_DONE * done, _pad0=0, _pad1=0)
            ctx.set(gate.fill_in.payload.as_value(), to_int(wire.FILL, **rec))
            ctx.set(gate.fill_in.valid, 1)
            log.updates.append((cycle, "fill", rec))
            await tick()
            ctx.set(gate.fill_in.valid, 0)

        ctx.set(gate.verdict_out.ready, 1)
        ctx.set(gate.order_out.ready, 1)
        for key, value in limits.to_registers().items():
            ctx.set(reg_port(gate, key), value)
        ctx.set(gate.regs.commit, 1)
        log.updates.append((0, "commit", limits))
        await tick()
        ctx.set(gate.regs.commit, 0)
        for _ in range(8):                            # the token buckets fill
            await tick()
        await script(order, fill)
        for _ in range(LATENCY + 1):
            await tick()
        positions.update({i: ctx.get(gate.state["position"][i]) for i in range(slots)})

    sim = Simulator(gate)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return log, positions


def test_id_still_open_beyond_the_window_is_refused_so_a_release_cannot_free_the_live_order():
    # Arrange: the default gate's table and window (32 entries, 16 recent ids); max long 200.
    # The host sends an accepted order to the venue; when the venue refuses it, the host reports
    # the order done (a done fill of 0), which releases the entry holding its id.
    limits = RiskLimits.uniform(4, symbol_control=SYMBOL_ENABLED, max_order_qty=1_000,
                                max_long=200, max_short=200, max_notional=1 << 40,
                                max_open_orders=32, rate_burst=100, symbol_rate_burst=100)
    seen = {}

    async def script(order, fill):
        seen["A"] = await order(client_order_id=1, quantity=100)
        seen["others"] = [await order(client_order_id=100 + k, slot=1) for k in range(16)]
        seen["B"] = await order(client_order_id=1, quantity=10)     # A's id, A still open
        if seen["B"] == 0:
            await fill(1, 0, done=True)          # the venue refused B
        seen["C"] = await order(client_order_id=2, quantity=190)
        await fill(1, 100, done=True)            # A fills
        if seen["C"] == 0:
            await fill(2, 190, done=True)        # C fills

    # Act
    log, positions = run_script(script, limits=limits)

    # Assert: B is a duplicate; A keeps its room, so C would go beyond max long; the gate agrees
    # with the model on every verdict
    assert (seen["A"], seen["others"]) == (0, [0] * 16)
    assert seen["B"] == REASON["DUPLICATE_ID"], reason_names(seen["B"])
    assert seen["C"] == REASON["POSITION_LIMIT"], reason_names(seen["C"])
    assert positions[0] == 100
    replay(log, slots=4, open_orders=32, dup_depth=16)


def test_gate_rejects_bad_parameters_with_the_value_in_the_message():
    # Arrange / Act / Assert
    with pytest.raises(ValueError, match=r"price_bits must be an integer in \[2, 32\], not 40"):
        PreTradeRisk(price_bits=40)


def test_register_bank_write_and_commit_reach_the_full_size_gate():
    # Arrange: the top's wiring, bank and gate with RISK_SLOTS slots
    from amaranth.hdl import Module
    from hdl.regs import RegisterBank
    from hdl.risk import connect_registers

    m = Module()
    m.submodules.bank = bank = RegisterBank()
    m.submodules.gate = gate = PreTradeRisk(slots=wire.RISK_SLOTS, open_orders=4, dup_depth=2)
    connect_registers(m, bank, gate.regs)
    word = lambda name, i=0: wire.REGISTERS.address(name, i) // 4  # noqa: E731
    seen = {}

    async def bench(ctx):
        async def write(addr, value):
            ctx.set(bank.bus.addr, addr)
            ctx.set(bank.bus.w_data, value)
            ctx.set(bank.bus.w_stb, 1)
            await ctx.tick()
            ctx.set(bank.bus.w_stb, 0)
        # Act
        await write(word("RISK_MAX_LONG", wire.RISK_SLOTS - 1), 1234)
        await ctx.tick()
        seen["shadow"] = ctx.get(gate.regs.max_long[wire.RISK_SLOTS - 1])
        seen["active_before_commit"] = ctx.get(gate.active["max_long"][wire.RISK_SLOTS - 1])
        await write(word("RISK_COMMIT"), 1)
        await ctx.tick()
        seen["active_after_commit"] = ctx.get(gate.active["max_long"][wire.RISK_SLOTS - 1])
        ctx.set(bank.bus.addr, word("RISK_OPEN_ORDERS"))
        ctx.set(bank.bus.r_stb, 1)
        await ctx.tick()
        seen["open_orders"] = ctx.get(bank.bus.r_data)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # Assert: the shadow reached the gate's port; the active copy follows only the commit.
    assert seen == {"shadow": 1234, "active_before_commit": 0, "active_after_commit": 1234,
                    "open_orders": 0}


def test_kill_write_refuses_orders_from_the_second_cycle_after_the_bank_strobe():
    # Arrange: the top's wiring; a new order offered on every cycle (no limits committed: every
    # verdict is a rejection, and only its KILL_SWITCH bit matters here)
    from amaranth.hdl import Module
    from hdl.regs import RegisterBank
    from hdl.risk import connect_registers

    m = Module()
    m.submodules.bank = bank = RegisterBank()
    m.submodules.gate = gate = PreTradeRisk(slots=wire.RISK_SLOTS, open_orders=4, dup_depth=2)
    connect_registers(m, bank, gate.regs)
    write_at = 6                      # cycle of the bus write strobe
    strobes, killed = [], {}          # bank strobe cycles; decision cycle -> KILL_SWITCH set

    async def bench(ctx):
        ctx.set(gate.verdict_out.ready, 1)
        ctx.set(gate.order_out.ready, 1)
        ctx.set(gate.order_in.valid, 1)
        for c in range(write_at + 8):
            ctx.set(gate.cycle, c)
            ctx.set(gate.order_in.payload.as_value(), to_int(
                wire.ORDER_REQUEST, client_order_id=100 + c, orig_client_order_id=0,
                price=MID, quantity=1, slot=0, kind=wire.ORDER_KIND_NEW, flags=0, _pad0=0))
            ctx.set(bank.bus.w_stb, int(c == write_at))
            if c == write_at:
                ctx.set(bank.bus.addr, wire.REGISTERS.address("RISK_KILL") // 4)
                ctx.set(bank.bus.w_data, 1)
            if ctx.get(bank.write_strobe["RISK_KILL"]):
                strobes.append(c)
            if ctx.get(gate.verdict_out.valid):
                v = from_int(wire.VERDICT, ctx.get(gate.verdict_out.payload.as_value()))
                killed[v["egress_cycle"] - 1] = bool(v["reasons"] & REASON["KILL_SWITCH"])
            await ctx.tick()

    # Act
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    # Assert: the bank strobes the cycle after the bus write and its control register holds the
    # bit from the cycle after that; the gate's copy of it, one edge later again, refuses from the
    # second cycle after the strobe (a commit strobed there would act from the first).
    assert strobes == [write_at + 1]
    strobe = strobes[0]
    assert sorted(killed) == list(range(1, write_at + 7))    # a decision on every cycle
    assert [c for c, k in sorted(killed.items()) if k] == list(range(strobe + 2, write_at + 7))
