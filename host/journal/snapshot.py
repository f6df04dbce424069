"""Snapshots of the order manager's state, written atomically.

A snapshot is ``snapshot-<seq>.json`` (seq zero-padded to 20 digits) holding the state after
journal record ``seq`` and a CRC-32 of that state's canonical JSON. It is written to a temporary
file, fsynced, renamed over its final name and the directory fsynced, so a crash leaves either
the whole snapshot or none. The journal is fsynced before, so a snapshot never runs ahead of the
durable journal. The newest :data:`KEEP` snapshots are kept.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from hdl import wire

__all__ = ["write_snapshot", "load_latest_snapshot", "Snapshot", "KEEP"]

KEEP = 2
_PREFIX, _SUFFIX = "snapshot-", ".json"


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    state: dict
    path: Path


def _canonical(state: dict) -> bytes:
    return json.dumps(state, sort_keys=True, separators=(",", ":")).encode()


def write_snapshot(directory: Path, seq: int, state: dict) -> Path:
    """Atomically write the state after record ``seq``; prune older snapshots."""
    directory = Path(directory)
    body = _canonical(state)
    doc = {"seq": seq, "format_hash": wire.FORMAT_HASH, "crc32": zlib.crc32(body),
           "state": state}
    final = directory / f"{_PREFIX}{seq:020d}{_SUFFIX}"
    tmp = directory / f".{final.name}.tmp"
    with open(tmp, "wb") as f:
        f.write(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    _fsync_dir(directory)
    for old in sorted(directory.glob(f"{_PREFIX}*{_SUFFIX}"))[:-KEEP]:
        old.unlink()
    return final


def load_latest_snapshot(directory: Path, max_seq: int) -> tuple[Snapshot | None, list[str]]:
    """The newest intact snapshot with ``seq <= max_seq``, and notes on those passed over."""
    notes = []
    for path in sorted(Path(directory).glob(f"{_PREFIX}*{_SUFFIX}"), reverse=True):
        try:
            doc = json.loads(path.read_bytes())
            seq, state = int(doc["seq"]), doc["state"]
            if doc["format_hash"] != wire.FORMAT_HASH:
                notes.append(f"{path.name}: other wire format hash")
                continue
            if zlib.crc32(_canonical(state)) != doc["crc32"]:
                notes.append(f"{path.name}: crc32 mismatch")
                continue
        except (ValueError, KeyError, TypeError) as e:
            notes.append(f"{path.name}: unreadable ({e})")
            continue
        if seq > max_seq:
            notes.append(f"{path.name}: covers record {seq}, beyond the journal's {max_seq}")
            continue
        return Snapshot(seq, state, path), notes
    return None, notes


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
