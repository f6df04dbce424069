"""The append-only journal file and its fsync policy.

Two levels of "written":

* An :meth:`Journal.append` that returned has handed the whole record to the operating system in
  one ``write``: it survives the death of our process (SIGKILL included).
* A record is *durable* (survives a power loss or kernel crash) once it has been fsynced;
  :attr:`Journal.durable_seq` says how far that is. When that happens is the :class:`FsyncPolicy`.

The ``group`` policy (group commit) keeps fsync off the caller's path: a background thread fsyncs
whatever has been written every ``every_ms`` milliseconds, or as soon as ``every_records``
records are waiting. The caller still writes every record before it returns, so a killed process
loses nothing; a power loss loses at most the records of the last window. An fsync that fails is
not retried (after a failed fsync the kernel may have dropped the dirty pages, so the file's
durable content is unknown): the error is kept, and every later append, sync and close raises
:class:`JournalSyncError`.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from host.journal.framing import frame

__all__ = ["FsyncPolicy", "Journal", "JournalSyncError", "JournalLocked", "JOURNAL_FILE",
           "LOCK_FILE", "lock_session"]

JOURNAL_FILE = "journal.tklj"
LOCK_FILE = "journal.lock"


class JournalLocked(RuntimeError):
    """Another open session holds the journal directory: two writers would interleave their
    records and leave a journal that no recovery can read."""


def lock_session(directory: Path) -> int:
    """Take the session directory's exclusive lock (``flock`` on :data:`LOCK_FILE`).

    Returns the locked file descriptor; closing it releases the lock (a :class:`Journal` given
    it as ``lock`` does so on :meth:`Journal.close`). The lock is per open file, so a second
    session in the same process is refused too.

    Raises
    ------
    JournalLocked
        Another session holds it.
    """
    fd = os.open(Path(directory) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JournalLocked(f"{directory}: the journal is open in another session "
                            f"(it holds {LOCK_FILE}); stop that one first") from None
    return fd


_MODES = ("always", "interval", "group", "never")


class JournalSyncError(OSError):
    """An fsync of the journal failed; records after :attr:`Journal.durable_seq` may not be
    durable, and the journal accepts nothing more."""


@dataclass(frozen=True, kw_only=True)
class FsyncPolicy:
    """When the journal calls fsync.

    Parameters
    ----------
    mode : {"always", "interval", "group", "never"}
        ``always``: after every record (each append is durable when it returns; slowest).
        ``interval`` (the default): after ``every_records`` records or, at the first append or
        :meth:`Journal.maybe_sync` call after ``every_ms`` milliseconds since the last fsync,
        whichever comes first, in the appending thread; also on :meth:`Journal.sync` and close.
        ``group``: a background thread fsyncs every ``every_ms`` milliseconds, and as soon as
        ``every_records`` records wait; appends never wait for the disk. A record is durable at
        most ``every_ms`` plus one fsync's duration after its append; also on
        :meth:`Journal.sync` and close.
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
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
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
    lock : int, optional
        A descriptor from :func:`lock_session`, closed (the lock released) with the journal.

    Attributes
    ----------
    durable_seq : int
        Every record up to this sequence number has been fsynced.
    fsyncs : int
        Fsync calls made (by the caller or the group-commit thread).
    busy_ns : int
        Time the calling thread spent in :meth:`append` and :meth:`sync`, nanoseconds (the
        journal's share of the daemon's path; the group-commit thread's fsyncs are not in it).
    """

    def __init__(self, path: Path, *, next_seq: int, policy: FsyncPolicy | None = None,
                 lock: int = -1):
        self._held = lock  # the session directory's lock (see lock_session), released on close
        self.path = Path(path)
        self.policy = policy if policy is not None else FsyncPolicy()
        self.next_seq = next_seq
        self.durable_seq = next_seq - 1
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._last_sync_ns = time.monotonic_ns()
        self.fsyncs = 0
        self.busy_ns = 0
        self._error: OSError | None = None
        # One lock for the counters shared with the group-commit thread; never held during
        # a write or an fsync.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._thread: threading.Thread | None = None
        if self.policy.mode == "group":
            self._thread = threading.Thread(target=self._group_commit, daemon=True,
                                            name=f"journal-fsync {self.path.name}")
            self._thread.start()

    @property
    def last_seq(self) -> int:
        """Sequence number of the last record appended (0 when none)."""
        return self.next_seq - 1

    def append(self, kind: int, payload: bytes) -> int:
        """Append one record; return its sequence number.

        The record reaches the OS in a single ``write``; fsync follows the policy.

        Raises
        ------
        JournalSyncError
            An earlier fsync failed (group policy): the journal accepts nothing more.
        """
        t = time.perf_counter_ns()
        if self._fd < 0:
            raise ValueError(f"journal {self.path} is closed")
        self._raise_sync_error()
        seq = self.next_seq
        data = frame(kind, seq, bytes(payload))
        written = os.write(self._fd, data)
        while written < len(data):  # regular files write fully; loop for the rare short write
            written += os.write(self._fd, data[written:])
        mode = self.policy.mode
        with self._lock:
            self.next_seq += 1
            if mode == "group" and self._unsynced >= self.policy.every_records:
                self._wake.notify()
        if mode == "always":
            self.sync()
        elif mode == "interval":
            self.maybe_sync()
        self.busy_ns += time.perf_counter_ns() - t
        return seq

    @property
    def _unsynced(self) -> int:
        return self.next_seq - 1 - self.durable_seq

    def maybe_sync(self) -> None:
        """Fsync if the interval policy says it is due (call it from an idle loop too)."""
        if self._unsynced and self.policy.mode == "interval" and (
                self._unsynced >= self.policy.every_records
                or time.monotonic_ns() - self._last_sync_ns >= self.policy.every_ms * 1_000_000):
            self.sync()

    def sync(self) -> None:
        """Make every appended record durable now.

        Raises
        ------
        JournalSyncError
            This fsync, or an earlier one of the group-commit thread, failed.
        """
        t = time.perf_counter_ns()
        self._raise_sync_error()
        if self._fd >= 0:
            self._fsync()
        self._raise_sync_error()
        self.busy_ns += time.perf_counter_ns() - t

    def _fsync(self) -> None:
        """Fsync, then mark every record appended before the call durable."""
        with self._lock:
            seq = self.next_seq - 1
            if seq <= self.durable_seq:
                return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            with self._lock:
                if self._error is None:
                    self._error = exc
            return
        with self._lock:
            self.fsyncs += 1
            self.durable_seq = max(self.durable_seq, seq)
            self._last_sync_ns = time.monotonic_ns()

    def _raise_sync_error(self) -> None:
        if self._error is not None:
            raise JournalSyncError(
                self._error.errno, f"fsync of journal {self.path} failed "
                f"({self._error.strerror or self._error}); records after {self.durable_seq} may "
                f"not be durable and the journal accepts nothing more") from self._error

    def _group_commit(self) -> None:
        interval = self.policy.every_ms / 1000
        while True:
            with self._lock:
                if not self._closing and self._unsynced < self.policy.every_records:
                    self._wake.wait(interval)
                if self._closing or self._error is not None:
                    return
            self._fsync()

    def close(self) -> None:
        """Stop the group-commit thread, sync and close (idempotent).

        Raises
        ------
        JournalSyncError
            A fsync failed; the file is closed all the same.
        """
        if self._fd < 0:
            return
        if self._thread is not None:
            with self._lock:
                self._closing = True
                self._wake.notify()
            self._thread.join()
            self._thread = None
        try:
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1
            if self._held >= 0:
                os.close(self._held)
                self._held = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
