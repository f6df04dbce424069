"""``ticklane replay``: a historical ITCH file through the gateware, BBO changes out.

The file is checked for framing first (:func:`host.feed.framing.scan_historical`). Everything
before the first framing error is replayed and kept; the error is reported with its byte offset.

The gateware books the symbols it holds; the host books in software the symbols the gateware
cannot hold exactly: symbols without a free slot (or without a directory message), and symbols
touched by book messages the build's book stage does not implement (:data:`HARDWARE_BOOK_TYPES`).
The CSV merges both, in message order, and the summary says how many rows came from each, so the
output is never silently wrong.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdl import wire
from host.feed.framing import FramingError, scan_historical
from host.feed.itch import decode_message
from host.link.base import Link
from host.link.beats import frame_ends_on_messages, pack_beats
from sim.model.bbo_csv import csv_text
from sim.model.book import BboChange, BookModel

__all__ = ["ReplayResult", "replay", "HARDWARE_BOOK_TYPES", "DEMO_STREAM"]

#: Book message types the current book stage applies in gateware.
HARDWARE_BOOK_TYPES = frozenset(b"AF")
_BOOK_TYPES = frozenset(b"AFECXDU")

#: The built-in data set: a small synthetic ITCH stream (see tools/make_demo_stream.py).
DEMO_STREAM = Path(__file__).resolve().parent / "data" / "demo.itch"

#: The clock latencies are converted to nanoseconds at: the PYNQ-Z2 build's target clock.
CLOCK_MHZ = 100.0
CLOCK_SOURCE = ("PYNQ-Z2 build target, FCLK_CLK0 = 100 MHz (not timing-closed: Vivado is not "
                "available here)")

_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")


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


def _directory_and_carry(buf: bytes, offsets: np.ndarray, slots: int):
    """Host-side view of the stream: locate → symbol, the locates the gateware subscribes (the
    same first-come rule as the book stage), and the locates the host must book itself."""
    symbols: dict[int, str] = {}
    subscribed: dict[int, int] = {}
    unsupported: set[int] = set()
    seen: set[int] = set()
    mv = memoryview(buf)
    for pos in offsets.tolist():
        mtype = mv[pos + 2]
        if mtype == 0x52:  # 'R'
            n = (mv[pos] << 8) | mv[pos + 1]
            msg = decode_message(bytes(mv[pos + 2:pos + 2 + n]))
            loc = msg["stock_locate"]
            symbols.setdefault(loc, msg["stock"])
            if loc not in subscribed and len(subscribed) < slots:
                subscribed[loc] = len(subscribed)
        elif mtype in _BOOK_TYPES:
            loc = (mv[pos + 3] << 8) | mv[pos + 4]
            seen.add(loc)
            if mtype not in HARDWARE_BOOK_TYPES:
                unsupported.add(loc)
    carry = {loc for loc in seen if loc not in subscribed} | unsupported
    return symbols, subscribed, carry


def _records_to_changes(records: np.ndarray, symbols: dict[int, str]) -> list[BboChange]:
    out = []
    for r in records.tolist():
        seq, bid_p, ask_p, bid_s, ask_s, _, _, _, flags, locate, _ = r
        bid_ok, ask_ok = flags & _BID_VALID, flags & _ASK_VALID
        out.append(BboChange(seq, locate, symbols.get(locate, ""),
                             bid_p if bid_ok else None, bid_s if bid_ok else None,
                             ask_p if ask_ok else None, ask_s if ask_ok else None))
    return out


def _host_book(buf: bytes, offsets: np.ndarray, carry: set[int]) -> tuple[list[BboChange], BookModel]:
    model = BookModel(carry)
    changes = []
    mv = memoryview(buf)
    for seq, pos in enumerate(offsets.tolist(), start=1):
        mtype = mv[pos + 2]
        if mtype != 0x52 and mtype not in _BOOK_TYPES:
            continue
        loc = (mv[pos + 3] << 8) | mv[pos + 4]
        if loc not in carry:
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
    symbols, subscribed, carry = _directory_and_carry(good, offsets, slots)

    # a replay starts from an empty pipeline: no subscription or book of an earlier run
    link.power_on()
    start = time.perf_counter()
    cycles = 0
    if end:
        beats = pack_beats(good, frame_ends_on_messages(offsets, end, max_frame))
        link.send("md_in", beats)
        stats = link.run()
        cycles = stats.cycles
    records = link.receive("bbo_out")
    wall = time.perf_counter() - start
    counters = link.counters()

    hw = records[~np.isin(records["locate"], np.fromiter(carry, dtype=np.uint16, count=len(carry)))]
    hw_changes = _records_to_changes(hw, symbols)
    host_changes, model = _host_book(good, offsets, carry)
    merged = sorted(hw_changes + host_changes, key=lambda c: c.seq)
    latency = ((records["egress_cycle"].astype(np.int64) - records["ingress_cycle"])
               % (1 << wire.CYCLE_STAMP_BITS))
    notes = []
    if carry:
        notes.append(f"{len(carry)} symbol(s) booked by the host in software: no free slot or "
                     f"book messages beyond this build's hardware book ({len(host_changes)} rows)")
    if counters.get("MSGS_IN", len(offsets)) != len(offsets):
        notes.append(f"gateware delimited {counters['MSGS_IN']} messages, host sent {len(offsets)}")
    return ReplayResult(
        messages=len(offsets), changes=merged, hardware_records=records,
        host_rows=len(host_changes),
        host_symbols=sorted(model.symbol(k) or str(k) for k in carry if k in model.keys()),
        error=error, counters=counters, cycles=cycles, wall_s=wall,
        latency_cycles=latency, notes=notes)
