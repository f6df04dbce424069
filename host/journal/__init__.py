"""The append-only journal, snapshots, and crash recovery of the order manager's state."""

from host.journal.codec import JournalFormatError
from host.journal.framing import JournalCorrupt, RecordKind, TornTail, scan
from host.journal.journal import FsyncPolicy, Journal, JournalLocked
from host.journal.recovery import (RecoveryReport, ReplayDivergence, Session, State, recover,
                                   replay)

__all__ = ["JournalCorrupt", "RecordKind", "TornTail", "scan", "FsyncPolicy", "Journal",
           "JournalLocked", "JournalFormatError",
           "RecoveryReport", "ReplayDivergence", "Session", "State", "recover", "replay"]
