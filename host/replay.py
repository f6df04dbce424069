"""``ticklane replay``: a historical ITCH file through the gateware, BBO changes out.

The file is checked for framing first (:func:`host.feed.framing.scan_historical`). Everything
before the first framing error is replayed and kept; the error is reported with its byte offset.

The gateware books the symbols it holds. The host keeps the full book of every symbol in software
(:class:`sim.model.book.BookModel`) and publishes from it the symbols the gateware does not hold
(no free slot, or no directory message) and, while a gateware record carries the ``refill`` flag
(a best level beyond the levels the gateware holds, or its order table full), the symbol the
gateware cannot publish exactly. The CSV merges both, in message order, and the summary says how
many rows came from each, so the output is never silently wrong.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdl import wire
from host.feed.framing import FramingError, scan_historical
from host.feed.itch import decode_message
from host.link.base import Link, LinkError
from host.link.beats import frame_ends_on_messages, pack_beats
from sim.model.bbo_csv import csv_text
from sim.model.book import BboChange, BookModel
from sim.model.book_hw import merge_with_host_book

__all__ = ["ReplayResult", "replay", "DEMO_STREAM", "CLOCK_MHZ", "CLOCK_SOURCE"]

_BOOK_TYPES = frozenset(b"AFECXDU")

#: The built-in data set: a small synthetic ITCH stream (see tools/make_demo_stream.py).
DEMO_STREAM = Path(__file__).resolve().parent / "data" / "demo.itch"

#: The clock latencies are converted to nanoseconds at: the PYNQ-Z2 build's target clock.
CLOCK_MHZ = 100.0
CLOCK_SOURCE = ("PYNQ-Z2 build target, FCLK_CLK0 = 100 MHz (not timing-closed: Vivado is not "
                "available here)")

_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
_REFILL = wire.BBO_UPDATE.flag("flags", "refill")


@dataclass
class ReplayResult:
    """Everything one replay produced."""

    messages: int                     # messages replayed (before any framing error)
    changes: list[BboChange]          # merged BBO changes, message order
    hardware_records: np.ndarray      # the gateware's BBO records
    host_rows: int                    # rows booked in software by the host
    host_symbols: list[str]
    error: FramingError | None
    counters: dict[str, int]
    cycles: int
    wall_s: float
    latency_cycles: np.ndarray        # egress - ingress of every hardware record
    notes: list[str] = field(default_factory=list)

    def csv(self) -> str:
        return csv_text(self.changes)


def _directory(buf: bytes, offsets: np.ndarray, slots: int):
    """Host-side view of the stream: locate → symbol, and the locates the gateware subscribes
    (the feed stage's default rule: each directory message takes the next free slot)."""
    symbols: dict[int, str] = {}
    subscribed: dict[int, int] = {}
    mv = memoryview(buf)
    for pos in offsets.tolist():
        if mv[pos + 2] == 0x52:  # 'R'
            n = (mv[pos] << 8) | mv[pos + 1]
            msg = decode_message(bytes(mv[pos + 2:pos + 2 + n]))
            loc = msg["stock_locate"]
            symbols.setdefault(loc, msg["stock"])
            if loc not in subscribed and len(subscribed) < slots:
                subscribed[loc] = len(subscribed)
    return symbols, subscribed


def _software_book(buf: bytes, offsets: np.ndarray) -> tuple[list[BboChange], BookModel]:
    """The host's full book of every symbol, in software: what it publishes for symbols the
    gateware does not hold, and while the gateware asks for a refill."""
    model = BookModel()
    changes = []
    mv = memoryview(buf)
    for seq, pos in enumerate(offsets.tolist(), start=1):
        if mv[pos + 2] not in _BOOK_TYPES:
            continue
        n = (mv[pos] << 8) | mv[pos + 1]
        change = model.apply(decode_message(bytes(mv[pos + 2:pos + 2 + n])), seq)
        if change is not None:
            changes.append(change)
    return changes, model


def replay(buf: bytes, link: Link, *, slots: int, max_frame: int = 8192) -> ReplayResult:
    """Replay a historical ITCH buffer through ``link``.

    Parameters
    ----------
    buf : bytes
        The file's contents.
    link : host.link.base.Link
        A link to a top whose book stage has ``slots`` symbol slots. It is powered on afresh
        (:meth:`host.link.base.Link.power_on`) before the replay.
    slots : int
        Symbol slots of the gateware's book.
    max_frame : int
        Bytes per stream frame (frames end on message boundaries).
    """
    offsets, error = scan_historical(buf)
    if len(offsets):
        last = int(offsets[-1])
        end = last + 2 + ((buf[last] << 8) | buf[last + 1])
    else:
        end = 0
    good = buf[:end]
    symbols, subscribed = _directory(good, offsets, slots)

    # a replay starts from an empty pipeline: no subscription or book of an earlier run
    link.power_on()
    start = time.perf_counter()
    cycles = 0
    if end:
        beats = pack_beats(good, frame_ends_on_messages(offsets, end, max_frame))
        link.send("md_in", beats)
        stats = link.run()
        cycles = stats.cycles
        if not stats.drained:
            raise LinkError(f"the gateware stopped taking input: {stats.cycles:,} cycles ran "
                            f"and the market-data buffer was not drained")
    records = link.receive("bbo_out")
    for name in ("host_out", "gaps_out"):
        if name in link.streams:
            link.receive(name)   # forwarded messages: not part of a BBO replay
    wall = time.perf_counter() - start
    counters = link.counters()

    model_changes, model = _software_book(good, offsets)
    held = np.isin(records["locate"], np.fromiter(subscribed, dtype=np.uint16,
                                                  count=len(subscribed)))
    merged_held = merge_with_host_book(
        records[held], [c for c in model_changes if c.locate in subscribed])
    hw_keys = {(int(r["seq"]), int(r["locate"])) for r in records[held]
               if not int(r["flags"]) & _REFILL}
    changes = []
    host_rows = 0
    for seq, key, bid_p, bid_s, ask_p, ask_s in merged_held:
        changes.append(BboChange(seq, key, model.symbols.get(key) or symbols.get(key, ""),
                                 bid_p, bid_s, ask_p, ask_s))
        host_rows += (seq, key) not in hw_keys
    carried = [c for c in model_changes if c.locate not in subscribed]
    host_rows += len(carried)
    changes = sorted(changes + carried, key=lambda c: c.seq)

    latency = ((records["egress_cycle"].astype(np.int64) - records["ingress_cycle"])
               % (1 << wire.CYCLE_STAMP_BITS))
    notes = []
    unheld = {c.locate for c in carried}
    if unheld:
        notes.append(f"{len(unheld)} symbol(s) without a gateware slot booked by the host in "
                     f"software ({len(carried)} rows)")
    refills = int((records["flags"] & _REFILL != 0).sum())
    if refills:
        notes.append(f"{refills} record(s) flagged for refill: the host published its software "
                     f"book for those symbols until the gateware was exact again")
    if counters.get("MSGS_IN", len(offsets)) != len(offsets):
        notes.append(f"gateware delimited {counters['MSGS_IN']} messages, host sent {len(offsets)}")
    return ReplayResult(
        messages=len(offsets), changes=changes, hardware_records=records,
        host_rows=host_rows,
        host_symbols=sorted(model.symbol(k) or str(k) for k in unheld),
        error=error, counters=counters, cycles=cycles, wall_s=wall,
        latency_cycles=latency, notes=notes)
