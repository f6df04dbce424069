"""Host decoding of what the feed stage sends: book events, HOST_MESSAGE and FEED_GAP records.

Ref: NASDAQ TotalView-ITCH 5.0 specification (field names, via :mod:`host.feed.itch`);
ticklane's LEVEL_UPDATE and the feed records (:mod:`hdl.wire`).

Every decoded message is a ``dict`` keyed by the specification's field names in snake_case, as
:func:`host.feed.itch.decode_message` gives them: integers and prices as integers in the feed's
units, alpha fields (one byte long or more) as ``str`` with the padding stripped. A book event
gives back exactly what :func:`host.feed.itch.decode_message` gives for the message it came
from, errors included (a non-ASCII alpha byte is an :class:`host.feed.itch.ItchError` either
way). A level update ('l') is keyed by the :data:`hdl.wire.LEVEL_UPDATE` field names.
"""

from __future__ import annotations

from typing import Any, Mapping

from hdl import wire
from host.feed.itch import alpha_value, decode_message

__all__ = ["unpack_layout", "decode_level_update", "reference_decode", "host_message_bytes",
           "decode_host_message", "event_to_message", "decode_gap", "LEVEL_FLAGS_MASK"]

#: The flags a level update defines (sell, snapshot_begin, snapshot_end, delete); bits 4-7 are
#: reserved: the feed stage ignores them and does not carry them on.
LEVEL_FLAGS_MASK = 0x0F

def unpack_layout(layout, value: int) -> dict:
    """Split an integer laid out by an Amaranth ``StructLayout`` into its fields as integers
    (a nested struct, an enum or a flags field stays one integer)."""
    from amaranth.lib import data
    out = {}
    for name, fld in data.Layout.cast(layout):
        out[name] = (value >> fld.offset) & ((1 << fld.width) - 1)
    return out


def decode_level_update(msg: bytes) -> dict:
    """Decode a ticklane level update ('l', 24 bytes, little-endian).

    Raises
    ------
    ValueError
        If the message is not a level update of the right length.
    """
    if len(msg) != wire.LEVEL_UPDATE.size or msg[0] != wire.LEVEL_UPDATE_TYPE:
        raise ValueError(f"a level update is {wire.LEVEL_UPDATE.size} bytes starting with 'l'; "
                         f"got {len(msg)} bytes starting with {msg[:1]!r}")
    f = wire.LEVEL_UPDATE.unpack(bytes(msg))
    return {"message_type": "l", "flags": f["flags"] & LEVEL_FLAGS_MASK, "slot": f["slot"],
            "price": f["price"],
            "size": f["size"], "exchange_seq": f["exchange_seq"]}


def reference_decode(msg: bytes) -> dict:
    """Decode one message (ITCH 5.0 or a level update) with the host's reference decoders."""
    if len(msg) and msg[0] == wire.LEVEL_UPDATE_TYPE:
        return decode_level_update(msg)
    return decode_message(msg)


def host_message_bytes(record: Mapping[str, int]) -> bytes:
    """The message a HOST_MESSAGE record carries (its fields as integers)."""
    raw = b"".join(int(record[f"bytes{k}"]).to_bytes(8, "little") for k in range(7))
    n = int(record["length"])
    if n > len(raw):
        raise ValueError(f"HOST_MESSAGE length {n} exceeds the record's {len(raw)} bytes")
    return raw[:n]


def decode_host_message(record: Mapping[str, int]) -> dict:
    """Decode the ITCH message of a HOST_MESSAGE record (see :func:`reference_decode`)."""
    return reference_decode(host_message_bytes(record))


def _alpha(value: int, n: int) -> str:
    """An alpha field the gateware keeps in wire order (byte 0 in the low bits)."""
    return alpha_value(value.to_bytes(n, "little"))


def event_to_message(ev: Mapping[str, Any]) -> dict:
    """The message a book event was decoded from, as far as the event carries it.

    ``ev`` holds the fields of :data:`hdl.feed.events.BookEventLayout` as integers. Every field
    of the message is returned.
    """
    t = chr(int(ev["msg_type"]))
    if t == "l":
        return {"message_type": "l", "flags": int(ev["level_flags"]) & LEVEL_FLAGS_MASK,
                "slot": int(ev["slot"]),
                "price": int(ev["price"]), "size": int(ev["shares"]),
                "exchange_seq": int(ev["exchange_seq"])}
    d = {"message_type": t, "stock_locate": int(ev["locate"]),
         "tracking_number": int(ev["tracking"]), "timestamp": int(ev["timestamp"])}
    if t in "AF":
        d.update(order_reference_number=int(ev["order_ref"]),
                 buy_sell_indicator=_alpha(int(ev["code"]), 1), shares=int(ev["shares"]),
                 stock=_alpha(int(ev["stock"]), 8), price=int(ev["price"]))
        if t == "F":
            d["attribution"] = _alpha(int(ev["attribution"]), 4)
    elif t in "EC":
        d.update(order_reference_number=int(ev["order_ref"]), executed_shares=int(ev["shares"]),
                 match_number=int(ev["match_number"]))
        if t == "C":
            d.update(printable=_alpha(int(ev["code"]), 1),
                     execution_price=int(ev["exec_price"]))
    elif t == "X":
        d.update(order_reference_number=int(ev["order_ref"]), cancelled_shares=int(ev["shares"]))
    elif t == "D":
        d.update(order_reference_number=int(ev["order_ref"]))
    elif t == "U":
        d.update(original_order_reference_number=int(ev["order_ref"]),
                 new_order_reference_number=int(ev["new_order_ref"]), shares=int(ev["shares"]),
                 price=int(ev["price"]))
    else:
        raise ValueError(f"event of message type {t!r} does not carry a whole message "
                         f"(directory messages reach the host as HOST_MESSAGE records)")
    return d


def decode_gap(record: Mapping[str, int]) -> dict:
    """A FEED_GAP record as ``session`` (bytes), ``expected``, ``received``, ``heartbeat``,
    ``end_of_session``, ``session_index``."""
    session = (int(record["session_head"]).to_bytes(8, "little")
               + int(record["session_tail"]).to_bytes(2, "little"))
    flags = int(record["flags"])
    return {"session": session, "expected": int(record["expected"]),
            "received": int(record["received"]), "heartbeat": bool(flags & 1),
            "end_of_session": bool(flags & 2), "session_index": int(record["session_index"])}
