"""Training workloads for profile-guided builds of the harness (``build_harness(pgo=...)``).

A profile-guided build compiles the model twice. The first build counts how often each branch
is taken and each function called while a *trainer* drives it, in a child process, through
:class:`sim.harness.Harness`; the second is laid out and inlined by those counts. A profile
moves code, never what it computes: the tests run on the final build like on any other.

A trainer is a function of one argument, the :class:`~sim.harness.generator.HarnessBuild` of
the instrumented library, named ``"module:function"`` so that the child can import it. It should
run the kinds of traffic the design sees, with seeds of its own: the benchmarks measure other
streams than the ones the build was trained on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["train_top", "train_streams"]

# Stream names of hdl.top.Top that the trainer drains after each run.
_TOP_OUTPUTS = ("bbo_out", "verdict_out", "order_out", "host_out", "gaps_out")


def _drain(h) -> dict[str, np.ndarray]:
    return {name: h.pop(name) for name in _TOP_OUTPUTS if name in h.streams}


def train_top(build) -> None:
    """Drive a :class:`hdl.top.Top` build: idle cycles, ITCH market data (plain, then with idle
    inputs and backpressure), order requests with cancels and fills against the book it built,
    and every register read.

    About 1.6 million cycles: a few seconds on the instrumented build. The idle share counted
    while every block was clocked on every cycle: with 0.4 million idle cycles instead of 1.2,
    or with twice the ITCH, the built top then ran idle cycles about 15% slower, and ITCH
    traffic no faster beyond the 5% by which runs of one build differ from hour to hour on the
    shared machine. With the clocks gated, an idle cycle clocks only the port slices and the
    cycle counter.
    """
    from hdl import wire
    from host.daemon import demo_config, gate_registers
    from host.link.beats import pack_historical
    from sim.gen.itchgen import generate
    from sim.harness import Harness

    h = Harness(build, dtypes={name: s.record.dtype for name, s in wire.STREAMS.items()
                               if any(p.name == name for p in build.streams)})
    regs = wire.REGISTERS

    def word(name, index=0):          # the harness's register port counts 32-bit words
        return regs.address(name, index) // 4

    h.reset()
    h.run(max_cycles=1_200_000, stop_when_drained=False)

    # Market data: a generated day of ITCH in 2-byte length framing, as the link sends it.
    stream = generate(17, 30_000, n_symbols=12)
    beats = pack_historical(stream)
    half = len(beats) // 2
    bbo = []
    for part, (idle, bp) in ((beats[:half], (0.0, 0.0)), (beats[half:], (0.3, 0.3))):
        h.push("md_in", part)
        h.run(idle={"md_in": idle}, backpressure={name: bp for name in _TOP_OUTPUTS},
              seed=5)
        bbo.append(_drain(h)["bbo_out"])
    bbo = np.concatenate(bbo)

    # Limits as the daemon writes them, then orders at the book's best prices.
    for name, index, value in gate_registers(demo_config().risk, {}):
        h.write_reg(word(name, index), value)
    h.write_reg(word("RISK_KILL"), 0)
    h.write_reg(word("RISK_COMMIT"), 1)
    both = wire.BBO_UPDATE.flag("flags", "bid_valid") | wire.BBO_UPDATE.flag("flags", "ask_valid")
    best = {int(r["slot"]): (int(r["bid_price"]), int(r["ask_price"]))
            for r in bbo if int(r["flags"]) & both == both and int(r["slot"]) < wire.RISK_SLOTS}
    rng = np.random.default_rng(23)
    slots = sorted(best) or [0]
    sell_flag = wire.ORDER_REQUEST.flag("flags", "sell")
    next_id, live = 1, []
    for _ in range(40):
        requests = np.zeros(64, wire.ORDER_REQUEST.dtype)
        for r in requests:
            slot = int(rng.choice(slots))
            bid, ask = best.get(slot, (10_000, 10_100))
            sell = bool(rng.integers(2))
            r["client_order_id"], r["slot"], r["quantity"] = next_id, slot, 100
            r["price"] = bid if sell else ask
            r["flags"] = sell_flag if sell else 0
            r["kind"] = wire.ORDER_KIND_NEW
            if live and rng.random() < 0.25:
                r["kind"] = wire.ORDER_KIND_CANCEL
                r["orig_client_order_id"] = live[int(rng.integers(len(live)))]
            next_id += 1
        h.push("order_in", requests)
        h.run(backpressure={"verdict_out": 0.2, "order_out": 0.2}, seed=next_id)
        accepted = _drain(h)["order_out"]
        opened = accepted[accepted["kind"] != wire.ORDER_KIND_CANCEL]
        live.extend(int(i) for i in opened["client_order_id"])
        # Fill about half of what opened, completely, so the table keeps moving.
        done = [i for i in live if rng.random() < 0.5]
        if done:
            fills = np.zeros(len(done), wire.FILL.dtype)
            by_id = {int(o["client_order_id"]): o for o in opened}
            for f, coid in zip(fills, done):
                o = by_id.get(coid)
                f["client_order_id"], f["quantity"] = coid, 100
                f["slot"] = int(o["slot"]) if o is not None else slots[0]
                f["price"] = int(o["price"]) if o is not None else 1
                f["flags"] = wire.FILL.flag("flags", "done")
            h.push("fill_in", fills)
            h.run()
            _drain(h)
            closed = set(done)
            live = [i for i in live if i not in closed]
    for reg in regs:
        for index in range(reg.count):
            h.read_reg(word(reg.name, index))
    h.run(max_cycles=200_000, stop_when_drained=False)


def train_streams(build) -> None:
    """Any design: random records on every input stream, with idle inputs and backpressure on
    every output on half of the runs, until they drain."""
    from sim.harness import Harness

    h = Harness(build)
    rng = np.random.default_rng(29)
    inputs = [p for p in build.streams if p.is_input]
    h.reset()
    for k in range(8):
        for port in inputs:
            h.push(port.name, rng.integers(0, 256, (4096, port.record_bytes), np.uint8))
        throttle = 0.3 if k % 2 else 0.0
        h.run(idle={p.name: throttle for p in inputs},
              backpressure={p.name: throttle for p in build.streams if not p.is_input}, seed=k)
        for port in build.streams:
            if not port.is_input:
                h.pop(port.name)
