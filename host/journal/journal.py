"""The append-only journal file and its fsync policy.

Two levels of "written":

* An :meth:`Journal.append` that returned has handed the whole record to the operating system in
  one ``write``: it survives the death of our process (SIGKILL included).
* A record is *durable* (survives a power loss or kernel crash) once it has been fsynced;
  :attr:`Journal.durable_seq` says how far that is. When that happens is the :class:`FsyncPolicy`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from host.journal.framing import frame

__all__ = ["FsyncPolicy", "Journal", "JOURNAL_FILE"]

JOURNAL_FILE = "journal.tklj"
_MODES = ("always", "interval", "never")


@dataclass(frozen=True, kw_only=True)
class FsyncPolicy:
    """When the journal calls fsync.

    Parameters
    ----------
    mode : {"always", "interval", "never"}
        ``always``: after every record (each append is durable when it returns; slowest).
        ``interval`` (the default): after ``every_records`` records or, at the first append or
        :meth:`Journal.maybe_sync` call after ``every_ms`` milliseconds since the last fsync,
        whichever comes first; also on :meth:`Journal.sync` and close.
        ``never``: only on :meth:`Journal.sync` and close (the OS writes back on its own).
    every_records : int
        Default 64.
    every_ms : int
        Default 10.
    """

    mode: str = "interval"
    every_records: int = 64
    every_ms: int = 10

    def __post_init__(self):
        if self.mode not in _MODES:
            raise ValueError(f"FsyncPolicy.mode must be one of {_MODES!r}, got {self.mode!r}")
        for name in ("every_records", "every_ms"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"FsyncPolicy.{name} must be a positive integer, got {v!r}")


class Journal:
    """An open journal file, positioned for appending.

    Use :func:`host.journal.recover` to open one: it checks the existing records, drops a torn
    tail and tells the journal where the sequence numbers continue.

    Parameters
    ----------
    path : Path
        The journal file.
    next_seq : int
        Sequence number of the next record.
    policy : FsyncPolicy
    """

    def __init__(self, path: Path, *, next_seq: int, policy: FsyncPolicy | None = None):
        self.path = Path(path)
        self.policy = policy if policy is not None else FsyncPolicy()
        self.next_seq = next_seq
        self.durable_seq = next_seq - 1
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._unsynced = 0
        self._last_sync_ns = time.monotonic_ns()
        self.fsyncs = 0

    @property
    def last_seq(self) -> int:
        """Sequence number of the last record appended (0 when none)."""
        return self.next_seq - 1

    def append(self, kind: int, payload: bytes) -> int:
        """Append one record; return its sequence number.

        The record reaches the OS in a single ``write``; fsync follows the policy.
        """
        if self._fd < 0:
            raise ValueError(f"journal {self.path} is closed")
        seq = self.next_seq
        data = frame(kind, seq, bytes(payload))
        written = os.write(self._fd, data)
        while written < len(data):  # regular files write fully; loop for the rare short write
            written += os.write(self._fd, data[written:])
        self.next_seq += 1
        self._unsynced += 1
        if self.policy.mode == "always":
            self.sync()
        elif self.policy.mode == "interval":
            self.maybe_sync()
        return seq

    def maybe_sync(self) -> None:
        """Fsync if the interval policy says it is due (call it from an idle loop too)."""
        if self._unsynced and self.policy.mode == "interval" and (
                self._unsynced >= self.policy.every_records
                or time.monotonic_ns() - self._last_sync_ns >= self.policy.every_ms * 1_000_000):
            self.sync()

    def sync(self) -> None:
        """Make every appended record durable now."""
        if self._fd >= 0 and self._unsynced:
            os.fsync(self._fd)
            self.fsyncs += 1
        self._unsynced = 0
        self._last_sync_ns = time.monotonic_ns()
        self.durable_seq = self.last_seq

    def close(self) -> None:
        """Sync and close (idempotent)."""
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
