"""What every pipeline stage offers the top, so the top only connects.

A stage is a :class:`amaranth.lib.wiring.Component` that also exposes its registers by the keys
the :class:`hdl.regs.RegisterBank` uses (``NAME``, or ``NAME_<i>`` for instance ``i`` of an array):

* :attr:`Stage.status`: read-only registers the stage drives (32-bit signals);
* :attr:`Stage.control`: read-write registers the stage reads (32-bit signals the top drives);
* :attr:`Stage.control_strobe`: one-cycle pulses on a write of a control register (optional);
* the ``cycle`` input (free-running counter) and the ``clear`` input (clear all counters).

Each stage's registers are declared in its own block of :mod:`hdl.wire`.
"""

from amaranth import Signal, Module

from . import wire

__all__ = ["register_keys", "CounterBank"]


def register_keys(registers, access: str) -> list[str]:
    """Register-bank keys of the registers of ``access`` in a block of :mod:`hdl.wire`."""
    keys = []
    for reg in registers:
        if reg.access == access:
            keys.extend([reg.name] if reg.count == 1 else
                        [f"{reg.name}_{i}" for i in range(reg.count)])
    return keys


class CounterBank:
    """32-bit event counters behind status registers.

    ``pulses`` maps a status key to a 1-bit signal; each cycle it is high the counter counts up
    (wrapping at 2**32). ``clear`` zeroes them all.
    """

    def __init__(self, pulses: dict, clear):
        self.pulses = pulses
        self.clear = clear
        self.values = {key: Signal(32, name=f"count_{key.lower()}") for key in pulses}

    def elaborate_into(self, m: Module) -> None:
        for key, pulse in self.pulses.items():
            counter = self.values[key]
            with m.If(self.clear):
                m.d.sync += counter.eq(0)
            with m.Elif(pulse):
                m.d.sync += counter.eq(counter + 1)
