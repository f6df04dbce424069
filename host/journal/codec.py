"""Payload encodings of the journal's record kinds.

* FILE_HEADER: ``b"TKLJ"``, version u16, ``hdl.wire.FORMAT_HASH`` u64 (little-endian). Raw record
  arrays in the journal are only meaningful under the wire contract they were written with.
* CONFIG, INTENTS: UTF-8 JSON with sorted keys, integers only.
* BBO, ORDERS, VERDICTS: the raw bytes of the numpy record array (``wire.<RECORD>.dtype``).
* VENUE_EVENTS: a sequence of 40-byte entries, little-endian::

      type u8 (1 ack, 2 reject, 3 cancelled, 4 fill, 5 replaced) | side u8 | slot u16
      | reason u32 | client_order_id u64 | request_id u64 | price u32 | quantity u32 | ts_ns i64

  ``reason`` is the reject reason for a reject and the done flag for a fill; ``request_id`` the
  cancel request of a cancelled order and the replacement of a replaced one; unused fields are 0.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence

import numpy as np

from hdl import wire
from host.oms.risk import PreTradeConfig
from host.types import Fill, OrderIntent, OrderKind, Side
from host.venue.events import Ack, Cancelled, Reject, Replaced, VenueEvent, VenueRejectReason

MAGIC = b"TKLJ"
VERSION = 1
_FILE_HEADER = struct.Struct("<4sHQ")
_EVENT = struct.Struct("<BBHIQQIIq")
_ACK, _REJECT, _CANCELLED, _FILL, _REPLACED = 1, 2, 3, 4, 5


def encode_file_header() -> bytes:
    return _FILE_HEADER.pack(MAGIC, VERSION, wire.FORMAT_HASH)


class JournalFormatError(ValueError):
    """The journal is not one this build reads: another program's file, another journal version
    or another wire format."""


def check_file_header(payload: bytes) -> None:
    """Raise :class:`JournalFormatError` unless the header is ours, of this version and this
    wire contract."""
    if len(payload) != _FILE_HEADER.size:
        raise JournalFormatError(f"journal file header is {len(payload)} bytes, "
                                 f"expected {_FILE_HEADER.size}")
    magic, version, format_hash = _FILE_HEADER.unpack(payload)
    if magic != MAGIC or version != VERSION:
        raise JournalFormatError(f"not a ticklane journal of version {VERSION}: "
                                 f"magic {magic!r}, version {version}")
    if format_hash != wire.FORMAT_HASH:
        raise JournalFormatError(f"journal was written under wire format hash "
                                 f"{format_hash:#018x}, this build has {wire.FORMAT_HASH:#018x}")


def _json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def encode_config(config: PreTradeConfig) -> bytes:
    return _json(config.to_dict())


def decode_config(payload: bytes) -> PreTradeConfig:
    return PreTradeConfig.from_dict(json.loads(payload))


def encode_intents(intents: Sequence[OrderIntent]) -> bytes:
    # Every field of OrderIntent (a test pins the names), integers for flags and enums. The
    # keys are written in sorted order, so the bytes are those of sort_keys=True without the
    # sorting (this runs on the way to the gate).
    return json.dumps([{"fok": int(i.fok), "ioc": int(i.ioc), "kind": int(i.kind),
                   "post_only": int(i.post_only), "price": int(i.price),
                   "quantity": int(i.quantity), "side": int(i.side), "slot": int(i.slot),
                   "strategy": i.strategy, "target": int(i.target)} for i in intents],
                      separators=(",", ":")).encode()


def decode_intents(payload: bytes) -> list[OrderIntent]:
    out = []
    for d in json.loads(payload):
        d["side"] = Side(d["side"])
        d["kind"] = OrderKind(d["kind"])
        for flag in ("ioc", "fok", "post_only"):
            d[flag] = bool(d.get(flag, False))
        out.append(OrderIntent(**d))
    return out


def encode_records(arr: np.ndarray, record: wire.Record) -> bytes:
    arr = np.ascontiguousarray(arr)
    if arr.dtype != record.dtype:
        raise TypeError(f"expected {record.name} records, got dtype {arr.dtype}")
    return arr.tobytes()


def decode_records(payload: bytes, record: wire.Record) -> np.ndarray:
    if len(payload) % record.size:
        raise ValueError(f"{len(payload)} bytes is not a whole number of {record.name} records "
                         f"({record.size} bytes each)")
    return np.frombuffer(payload, dtype=record.dtype).copy()


def encode_events(events: Iterable[VenueEvent]) -> bytes:
    parts = []
    for ev in events:
        if isinstance(ev, Fill):
            parts.append(_EVENT.pack(_FILL, int(ev.side), ev.slot, int(ev.done),
                                     ev.client_order_id, 0, ev.price, ev.quantity, ev.ts_ns))
        elif isinstance(ev, Ack):
            parts.append(_EVENT.pack(_ACK, 0, 0, 0, ev.client_order_id, 0, 0, 0, ev.ts_ns))
        elif isinstance(ev, Reject):
            parts.append(_EVENT.pack(_REJECT, 0, 0, int(ev.reason), ev.client_order_id, 0, 0,
                                     0, ev.ts_ns))
        elif isinstance(ev, Cancelled):
            parts.append(_EVENT.pack(_CANCELLED, 0, 0, 0, ev.client_order_id, ev.request_id,
                                     0, 0, ev.ts_ns))
        elif isinstance(ev, Replaced):
            parts.append(_EVENT.pack(_REPLACED, 0, 0, 0, ev.client_order_id, ev.replacement_id,
                                     0, 0, ev.ts_ns))
        else:
            raise TypeError(f"not a venue event: {ev!r}")
    return b"".join(parts)


def decode_events(payload: bytes) -> list[VenueEvent]:
    if len(payload) % _EVENT.size:
        raise ValueError(f"{len(payload)} bytes is not a whole number of "
                         f"{_EVENT.size}-byte venue events")
    out: list[VenueEvent] = []
    for typ, side, slot, reason, coid, req, price, qty, ts in _EVENT.iter_unpack(payload):
        if typ == _FILL:
            out.append(Fill(client_order_id=coid, slot=slot, side=Side(side), price=price,
                            quantity=qty, done=bool(reason), ts_ns=ts))
        elif typ == _ACK:
            out.append(Ack(client_order_id=coid, ts_ns=ts))
        elif typ == _REJECT:
            out.append(Reject(client_order_id=coid, reason=VenueRejectReason(reason), ts_ns=ts))
        elif typ == _CANCELLED:
            out.append(Cancelled(client_order_id=coid, request_id=req, ts_ns=ts))
        elif typ == _REPLACED:
            out.append(Replaced(client_order_id=coid, replacement_id=req, ts_ns=ts))
        else:
            raise ValueError(f"unknown venue event type {typ}")
    return out
