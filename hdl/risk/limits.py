"""The risk gate's register interface, derived from ``hdl.wire.RISK_REGISTERS``.

The gate does not own a register bank. It exposes one port, ``regs``, whose members are named
after the risk registers without the ``RISK_`` prefix, lower case:

* every ``rw`` register is an input (``regs.max_long[i]`` for per-symbol arrays), read from the
  bank's control signals, i.e. the *shadow* limit set the host writes;
* ``RISK_COMMIT`` is a 1-bit input, ``regs.commit``: the bank's write strobe for that register;
  on it the gate copies every shadow limit into its active set on one clock edge;
* every ``r`` register is an output (``regs.rejects[i]`` for the per-reason counters), fed to the
  bank's status signals;
* ``regs.counters_clear`` (input) zeroes the counters, for the bank's CONTROL bit 0.

:func:`connect_registers` wires all of it to a :class:`hdl.regs.RegisterBank`, so the top does not
retype a single name.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import wire

__all__ = ["PER_SYMBOL", "RiskRegisterSignature", "member_name", "connect_registers",
           "SYMBOL_ENABLED_BIT", "SYMBOL_KILL_BIT", "SYMBOL_REDUCE_ONLY_BIT",
           "COLLAR_ENABLE_BIT", "COLLAR_BPS_BIT", "LIMIT_REGISTERS"]

# Registers with one instance per symbol slot; their count in the gate is the gate's slots.
PER_SYMBOL = ("RISK_SYMBOL_CONTROL", "RISK_MAX_ORDER_QTY", "RISK_MAX_LONG", "RISK_MAX_SHORT")

# Bits of RISK_SYMBOL_CONTROL and RISK_COLLAR_CONFIG.
SYMBOL_ENABLED_BIT, SYMBOL_KILL_BIT, SYMBOL_REDUCE_ONLY_BIT = 0, 1, 2
COLLAR_ENABLE_BIT, COLLAR_BPS_BIT = 0, 1

# The double-buffered limit set: every rw register but the kill switch and the commit strobe.
LIMIT_REGISTERS = tuple(r for r in wire.RISK_REGISTERS
                        if r.access == "rw" and r.name not in ("RISK_KILL", "RISK_COMMIT"))

for _name in PER_SYMBOL:
    if wire.REGISTERS[_name].count != wire.RISK_SLOTS:
        raise AssertionError(f"{_name} must have RISK_SLOTS instances")


def member_name(register_name: str) -> str:
    """``RISK_MAX_LONG`` -> ``max_long``."""
    if not register_name.startswith("RISK_"):
        raise ValueError(f"{register_name!r} is not a risk register")
    return register_name[len("RISK_"):].lower()


class RiskRegisterSignature(wiring.Signature):
    """The risk registers as the bank drives them; the gate's port is ``In`` of this.

    Parameters
    ----------
    slots : int
        Instances of each per-symbol register.
    """

    def __init__(self, slots: int):
        self.slots = slots
        # Declared from the register bank's side, like RegisterBusSignature; the gate takes
        # In(RiskRegisterSignature(slots)).
        members = {"counters_clear": Out(1)}
        for reg in wire.RISK_REGISTERS:
            name = member_name(reg.name)
            count = slots if reg.name in PER_SYMBOL else reg.count
            if reg.name == "RISK_COMMIT":
                members[name] = Out(1)
            elif reg.access == "rw":
                members[name] = Out(32) if count == 1 else Out(32).array(count)
            else:
                members[name] = In(32) if count == 1 else In(32).array(count)
        super().__init__(members)


def _instances(reg):
    if reg.count == 1:
        yield reg.name, None
    else:
        for i in range(reg.count):
            yield f"{reg.name}_{i}", i


def connect_registers(m: Module, bank, regs) -> None:
    """Wire the gate's ``regs`` port to a register bank built from :data:`hdl.wire.REGISTERS`.

    Parameters
    ----------
    m : Module
        The module that holds both.
    bank : hdl.regs.RegisterBank
    regs : the gate's ``regs`` interface (``gate.regs``)
    """
    slots = len(regs.max_long)
    if slots != wire.RISK_SLOTS:
        raise ValueError(f"the gate has {slots} slots but the register map has "
                         f"{wire.RISK_SLOTS}; build the top's gate with slots=RISK_SLOTS")
    for reg in wire.RISK_REGISTERS:
        member = getattr(regs, member_name(reg.name))
        for key, i in _instances(reg):
            port = member if i is None else member[i]
            if reg.name == "RISK_COMMIT":
                m.d.comb += port.eq(bank.write_strobe[key])
            elif reg.access == "rw":
                m.d.comb += port.eq(bank.control[key])
            else:
                m.d.comb += bank.status[key].eq(port)
    # CONTROL bit 0 clears counters on the write that sets it.
    m.d.comb += regs.counters_clear.eq(bank.write_strobe["CONTROL"] & bank.write_data[0])
