"""``ticklane decode``: every message of a market-data file, as the pipeline sees it, as JSON.

Without ``--model`` the file runs through the simulated gateware feed stage
(:class:`hdl.feed.bench.FeedBench` in the Verilator batch harness), with every locate's book
events passed on (``FEED_SUB_MODE`` bit 2): book messages are printed from the gateware's decoded
event fields, every other message from the host's decoding of the HOST_MESSAGE record the
gateware forwarded. With ``--model`` the host's reference decoder alone reads the file.

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
           "split_frames"]


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
    """Cut a historical file into frames of whole messages (a bad message ends the walk; the rest
    of the file becomes one last frame)."""
    frames, start, pos, k, n = [], 0, 0, 0, len(stream)
    while pos + 2 <= n:
        pos += 2 + int.from_bytes(stream[pos:pos + 2], "big")
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


def decode_file(data: bytes, *, model: bool = False, mold: bool = False) -> list[dict]:
    """Decode every message of ``data`` (a historical file, or with ``mold`` a concatenation of
    MoldUDP64 packets each preceded by a 2-byte big-endian length) in stream order.

    Returns
    -------
    list of dict
        One dict per message, keyed by field name (see :mod:`host.feed.records`).
    """
    from host.feed.framing import parse_packet
    from host.feed.records import reference_decode, decode_host_message, event_to_message
    from sim.model.feed import FeedConfig
    if mold:
        frames = []
        pos = 0
        while pos + 2 <= len(data):
            n = int.from_bytes(data[pos:pos + 2], "big")
            frames.append(data[pos + 2:pos + 2 + n])
            pos += 2 + n
    else:
        frames = split_frames(data)
    if model:
        out = []
        for f in frames:
            msgs = parse_packet(f).messages if mold else list(_historical_messages(f))
            out.extend(reference_decode(m) for m in msgs)
        return out
    run = run_feed_gateware(frames, FeedConfig(mold=mold, pass_all=True))
    by_seq = {}
    for ev in run.events:
        if ev["msg_type"] != ord("R"):   # R comes whole as a host record
            by_seq[ev["seq"]] = event_to_message(ev)
    for rec in run.host:
        by_seq[rec["seq"]] = decode_host_message(rec)
    return [by_seq[k] for k in sorted(by_seq)]


def _historical_messages(buf: bytes):
    """Messages of a historical-framed buffer, level updates included."""
    from hdl.feed.messages import MESSAGE_LENGTHS
    pos, n = 0, len(buf)
    while pos < n:
        size = int.from_bytes(buf[pos:pos + 2], "big")
        if pos + 2 + size > n or size == 0 or MESSAGE_LENGTHS.get(buf[pos + 2]) != size:
            raise ValueError(f"bad message at byte {pos}: length {size}, "
                             f"type {buf[pos + 2:pos + 3]!r}")
        yield buf[pos + 2:pos + 2 + size]
        pos += 2 + size


def _cmd(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        print(f"ticklane decode: no such file: {path}", file=sys.stderr)
        return 2
    msgs = decode_file(path.read_bytes(), model=args.model, mold=args.mold)
    out = sys.stdout
    for d in msgs:
        out.write(json.dumps(d) + "\n")
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
