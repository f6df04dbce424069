"""Message types and lengths the feed stage knows.

# Ref: NASDAQ TotalView-ITCH 5.0 specification (rev. 2023-04-28), section 1.3 (message formats).
The type → length table is taken from the host's ITCH specification table
(:mod:`host.feed.itch`) so the gateware and the host cannot disagree; ticklane's own level update
(:data:`hdl.wire.LEVEL_UPDATE`) is added here.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib.memory import Memory

from host.feed.itch import MESSAGE_LENGTHS as _ITCH_LENGTHS  # the one table of the specification

from .. import wire

#: type byte → message length without the 2-byte prefix
MESSAGE_LENGTHS: dict[int, int] = {**{int(k): v for k, v in _ITCH_LENGTHS.items()},
                                   wire.LEVEL_UPDATE_TYPE: wire.LEVEL_UPDATE.size}

VALID_LENGTHS = tuple(sorted(set(MESSAGE_LENGTHS.values())))

#: bytes of the gather buffer: the longest message plus its prefix, rounded up to whole beats
MAX_MESSAGE = -(-(max(VALID_LENGTHS) + 2) // 8) * 8

assert min(VALID_LENGTHS) + 2 > 8, "a beat must never hold the end of two messages"

#: every type byte is in 0x40-0x7F, so a table indexed by a type's low six bits covers them all
TYPE_BASE = 0x40
assert all(TYPE_BASE <= t < TYPE_BASE + 64 for t in MESSAGE_LENGTHS)


def type_lookup(m: Module, name: str, mtype, values: dict[int, int], width: int) -> Signal:
    """``values[mtype]``, 0 for a type byte not in ``values``, as a ``width``-bit signal.

    Read from a 64-entry constant table by the type's low six bits (a function of the type byte
    per output bit in the fabric, about two LUT6 each; one array read in a simulator) instead of
    a compare per type: a chain of compares on a type that changes with every message is what a
    simulator predicts worst.
    """
    if not all(TYPE_BASE <= t < TYPE_BASE + 64 for t in values):
        raise ValueError(f"{name}: a type outside 0x{TYPE_BASE:02X}-0x{TYPE_BASE + 63:02X}")
    table = Memory(shape=width, depth=64, init=[values.get(TYPE_BASE + i, 0) for i in range(64)])
    m.submodules[name] = table
    port = table.read_port(domain="comb")
    value = Signal(width, name=name)
    m.d.comb += [port.addr.eq(mtype[:6]),
                 value.eq(Mux(mtype[6:] == TYPE_BASE >> 6, port.data, 0))]
    return value
