"""Binance spot (and USD-M futures) depth: recorded sessions to LEVEL_UPDATE messages.

Ref: Binance Spot API docs, "WebSocket Streams" - "Diff. Depth Stream" (``<symbol>@depth@100ms``,
fields ``U`` first and ``u`` final update id, ``b``/``a`` levels as [price, quantity] strings,
quantity 0 removes the level) and "How to manage a local order book correctly":

1. buffer the stream's events; get a snapshot from ``/api/v3/depth?symbol=..&limit=1000``;
   if the first buffered event's ``U`` is above the snapshot's ``lastUpdateId + 1``, the
   snapshot is too old: get another;
2. drop buffered events with ``u <= lastUpdateId`` of the snapshot;
3. the first event applied must have ``U <= lastUpdateId + 1 <= u``;
4. after it, an event with ``u`` at or below the book's update id is ignored, and one with ``U``
   above the book's update id + 1 means the book missed an update (a gap): it must be rebuilt
   from a new snapshot. Normally each event's ``U`` is the previous event's ``u + 1``.

Ref: Binance USD-M Futures docs, "How to manage a local order book correctly": there each event
carries ``pu``, which must equal the previous event's ``u``; the first applied event has
``U <= lastUpdateId <= u``.

A book that loses its sync (a gap, a snapshot too old for the events that follow it, or a value
the instrument's grid cannot carry) is cleared in the gateware by an empty snapshot, so that
nothing publishes its last levels as current; it stays empty until a new snapshot syncs it.

``<symbol>@bookTicker`` (fields ``u`` update id, ``b``/``B`` best bid price/qty, ``a``/``A`` best
ask) gives the top of the same book at update id ``u``: the ground truth the converted levels are
checked against.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping
from urllib.parse import parse_qs, urlparse

from host.venues.levels import (Instrument, LevelBatch, LevelError, clear_batch, decimal_grid,
                                diff_updates, snapshot_updates)
from host.venues.recording import Frame, read_frames

__all__ = ["DepthSnapshot", "DepthDiff", "BookTicker", "BinanceDepthSync", "read_session",
           "read_v3_session", "recording_instruments", "instrument_from_exchange_info",
           "level_batches"]

# Diffs kept while a symbol waits for a snapshot; older ones are dropped (counted).
MAX_BUFFERED_DIFFS = 10_000


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """A REST depth snapshot: the book at ``last_update_id`` (levels as venue strings)."""
    symbol: str
    last_update_id: int
    bids: tuple
    asks: tuple
    local_ts_ns: int


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """A diff-depth event covering update ids ``first_update_id .. final_update_id``.
    ``previous_final_update_id`` is the futures stream's ``pu`` (None on spot)."""
    symbol: str
    first_update_id: int
    final_update_id: int
    bids: tuple
    asks: tuple
    local_ts_ns: int
    previous_final_update_id: int | None = None


@dataclass(frozen=True, slots=True)
class BookTicker:
    """A ``bookTicker`` event: best bid and ask (venue strings) at ``update_id``."""
    symbol: str
    update_id: int
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str
    local_ts_ns: int


def _event_of(data: dict, local_ts_ns: int):
    if data.get("e") == "depthUpdate":
        return DepthDiff(data["s"], int(data["U"]), int(data["u"]), tuple(data["b"]),
                         tuple(data["a"]), local_ts_ns,
                         int(data["pu"]) if "pu" in data else None)
    if "u" in data and "b" in data and "B" in data and "a" in data and "A" in data \
            and data.get("e", "bookTicker") == "bookTicker":
        return BookTicker(data["s"], int(data["u"]), data["b"], data["B"], data["a"], data["A"],
                          local_ts_ns)
    return None


def _snapshot_of(url: str, body: str, local_ts_ns: int) -> DepthSnapshot | None:
    parsed = urlparse(url)
    if not parsed.path.endswith("/depth"):
        return None
    symbol = parse_qs(parsed.query).get("symbol", [""])[0]
    data = json.loads(body)
    return DepthSnapshot(symbol, int(data["lastUpdateId"]), tuple(data["bids"]),
                         tuple(data["asks"]), local_ts_ns)


def _ws_event(text: str, local_ts_ns: int):
    msg = json.loads(text)
    data = msg.get("data", msg) if isinstance(msg, dict) else None
    return _event_of(data, local_ts_ns) if isinstance(data, dict) else None


def read_session(ws_path: str | Path, http_path: str | Path | None = None) -> list:
    """The depth snapshots, diffs and book tickers of a recorded session (raw text format), in
    local-time order (file order among equal times).

    Parameters
    ----------
    ws_path : path
        The WebSocket recording (``BINANCE.ws.*``).
    http_path : path, optional
        The REST recording holding the depth snapshots (``BINANCE.http.*``).

    Returns
    -------
    list of DepthSnapshot, DepthDiff and BookTicker
    """
    events = []
    paths = [p for p in (http_path, ws_path) if p is not None]
    for path in paths:
        for frame in read_frames(path):
            events.extend(_frame_events(frame))
    events.sort(key=lambda e: e.local_ts_ns)   # stable: snapshots first among equal times
    return events


def _frame_events(frame: Frame) -> list:
    if frame.direction == "->":
        snap = _snapshot_of(frame.url, frame.text, frame.local_ts_ns)
        return [snap] if snap is not None else []
    if frame.direction == "<-":
        event = _ws_event(frame.text, frame.local_ts_ns)
        return [event] if event is not None else []
    return []


def read_v3_session(path: str | Path) -> tuple[list, dict]:
    """The events of a cryptofeed v3 recording (``*.jsonl.zst``) and its exchangeInfo.

    Returns
    -------
    events : list of DepthSnapshot, DepthDiff and BookTicker
        In local-time order.
    exchange_info : dict
        The recorded ``exchangeInfo`` response ({} if absent).
    """
    import zstandard

    with open(path, "rb") as f:
        text = zstandard.ZstdDecompressor().stream_reader(f).read().decode("utf-8")
    events, info = [], {}
    for line in text.splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        ts_ns = int(round(rec.get("ts", 0) * 1e9)) if isinstance(rec.get("ts"), float) else 0
        if rec.get("t") == "http":
            if urlparse(rec["url"]).path.endswith("/exchangeInfo"):
                info = json.loads(rec["data"])
                continue
            snap = _snapshot_of(rec["url"], rec["data"], ts_ns)
            if snap is not None:
                events.append(snap)
        elif rec.get("t") == "recv":
            event = _ws_event(rec["data"], ts_ns)
            if event is not None:
                events.append(event)
    events.sort(key=lambda e: e.local_ts_ns)
    return events, info


def instrument_from_exchange_info(info: Mapping, symbol: str, slot: int) -> Instrument:
    """The instrument of ``symbol`` from an ``exchangeInfo`` response.

    Ref: Binance API docs, "Filters": ``PRICE_FILTER.tickSize`` and ``LOT_SIZE.stepSize``.
    """
    for entry in info.get("symbols", ()):
        if entry.get("symbol") == symbol:
            filters = {f["filterType"]: f for f in entry.get("filters", ())}
            return Instrument(symbol, slot, filters["PRICE_FILTER"]["tickSize"],
                              filters["LOT_SIZE"]["stepSize"])
    raise KeyError(f"exchangeInfo has no symbol {symbol!r}")


def recording_instruments(events: Iterable, first_slot: int = 0) -> dict[str, Instrument]:
    """Instruments for the symbols of a recording that carries no exchangeInfo.

    The tick and lot of each symbol are the coarsest powers of ten that hold every price and
    size the recording sent for it (:func:`host.venues.levels.decimal_grid`); slots are given in
    order of the symbols' first appearance, from ``first_slot``.
    """
    prices: dict[str, list] = defaultdict(list)
    sizes: dict[str, list] = defaultdict(list)
    for e in events:
        if isinstance(e, (DepthSnapshot, DepthDiff)):
            for level in (*e.bids, *e.asks):
                prices[e.symbol].append(level[0])
                sizes[e.symbol].append(level[1])
        elif isinstance(e, BookTicker):
            prices[e.symbol] += [e.bid_price, e.ask_price]
            sizes[e.symbol] += [e.bid_qty, e.ask_qty]
    return {symbol: Instrument(symbol, first_slot + i, decimal_grid(prices[symbol]),
                               decimal_grid(sizes[symbol]))
            for i, symbol in enumerate(prices)}


class _SymbolState:
    __slots__ = ("book_id", "first", "pending")

    def __init__(self):
        self.book_id: int | None = None   # update id of the local book; None: not synced
        self.first = False                # the next applied diff is the first after a snapshot
        self.pending: deque = deque()


class BinanceDepthSync:
    """The documented snapshot + diff synchronisation, producing level-update batches.

    Parameters
    ----------
    instruments : mapping of str to Instrument
        By Binance symbol (``"NKNUSDT"``). Events of other symbols are ignored and counted.
    futures : bool
        Use the USD-M futures rule (``pu`` continuity) instead of the spot rule.

    Attributes
    ----------
    counters : collections.Counter
        ``applied`` diffs, ``stale`` diffs dropped as older than the book, ``gap`` detections
        (the symbol then waits for a new snapshot), ``snapshot_too_old`` snapshots discarded
        because the buffered diffs start after them, ``refused`` snapshots and diffs holding a
        value the instrument's grid cannot carry (the symbol then waits for a new snapshot),
        ``cleared`` books emptied in the gateware on losing their sync, ``waiting`` diffs dropped
        while unsynced and over the buffer limit, ``unknown_symbol`` events.
    last_refusal : str or None
        The message of the last refused value.
    """

    def __init__(self, instruments: Mapping[str, Instrument], *, futures: bool = False):
        self.instruments = dict(instruments)
        self.futures = futures
        self.counters: Counter = Counter()
        self.last_refusal: str | None = None
        self._state: dict[str, _SymbolState] = defaultdict(_SymbolState)

    def synced(self, symbol: str) -> bool:
        """True when ``symbol``'s book is in sync with the venue."""
        return self._state[symbol].book_id is not None

    def book_update_id(self, symbol: str) -> int | None:
        """Update id of the book the emitted levels describe (None if not synced)."""
        return self._state[symbol].book_id

    def feed(self, event) -> list[LevelBatch]:
        """Process one event of :func:`read_session`; return the level batches it releases
        (none for a book ticker)."""
        if isinstance(event, DepthSnapshot):
            return self.on_snapshot(event)
        if isinstance(event, DepthDiff):
            return self.on_diff(event)
        return []

    def on_snapshot(self, snap: DepthSnapshot) -> list[LevelBatch]:
        """Replace the symbol's book with a REST snapshot, then apply the buffered diffs that
        follow it. A snapshot older than the first buffered diff it would need, or one holding
        a value the grid cannot carry, is discarded: the symbol waits for another."""
        inst = self.instruments.get(snap.symbol)
        if inst is None:
            self.counters["unknown_symbol"] += 1
            return []
        state = self._state[snap.symbol]
        try:
            updates = snapshot_updates(inst, snap.bids, snap.asks, snap.last_update_id)
        except LevelError as err:
            self._refuse(err)
            return self._lose_sync(state, inst, snap.local_ts_ns)
        live = [d for d in state.pending if not self._stale(snap.last_update_id, d, True)]
        if live and not self._continues(snap.last_update_id, live[0], True):
            self.counters["snapshot_too_old"] += 1
            return self._lose_sync(state, inst, snap.local_ts_ns)
        state.book_id = snap.last_update_id
        state.first = True
        out = [LevelBatch(snap.symbol, inst.slot, snap.last_update_id, updates, True,
                          snap.local_ts_ns)]
        pending, state.pending = state.pending, deque()
        for diff in pending:
            out.extend(self.on_diff(diff))
        return out

    def on_diff(self, diff: DepthDiff) -> list[LevelBatch]:
        """Apply one diff if it continues the book; buffer it while unsynced."""
        inst = self.instruments.get(diff.symbol)
        if inst is None:
            self.counters["unknown_symbol"] += 1
            return []
        state = self._state[diff.symbol]
        if state.book_id is None:
            state.pending.append(diff)
            if len(state.pending) > MAX_BUFFERED_DIFFS:
                state.pending.popleft()
                self.counters["waiting"] += 1
            return []
        if self._stale(state.book_id, diff, state.first):
            self.counters["stale"] += 1
            return []
        if not self._continues(state.book_id, diff, state.first):
            self.counters["gap"] += 1
            out = self._lose_sync(state, inst, diff.local_ts_ns)
            state.pending.append(diff)
            return out
        try:
            updates = diff_updates(inst, diff.bids, diff.asks, diff.final_update_id)
        except LevelError as err:
            # The book can no longer be the venue's: it is cleared, and the diffs that follow
            # wait for a new snapshot.
            self._refuse(err)
            return self._lose_sync(state, inst, diff.local_ts_ns)
        state.book_id = diff.final_update_id
        state.first = False
        self.counters["applied"] += 1
        return [LevelBatch(diff.symbol, inst.slot, diff.final_update_id, updates, False,
                           diff.local_ts_ns)]

    def _refuse(self, err: LevelError) -> None:
        self.counters["refused"] += 1
        self.last_refusal = str(err)

    def _lose_sync(self, state: _SymbolState, inst: Instrument,
                   local_ts_ns: int) -> list[LevelBatch]:
        """Mark the symbol unsynced; a book the gateware holds is cleared by an empty
        snapshot (stamped with the last update id it was in sync at)."""
        book_id, state.book_id, state.first = state.book_id, None, False
        if book_id is None:
            return []
        self.counters["cleared"] += 1
        return [clear_batch(inst, book_id, local_ts_ns)]

    def _stale(self, book_id: int, diff: DepthDiff, first: bool) -> bool:
        # Spot drops u <= lastUpdateId; futures' first event may end exactly at lastUpdateId.
        if self.futures and first:
            return diff.final_update_id < book_id
        return diff.final_update_id <= book_id

    def _continues(self, book_id: int, diff: DepthDiff, first: bool) -> bool:
        """Whether a diff that is not stale continues a book at ``book_id``."""
        if self.futures:
            if first:
                return diff.first_update_id <= book_id <= diff.final_update_id
            return diff.previous_final_update_id == book_id
        # Spot: U <= id + 1 (with u > id, as the diff is not stale); the first after a
        # snapshot then has U <= lastUpdateId + 1 <= u.
        return diff.first_update_id <= book_id + 1


def level_batches(events: Iterable, instruments: Mapping[str, Instrument], *,
                  futures: bool = False) -> Iterator[LevelBatch]:
    """Level-update batches of a session's events (see :class:`BinanceDepthSync`)."""
    sync = BinanceDepthSync(instruments, futures=futures)
    for event in events:
        yield from sync.feed(event)
