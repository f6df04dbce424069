"""cocotb testbench parts for ticklane's stream and register ports.

A source drives everything but ``ready``; a sink drives only ``ready``; a monitor drives nothing.
Sources take an idle generator and sinks a backpressure generator (seeded), so every stream test
runs with and without idle cycles on inputs and backpressure on outputs. Payloads are record
bytes laid out by :mod:`hdl.wire` (little-endian bit vectors).

Every part drives its signals on the falling edge and samples the handshake under ``ReadOnly()``
in that same time step, so what it samples is exactly what the next rising edge transfers (a
value read after ``await RisingEdge`` in cocotb 2.1 is not reliably the one the edge used).
"""

from __future__ import annotations

import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from hdl import wire
from hdl.regs import ADDR_BITS

__all__ = ["StreamSource", "StreamSink", "RegisterBus", "TopTB", "md_beats"]


def probability_generator(p: float, seed: int):
    """Yields True with probability ``p`` (an idle or a backpressure cycle)."""
    rng = random.Random(seed)
    while True:
        yield p > 0 and rng.random() < p


class StreamSource:
    """Drives ``<name>__valid`` and ``<name>__payload``; honours ``<name>__ready``."""

    def __init__(self, dut, name: str, clk, *, idle: float = 0.0, seed: int = 0):
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready")
        self.clk = clk
        self.queue = deque()
        self.idle = probability_generator(idle, seed)
        self.sent = 0
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, payloads):
        self.queue.extend(payloads)

    @property
    def empty(self) -> bool:
        return not self.queue and not int(self.valid.value)

    async def _run(self):
        # Drive on the falling edge, then sample the handshake under ReadOnly in the same time
        # step: those are the values the next rising edge transfers.
        current = None
        while True:
            await FallingEdge(self.clk)
            if current is None:
                if self.queue and not next(self.idle):
                    current = self.queue.popleft()
                    self.payload.value = current
                    self.valid.value = 1
                else:
                    self.valid.value = 0
            await ReadOnly()
            if current is not None and int(self.ready.value):
                self.sent += 1
                current = None


async def _writable(clk):
    await FallingEdge(clk)


class StreamSink:
    """Drives ``<name>__ready`` with backpressure; collects accepted payloads as ints."""

    def __init__(self, dut, name: str, clk, *, backpressure: float = 0.0, seed: int = 1):
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready")
        self.clk = clk
        self.received = []
        self.backpressure = probability_generator(backpressure, seed)
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await FallingEdge(self.clk)
            self.ready.value = 0 if next(self.backpressure) else 1
            await ReadOnly()
            if int(self.valid.value) and int(self.ready.value):
                self.received.append(int(self.payload.value))


class RegisterBus:
    """Initiator of the register bus (``csr``); addresses come from the register map only."""

    def __init__(self, dut, clk, regmap: wire.RegisterMap = wire.REGISTERS):
        self.dut, self.clk, self.regmap = dut, clk, regmap
        dut.csr__r_stb.value = 0
        dut.csr__w_stb.value = 0
        dut.csr__addr.value = 0
        dut.csr__w_data.value = 0

    async def read(self, name: str, index: int = 0) -> int:
        word = self.regmap.address(name, index) // 4
        assert word < (1 << ADDR_BITS)
        await _writable(self.clk)
        self.dut.csr__addr.value = word
        self.dut.csr__r_stb.value = 1
        await RisingEdge(self.clk)
        await _writable(self.clk)
        self.dut.csr__r_stb.value = 0
        await RisingEdge(self.clk)
        await ReadOnly()
        return int(self.dut.csr__r_data.value)

    async def write(self, name: str, value: int, index: int = 0):
        await _writable(self.clk)
        self.dut.csr__addr.value = self.regmap.address(name, index) // 4
        self.dut.csr__w_data.value = value
        self.dut.csr__w_stb.value = 1
        await RisingEdge(self.clk)
        await _writable(self.clk)
        self.dut.csr__w_stb.value = 0


def md_beats(stream_bytes: bytes, frame_ends: list[int] | None = None) -> list[int]:
    """Pack a byte stream into MD_BEAT payload integers, ``last`` at each frame end.

    ``frame_ends`` are byte offsets (exclusive) at which a frame ends; a frame's last beat may be
    partial. By default the whole stream is one frame.
    """
    ends = list(frame_ends or [len(stream_bytes)])
    beats = []
    start = 0
    for end in ends:
        chunk = stream_bytes[start:end]
        for i in range(0, max(len(chunk), 1), 8):
            part = chunk[i:i + 8]
            last = i + 8 >= len(chunk)
            beats.append(int.from_bytes(wire.MD_BEAT.pack(
                data=int.from_bytes(part.ljust(8, b"\0"), "little"),
                keep=(1 << len(part)) - 1,
                flags=wire.MD_BEAT.flag("flags", "last") if last else 0), "little"))
        start = end
    return beats


class TopTB:
    """Clock, reset, a source per input stream, a sink per output stream, and the register bus
    of :class:`hdl.top.Top` (streams from :data:`hdl.wire.STREAMS`)."""

    def __init__(self, dut, *, idle: float = 0.0, backpressure: float = 0.0, seed: int = 0):
        self.dut = dut
        self.clk = dut.clk
        Clock(dut.clk, 4, unit="ns").start()   # 250 MHz
        self.sources, self.sinks = {}, {}
        for i, (name, s) in enumerate(wire.STREAMS.items()):
            if s.direction == "in":
                self.sources[name] = StreamSource(dut, name, self.clk, idle=idle, seed=seed + i)
            else:
                self.sinks[name] = StreamSink(dut, name, self.clk, backpressure=backpressure,
                                              seed=seed + 100 + i)
        self.md = self.sources["md_in"]
        self.bbo = self.sinks["bbo_out"]
        self.regs = RegisterBus(dut, self.clk)

    async def reset(self, cycles: int = 4):
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.clk)
        await _writable(self.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.clk)

    async def drain(self, settle: int = 64, limit: int = 10_000_000):
        """Clock until the source is empty and no record came out for ``settle`` cycles."""
        quiet = 0
        seen = len(self.bbo.received)
        for _ in range(limit):
            await RisingEdge(self.clk)
            if all(src.empty for src in self.sources.values()) and len(self.bbo.received) == seen:
                quiet += 1
                if quiet >= settle:
                    return
            else:
                quiet = 0
                seen = len(self.bbo.received)
        raise AssertionError(f"design did not drain within {limit} cycles")
