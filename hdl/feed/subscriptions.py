"""The subscription table: stock locate → symbol slot, in block RAM.

Two writers share its one write port: the decoder (a directory message subscribing its locate)
and the host (``FEED_SUB_LOCATE`` then a write of ``FEED_SUB_SLOT``). The decoder wins a
conflict; the host's write waits one cycle. An entry holds a slot only as wide as the build's
slots need, so a host write of a slot beyond them is refused (the entry stays as it was) and
reported on ``refused``, for the stage's ``FEED_SUB_REFUSED`` counter. The read is issued by the
deframer in the cycle a message ends, so its data comes out with the registered message; the read
port is transparent to the write port so a write in that same cycle is seen.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .decoder import entry_layout

__all__ = ["SubscriptionTable"]

LOCATES = 1 << 16


class SubscriptionTable(wiring.Component):
    """One entry of (valid, slot) per stock locate.

    Parameters
    ----------
    locates : int
        Entries (default 65,536: every 2-byte stock locate). A smaller table, addressed by the
        locate's low bits, is for formal proofs only, where the depth changes no control path.
    slots : int
        Symbol slots of the build; an entry's slot is ``(slots - 1).bit_length()`` bits wide.

    Ports
    -----
    rd_addr, rd_en : In(16), In(1)
    rd_data : Out(entry_layout(slots))
        The entry read by the last cycle with ``rd_en``; held until the next.
    sub_en, sub_addr, sub_slot : In
        The decoder subscribes ``sub_addr`` to ``sub_slot``.
    host_strobe : In(1)
        A write of ``FEED_SUB_SLOT`` happened this cycle; ``host_locate`` and ``host_value`` hold
        the registers' values from the next cycle on (bit 31 of the value: remove).
    refused : Out(1)
        A host write asked for a slot ``>= slots`` in this cycle and was not done.
    """

    def __init__(self, *, locates: int = LOCATES, slots: int = 256):
        if not isinstance(locates, int) or not 2 <= locates <= LOCATES or locates & (locates - 1):
            self._MustUse__silence = True   # a refused component is not an unused one
            raise ValueError(f"locates must be a power of two in 2..{LOCATES}, not {locates!r}")
        if not isinstance(slots, int) or not 1 <= slots < 0xFFFF:
            self._MustUse__silence = True
            raise ValueError(f"slots must be an integer in 1..{0xFFFF - 1}, not {slots!r}")
        self.locates = locates
        self.slots = slots
        self.entry_layout = entry_layout(slots)
        super().__init__({
            "rd_addr": In(16), "rd_en": In(1), "rd_data": Out(self.entry_layout),
            "sub_en": In(1), "sub_addr": In(16), "sub_slot": In(16),
            "host_strobe": In(1), "host_locate": In(32), "host_value": In(32),
            "refused": Out(1),
        })
        # High when the table may change on the next edge (a write, a read, or a host write
        # waiting); for the simulation harness, nothing in the gateware reads it.
        self.busy = Signal(name="busy")

    def elaborate(self, platform):
        m = Module()
        m.submodules.table = table = Memory(shape=self.entry_layout, depth=self.locates, init=[])
        wr = table.write_port()
        rd = table.read_port(transparent_for=(wr,))
        m.d.comb += [rd.addr.eq(self.rd_addr), rd.en.eq(self.rd_en), self.rd_data.eq(rd.data)]

        # The register bank updates the value on the strobe's clock edge: write a cycle later.
        pending = Signal()
        with m.If(self.host_strobe):
            m.d.sync += pending.eq(1)
        with m.If(self.sub_en):
            m.d.comb += [wr.en.eq(1), wr.addr.eq(self.sub_addr),
                         wr.data.valid.eq(1), wr.data.slot.eq(self.sub_slot)]
        with m.Elif(pending):
            remove = self.host_value[31]
            fits = self.host_value[:16] < self.slots
            m.d.comb += [wr.en.eq(remove | fits), wr.addr.eq(self.host_locate[:16]),
                         wr.data.valid.eq(~remove), wr.data.slot.eq(self.host_value[:16]),
                         self.refused.eq(~remove & ~fits)]
            with m.If(~self.host_strobe):
                m.d.sync += pending.eq(0)
        m.d.comb += self.busy.eq(self.rd_en | self.sub_en | self.host_strobe | pending)
        return m
