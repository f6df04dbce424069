"""The register bank: the host's window into the gateware, laid out by :data:`hdl.wire.REGISTERS`.

The bank speaks a minimal register bus (:class:`RegisterBusSignature`): a word address, a read
strobe answered with data on the next cycle, and a write strobe with data. The board wrapper
bridges AXI4-Lite to it; the simulation harness drives it directly. No address is written down
anywhere but in the register map.
"""


from amaranth import Cat, Const, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import wire

__all__ = ["RegisterBusSignature", "RegisterBank", "ADDR_BITS"]

ADDR_BITS = 10  # word address: 4 KiB of register space


class RegisterBusSignature(wiring.Signature):
    """Register bus, seen from the initiator (the host side).

    Members: ``addr`` word address, ``r_stb`` read strobe, ``r_data`` read data (valid the cycle
    after ``r_stb``, held until the next read), ``w_stb`` write strobe, ``w_data`` write data. A
    write takes effect one cycle after its strobe, in time for a read strobed on the next cycle.
    """

    def __init__(self):
        super().__init__({
            "addr": Out(ADDR_BITS),
            "r_stb": Out(1),
            "r_data": In(32),
            "w_stb": Out(1),
            "w_data": Out(32),
        })


class RegisterBank(wiring.Component):
    """Decodes the register bus against a register map.

    Read-only registers are fed by the design through :attr:`status` (one 32-bit signal per
    instance, named ``NAME`` or ``NAME_<i>``); read-write registers appear as :attr:`control`
    signals the design reads. Reading a register named in ``latch`` (``{"CYCLE_LO": "CYCLE_HI"}``)
    also snapshots the other one, so a 64-bit counter reads consistently in two accesses.
    :attr:`write_strobe` pulses for one cycle per write of a read-write register, together with
    :attr:`write_data`, the word written (both one cycle after the bus strobe).

    Parameters
    ----------
    regmap : hdl.wire.RegisterMap
    latch : dict
        Read of key latches the status of value into a shadow returned for value.
    """

    bus: In(RegisterBusSignature())

    def __init__(self, regmap: wire.RegisterMap = wire.REGISTERS, *, latch=None):
        if regmap.size // 4 > (1 << ADDR_BITS):
            raise ValueError(f"register map of {regmap.size} bytes does not fit "
                             f"{ADDR_BITS}-bit word addresses")
        self.regmap = regmap
        self.latch = dict(latch or {})
        self.status = {}
        self.control = {}
        self.write_strobe = {}
        self.write_data = Signal(32, name="write_data", reset_less=True)
        for reg in regmap:
            for i in range(reg.count):
                key = reg.name if reg.count == 1 else f"{reg.name}_{i}"
                if reg.access == "r":
                    self.status[key] = Signal(32, name=f"status_{key.lower()}")
                else:
                    self.control[key] = Signal(32, name=f"control_{key.lower()}", init=reg.init)
                    self.write_strobe[key] = Signal(name=f"wstb_{key.lower()}")
        for src, dst in self.latch.items():
            if src not in self.status or dst not in self.status:
                raise ValueError(f"latch {src!r} -> {dst!r} names a register that is not read-only")
        # High when an access is on the bus or in the bank, or in reset; for the simulation
        # harness (nothing in the gateware reads it). With it low the next edge changes no
        # register of the bank but the bus address and write data, which are captured on every
        # cycle and read only under a strobe.
        self.busy = Signal(name="busy")
        super().__init__()

    def _instances(self):
        for reg in self.regmap:
            for i in range(reg.count):
                key = reg.name if reg.count == 1 else f"{reg.name}_{i}"
                yield key, self.regmap.address(reg.name, i) // 4, reg

    def elaborate(self, platform):
        m = Module()
        shadows = {dst: Signal(32, name=f"shadow_{dst.lower()}") for dst in self.latch.values()}

        # The bus is registered on its way in, so the decoders below hang off flip-flops and not
        # off the bank's input ports. The read mux after the register is combinational, so read
        # data still arrives the cycle after ``r_stb``, and a write still takes effect before a
        # read strobed on the next cycle.
        # Not reset: an access strobed in the cycle the bank leaves reset is still taken.
        addr = Signal(ADDR_BITS, reset_less=True)
        r_stb = Signal(reset_less=True)
        w_stb = Signal(reset_less=True)
        w_data = self.write_data
        m.d.sync += [addr.eq(self.bus.addr), r_stb.eq(self.bus.r_stb), w_stb.eq(self.bus.w_stb),
                     w_data.eq(self.bus.w_data)]

        read = Signal(32)
        held = Signal(32)  # r_data keeps the last word read until the next read
        with m.Switch(addr):
            for key, word, reg in self._instances():
                with m.Case(word):
                    if key in shadows:
                        m.d.comb += read.eq(shadows[key])
                    elif reg.access == "r":
                        m.d.comb += read.eq(self.status[key])
                    else:
                        m.d.comb += read.eq(self.control[key])
                    if key in self.latch:
                        dst = self.latch[key]
                        with m.If(r_stb):
                            m.d.sync += shadows[dst].eq(self.status[dst])
            with m.Default():
                m.d.comb += read.eq(0xDEADBEEF)
        with m.If(r_stb):
            m.d.comb += self.bus.r_data.eq(read)
            m.d.sync += held.eq(read)
        with m.Else():
            m.d.comb += self.bus.r_data.eq(held)

        for key in self.write_strobe:
            m.d.comb += self.write_strobe[key].eq(0)
        with m.If(w_stb):
            with m.Switch(addr):
                for key, word, reg in self._instances():
                    if reg.access == "rw":
                        with m.Case(word):
                            m.d.sync += self.control[key].eq(w_data)
                            m.d.comb += self.write_strobe[key].eq(1)
        m.d.comb += self.busy.eq(ResetSignal() | self.bus.r_stb | self.bus.w_stb | r_stb | w_stb)
        return m
