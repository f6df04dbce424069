"""``ticklane replay``: a historical ITCH file through the gateware, BBO changes out.

The file is checked for framing first (:func:`host.feed.framing.scan_historical`). Everything
before the first framing error is replayed and kept; the error is reported with its byte offset.

The gateware books the symbols it holds. The host keeps the full book of every symbol in software
(:class:`sim.model.book.BookModel`) and publishes from it the symbols the gateware does not hold
(no free slot, or no directory message) and, while a gateware record carries the ``refill`` flag
(a best level beyond the levels the gateware holds, or its order table full), the symbol the
gateware cannot publish exactly. The CSV merges both, in message order, and the summary says how
many rows came from each, so the output is never silently wrong.

With ``chunk_frames`` the replay runs step by step, as the daemon does on a live feed: after each
chunk of frames the host brings its software book to the chunk's last message and, for every
symbol whose last record carries ``refill``, sends both sides' best levels on ``refill_in``
(:func:`sim.model.book_hw.refill_batch`), so the gateware is exact again and publishes the symbol
itself. The CSV is the same either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdl import wire
from host.feed.framing import FramingError, scan_historical
from host.feed.itch import decode_message
from host.link.base import Link, LinkError, RunStats
from host.link.beats import frame_ends_on_messages, pack_beats
from sim.model.bbo_csv import csv_text
from sim.model.book import BboChange, BookModel
from sim.model.book import ASK, BID
from sim.model.book_hw import merge_with_host_book, refill_batch

__all__ = ["ReplayResult", "replay", "directory", "DEMO_STREAM", "CLOCK_MHZ", "CLOCK_SOURCE"]

_BOOK_TYPES = frozenset(b"AFECXDU")

#: The built-in data set: a small synthetic ITCH stream (see tools/make_demo_stream.py).
DEMO_STREAM = Path(__file__).resolve().parent / "data" / "demo.itch"

#: The clock latencies are converted to nanoseconds at: the PYNQ-Z2 build's target clock.
#: Not timing-closed (no Vivado here), and the only open timing estimate says the design as it
#: stands will not meet it: see bitstreams/pynq_z2/RESOURCES.md.
CLOCK_MHZ = 100.0
CLOCK_SOURCE = ("PYNQ-Z2 build target, FCLK_CLK0 = 100 MHz; not timing-closed (no Vivado). "
                "nextpnr-ecp5 on a different FPGA family estimates the book stage far below it "
                "(bitstreams/pynq_z2/RESOURCES.md): these ns hold only once its execute stage is "
                "pipelined")

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
    wall_s: float                     # the whole replay: packing, the link's runs, collecting
    run_wall_s: float                 # of which inside the link's runs (the simulation itself)
    latency_cycles: np.ndarray        # egress - ingress of every hardware record
    notes: list[str] = field(default_factory=list)

    def csv(self) -> str:
        return csv_text(self.changes)


def directory(buf: bytes, offsets: np.ndarray, slots: int):
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


def _apply_messages(model: BookModel, buf: bytes, offsets: np.ndarray, first: int,
                    stop: int) -> None:
    """Apply messages ``first`` .. ``stop - 1`` (0-based indices; seq = index + 1)."""
    mv = memoryview(buf)
    for index in range(first, stop):
        pos = int(offsets[index])
        if mv[pos + 2] not in _BOOK_TYPES:
            continue
        n = (mv[pos] << 8) | mv[pos + 1]
        model.apply(decode_message(bytes(mv[pos + 2:pos + 2 + n])), index + 1)


def _run_drained(link: Link) -> RunStats:
    stats = link.run()
    if not stats.drained:
        raise LinkError(f"the gateware stopped taking input: {stats.cycles:,} cycles ran "
                        f"and an input buffer was not drained")
    return stats


def _stepwise(buf: bytes, offsets: np.ndarray, beats: np.ndarray, ends: np.ndarray, link: Link,
              subscribed: dict[int, int],
              chunk_frames: int) -> tuple[np.ndarray, int, float, int]:
    """Send the stream ``chunk_frames`` frames at a time and refill flagged symbols in between.
    Returns the records, the cycles, the seconds spent running the link and the refill batches
    sent."""
    last_beat = np.nonzero(beats["flags"] & wire.MD_BEAT.flag("flags", "last"))[0]
    levels = link.read_reg("BOOK_LEVELS")
    model = BookModel()
    locate_of = {slot: loc for loc, slot in subscribed.items()}
    flagged: dict[int, bool] = {}
    records, cycles, run_wall, sent, done = [], 0, 0.0, 0, 0
    beat0 = 0
    for f in range(chunk_frames - 1, len(ends) + chunk_frames - 1, chunk_frames):
        f = min(f, len(ends) - 1)
        link.send("md_in", beats[beat0:last_beat[f] + 1])
        beat0 = last_beat[f] + 1
        ran = _run_drained(link)
        cycles, run_wall = cycles + ran.cycles, run_wall + ran.wall_s
        got = link.receive("bbo_out")
        records.append(got)
        upto = int(np.searchsorted(offsets, ends[f]))     # messages sent so far = last seq
        _apply_messages(model, buf, offsets, done, upto)
        done = upto
        for r in got:
            flagged[int(r["slot"])] = bool(int(r["flags"]) & _REFILL)
        batches = [refill_batch(model, locate_of[slot], slot=slot, side=side, seq=upto,
                                levels=levels)
                   for slot, on in sorted(flagged.items()) if on and slot in locate_of
                   for side in (BID, ASK)]
        if batches:
            link.send("refill_in", np.concatenate(batches))
            sent += len(batches)
            ran = _run_drained(link)
            cycles, run_wall = cycles + ran.cycles, run_wall + ran.wall_s
            got = link.receive("bbo_out")
            records.append(got)
            for r in got:
                flagged[int(r["slot"])] = bool(int(r["flags"]) & _REFILL)
    empty = wire.BBO_UPDATE.array(0)
    return np.concatenate(records) if records else empty, cycles, run_wall, sent


def replay(buf: bytes, link: Link, *, slots: int, max_frame: int = 8192,
           chunk_frames: int | None = None) -> ReplayResult:
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
    chunk_frames : int, optional
        Run step by step, this many frames at a time, refilling the gateware's book between
        chunks (see the module documentation). Default: the whole stream at once, no refills.
    """
    offsets, error = scan_historical(buf)
    if len(offsets):
        last = int(offsets[-1])
        end = last + 2 + ((buf[last] << 8) | buf[last + 1])
    else:
        end = 0
    good = buf[:end]
    symbols, subscribed = directory(good, offsets, slots)

    # a replay starts from an empty pipeline: no subscription or book of an earlier run
    link.power_on()
    start = time.perf_counter()
    cycles = 0
    run_wall = 0.0
    refills_sent = 0
    if chunk_frames is not None and chunk_frames < 1:
        raise ValueError(f"chunk_frames must be at least 1, not {chunk_frames!r}")
    if end and chunk_frames is not None:
        ends = frame_ends_on_messages(offsets, end, max_frame)
        records, cycles, run_wall, refills_sent = _stepwise(
            good, offsets, pack_beats(good, ends), ends, link, subscribed, chunk_frames)
    else:
        if end:
            link.send("md_in", pack_beats(good, frame_ends_on_messages(offsets, end, max_frame)))
            ran = _run_drained(link)
            cycles, run_wall = ran.cycles, ran.wall_s
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
    if refills_sent:
        notes.append(f"{refills_sent} refill batch(es) sent: {counters.get('BOOK_REFILLS_APPLIED', 0)}"
                     f" applied, {counters.get('BOOK_REFILLS_STALE', 0)} stale, "
                     f"{counters.get('BOOK_REFILLS_REJECTED', 0)} rejected")
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
        run_wall_s=run_wall,
        latency_cycles=latency, notes=notes)
