"""hdl.bits: the one-hot helpers the book and the risk gate select with, over every input."""

from amaranth import Module, Signal
from amaranth.sim import Simulator

from hdl.bits import lowest_set, onehot_index, onehot_select, popcount

WIDTH = 6
VALUES = [0x15, 0x2A, 0x3F, 0x01, 0x20, 0x0C]


def test_one_hot_helpers_over_every_input():
    m = Module()
    x = Signal(WIDTH)
    low, index, picked, count = Signal(WIDTH), Signal(3), Signal(6), Signal(4)
    m.d.comb += [low.eq(lowest_set(x)), index.eq(onehot_index(low)),
                 picked.eq(onehot_select(low, VALUES)), count.eq(popcount(x))]
    sim = Simulator(m)

    async def bench(ctx):
        for value in range(1 << WIDTH):
            ctx.set(x, value)
            first = (value & -value).bit_length() - 1 if value else None
            assert ctx.get(low) == (0 if first is None else 1 << first)
            assert ctx.get(index) == (0 if first is None else first)
            assert ctx.get(picked) == (0 if first is None else VALUES[first])
            assert ctx.get(count) == bin(value).count("1")

    sim.add_testbench(bench)
    sim.run()


def test_onehot_select_ors_the_candidates_of_every_set_bit():
    # documented: with more than one bit set the result is the OR of their values
    m = Module()
    sel, out = Signal(3), Signal(8)
    m.d.comb += out.eq(onehot_select(sel, [0x01, 0x10, 0x80]))
    sim = Simulator(m)

    async def bench(ctx):
        ctx.set(sel, 0b101)
        assert ctx.get(out) == 0x81

    sim.add_testbench(bench)
    sim.run()
