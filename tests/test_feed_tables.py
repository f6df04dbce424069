"""hdl.feed.messages.type_lookup: the type tables of the deframer and the decoder, over every
type byte, and the deframer's length check."""

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from hdl.feed.messages import MESSAGE_LENGTHS, VALID_LENGTHS, type_lookup


@pytest.mark.parametrize("table", ["deframer lengths", "decoder kinds"])
def test_type_lookup_gives_the_table_for_every_type_byte(table):
    from hdl.feed.decoder import _BOOK_TYPES

    values, width = {
        "deframer lengths": ({t: (1 << 6) | n for t, n in MESSAGE_LENGTHS.items()}, 7),
        "decoder kinds": ({t: kind.value for t, kind in _BOOK_TYPES.items()}, 4),
    }[table]
    m = Module()
    mtype = Signal(8)
    value = type_lookup(m, "entry", mtype, values, width)
    sim = Simulator(m)

    async def bench(ctx):
        for t in range(256):
            ctx.set(mtype, t)
            # a byte outside the table (0x00-0x3F, 0x80-0xFF) must not alias a known type
            assert ctx.get(value) == values.get(t, 0), hex(t)

    sim.add_testbench(bench)
    sim.run()


def test_type_lookup_refuses_a_type_its_table_cannot_hold():
    m = Module()
    with pytest.raises(ValueError, match="outside"):
        type_lookup(m, "entry", Signal(8), {0x20: 1}, 1)
    Simulator(m)  # the module is used, not left unelaborated


def test_deframer_length_check_accepts_exactly_the_valid_lengths():
    from hdl.feed.deframer import valid_length
    m = Module()
    length, ok = Signal(16), Signal()
    m.d.comb += ok.eq(valid_length(length))
    # every length below 1024, and every valid length with each of the upper ten bits set
    # (the mask reads only the low six bits: a set upper bit must not pass)
    lengths = list(range(1024)) + [n | 1 << b for n in VALID_LENGTHS for b in range(6, 16)]
    sim = Simulator(m)

    async def bench(ctx):
        for n in lengths:
            ctx.set(length, n)
            assert ctx.get(ok) == (n in VALID_LENGTHS), n

    sim.add_testbench(bench)
    sim.run()
