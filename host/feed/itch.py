"""NASDAQ TotalView-ITCH 5.0 messages: the field table, a decoder and an encoder.

Ref: NASDAQ TotalView-ITCH 5.0 specification, revision of 2023-04-28 (``NQTVITCHSpecification.pdf``),
"Data Types" and "Message Formats" sections 1.1 - 1.8.

Every message of the specification is listed in :data:`MESSAGE_SPECS` with each field's byte
offset, length and kind, as printed in the specification's tables. The table is checked when this
module is imported: the fields of every message must tile it from offset 0 to its length with no
hole and no overlap, so a typing mistake in an offset cannot go unnoticed.

Data types (spec, "Data Types"):

* integers are unsigned and big-endian;
* alpha fields are ASCII, left justified and padded on the right with spaces;
* Price(4) is an integer with four implied decimal places (1e-4 dollars), Price(8) (the MWCB
  levels of the 'V' message) has eight; the largest Price(4) is 200,000.0000 (``0x77359400``);
* a timestamp is 6 bytes: nanoseconds since midnight.

Messages here are the bare message bytes starting at the type byte; the 2-byte length prefix of
the historical file and of MoldUDP64 message blocks belongs to :mod:`host.feed.framing`.

Decoded messages are plain ``dict``\\ s keyed by the specification's field names in snake_case.
Integers and prices stay integers in the feed's units (no float anywhere), alpha fields are
``str`` with the right padding stripped, and one-byte alpha fields ("char") are one-character
``str`` kept as sent, so that a space meaning "not available" survives.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

__all__ = [
    "ItchError", "FieldSpec", "MessageSpec", "MESSAGE_SPECS", "MESSAGE_LENGTHS",
    "FIELD_KINDS", "HEADER_LENGTH", "PRICE4_MAX", "PRICE4_SCALE", "PRICE8_SCALE",
    "TIMESTAMP_MAX", "NS_PER_DAY", "decode_message", "encode_message", "message_type_of",
]

# Spec, "Data Types": maximum Price(4) value is 200,000.0000 = 0x77359400.
PRICE4_MAX = 0x77359400
PRICE4_SCALE = 10_000
PRICE8_SCALE = 100_000_000
NS_PER_DAY = 86_400 * 1_000_000_000
# The 6-byte field can hold more than a day; the encoder only refuses what does not fit.
TIMESTAMP_MAX = (1 << 48) - 1
# Message type, stock locate, tracking number and timestamp: the same 11 bytes start every message.
HEADER_LENGTH = 11

FIELD_KINDS = frozenset({"int", "alpha", "price4", "price8", "timestamp", "char"})

# Byte lengths each kind allows; "alpha" takes any length >= 1.
_KIND_LENGTHS = {
    "int": (1, 2, 4, 8),
    "price4": (4,),
    "price8": (8,),
    "timestamp": (6,),
    "char": (1,),
}
_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class ItchError(ValueError):
    """A message that is not valid ITCH 5.0: unknown type, wrong length, or a field that does
    not fit."""


@dataclass(frozen=True)
class FieldSpec:
    """One field of an ITCH message, as in the specification's table.

    Parameters
    ----------
    name : str
        Field name in snake_case (the specification's name, made unique where it repeats).
    offset : int
        Byte offset from the start of the message (the type byte is offset 0).
    length : int
        Length in bytes.
    kind : str
        One of ``"int"`` (unsigned big-endian), ``"alpha"`` (space-padded ASCII), ``"price4"``,
        ``"price8"`` (unsigned integer prices with 4 or 8 implied decimals), ``"timestamp"``
        (6-byte nanoseconds since midnight) or ``"char"`` (one-byte alpha, decoded as a
        one-character ``str``).
    """

    name: str
    offset: int
    length: int
    kind: str

    def __post_init__(self):
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"field {self.name!r}: kind {self.kind!r} is not one of "
                             f"{sorted(FIELD_KINDS)}")
        allowed = _KIND_LENGTHS.get(self.kind)
        if self.length < 1 or (allowed is not None and self.length not in allowed):
            raise ValueError(f"field {self.name!r}: length {self.length!r} is not valid for "
                             f"kind {self.kind!r}")
        if self.offset < 0:
            raise ValueError(f"field {self.name!r}: offset {self.offset!r} is negative")

    @property
    def end(self) -> int:
        """Offset one past the field's last byte."""
        return self.offset + self.length


@dataclass(frozen=True)
class MessageSpec:
    """One ITCH message type.

    Parameters
    ----------
    type : str
        The one-character message type, e.g. ``"A"``.
    name : str
        The specification's name of the message.
    length : int
        Length in bytes, type byte included, length prefix excluded.
    fields : tuple of FieldSpec
        All fields in offset order, starting with ``message_type`` at offset 0.
    section : str
        Section of the specification that defines it.
    """

    type: str
    name: str
    length: int
    fields: tuple[FieldSpec, ...]
    section: str

    def __post_init__(self):
        # The fields must tile the message exactly: this catches any mistyped offset or length.
        pos = 0
        for f in self.fields:
            if f.offset != pos:
                raise ValueError(f"ITCH {self.type!r}: field {f.name!r} at offset {f.offset}, "
                                 f"expected {pos}")
            pos = f.end
        if pos != self.length:
            raise ValueError(f"ITCH {self.type!r}: fields end at {pos}, length is {self.length}")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"ITCH {self.type!r}: repeated field name in {names}")

    @property
    def field_names(self) -> tuple[str, ...]:
        """Field names in offset order."""
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FieldSpec:
        """The field called ``name``; ``KeyError`` if the message has none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"ITCH {self.type!r} has no field {name!r}")


_HEADER = (("stock_locate", 1, 2, "int"), ("tracking_number", 3, 2, "int"),
           ("timestamp", 5, 6, "timestamp"))


def _message(type_: str, name: str, section: str, length: int,
             *body: tuple[str, int, int, str]) -> MessageSpec:
    fields = (FieldSpec("message_type", 0, 1, "char"),
              *(FieldSpec(*h) for h in _HEADER), *(FieldSpec(*b) for b in body))
    return MessageSpec(type_, name, length, fields, section)


_SPECS = (
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.1 (System Event Message)
    _message("S", "System Event", "1.1", 12,
             ("event_code", 11, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.1 (Stock Directory)
    _message("R", "Stock Directory", "1.2.1", 39,
             ("stock", 11, 8, "alpha"),
             ("market_category", 19, 1, "char"),
             ("financial_status_indicator", 20, 1, "char"),
             ("round_lot_size", 21, 4, "int"),
             ("round_lots_only", 25, 1, "char"),
             ("issue_classification", 26, 1, "char"),
             ("issue_sub_type", 27, 2, "alpha"),
             ("authenticity", 29, 1, "char"),
             ("short_sale_threshold_indicator", 30, 1, "char"),
             ("ipo_flag", 31, 1, "char"),
             ("luld_reference_price_tier", 32, 1, "char"),
             ("etp_flag", 33, 1, "char"),
             ("etp_leverage_factor", 34, 4, "int"),
             ("inverse_indicator", 38, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.2 (Stock Trading Action)
    _message("H", "Stock Trading Action", "1.2.2", 25,
             ("stock", 11, 8, "alpha"),
             ("trading_state", 19, 1, "char"),
             ("reserved", 20, 1, "char"),
             ("reason", 21, 4, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.3 (Reg SHO Short Sale Price Test
    # Restricted Indicator). The spec calls offset 1 "Locate Code" here; it is the same field as
    # every other message's Stock Locate, so it keeps that name.
    _message("Y", "Reg SHO Short Sale Price Test Restricted Indicator", "1.2.3", 20,
             ("stock", 11, 8, "alpha"),
             ("reg_sho_action", 19, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.4 (Market Participant Position)
    _message("L", "Market Participant Position", "1.2.4", 26,
             ("mpid", 11, 4, "alpha"),
             ("stock", 15, 8, "alpha"),
             ("primary_market_maker", 23, 1, "char"),
             ("market_maker_mode", 24, 1, "char"),
             ("market_participant_state", 25, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.5.1 (MWCB Decline Level Message).
    # The levels are Price(8), the only Price(8) fields of the feed.
    _message("V", "MWCB Decline Level", "1.2.5.1", 35,
             ("level_1", 11, 8, "price8"),
             ("level_2", 19, 8, "price8"),
             ("level_3", 27, 8, "price8")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.5.2 (MWCB Status Message)
    _message("W", "MWCB Status", "1.2.5.2", 12,
             ("breached_level", 11, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.6 (Quoting Period Update)
    _message("K", "IPO Quoting Period Update", "1.2.6", 28,
             ("stock", 11, 8, "alpha"),
             ("ipo_quotation_release_time", 19, 4, "int"),
             ("ipo_quotation_release_qualifier", 23, 1, "char"),
             ("ipo_price", 24, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.7 (LULD Auction Collar)
    _message("J", "LULD Auction Collar", "1.2.7", 35,
             ("stock", 11, 8, "alpha"),
             ("auction_collar_reference_price", 19, 4, "price4"),
             ("upper_auction_collar_price", 23, 4, "price4"),
             ("lower_auction_collar_price", 27, 4, "price4"),
             ("auction_collar_extension", 31, 4, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.8 (Operational Halt)
    _message("h", "Operational Halt", "1.2.8", 21,
             ("stock", 11, 8, "alpha"),
             ("market_code", 19, 1, "char"),
             ("operational_halt_action", 20, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.3.1 (Add Order - No MPID Attribution)
    _message("A", "Add Order - No MPID Attribution", "1.3.1", 36,
             ("order_reference_number", 11, 8, "int"),
             ("buy_sell_indicator", 19, 1, "char"),
             ("shares", 20, 4, "int"),
             ("stock", 24, 8, "alpha"),
             ("price", 32, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.3.2 (Add Order with MPID Attribution)
    _message("F", "Add Order with MPID Attribution", "1.3.2", 40,
             ("order_reference_number", 11, 8, "int"),
             ("buy_sell_indicator", 19, 1, "char"),
             ("shares", 20, 4, "int"),
             ("stock", 24, 8, "alpha"),
             ("price", 32, 4, "price4"),
             ("attribution", 36, 4, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.1 (Order Executed Message)
    _message("E", "Order Executed", "1.4.1", 31,
             ("order_reference_number", 11, 8, "int"),
             ("executed_shares", 19, 4, "int"),
             ("match_number", 23, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.2 (Order Executed With Price Message)
    _message("C", "Order Executed With Price", "1.4.2", 36,
             ("order_reference_number", 11, 8, "int"),
             ("executed_shares", 19, 4, "int"),
             ("match_number", 23, 8, "int"),
             ("printable", 31, 1, "char"),
             ("execution_price", 32, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.3 (Order Cancel Message)
    _message("X", "Order Cancel", "1.4.3", 23,
             ("order_reference_number", 11, 8, "int"),
             ("cancelled_shares", 19, 4, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.4 (Order Delete Message)
    _message("D", "Order Delete", "1.4.4", 19,
             ("order_reference_number", 11, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.5 (Order Replace Message)
    _message("U", "Order Replace", "1.4.5", 35,
             ("original_order_reference_number", 11, 8, "int"),
             ("new_order_reference_number", 19, 8, "int"),
             ("shares", 27, 4, "int"),
             ("price", 31, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.5.1 (Trade Message (Non-Cross))
    _message("P", "Trade (Non-Cross)", "1.5.1", 44,
             ("order_reference_number", 11, 8, "int"),
             ("buy_sell_indicator", 19, 1, "char"),
             ("shares", 20, 4, "int"),
             ("stock", 24, 8, "alpha"),
             ("price", 32, 4, "price4"),
             ("match_number", 36, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.5.2 (Cross Trade Message); its shares field
    # is 8 bytes, unlike every other message's 4.
    _message("Q", "Cross Trade", "1.5.2", 40,
             ("shares", 11, 8, "int"),
             ("stock", 19, 8, "alpha"),
             ("cross_price", 27, 4, "price4"),
             ("match_number", 31, 8, "int"),
             ("cross_type", 39, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.5.3 (Broken Trade / Order Execution Message)
    _message("B", "Broken Trade / Order Execution", "1.5.3", 19,
             ("match_number", 11, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.6 (Net Order Imbalance Indicator (NOII))
    _message("I", "Net Order Imbalance Indicator (NOII)", "1.6", 50,
             ("paired_shares", 11, 8, "int"),
             ("imbalance_shares", 19, 8, "int"),
             ("imbalance_direction", 27, 1, "char"),
             ("stock", 28, 8, "alpha"),
             ("far_price", 36, 4, "price4"),
             ("near_price", 40, 4, "price4"),
             ("current_reference_price", 44, 4, "price4"),
             ("cross_type", 48, 1, "char"),
             ("price_variation_indicator", 49, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.7 (Retail Price Improvement Indicator (RPII))
    _message("N", "Retail Price Improvement Indicator (RPII)", "1.7", 20,
             ("stock", 11, 8, "alpha"),
             ("interest_flag", 19, 1, "char")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.8 (Direct Listing with Capital Raise Price
    # Discovery Message); added in the 2023-04-28 revision.
    _message("O", "Direct Listing with Capital Raise Price Discovery", "1.8", 48,
             ("stock", 11, 8, "alpha"),
             ("open_eligibility_status", 19, 1, "char"),
             ("minimum_allowable_price", 20, 4, "price4"),
             ("maximum_allowable_price", 24, 4, "price4"),
             ("near_execution_price", 28, 4, "price4"),
             ("near_execution_time", 32, 8, "int"),
             ("lower_price_range_collar", 40, 4, "price4"),
             ("upper_price_range_collar", 44, 4, "price4")),
)

MESSAGE_SPECS: Mapping[str, MessageSpec] = MappingProxyType({s.type: s for s in _SPECS})
"""Every ITCH 5.0 message type, keyed by its one-character type."""

MESSAGE_LENGTHS: Mapping[int, int] = MappingProxyType({ord(s.type): s.length for s in _SPECS})
"""Message length in bytes (length prefix excluded), keyed by the type byte."""


# --------------------------------------------------------------------------------------------
# Codecs. Each message type gets one struct.Struct and a decoder/encoder function generated
# from the table, so the per-message cost is one unpack plus one dict display: about a
# microsecond, which keeps a million-message file to seconds.
# --------------------------------------------------------------------------------------------

def _struct_format(spec: MessageSpec) -> str:
    parts = [">x"]  # the type byte is known from dispatch; skip it
    for f in spec.fields[1:]:
        if f.kind == "timestamp":
            parts.append("HI")  # 6 bytes: high 16 bits, low 32 bits
        elif f.kind in ("alpha", "char"):
            parts.append(f"{f.length}s")
        else:
            parts.append(_INT_FORMATS[f.length])
    return "".join(parts)


def _build_decoder(spec: MessageSpec, st: struct.Struct) -> Callable[[Any], dict]:
    args: list[str] = []
    items = [f"'message_type': {spec.type!r}"]
    for i, f in enumerate(spec.fields[1:]):
        v = f"v{i}"
        if f.kind == "timestamp":
            args += [v + "h", v + "l"]
            items.append(f"{f.name!r}: ({v}h << 32) | {v}l")
        else:
            args.append(v)
            if f.kind == "alpha":
                items.append(f"{f.name!r}: {v}.decode('ascii').rstrip(' ')")
            elif f.kind == "char":
                items.append(f"{f.name!r}: {v}.decode('ascii')")
            else:
                items.append(f"{f.name!r}: {v}")
    src = (f"def decode(msg, _unpack=_unpack):\n"
           f"    {', '.join(args)}, = _unpack(msg)\n"
           f"    return {{{', '.join(items)}}}\n")
    namespace: dict[str, Any] = {"_unpack": st.unpack_from}
    exec(src, namespace)  # noqa: S102 - source is built from the table above, not from input
    return namespace["decode"]


class _Codec:
    __slots__ = ("spec", "struct", "decode")

    def __init__(self, spec: MessageSpec):
        self.spec = spec
        self.struct = struct.Struct(_struct_format(spec))
        assert self.struct.size == spec.length, (spec.type, self.struct.size)
        self.decode = _build_decoder(spec, self.struct)


_CODECS: dict[int, _Codec] = {ord(s.type): _Codec(s) for s in _SPECS}


def _type_repr(b: int) -> str:
    ch = chr(b)
    return f"0x{b:02x} ({ch!r})" if ch.isprintable() else f"0x{b:02x}"


def message_type_of(msg: bytes) -> str:
    """The one-character type of a message; :class:`ItchError` if it is empty or unknown.

    Parameters
    ----------
    msg : bytes-like
        One message, starting at its type byte.

    Returns
    -------
    str
    """
    if len(msg) == 0:
        raise ItchError("empty ITCH message: no type byte")
    b = msg[0]
    if b not in _CODECS:
        raise ItchError(f"unknown ITCH message type {_type_repr(b)}")
    return chr(b)


def decode_message(msg: bytes) -> dict:
    """Decode one ITCH 5.0 message.

    Parameters
    ----------
    msg : bytes-like
        One message starting at its type byte, without the 2-byte length prefix.

    Returns
    -------
    dict
        Field name -> value, in the order of the specification's table. ``message_type`` is a
        one-character ``str``; integers, prices (Price(4) / Price(8) units) and the timestamp
        (nanoseconds since midnight) are ``int``; alpha fields are ``str`` with the right
        padding stripped; one-byte alpha fields are one-character ``str``.

    Raises
    ------
    ItchError
        If the message is empty, its type is unknown, its length is not the type's length, or
        an alpha field holds a byte that is not ASCII.
    """
    n = len(msg)
    if n == 0:
        raise ItchError("empty ITCH message: no type byte")
    codec = _CODECS.get(msg[0])
    if codec is None:
        raise ItchError(f"unknown ITCH message type {_type_repr(msg[0])}")
    if n != codec.spec.length:
        raise ItchError(f"ITCH {codec.spec.type!r} ({codec.spec.name}) message must be "
                        f"{codec.spec.length} bytes, got {n}")
    try:
        return codec.decode(msg)
    except UnicodeDecodeError as e:
        raise ItchError(f"ITCH {codec.spec.type!r} message has a non-ASCII byte "
                        f"0x{e.object[e.start]:02x} in an alpha field") from None


def _encode_field(spec: MessageSpec, f: FieldSpec, value: Any) -> bytes:
    where = f"ITCH {spec.type!r} field {f.name!r}"
    if f.kind in ("alpha", "char"):
        if not isinstance(value, str):
            raise ItchError(f"{where} must be a str, got {type(value).__name__} {value!r}")
        try:
            raw = value.encode("ascii")
        except UnicodeEncodeError:
            raise ItchError(f"{where} must be ASCII, got {value!r}") from None
        if len(raw) > f.length:
            raise ItchError(f"{where} holds at most {f.length} characters, got {value!r}")
        return raw.ljust(f.length, b" ")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ItchError(f"{where} must be an int, got {type(value).__name__} {value!r}")
    if not 0 <= value < (1 << (8 * f.length)):
        raise ItchError(f"{where} value {value!r} does not fit in {f.length} unsigned bytes")
    return value.to_bytes(f.length, "big")


def encode_message(fields: Mapping[str, Any]) -> bytes:
    """Encode one ITCH 5.0 message: the inverse of :func:`decode_message`.

    Parameters
    ----------
    fields : mapping
        ``message_type`` and every field of that type, named as :func:`decode_message` names
        them. Alpha fields are padded on the right with spaces. Extra keys are refused.

    Returns
    -------
    bytes
        The message, starting at its type byte, without a length prefix.

    Raises
    ------
    ItchError
        On an unknown type, a missing or unknown field, a value of the wrong Python type, a
        string that is not ASCII or is longer than its field, or an integer that does not fit.
    """
    mtype = fields.get("message_type")
    if not isinstance(mtype, str) or len(mtype) != 1 or ord(mtype) not in _CODECS:
        raise ItchError(f"unknown ITCH message type {mtype!r}")
    spec = _CODECS[ord(mtype)].spec
    missing = [f.name for f in spec.fields if f.name not in fields]
    if missing:
        raise ItchError(f"ITCH {mtype!r} message is missing field(s) {missing}")
    if len(fields) != len(spec.fields):
        extra = sorted(set(fields) - set(spec.field_names))
        raise ItchError(f"ITCH {mtype!r} message has unknown field(s) {extra}")
    out = b"".join(_encode_field(spec, f, fields[f.name]) for f in spec.fields)
    return out
