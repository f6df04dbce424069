"""Crash-only start: :func:`recover` is how a session always begins.

``recover(dir)`` checks the journal in ``dir``, drops a torn or corrupt last record (truncating
the file there and reporting it), loads the newest intact snapshot, replays the journal records
after it through a fresh :class:`~host.oms.OrderManager` and opens the journal for appending. An
empty or missing directory is simply a new session.

The journal records the inputs of the order manager (intents, verdicts, venue events, BBO
batches, configuration) after they were applied, and before their outputs are handed on; the
manager is deterministic, so replaying the inputs rebuilds the same state and the same client
order ids. The ORDERS records (what ``submit`` produced) are compared during replay: a difference
raises :class:`ReplayDivergence`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdl import wire
from host.journal import codec
from host.journal.framing import JournalRecord, RecordKind, TornTail, scan
from host.journal.journal import JOURNAL_FILE, FsyncPolicy, Journal, lock_session
from host.journal.snapshot import load_latest_snapshot, write_snapshot
from host.oms.engine import OrderManager
from host.oms.risk import PreTradeConfig
from host.types import OrderIntent
from host.venue.events import VenueEvent

__all__ = ["recover", "State", "RecoveryReport", "Session", "ReplayDivergence", "replay"]


class ReplayDivergence(RuntimeError):
    """Replaying the journal produced different orders than the journal recorded."""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What recovery found.

    Attributes
    ----------
    snapshot_seq : int
        Record the snapshot covered (0: no snapshot, replay from the start).
    replayed : int
        Records replayed after the snapshot.
    last_seq : int
        Last good record of the journal.
    torn_tail : TornTail or None
        The dropped last record, if any (its bytes were truncated from the file).
    notes : list of str
        Snapshots passed over, and why.
    """

    snapshot_seq: int
    replayed: int
    last_seq: int
    torn_tail: TornTail | None
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class State:
    """The recovered session: the order manager and the journal open for appending."""
    oms: OrderManager
    journal: Journal
    report: RecoveryReport
    directory: Path


def replay(oms: OrderManager, records: Sequence[JournalRecord]) -> None:
    """Apply journal records to ``oms`` in order (FILE_HEADER records are checked and skipped)."""
    expected_orders: np.ndarray | None = None
    for rec in records:
        k = rec.kind
        if k == RecordKind.FILE_HEADER:
            codec.check_file_header(rec.payload)
        elif k == RecordKind.CONFIG:
            oms.reconfigure(codec.decode_config(rec.payload))
        elif k == RecordKind.BBO:
            oms.on_bbo(codec.decode_records(rec.payload, wire.BBO_UPDATE))
        elif k == RecordKind.INTENTS:
            expected_orders = oms.submit(codec.decode_intents(rec.payload))
            continue
        elif k == RecordKind.ORDERS:
            got = codec.decode_records(rec.payload, wire.ORDER_REQUEST)
            if expected_orders is not None and expected_orders.tobytes() != got.tobytes():
                raise ReplayDivergence(f"record {rec.seq} at offset {rec.offset}: replayed "
                                       f"intents gave {len(expected_orders)} order requests "
                                       f"that differ from the {len(got)} journaled")
        elif k == RecordKind.VERDICTS:
            oms.on_verdicts(codec.decode_records(rec.payload, wire.VERDICT))
        elif k == RecordKind.VENUE_EVENTS:
            oms.on_venue_events(codec.decode_events(rec.payload))
        expected_orders = None


def recover(path: str | os.PathLike, *, policy: FsyncPolicy | None = None,
            config: PreTradeConfig | None = None) -> State:
    """Rebuild the session state from ``path`` (created if missing) and open it for appending.

    Parameters
    ----------
    path : path-like
        The session directory: journal file and snapshots.
    policy : FsyncPolicy, optional
        Fsync policy of the reopened journal (default ``FsyncPolicy()``).
    config : PreTradeConfig, optional
        Limits for a new session. On a recovered session the journaled limits are restored
        first; a different ``config`` is then applied and journaled.

    Returns
    -------
    State

    Raises
    ------
    host.journal.JournalCorrupt
        Damage before the last record (names the offset).
    ReplayDivergence
        Replay did not reproduce the journaled orders.
    host.journal.journal.JournalLocked
        Another session has the directory open.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    lock = lock_session(directory)
    try:
        jpath = directory / JOURNAL_FILE
        result = scan(jpath)
        if result.torn is not None:
            # Crash-only: the torn bytes were never acknowledged; cut them so appends continue
            # from a clean record boundary.
            os.truncate(jpath, result.end)
        records = result.records
        if records and records[0].kind != RecordKind.FILE_HEADER:
            raise codec.JournalFormatError(f"{jpath}: first record is "
                                           f"{records[0].kind.name}, not FILE_HEADER")
        snap, notes = load_latest_snapshot(directory, result.last_seq)
        if snap is not None:
            oms = OrderManager.from_state(snap.state)
            tail = [r for r in records if r.seq > snap.seq]
            if records:
                codec.check_file_header(records[0].payload)
        else:
            oms = OrderManager(config)
            tail = records
        replay(oms, tail)
        journal = Journal(jpath, next_seq=result.last_seq + 1, policy=policy, lock=lock)
    except BaseException:
        os.close(lock)
        raise
    try:   # from here the journal holds the lock and releases it when closed
        if not records:
            journal.append(RecordKind.FILE_HEADER, codec.encode_file_header())
            journal.append(RecordKind.CONFIG, codec.encode_config(oms.config))
            journal.sync()
        elif config is not None and config != oms.config:
            oms.reconfigure(config)
            journal.append(RecordKind.CONFIG, codec.encode_config(config))
    except BaseException:
        journal.close()
        raise
    report = RecoveryReport(snapshot_seq=snap.seq if snap else 0, replayed=len(tail),
                            last_seq=result.last_seq, torn_tail=result.torn, notes=notes)
    return State(oms=oms, journal=journal, report=report, directory=directory)


class Session:
    """The order manager with every input journaled: the facade the daemon drives.

    Each call applies its input to the order manager (atomically: a bad batch raises and changes
    nothing, and is not journaled), appends the input to the journal, and only then returns the
    outputs, so nothing leaves the host that the journal has not seen.

    Parameters
    ----------
    state : State
        From :func:`recover`.
    snapshot_every : int
        Take a snapshot after this many records since the last one (0: only on request).
        Default 10_000.
    """

    def __init__(self, state: State, *, snapshot_every: int = 10_000):
        self.state = state
        self.oms = state.oms
        self.journal = state.journal
        self.snapshot_every = snapshot_every
        self._since_snapshot = state.report.replayed

    @classmethod
    def open(cls, path: str | os.PathLike, *, policy: FsyncPolicy | None = None,
             config: PreTradeConfig | None = None, snapshot_every: int = 10_000) -> "Session":
        """``Session(recover(path, ...))``."""
        return cls(recover(path, policy=policy, config=config), snapshot_every=snapshot_every)

    def _append(self, kind: RecordKind, payload: bytes) -> None:
        self.journal.append(kind, payload)
        self._since_snapshot += 1

    def _after(self) -> None:
        if self.snapshot_every and self._since_snapshot >= self.snapshot_every:
            self.snapshot()

    def submit(self, intents: Sequence[OrderIntent]) -> np.ndarray:
        """:meth:`OrderManager.submit`, journaled (INTENTS, then ORDERS)."""
        intents = list(intents)
        out = self.oms.submit(intents)
        self._append(RecordKind.INTENTS, codec.encode_intents(intents))
        self._append(RecordKind.ORDERS, codec.encode_records(out, wire.ORDER_REQUEST))
        self._after()
        return out

    def on_verdicts(self, verdicts: np.ndarray) -> np.ndarray:
        """:meth:`OrderManager.on_verdicts`, journaled."""
        out = self.oms.on_verdicts(verdicts)
        self._append(RecordKind.VERDICTS, codec.encode_records(verdicts, wire.VERDICT))
        self._after()
        return out

    def on_venue_events(self, events: Sequence[VenueEvent]) -> np.ndarray:
        """:meth:`OrderManager.on_venue_events`, journaled."""
        events = list(events)
        out = self.oms.on_venue_events(events)
        if events:
            self._append(RecordKind.VENUE_EVENTS, codec.encode_events(events))
            self._after()
        return out

    def on_bbo(self, records: np.ndarray) -> None:
        """:meth:`OrderManager.on_bbo`, journaled (the raw input batch)."""
        self.oms.on_bbo(records)
        self._append(RecordKind.BBO, codec.encode_records(records, wire.BBO_UPDATE))
        self._after()

    def reconfigure(self, config: PreTradeConfig) -> None:
        """Change the pre-trade limits, journaled."""
        self.oms.reconfigure(config)
        self._append(RecordKind.CONFIG, codec.encode_config(config))

    def snapshot(self) -> Path:
        """Fsync the journal and write a snapshot of the state after its last record."""
        self.journal.sync()
        path = write_snapshot(self.state.directory, self.journal.last_seq, self.oms.to_state())
        self._since_snapshot = 0
        return path

    def close(self) -> None:
        self.journal.close()
