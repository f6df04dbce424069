"""The board link: the ticklane overlay on a PYNQ board, through pynq.

The overlay (``.bit`` with its ``.hwh`` beside it) is loaded with ``pynq.Overlay``. The design's
register window is driven by ``TicklaneCore``, a ``pynq.DefaultIP`` subclass bound
to our IP's VLNV (:data:`hdl.platform.pynq_z2.IP_VLNV`) with ``bindto``; registers are addressed
by name through :data:`hdl.wire.REGISTERS` only. Each stream of :data:`hdl.wire.STREAMS` has its
own AXI DMA (``axi_dma_<stream>``): MM2S for streams into the FPGA, S2MM out of it. Records move
in batches through buffers from ``pynq.allocate`` (a Python MMIO access costs tens of
microseconds and a DMA call about a hundred: move buffers, not words).

Completion is found by polling the channels' ``idle`` flag (``mode="poll"``, lowest latency, one
core busy) or by awaiting their interrupts (``mode="interrupt"``, ``wait_async``; the block
design wires every DMA interrupt to the PS).

Before anything is loaded, the build's ``manifest.json`` (see ``bitstreams/README.md``) is checked:
its format hash and register map must be this host's, and the ``.hwh`` must name our IP. After
loading, the ``DEVICE_ID`` and ``FORMAT_HASH`` registers are checked as on every link.

``pynq`` is imported only here, when a :class:`BoardLink` is made (the ``board`` extra).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np

from hdl import wire
from .base import Link, LinkError, RunStats

__all__ = ["BoardLink", "check_manifest", "IP_VLNV", "MODES"]

#: The packaged IP's VLNV (hdl.platform.pynq_z2.IP_VLNV; repeated here so that the board does not
#: load the platform's build code). A test pins the two together.
IP_VLNV = "ticklane:user:ticklane:1.0"
MODES = ("poll", "interrupt")

# Keyed by pynq's DefaultIP class itself (held, so the key can never be reused).
_DRIVERS: dict[type, type] = {}


def _driver_class(pynq) -> type:
    """The DefaultIP subclass bound to our IP (defined once per pynq module: defining it
    registers it with pynq's driver table)."""
    cls = _DRIVERS.get(pynq.DefaultIP)
    if cls is None:
        class TicklaneCore(pynq.DefaultIP):
            """Register window of the ticklane IP; words at byte offsets of wire.REGISTERS."""

            bindto = [IP_VLNV]

            def __init__(self, description):
                super().__init__(description=description)

        cls = _DRIVERS[pynq.DefaultIP] = TicklaneCore
    return cls


def check_manifest(manifest: dict, hwh_text: str | None = None) -> None:
    """Refuse a build whose contract is not this host's.

    Parameters
    ----------
    manifest : dict
        Parsed ``manifest.json`` of the build.
    hwh_text : str, optional
        The ``.hwh`` file's text; it must name :data:`IP_VLNV`.

    Raises
    ------
    LinkError
        Naming the first mismatch.
    """
    want = f"0x{wire.FORMAT_HASH:016x}"
    if manifest.get("format_hash") != want:
        raise LinkError(f"bitstream format hash {manifest.get('format_hash')} does not match "
                        f"this host's contract {want}: rebuild one of them")
    if manifest.get("ip_vlnv") != IP_VLNV:
        raise LinkError(f"bitstream IP is {manifest.get('ip_vlnv')!r}, expected {IP_VLNV!r}")
    for entry in manifest.get("registers", ()):
        name = entry.get("name")
        try:
            address = wire.REGISTERS.address(name)
        except KeyError:
            raise LinkError(f"bitstream has register {name!r}, unknown to this host") from None
        if entry.get("address") != address:
            raise LinkError(f"bitstream places register {name!r} at {entry.get('address')!r}, "
                            f"this host at {address}")
    streams = {s.get("name") for s in manifest.get("streams", ())}
    missing = sorted(set(wire.STREAMS) - streams)
    if missing:
        raise LinkError(f"bitstream has no DMA for stream(s) {missing}")
    if hwh_text is not None and IP_VLNV not in hwh_text:
        raise LinkError(f"the .hwh does not describe the IP {IP_VLNV!r}")


class BoardLink(Link):
    """A link to the overlay on a PYNQ board.

    Parameters
    ----------
    bitstream : path
        The overlay's ``.bit``; its ``.hwh`` must sit beside it with the same stem.
    manifest : path, optional
        The build's ``manifest.json`` (default: beside the bitstream).
    mode : {"poll", "interrupt"}
        How DMA completion is awaited.
    capacity : int
        Records per DMA buffer of each stream; larger batches are sent in several transfers.
    quiet_s : float
        After the inputs are consumed, :meth:`run` returns once no output arrived for this long
        (the design closes partial packets after an idle time; see the manifest).
    timeout_s : float
        Longest wait for an input transfer to complete.
    """

    def __init__(self, bitstream, *, manifest=None, mode: str = "poll", capacity: int = 4096,
                 quiet_s: float = 0.001, timeout_s: float = 1.0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES!r}, got {mode!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        self.bitstream = Path(bitstream)
        self.hwh = self.bitstream.with_suffix(".hwh")
        self.manifest_path = Path(manifest) if manifest else \
            self.bitstream.with_name("manifest.json")
        for path in (self.bitstream, self.hwh, self.manifest_path):
            if not path.is_file():
                raise LinkError(f"board link: {path} does not exist")
        self.manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        check_manifest(self.manifest, self.hwh.read_text(encoding="utf-8", errors="replace"))
        self.mode = mode
        self.capacity = capacity
        self.quiet_s = quiet_s
        self.timeout_s = timeout_s
        self.streams = dict(wire.STREAMS)
        try:
            import pynq
        except ImportError as exc:
            raise LinkError("the board link needs pynq (install the 'board' extra on the "
                            "board)") from exc
        self._pynq = pynq
        self._driver = _driver_class(pynq)
        self._dma_names = {s["name"]: s.get("dma") or f"axi_dma_{s['name']}"
                           for s in self.manifest["streams"]}
        self._overlay = None
        self._buffers: dict[str, object] = {}
        self._queued: dict[str, list[np.ndarray]] = {}
        self._received: dict[str, list[np.ndarray]] = {}
        self._armed: set[str] = set()
        self._load()

    # -- set-up --------------------------------------------------------------------------

    def _load(self) -> None:
        pynq = self._pynq
        self._overlay = ol = pynq.Overlay(str(self.bitstream))
        cores = [name for name, d in ol.ip_dict.items() if d.get("type") == IP_VLNV]
        if len(cores) != 1:
            raise LinkError(f"overlay {self.bitstream.name} has {len(cores)} instance(s) of "
                            f"{IP_VLNV}; expected 1")
        self._core = getattr(ol, cores[0])
        if not isinstance(self._core, self._driver):
            raise LinkError(f"{cores[0]} is driven by {type(self._core).__name__}, "
                            f"not the ticklane driver: is the .hwh the build's?")
        self._channels = {}
        for name, stream in self.streams.items():
            try:
                dma = getattr(ol, self._dma_names[name])
            except AttributeError:
                raise LinkError(f"overlay has no DMA {self._dma_names[name]!r} for stream "
                                f"{name!r}") from None
            self._channels[name] = dma.sendchannel if stream.direction == "in" \
                else dma.recvchannel
            if name not in self._buffers:
                self._buffers[name] = pynq.allocate(shape=(self.capacity,),
                                                    dtype=stream.record.dtype)
        self._queued = {n: [] for n, s in self.streams.items() if s.direction == "in"}
        self._received = {n: [] for n, s in self.streams.items() if s.direction == "out"}
        self._armed = set()
        self.check_identity()
        for name in self._received:
            self._arm(name)

    def clock(self) -> tuple[float, str]:
        """The fabric clock the bitstream was built with, as its ``manifest.json`` records it
        (``clock.mhz``, written by the build from the PS7 PLL settings); without one, the build
        target, saying so."""
        clock = self.manifest.get("clock") or {}
        mhz = clock.get("mhz")
        if isinstance(mhz, bool) or not isinstance(mhz, (int, float)) or not mhz > 0:
            target, source = super().clock()
            return target, f"the bitstream's manifest.json records no clock; assumed: {source}"
        return float(mhz), (f"{clock.get('name', 'the fabric clock')} = {mhz:g} MHz, as the "
                            f"bitstream's manifest.json records it "
                            f"({clock.get('source', 'no derivation given')})")

    def power_on(self) -> None:
        """Reload the overlay: every table, book, counter and DMA starts afresh."""
        self._overlay.download()
        self._load()

    # -- registers -----------------------------------------------------------------------

    def _read_word(self, address: int) -> int:
        return int(self._core.read(address)) & 0xFFFF_FFFF

    def _write_word(self, address: int, value: int) -> None:
        self._core.write(address, value)

    # -- streams -------------------------------------------------------------------------

    def send(self, stream: str, records: np.ndarray) -> None:
        self._check_stream(stream, "in", records)
        if len(records):
            self._queued[stream].append(np.ascontiguousarray(records))

    def receive(self, stream: str) -> np.ndarray:
        s = self._check_stream(stream, "out")
        self._collect(stream)
        parts, self._received[stream] = self._received[stream], []
        return np.concatenate(parts) if parts else s.record.array(0)

    def _arm(self, name: str) -> None:
        buf = self._buffers[name]
        self._channels[name].transfer(buf)
        self._armed.add(name)

    def _collect(self, name: str) -> bool:
        """Take a completed S2MM transfer of ``name`` and re-arm it; True if one was taken."""
        channel = self._channels[name]
        if name not in self._armed:
            self._arm(name)
            return False
        if not channel.idle:
            return False
        buf = self._buffers[name]
        size = self.streams[name].record.size
        nbytes = int(channel.transferred)
        if nbytes % size:
            raise LinkError(f"stream {name!r}: DMA delivered {nbytes} bytes, not a whole number "
                            f"of {size}-byte records")
        buf.invalidate()
        if nbytes:
            self._received[name].append(np.array(buf[:nbytes // size]))
        self._armed.discard(name)
        self._arm(name)
        return nbytes > 0

    def _wait(self, channel) -> None:
        if self.mode == "interrupt":
            asyncio.run(asyncio.wait_for(channel.wait_async(), self.timeout_s))
            return
        deadline = time.perf_counter() + self.timeout_s
        while not channel.idle:
            if time.perf_counter() > deadline:
                raise LinkError(f"DMA transfer did not complete within {self.timeout_s} s")

    def run(self, *, max_cycles: int | None = None) -> RunStats:
        start = time.perf_counter()
        first_cycle = self.read_cycle()
        for name, parts in self._queued.items():
            if not parts:
                continue
            records = np.concatenate(parts)
            self._queued[name] = []
            buf = self._buffers[name]
            channel = self._channels[name]
            size = self.streams[name].record.size
            for at in range(0, len(records), self.capacity):
                chunk = records[at:at + self.capacity]
                buf[:len(chunk)] = chunk
                buf.flush()
                channel.transfer(buf, nbytes=len(chunk) * size)
                self._wait(channel)
        # Outputs: collect until none has delivered anything for quiet_s.
        quiet_since = time.perf_counter()
        while time.perf_counter() - quiet_since < self.quiet_s:
            got = False
            for name in self._received:
                got |= self._collect(name)
            if got:
                quiet_since = time.perf_counter()
            elif self.mode == "interrupt":
                time.sleep(self.quiet_s / 4)
        cycles = (self.read_cycle() - first_cycle) & ((1 << 64) - 1)
        drained = max_cycles is None or cycles < max_cycles
        return RunStats(cycles=cycles, wall_s=time.perf_counter() - start, drained=drained)

    def close(self) -> None:
        for buf in self._buffers.values():
            free = getattr(buf, "freebuffer", None)
            if free is not None:
                free()
        self._buffers = {}
        self._overlay = None
