"""The journal's record framing, and the scanner that finds torn and corrupt records.

Frame, little-endian, no padding::

    offset  size  field
    0       4     length   u32  payload length in bytes (not counting header or crc)
    4       1     kind     u8   a :class:`RecordKind`
    5       8     seq      u64  sequence number: 1 for the first record, +1 for each next one
    13      len   payload
    13+len  4     crc32    u32  zlib CRC-32 of bytes 0 .. 13+len (header and payload)

A record is *torn* when the file ends inside it (the process or machine died while writing it);
it is *corrupt* when it is complete but its CRC does not match. A torn or corrupt last record is
dropped and reported. A corrupt record followed by more bytes, a header naming an unknown kind or
an out-of-order sequence number, or a length above :data:`MAX_PAYLOAD`, is an error that names
its byte offset: the journal was damaged after it was written, and we do not guess past that.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RecordKind", "HEADER", "TRAILER", "MAX_PAYLOAD", "frame", "JournalRecord",
           "TornTail", "JournalScan", "JournalCorrupt", "scan"]

HEADER = struct.Struct("<IBQ")
TRAILER = struct.Struct("<I")
#: Largest payload we ever write (a batch of 64 Ki BBO records is 3 MiB).
MAX_PAYLOAD = 64 << 20


class RecordKind(enum.IntEnum):
    """What a journal record holds (the payload encodings are in :mod:`host.journal.codec`)."""
    FILE_HEADER = 0    #: first record: magic, journal format version, wire format hash
    CONFIG = 1         #: pre-trade limits in force from here on (JSON)
    BBO = 2            #: raw bytes of a wire.BBO_UPDATE array (an input batch)
    INTENTS = 3        #: strategy intents given to submit (JSON)
    ORDERS = 4         #: raw bytes of the wire.ORDER_REQUEST array submit produced
    VERDICTS = 5       #: raw bytes of a wire.VERDICT array
    VENUE_EVENTS = 6   #: acks, rejects, cancels and fills from the venue, in order


def frame(kind: int, seq: int, payload: bytes) -> bytes:
    """The bytes of one framed record."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"journal payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = HEADER.pack(len(payload), int(kind), seq) + payload
    return head + TRAILER.pack(zlib.crc32(head))


@dataclass(frozen=True, slots=True)
class JournalRecord:
    offset: int
    kind: RecordKind
    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class TornTail:
    """A dropped last record: where it started, how many bytes it had, and why."""
    offset: int
    size: int
    why: str


@dataclass(frozen=True, slots=True)
class JournalScan:
    records: list[JournalRecord]
    end: int                    #: offset just after the last good record
    torn: TornTail | None

    @property
    def last_seq(self) -> int:
        return self.records[-1].seq if self.records else 0


class JournalCorrupt(RuntimeError):
    """The journal is damaged before its last record; ``offset`` is where."""

    def __init__(self, path: Path, offset: int, why: str):
        self.path, self.offset = path, offset
        super().__init__(f"{path}: corrupt journal record at byte offset {offset}: {why}")


def scan(path: Path) -> JournalScan:
    """Read and check every record of a journal file.

    Returns
    -------
    JournalScan
        The good records, the offset where they end, and the dropped tail if any.

    Raises
    ------
    JournalCorrupt
        For damage anywhere but in the last record.
    """
    path = Path(path)
    data = path.read_bytes() if path.exists() else b""
    size = len(data)
    records: list[JournalRecord] = []
    off = 0
    expected = 1
    while off < size:
        left = size - off
        if left < HEADER.size:
            return JournalScan(records, off, TornTail(off, left, "file ends inside a header"))
        length, kind, seq = HEADER.unpack_from(data, off)
        bad = None
        if length > MAX_PAYLOAD:
            bad = f"length {length} exceeds {MAX_PAYLOAD}"
        elif kind not in RecordKind._value2member_map_:
            bad = f"unknown record kind {kind}"
        elif seq != expected:
            bad = f"sequence number {seq}, expected {expected}"
        if bad is not None:
            # Zeros from here to the end are a record that never reached the disk (a file
            # system can extend a file before it writes the data after a power loss).
            if data.count(0, off) == left:
                return JournalScan(records, off, TornTail(
                    off, left, f"{left} zero bytes to the end of the file"))
            raise JournalCorrupt(path, off, bad)
        extent = HEADER.size + length + TRAILER.size
        if extent > left:
            return JournalScan(records, off, TornTail(
                off, left, f"file ends {extent - left} bytes before the end of record {seq}"))
        body = data[off:off + HEADER.size + length]
        (crc,) = TRAILER.unpack_from(data, off + HEADER.size + length)
        if zlib.crc32(body) != crc:
            if off + extent == size:
                return JournalScan(records, off, TornTail(off, left,
                                                          f"record {seq} fails its crc32"))
            raise JournalCorrupt(path, off, f"record {seq} fails its crc32 and "
                                            f"{size - off - extent} bytes follow it")
        records.append(JournalRecord(off, RecordKind(kind), seq,
                                     bytes(data[off + HEADER.size:off + HEADER.size + length])))
        off += extent
        expected += 1
    return JournalScan(records, off, None)
