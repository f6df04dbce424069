"""OKX order books (``books`` channel): recorded sessions to LEVEL_UPDATE messages.

Ref: OKX API v5 docs, "Order Book Channel" (``books``: a ``snapshot`` of 400 levels, then
``update`` messages; each level is [price, size, deprecated, number of orders] as strings; size
"0" removes the level) and "Checksum": build a string from the top 25 levels by interleaving bid
and ask, ``bid_price:bid_size:ask_price:ask_size:...``, using the original strings; when one side
has fewer than 25 levels, the other side's remaining levels follow alone; the checksum is the
CRC32 of that string as a signed 32-bit integer.

Each message also carries ``seqId`` and ``prevSeqId`` (-1 on a snapshot) when the venue sends
them: an update continues the book only if its ``prevSeqId`` is the ``seqId`` of the message
before it (the ids are not consecutive, and equal on a message that changes nothing); otherwise
updates were lost.

The book here keeps the venue's original strings, so that the checksum is verified after every
message exactly as OKX computes it. A checksum mismatch, a break in the ``seqId`` chain or a value
the instrument's grid cannot carry means the local book is no longer the venue's: the event is
counted, the failing message's levels are not sent, the gateware's copy of the book is cleared by
an empty snapshot (so that nothing publishes its last levels as current), and the instrument
waits for the next snapshot (a new subscription on a live session).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from host.venues.levels import (Instrument, LevelBatch, LevelError, clear_batch, diff_updates,
                                snapshot_updates)
from host.venues.recording import read_frames

__all__ = ["OkxBookMessage", "OkxBookSync", "okx_checksum", "read_books",
           "read_v3_books", "recording_instruments", "level_batches", "CHECKSUM_DEPTH"]

CHECKSUM_DEPTH = 25


@dataclass(frozen=True, slots=True)
class OkxBookMessage:
    """One ``books`` channel message.

    Attributes
    ----------
    inst_id : str
    action : str
        ``"snapshot"`` or ``"update"``.
    bids, asks : tuple
        Levels as sent: [price, size, ...] strings.
    checksum : int or None
        OKX's signed CRC32 of the top 25 levels after this message.
    update_id : int
        ``seqId`` when the venue sends it, else the message's ``ts`` (ms).
    local_ts_ns : int
    seq_id, prev_seq_id : int or None
        ``seqId`` and ``prevSeqId`` as sent (None when absent).
    """

    inst_id: str
    action: str
    bids: tuple
    asks: tuple
    checksum: int | None
    update_id: int
    local_ts_ns: int
    seq_id: int | None = None
    prev_seq_id: int | None = None


def okx_checksum(bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> int:
    """OKX's order-book checksum of the best levels, best first on each side.

    Parameters
    ----------
    bids, asks : sequence of (price, size) strings
        At least the top 25 of each side (more are ignored), best first.

    Returns
    -------
    int
        CRC32 as a signed 32-bit integer.
    """
    parts = []
    for i in range(CHECKSUM_DEPTH):
        if i < len(bids):
            parts += (bids[i][0], bids[i][1])
        if i < len(asks):
            parts += (asks[i][0], asks[i][1])
    crc = zlib.crc32(":".join(parts).encode("ascii"))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _message_of(msg: dict, local_ts_ns: int) -> list[OkxBookMessage]:
    arg = msg.get("arg") or {}
    action = msg.get("action")
    if not str(arg.get("channel", "")).startswith("books") or action not in ("snapshot", "update"):
        return []
    out = []
    for data in msg.get("data", ()):
        checksum = data.get("checksum")
        update_id = data.get("seqId", data.get("ts", 0))
        seq, prev = data.get("seqId"), data.get("prevSeqId")
        out.append(OkxBookMessage(arg["instId"], action, tuple(data.get("bids", ())),
                                  tuple(data.get("asks", ())),
                                  None if checksum is None else int(checksum), int(update_id),
                                  local_ts_ns, None if seq is None else int(seq),
                                  None if prev is None else int(prev)))
    return out


def read_books(path: str | Path) -> list[OkxBookMessage]:
    """The ``books`` messages of a recorded session (raw text format), in file order."""
    out = []
    for frame in read_frames(path):
        if frame.direction == "<-" and frame.text.startswith("{"):
            out += _message_of(json.loads(frame.text), frame.local_ts_ns)
    return out


def read_v3_books(path: str | Path) -> list[OkxBookMessage]:
    """The ``books`` messages of a cryptofeed v3 recording (``*.jsonl.zst``), in file order."""
    import zstandard

    with open(path, "rb") as f:
        text = zstandard.ZstdDecompressor().stream_reader(f).read().decode("utf-8")
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if rec.get("t") == "recv" and rec.get("data", "").startswith("{"):
            ts = rec.get("ts")
            ts_ns = int(round(ts * 1e9)) if isinstance(ts, (int, float)) else 0
            out += _message_of(json.loads(rec["data"]), ts_ns)
    return out


def recording_instruments(messages: Iterable[OkxBookMessage],
                          first_slot: int = 0) -> dict[str, Instrument]:
    """Instruments for a recording without instrument definitions: tick and lot are the finest
    powers of ten the recording used for each instrument (see
    :func:`host.venues.levels.decimal_grid`); slots in order of first appearance."""
    from host.venues.levels import decimal_grid

    prices: dict[str, list] = {}
    sizes: dict[str, list] = {}
    for m in messages:
        for level in (*m.bids, *m.asks):
            prices.setdefault(m.inst_id, []).append(level[0])
            sizes.setdefault(m.inst_id, []).append(level[1])
    return {inst: Instrument(inst, first_slot + i, decimal_grid(prices[inst]),
                             decimal_grid(sizes[inst]))
            for i, inst in enumerate(prices)}


class _Side:
    """Levels of one side keyed by exact Decimal price, holding the original strings."""
    __slots__ = ("levels", "descending")

    def __init__(self, descending: bool):
        self.levels: dict[Decimal, tuple[str, str]] = {}
        self.descending = descending

    def apply(self, price: str, size: str) -> None:
        key = Decimal(price)
        if Decimal(size) == 0:
            self.levels.pop(key, None)
        else:
            self.levels[key] = (price, size)

    def top(self, n: int) -> list[tuple[str, str]]:
        keys = sorted(self.levels, reverse=self.descending)[:n]
        return [self.levels[k] for k in keys]


class OkxBookSync:
    """Rebuild OKX books, verify the checksum and the ``seqId`` chain after every message, and
    produce level batches.

    Parameters
    ----------
    instruments : mapping of str to Instrument
        By ``instId``. Messages of other instruments are ignored and counted.

    Attributes
    ----------
    counters : collections.Counter
        ``snapshot`` and ``update`` messages applied, ``checksum_ok``, ``checksum_mismatch``,
        ``gap`` (an update whose ``prevSeqId`` is not the last ``seqId``), ``refused`` messages
        holding a value the instrument's grid cannot carry (after each of these three the
        instrument waits for a new snapshot), ``cleared`` books emptied in the gateware on
        losing their sync, ``no_checksum``, ``waiting`` updates dropped while unsynced,
        ``unknown_instrument``.
    last_refusal : str or None
        The message of the last refused value.
    """

    def __init__(self, instruments: Mapping[str, Instrument]):
        self.instruments = dict(instruments)
        self.counters: Counter = Counter()
        self.last_refusal: str | None = None
        self._books: dict[str, tuple[_Side, _Side]] = {}
        self._seq: dict[str, int | None] = {}
        self._sent: dict[str, int] = {}    # instruments the gateware holds a book of: last id

    def top(self, inst_id: str, n: int = CHECKSUM_DEPTH) -> tuple[list, list]:
        """The best ``n`` (price, size) strings of each side (bids, asks)."""
        book = self._books.get(inst_id)
        if book is None:
            return [], []
        return book[0].top(n), book[1].top(n)

    def feed(self, msg: OkxBookMessage) -> LevelBatch | None:
        """Apply one message; return its level batch, the empty snapshot that clears the
        instrument's book on losing the sync, or None if it was dropped."""
        inst = self.instruments.get(msg.inst_id)
        if inst is None:
            self.counters["unknown_instrument"] += 1
            return None
        try:
            if msg.action == "snapshot":
                updates = snapshot_updates(inst, msg.bids, msg.asks, msg.update_id)
                book = (_Side(True), _Side(False))
            else:
                book = self._books.get(msg.inst_id)
                if book is None:
                    self.counters["waiting"] += 1
                    return None
                last = self._seq.get(msg.inst_id)
                if msg.prev_seq_id is not None and last is not None and msg.prev_seq_id != last:
                    self.counters["gap"] += 1
                    return self._lose_sync(msg, inst)
                updates = diff_updates(inst, msg.bids, msg.asks, msg.update_id)
        except LevelError as err:
            self.counters["refused"] += 1
            self.last_refusal = str(err)
            return self._lose_sync(msg, inst)
        self._books[msg.inst_id] = book
        self._seq[msg.inst_id] = msg.seq_id
        for side, levels in ((book[0], msg.bids), (book[1], msg.asks)):
            for level in levels:
                side.apply(level[0], level[1])
        self.counters[msg.action] += 1
        if msg.checksum is None:
            self.counters["no_checksum"] += 1
        elif okx_checksum(book[0].top(CHECKSUM_DEPTH), book[1].top(CHECKSUM_DEPTH)) \
                == msg.checksum:
            self.counters["checksum_ok"] += 1
        else:
            self.counters["checksum_mismatch"] += 1
            return self._lose_sync(msg, inst)
        self._sent[msg.inst_id] = msg.update_id
        return LevelBatch(msg.inst_id, inst.slot, msg.update_id, updates,
                          msg.action == "snapshot", msg.local_ts_ns)

    def _lose_sync(self, msg: OkxBookMessage, inst: Instrument) -> LevelBatch | None:
        """Drop the instrument's book; clear the gateware's copy, stamped with the last update
        id it was right at, if one was sent."""
        self._books.pop(msg.inst_id, None)
        self._seq.pop(msg.inst_id, None)
        last = self._sent.pop(msg.inst_id, None)
        if last is None:
            return None
        self.counters["cleared"] += 1
        return clear_batch(inst, last, msg.local_ts_ns)


def level_batches(messages: Iterable[OkxBookMessage],
                  instruments: Mapping[str, Instrument]) -> Iterator[LevelBatch]:
    """Level-update batches of a session's ``books`` messages (see :class:`OkxBookSync`)."""
    sync = OkxBookSync(instruments)
    for msg in messages:
        batch = sync.feed(msg)
        if batch is not None:
            yield batch
