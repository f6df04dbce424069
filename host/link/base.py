"""The narrow boundary between the host and the gateware.

A :class:`Link` moves record buffers over the top's streams (:data:`hdl.wire.STREAMS`) and reads
and writes registers by name (:data:`hdl.wire.REGISTERS`). Its backends, the simulated gateware
(:mod:`host.link.sim`) and the board (:mod:`host.link.board`), are interchangeable: nothing above
this module can tell them apart.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from hdl import wire

__all__ = ["Link", "LinkError", "RunStats"]


class LinkError(RuntimeError):
    """The gateware behind a link is missing, mismatched, or did not answer."""


@dataclass(frozen=True)
class RunStats:
    """What one :meth:`Link.run` call did.

    Attributes
    ----------
    cycles : int
        Clock cycles of the gateware the call covered (simulated, or read from the counter).
    wall_s : float
        Host wall-clock seconds the call took.
    drained : bool
        Every input buffer was consumed and the outputs went quiet.
    """

    cycles: int
    wall_s: float
    drained: bool


class Link(abc.ABC):
    """One connection to the gateware."""

    regmap = wire.REGISTERS
    streams = wire.STREAMS

    # -- registers ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _read_word(self, address: int) -> int: ...

    @abc.abstractmethod
    def _write_word(self, address: int, value: int) -> None: ...

    def read_reg(self, name: str, index: int = 0) -> int:
        """Read register ``name`` (instance ``index`` of an array)."""
        return self._read_word(self.regmap.address(name, index))

    def write_reg(self, name: str, value: int, index: int = 0) -> None:
        """Write register ``name``; only read-write registers may be written."""
        reg = self.regmap[name]
        if reg.access != "rw":
            raise LinkError(f"register {name!r} is read-only")
        if not 0 <= int(value) < 1 << 32:
            raise ValueError(f"register {name!r} value {value!r} does not fit in 32 bits")
        self._write_word(self.regmap.address(name, index), int(value))

    def clock(self) -> tuple[float, str]:
        """The design clock in MHz that converts this gateware's cycle stamps to nanoseconds,
        and where that figure comes from: here the PYNQ-Z2 build's target
        (:data:`host.replay.CLOCK_MHZ`); a board reads its bitstream's own."""
        from host.replay import CLOCK_MHZ, CLOCK_SOURCE
        return CLOCK_MHZ, CLOCK_SOURCE

    def read_cycle(self) -> int:
        """The 64-bit free-running cycle counter (CYCLE_LO latches CYCLE_HI)."""
        lo = self.read_reg("CYCLE_LO")
        return (self.read_reg("CYCLE_HI") << 32) | lo

    def counters(self) -> dict[str, int]:
        """Every read-only register, by name."""
        out = {}
        for reg in self.regmap:
            if reg.access == "r" and reg.name not in ("CYCLE_LO", "CYCLE_HI"):
                for i in range(reg.count):
                    key = reg.name if reg.count == 1 else f"{reg.name}[{i}]"
                    out[key] = self.read_reg(reg.name, i)
        return out

    def check_identity(self) -> None:
        """Refuse gateware built against another contract."""
        device = self.read_reg("DEVICE_ID")
        if device != wire.DEVICE_ID:
            raise LinkError(f"no ticklane gateware: DEVICE_ID reads {device:#010x}, "
                            f"expected {wire.DEVICE_ID:#010x}")
        fmt = self.read_reg("FORMAT_HASH")
        if fmt != wire.FORMAT_HASH & 0xFFFF_FFFF:
            raise LinkError(f"gateware format hash {fmt:#010x} does not match this host's "
                            f"contract {wire.FORMAT_HASH & 0xFFFF_FFFF:#010x}: rebuild one of them")

    @abc.abstractmethod
    def power_on(self) -> None:
        """Return the gateware to its power-on state: tables, books, counters and queued
        buffers cleared (the board reloads its overlay; the simulation starts a fresh instance).
        """

    # -- streams -----------------------------------------------------------------------------
    @abc.abstractmethod
    def send(self, stream: str, records: np.ndarray) -> None:
        """Queue a buffer of records (of the stream's record dtype) toward the gateware."""

    @abc.abstractmethod
    def run(self, *, max_cycles: int | None = None) -> RunStats:
        """Let the gateware work until the queued input is consumed and the outputs are quiet."""

    @abc.abstractmethod
    def receive(self, stream: str) -> np.ndarray:
        """Take every record the gateware produced on ``stream`` so far."""

    def close(self) -> None:
        """Release the backend."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _check_stream(self, name: str, direction: str, records: np.ndarray | None = None):
        try:
            stream = self.streams[name]
        except KeyError:
            raise LinkError(f"no stream named {name!r}; the top has {sorted(self.streams)}") from None
        if stream.direction != direction:
            raise LinkError(f"stream {name!r} is an {stream.direction!r} stream")
        if records is not None and records.dtype != stream.record.dtype:
            raise TypeError(f"stream {name!r} carries {stream.record.name} records "
                            f"(dtype {stream.record.dtype}), got dtype {records.dtype}")
        return stream
