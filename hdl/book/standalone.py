"""The book stage alone with its own cycle counter: the design the book tests and benchmark run.

Ports: ``events`` (book events in), ``refill`` (host levels in) and ``bbo`` (records out), all
streams, and ``cycle`` (the
counter, so a testbench can stamp ingress cycles); no register bus. The counter starts at 0 on
reset, like the top's.
"""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect

from .. import wire
from ..feed.events import BookEventLayout
from .stage import BookStage

__all__ = ["StandaloneBook"]


class StandaloneBook(wiring.Component):
    """:class:`BookStage` with a free-running cycle counter; parameters as BookStage's."""

    def __init__(self, **params):
        self.stage = BookStage(**params)
        super().__init__({
            "events": In(stream.Signature(BookEventLayout)),
            "refill": In(stream.Signature(wire.BOOK_REFILL_LEVEL.layout)),
            "bbo": Out(stream.Signature(wire.BBO_UPDATE.layout)),
            "cycle": Out(64),
        })

    @property
    def config(self) -> str:
        return self.stage.config

    def elaborate(self, platform):
        m = Module()
        m.submodules.stage = stage = self.stage
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        m.d.comb += [stage.cycle.eq(cycle), self.cycle.eq(cycle)]
        connect(m, wiring.flipped(self.events), stage.events)
        connect(m, wiring.flipped(self.refill), stage.refill)
        connect(m, stage.bbo, wiring.flipped(self.bbo))
        return m
