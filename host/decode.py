"""``ticklane decode``: every message of a market-data file, as the pipeline sees it, as JSON.

Without ``--model`` the file runs through the simulated gateware feed stage
(:class:`hdl.feed.bench.FeedBench` in the Verilator batch harness), with every locate's book
events passed on (``FEED_SUB_MODE`` bit 2): book messages are printed from the gateware's decoded
event fields, every other message from the host's decoding of the HOST_MESSAGE record the
gateware forwarded. With ``--model`` the reference model of the stage (:mod:`sim.model.feed`)
says which messages are delivered and the host's reference decoder reads their bytes. Both print
the same lines: one JSON object per message, keyed by the ITCH 5.0 specification's field names
in snake_case (:mod:`host.feed.itch`), in stream order.

Problems go to standard error: MoldUDP64 gaps and repeats (normal on a real feed) for
information; malformed framing (each error loses the rest of its frame) with exit status 1.

:func:`run_feed_gateware` is the one place that drives the simulated feed stage; the feed's tests
and ``tools/bench_feed.py`` use it too.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdl import wire

__all__ = ["add_parser", "run_feed_gateware", "FeedRun", "beats_of_frames", "decode_file",
           "decode_stream", "Decoded", "split_frames", "mold_frames", "LOSS_COUNTERS",
           "SEQUENCE_COUNTERS"]


def beats_of_frames(frames) -> np.ndarray:
    """MD_BEAT records for a sequence of frames (each frame's last beat has ``last``)."""
    chunks = []
    last_flag = wire.MD_BEAT.flag("flags", "last")
    for f in frames:
        f = bytes(f)
        nb = max(1, -(-len(f) // 8))
        a = wire.MD_BEAT.array(nb)
        padded = f.ljust(8 * nb, b"\0")
        a["data"] = np.frombuffer(padded, dtype="<u8")
        a["keep"] = 0xFF
        tail = len(f) - 8 * (nb - 1)
        a["keep"][-1] = (1 << tail) - 1
        a["flags"][-1] = last_flag
        chunks.append(a)
    return np.concatenate(chunks) if chunks else wire.MD_BEAT.array(0)


def split_frames(stream: bytes, messages_per_frame: int = 64) -> list[bytes]:
    """Cut a historical file into frames of whole messages (a bad message ends the walk: a
    length that is not its type's, or a message the file cuts short; the rest of the file
    becomes one last frame, where the feed stage counts the error)."""
    from hdl.feed.messages import MESSAGE_LENGTHS
    frames, start, pos, k, n = [], 0, 0, 0, len(stream)
    while pos + 2 < n:
        size = int.from_bytes(stream[pos:pos + 2], "big")
        if MESSAGE_LENGTHS.get(stream[pos + 2]) != size or pos + 2 + size > n:
            break
        pos += 2 + size
        k += 1
        if k == messages_per_frame and pos <= n:
            frames.append(stream[start:pos])
            start, k = pos, 0
    if start < n:
        frames.append(stream[start:])
    return frames


@dataclass
class FeedRun:
    """Outputs of one run of the simulated feed stage: numpy arrays of raw rows turned into
    lists of dicts (``events`` with ``egress``, ``host``, ``gaps``), the counters, and cycles."""

    events: list = field(default_factory=list)
    host: list = field(default_factory=list)
    gaps: list = field(default_factory=list)
    counters: dict = field(default_factory=dict)
    cycles: int = 0


_HARNESS = {}


def feed_harness(slots: int = 256):
    """The (cached) harness of the feed bench; a fresh instance per call."""
    from hdl.feed.bench import FeedBench
    from sim.harness import Harness
    if slots not in _HARNESS:
        bench = FeedBench(slots=slots)
        _HARNESS[slots] = Harness.build(bench, "ticklane_feed_bench", config=bench.config)
        return _HARNESS[slots]
    return _HARNESS[slots].spawn()


def _rows_to_dicts(rows: np.ndarray, layout) -> list:
    from host.feed.records import unpack_layout
    from hdl.feed.bench import stamped_layout
    outer = stamped_layout(layout)
    out = []
    for row in rows:
        v = int.from_bytes(row.tobytes(), "little")
        top = unpack_layout(outer, v)
        rec = unpack_layout(layout, top["record"])
        rec["egress"] = top["egress"]
        out.append(rec)
    return out


def run_feed_gateware(frames, config=None, *, harness=None, idle: float = 0.0,
                      backpressure: float = 0.0, seed: int = 1,
                      max_cycles: int = 200_000_000) -> FeedRun:
    """Run ``frames`` through the simulated feed stage set up as ``config``.

    Parameters
    ----------
    frames : iterable of bytes
    config : sim.model.feed.FeedConfig, optional
    harness : sim.harness.Harness, optional
        A fresh feed-bench harness (default: a new instance of the cached build).
    idle, backpressure : float
        Probability of an idle input cycle / of ready low on every output.
    seed : int
    max_cycles : int

    Returns
    -------
    FeedRun
    """
    from hdl.feed.bench import FEED_BENCH_REGISTERS
    from hdl.feed.events import BookEventLayout
    from sim.model.feed import FeedConfig
    config = config or FeedConfig()
    h = harness or feed_harness(config.slots)
    regs = FEED_BENCH_REGISTERS

    def write(name, value, index=0):
        h.write_reg(regs.address(name, index) // 4, value)

    h.reset()
    write("FEED_FRAMING", int(config.mold))
    write("FEED_MOLD_CONFIG", int(config.mold_join))
    write("FEED_SUB_MODE", config.mode_register())
    for i, word in enumerate(config.ticker_words()):
        write("FEED_SUB_TICKER_LO", word & 0xFFFF_FFFF, i)
        write("FEED_SUB_TICKER_HI", word >> 32, i)
    for locate, slot in config.entries:
        write("FEED_SUB_LOCATE", locate)
        write("FEED_SUB_SLOT", slot)
        h.run(4, stop_when_drained=False)
    beats = beats_of_frames(frames)
    h.push("md_in", beats.view(np.uint8).reshape(-1, wire.MD_BEAT.size))
    outs = ("events_out", "host_out", "gaps_out")
    cycles = h.run(max_cycles, idle={"md_in": idle},
                   backpressure={o: backpressure for o in outs}, seed=seed)
    if h.pending("md_in"):
        raise RuntimeError(f"the feed stage did not take all beats in {max_cycles} cycles")
    run = FeedRun(cycles=cycles)
    run.events = _rows_to_dicts(h.pop("events_out", dtype=np.uint8), BookEventLayout)
    run.host = _rows_to_dicts(h.pop("host_out", dtype=np.uint8), wire.HOST_MESSAGE.layout)
    run.gaps = _rows_to_dicts(h.pop("gaps_out", dtype=np.uint8), wire.FEED_GAP.layout)
    for reg in wire.FEED_REGISTERS:
        if reg.access == "r":
            run.counters[reg.name] = h.read_reg(regs.address(reg.name) // 4)
    return run


def mold_frames(data: bytes) -> list[bytes]:
    """The MoldUDP64 packets of a capture file: each packet preceded by its 2-byte big-endian
    length. A last packet the file cuts short is passed on as it is (the feed stage counts it
    as truncated)."""
    frames, pos, n = [], 0, len(data)
    while pos < n:
        size = int.from_bytes(data[pos:pos + 2], "big")
        frames.append(data[pos + 2:pos + 2 + size])
        pos += 2 + size
    return frames


#: Counters that say the input was not decoded whole (malformed framing, or a MoldUDP64 session
#: the stage had no room for): their messages are missing from the output.
LOSS_COUNTERS = ("DROP_BAD_LENGTH", "DROP_UNKNOWN_TYPE", "DROP_TRUNCATED", "DROP_ZERO_LENGTH",
                 "MOLD_BAD_COUNT", "MOLD_SESSION_OVERFLOW")
#: MoldUDP64 sequencing counters: normal on a real feed, reported for information.
SEQUENCE_COUNTERS = ("MOLD_GAPS", "MOLD_MISSING_MESSAGES", "MOLD_DUPLICATE_PACKETS",
                     "MOLD_DUPLICATE_MESSAGES", "MOLD_OVERLAP_PACKETS", "MOLD_HEARTBEATS",
                     "MOLD_END_OF_SESSION", "MOLD_AFTER_END")


@dataclass
class Decoded:
    """What ``ticklane decode`` found in a file.

    Attributes
    ----------
    messages : list of dict
        One dict per message the pipeline decodes, in stream order (see
        :mod:`host.feed.records`).
    counters : dict
        The feed stage's counters (:data:`hdl.wire.FEED_REGISTERS`) after the file.
    gaps : list of dict
        MoldUDP64 gaps as :func:`host.feed.records.decode_gap` gives them.
    """

    messages: list
    counters: dict
    gaps: list


def _unwrap(stamps: list[int]) -> list[int]:
    """32-bit cycle stamps of one in-order record stream, made monotonic across wraps."""
    out, base, prev = [], 0, None
    for s in stamps:
        if prev is not None and s < prev:
            base += 1 << wire.CYCLE_STAMP_BITS
        out.append(base + s)
        prev = s
    return out


def _decode_one(decode, item, seq: int) -> dict:
    from host.feed.itch import ItchError
    try:
        return decode(item)
    except ItchError as e:
        raise ItchError(f"message with sequence number {seq}: {e}") from None


def decode_stream(data: bytes, *, model: bool = False, mold: bool = False) -> Decoded:
    """Decode every message of ``data`` as the pipeline sees it.

    Parameters
    ----------
    data : bytes
        A historical ITCH file, or with ``mold`` MoldUDP64 packets each preceded by a 2-byte
        big-endian length.
    model : bool
        Use the reference model of the feed stage (:mod:`sim.model.feed`) and the host's
        reference decoder (:func:`host.feed.records.reference_decode`) on the bytes of every
        message it delivers, instead of the simulated gateware.
    mold : bool

    Returns
    -------
    Decoded
        Both paths deliver the same messages: every message of a historical file; with
        ``mold``, every message of every packet once (MoldUDP64 repeats are dropped by
        sequence number, per session, as the stage does). Locates with no 'R' message before
        them, and unsubscribed ones, are decoded like any other.

    Raises
    ------
    host.feed.itch.ItchError
        If a delivered message holds a byte that is not ASCII in an alpha field.
    """
    from host.feed.records import (reference_decode, decode_gap, decode_host_message,
                                   event_to_message)
    from sim.model.feed import FeedConfig, run_feed_model
    frames = mold_frames(data) if mold else split_frames(data)
    config = FeedConfig(mold=mold, pass_all=True)
    if model:
        r = run_feed_model(frames, config)
        msgs = [_decode_one(reference_decode, m, seq) for seq, m in r.delivered]
        return Decoded(msgs, dict(r.counters), [decode_gap(g) for g in r.gaps])
    run = run_feed_gateware(frames, config)
    # A subscribed R gives both a DIRECTORY event and the whole message as a host record: the
    # record is the one printed. Every other delivered message gives exactly one of the two.
    events = [e for e in run.events if e["msg_type"] != ord("R")]
    tagged = ([(t, 0, k, e) for k, (t, e) in
               enumerate(zip(_unwrap([e["ingress"] for e in events]), events))]
              + [(t, 1, k, h) for k, (t, h) in
                 enumerate(zip(_unwrap([h["ingress_cycle"] for h in run.host]), run.host))])
    # Both streams are in stream order, and no two messages end in the same beat, so the cycle
    # a message's last byte entered orders them (sequence numbers would not: MoldUDP64
    # sessions each count from 1).
    tagged.sort(key=lambda x: x[:3])
    msgs = [_decode_one(event_to_message, rec, rec["seq"]) if src == 0
            else _decode_one(decode_host_message, rec, rec["seq"])
            for _, src, _, rec in tagged]
    return Decoded(msgs, dict(run.counters), [decode_gap(g) for g in run.gaps])


def decode_file(data: bytes, *, model: bool = False, mold: bool = False) -> list[dict]:
    """The messages of :func:`decode_stream`: one dict per message, in stream order."""
    return decode_stream(data, model=model, mold=mold).messages


def _cmd(args: argparse.Namespace) -> int:
    from host.feed.itch import ItchError
    path = Path(args.file)
    if not path.is_file():
        print(f"ticklane decode: no such file: {path}", file=sys.stderr)
        return 2
    try:
        result = decode_stream(path.read_bytes(), model=args.model, mold=args.mold)
    except ItchError as e:
        print(f"ticklane decode: {path}: {e}", file=sys.stderr)
        return 1
    out = sys.stdout
    for d in result.messages:
        out.write(json.dumps(d) + "\n")
    c = result.counters
    seq = [f"{k}={c[k]}" for k in SEQUENCE_COUNTERS if c.get(k)]
    if seq:
        print(f"ticklane decode: MoldUDP64: {', '.join(seq)}", file=sys.stderr)
    lost = [f"{k}={c[k]}" for k in LOSS_COUNTERS if c.get(k)]
    if lost:
        # Each framing error loses the rest of its frame, so the output is not the whole file.
        print(f"ticklane decode: {path}: not decoded whole: {', '.join(lost)}", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``decode`` subcommand to the ticklane CLI."""
    p = subparsers.add_parser("decode", help="print every message of a market-data file as JSON")
    p.add_argument("file", help="historical ITCH 5.0 file (2-byte length before each message)")
    p.add_argument("--jsonl", action="store_true", default=True,
                   help="one JSON object per line (the only output format)")
    p.add_argument("--model", action="store_true",
                   help="decode with the host's reference decoder alone, not the gateware")
    p.add_argument("--mold", action="store_true",
                   help="the file holds MoldUDP64 packets, each preceded by a 2-byte length")
    p.set_defaults(func=_cmd)
    return p
