"""NASDAQ TotalView-ITCH 5.0 messages: the field table, a decoder and an encoder.

Ref: NASDAQ TotalView-ITCH 5.0 specification, revision of 2023-04-28 (``NQTVITCHSpecification.pdf``),
"Data Types" and "Message Formats" sections 1.1 - 1.8.

Every message of the specification is listed in :data:`MESSAGE_SPECS` with each field's name,
byte offset, length and type, transcribed from the specification's tables. The table is checked
when this module is imported: the fields of every message must tile it from offset 0 to its length
with no hole and no overlap, so a typing mistake in an offset cannot go unnoticed.

Data types (spec, "Data Types"), and the kind each becomes here:

* ``Integer``: unsigned and big-endian (kind ``"int"``); the 6-byte ``Timestamp`` is an integer
  of nanoseconds since midnight (kind ``"timestamp"``);
* ``Alpha``: ASCII, left justified and padded on the right with spaces (kind ``"alpha"``, one
  byte or more; the type byte is the one-byte alpha ``Message Type``);
* ``Price (4)``: an integer with four implied decimal places (1e-4 dollars; kind ``"price4"``),
  the largest being 200,000.0000 (``0x77359400``); ``Price (8)`` (kind ``"price8"``) has eight
  and is used only by the MWCB levels of the 'V' message.

Messages here are the bare message bytes starting at the type byte; the 2-byte length prefix of
the historical file and of MoldUDP64 message blocks belongs to :mod:`host.feed.framing`.

Decoded messages are plain ``dict``\\ s, in the order of the specification's table, keyed by
the specification's field names turned into snake_case by :func:`snake_case`:

1. a word the PDF prints glued to the next one is split at the change of case
   (``FinancialStatus Indicator`` -> ``Financial Status Indicator``, ``LULDReference Price
   Tier`` -> ``LULD Reference Price Tier``);
2. letters are lower-cased, and every run of other characters (space, ``/``, ``-``) becomes one
   ``_`` (``Buy/Sell Indicator`` -> ``buy_sell_indicator``, ``Issue Sub-Type`` ->
   ``issue_sub_type``, ``Level 1`` -> ``level_1``, ``MPID`` -> ``mpid``).

The one exception: offset 1 of the 'Y' message is printed ``Locate Code``. The specification
("Architecture") says the stock locate code is in every message at the same position, and every
other table names it ``Stock Locate``; it is ``stock_locate`` in every message here, so the four
header fields (``message_type``, ``stock_locate``, ``tracking_number``, ``timestamp``) are the
same for all types.

Values: integers, prices (in the specification's units, Price(4) or Price(8), no float
anywhere) and the timestamp are ``int``; every alpha field, one byte long or more, is a ``str``
with its right padding of spaces stripped, so a field of spaces (the specification's
"<space> = not available") decodes to ``""``; the encoder pads it back.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

__all__ = [
    "ItchError", "FieldSpec", "MessageSpec", "MESSAGE_SPECS", "MESSAGE_LENGTHS",
    "FIELD_KINDS", "HEADER_LENGTH", "PRICE4_MAX", "PRICE4_SCALE", "PRICE8_SCALE",
    "TIMESTAMP_MAX", "NS_PER_DAY", "decode_message", "encode_message", "message_type_of",
    "field_decoder",
    "snake_case", "alpha_value",
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

FIELD_KINDS = frozenset({"int", "alpha", "price4", "price8", "timestamp"})

# Byte lengths each kind allows; "alpha" takes any length >= 1.
_KIND_LENGTHS = {
    "int": (1, 2, 4, 8),
    "price4": (4,),
    "price8": (8,),
    "timestamp": (6,),
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
        Field name in snake_case: :func:`snake_case` of ``spec_name``, the key of decoded
        messages.
    offset : int
        Byte offset from the start of the message (the type byte is offset 0).
    length : int
        Length in bytes.
    kind : str
        One of ``"int"`` (unsigned big-endian), ``"alpha"`` (space-padded ASCII), ``"price4"``,
        ``"price8"`` (unsigned integer prices with 4 or 8 implied decimals) or ``"timestamp"``
        (6-byte nanoseconds since midnight).
    spec_name : str, optional
        The field's name as the specification's table prints it (default: ``name``).
    """

    name: str
    offset: int
    length: int
    kind: str
    spec_name: str = ""

    def __post_init__(self):
        if not self.spec_name:
            object.__setattr__(self, "spec_name", self.name)
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


def snake_case(spec_name: str) -> str:
    """The key of a field: its specification name in snake_case.

    Words the PDF prints glued together are split at the change of case, letters are
    lower-cased and every run of other characters becomes one ``_`` (see the module docstring).

    Parameters
    ----------
    spec_name : str
        The name as printed in the specification's table, e.g. ``"Buy/Sell Indicator"``.

    Returns
    -------
    str
        e.g. ``"buy_sell_indicator"``.
    """
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", spec_name)         # FinancialStatus
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", words)        # LULDReference
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


def alpha_value(raw: bytes) -> str:
    """An alpha field's value: its ASCII bytes with the right padding of spaces stripped.

    Raises
    ------
    ItchError
        If a byte is not ASCII.
    """
    try:
        return bytes(raw).decode("ascii").rstrip(" ")
    except UnicodeDecodeError as e:
        raise ItchError(f"non-ASCII byte 0x{e.object[e.start]:02x} in an alpha field") from None


# The four fields every message starts with (spec, "Message Formats"; "Architecture": the stock
# locate is at the same position in every message, even where 'Y' prints it "Locate Code").
_HEADER = (("Stock Locate", 1, 2, "int"), ("Tracking Number", 3, 2, "int"),
           ("Timestamp", 5, 6, "timestamp"))


def _field(spec_name: str, offset: int, length: int, kind: str) -> FieldSpec:
    return FieldSpec(snake_case(spec_name), offset, length, kind, spec_name)


def _message(type_: str, name: str, section: str, length: int,
             *body: tuple[str, int, int, str]) -> MessageSpec:
    fields = (_field("Message Type", 0, 1, "alpha"),
              *(_field(*h) for h in _HEADER), *(_field(*b) for b in body))
    return MessageSpec(type_, name, length, fields, section)


# Field names are transcribed as the specification's tables print them (glued words such as
# "FinancialStatus" included; only the PDF's hyphen glyphs are written as a plain "-").
_SPECS = (
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.1 (System Event Message)
    _message("S", "System Event", "1.1", 12,
             ("Event Code", 11, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.1 (Stock Directory)
    _message("R", "Stock Directory", "1.2.1", 39,
             ("Stock", 11, 8, "alpha"),
             ("Market Category", 19, 1, "alpha"),
             ("FinancialStatus Indicator", 20, 1, "alpha"),
             ("Round Lot Size", 21, 4, "int"),
             ("Round Lots Only", 25, 1, "alpha"),
             ("Issue Classification", 26, 1, "alpha"),
             ("Issue Sub-Type", 27, 2, "alpha"),
             ("Authenticity", 29, 1, "alpha"),
             ("Short Sale Threshold Indicator", 30, 1, "alpha"),
             ("IPO Flag", 31, 1, "alpha"),
             ("LULDReference Price Tier", 32, 1, "alpha"),
             ("ETP Flag", 33, 1, "alpha"),
             ("ETP Leverage Factor", 34, 4, "int"),
             ("Inverse Indicator", 38, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.2 (Stock Trading Action)
    _message("H", "Stock Trading Action", "1.2.2", 25,
             ("Stock", 11, 8, "alpha"),
             ("Trading State", 19, 1, "alpha"),
             ("Reserved", 20, 1, "alpha"),
             ("Reason", 21, 4, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.3 (Reg SHO Short Sale Price Test
    # Restricted Indicator). The spec calls offset 1 "Locate Code" here; it is the same field as
    # every other message's Stock Locate (see _HEADER), so it keeps that name.
    _message("Y", "Reg SHO Short Sale Price Test Restricted Indicator", "1.2.3", 20,
             ("Stock", 11, 8, "alpha"),
             ("Reg SHO Action", 19, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.4 (Market Participant Position)
    _message("L", "Market Participant Position", "1.2.4", 26,
             ("MPID", 11, 4, "alpha"),
             ("Stock", 15, 8, "alpha"),
             ("Primary Market Maker", 23, 1, "alpha"),
             ("Market Maker Mode", 24, 1, "alpha"),
             ("Market Participant State", 25, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.5.1 (MWCB Decline Level Message).
    # The levels are Price(8), the only Price(8) fields of the feed.
    _message("V", "MWCB Decline Level", "1.2.5.1", 35,
             ("Level 1", 11, 8, "price8"),
             ("Level 2", 19, 8, "price8"),
             ("Level 3", 27, 8, "price8")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.5.2 (MWCB Status Message)
    _message("W", "MWCB Status", "1.2.5.2", 12,
             ("Breached Level", 11, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.6 (Quoting Period Update)
    _message("K", "IPO Quoting Period Update", "1.2.6", 28,
             ("Stock", 11, 8, "alpha"),
             ("IPO Quotation Release Time", 19, 4, "int"),
             ("IPO Quotation Release Qualifier", 23, 1, "alpha"),
             ("IPO Price", 24, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.7 (LULD Auction Collar)
    _message("J", "LULD Auction Collar", "1.2.7", 35,
             ("Stock", 11, 8, "alpha"),
             ("Auction Collar Reference Price", 19, 4, "price4"),
             ("Upper Auction Collar Price", 23, 4, "price4"),
             ("Lower Auction Collar Price", 27, 4, "price4"),
             ("Auction Collar Extension", 31, 4, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.2.8 (Operational Halt)
    _message("h", "Operational Halt", "1.2.8", 21,
             ("Stock", 11, 8, "alpha"),
             ("Market Code", 19, 1, "alpha"),
             ("Operational Halt Action", 20, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.3.1 (Add Order - No MPID Attribution)
    _message("A", "Add Order - No MPID Attribution", "1.3.1", 36,
             ("Order Reference Number", 11, 8, "int"),
             ("Buy/Sell Indicator", 19, 1, "alpha"),
             ("Shares", 20, 4, "int"),
             ("Stock", 24, 8, "alpha"),
             ("Price", 32, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.3.2 (Add Order with MPID Attribution)
    _message("F", "Add Order with MPID Attribution", "1.3.2", 40,
             ("Order Reference Number", 11, 8, "int"),
             ("Buy/Sell Indicator", 19, 1, "alpha"),
             ("Shares", 20, 4, "int"),
             ("Stock", 24, 8, "alpha"),
             ("Price", 32, 4, "price4"),
             ("Attribution", 36, 4, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.1 (Order Executed Message)
    _message("E", "Order Executed", "1.4.1", 31,
             ("Order Reference Number", 11, 8, "int"),
             ("Executed Shares", 19, 4, "int"),
             ("Match Number", 23, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.2 (Order Executed With Price Message)
    _message("C", "Order Executed With Price", "1.4.2", 36,
             ("Order Reference Number", 11, 8, "int"),
             ("Executed Shares", 19, 4, "int"),
             ("Match Number", 23, 8, "int"),
             ("Printable", 31, 1, "alpha"),
             ("Execution Price", 32, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.3 (Order Cancel Message)
    _message("X", "Order Cancel", "1.4.3", 23,
             ("Order Reference Number", 11, 8, "int"),
             ("Cancelled Shares", 19, 4, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.4 (Order Delete Message)
    _message("D", "Order Delete", "1.4.4", 19,
             ("Order Reference Number", 11, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.4.5 (Order Replace Message)
    _message("U", "Order Replace", "1.4.5", 35,
             ("Original Order Reference Number", 11, 8, "int"),
             ("New Order Reference Number", 19, 8, "int"),
             ("Shares", 27, 4, "int"),
             ("Price", 31, 4, "price4")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.5.1 (Trade Message (Non-Cross))
    _message("P", "Trade (Non-Cross)", "1.5.1", 44,
             ("Order Reference Number", 11, 8, "int"),
             ("Buy/Sell Indicator", 19, 1, "alpha"),
             ("Shares", 20, 4, "int"),
             ("Stock", 24, 8, "alpha"),
             ("Price", 32, 4, "price4"),
             ("Match Number", 36, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.5.2 (Cross Trade Message); its shares field
    # is 8 bytes, unlike every other message's 4.
    _message("Q", "Cross Trade", "1.5.2", 40,
             ("Shares", 11, 8, "int"),
             ("Stock", 19, 8, "alpha"),
             ("Cross Price", 27, 4, "price4"),
             ("Match Number", 31, 8, "int"),
             ("Cross Type", 39, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.5.3 (Broken Trade / Order Execution Message)
    _message("B", "Broken Trade / Order Execution", "1.5.3", 19,
             ("Match Number", 11, 8, "int")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.6 (Net Order Imbalance Indicator (NOII))
    _message("I", "Net Order Imbalance Indicator (NOII)", "1.6", 50,
             ("Paired Shares", 11, 8, "int"),
             ("Imbalance Shares", 19, 8, "int"),
             ("Imbalance Direction", 27, 1, "alpha"),
             ("Stock", 28, 8, "alpha"),
             ("Far Price", 36, 4, "price4"),
             ("Near Price", 40, 4, "price4"),
             ("Current Reference Price", 44, 4, "price4"),
             ("Cross Type", 48, 1, "alpha"),
             ("Price Variation Indicator", 49, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.7 (Retail Price Improvement Indicator (RPII))
    _message("N", "Retail Price Improvement Indicator (RPII)", "1.7", 20,
             ("Stock", 11, 8, "alpha"),
             ("Interest Flag", 19, 1, "alpha")),
    # Ref: NASDAQ TotalView-ITCH 5.0 spec, section 1.8 (Direct Listing with Capital Raise Price
    # Discovery Message); added in the 2023-04-28 revision.
    _message("O", "Direct Listing with Capital Raise Price Discovery", "1.8", 48,
             ("Stock", 11, 8, "alpha"),
             ("Open Eligibility Status", 19, 1, "alpha"),
             ("Minimum Allowable Price", 20, 4, "price4"),
             ("Maximum Allowable Price", 24, 4, "price4"),
             ("Near Execution Price", 28, 4, "price4"),
             ("Near Execution Time", 32, 8, "int"),
             ("Lower Price Range Collar", 40, 4, "price4"),
             ("Upper Price Range Collar", 44, 4, "price4")),
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

def field_decoder(spec: MessageSpec, names=None) -> Callable[..., dict]:
    """A function ``decode(buf, pos=0) -> dict`` reading fields of ``spec`` straight from a buffer.

    The struct layout comes from the table's own offsets and lengths (gaps are skipped), so a
    reader that needs only some fields does not keep a second copy of the format.

    Parameters
    ----------
    spec : MessageSpec
        One message type of :data:`MESSAGE_SPECS`.
    names : collection of str, optional
        The keys to read (default: every field). ``message_type`` is always set.

    Returns
    -------
    callable
        ``decode(buf, pos=0)``; it does not check the length or the type byte (the caller
        dispatches on them), and an alpha byte outside ASCII raises ``UnicodeDecodeError``.
    """
    fields = [f for f in spec.fields[1:] if names is None or f.name in names]
    parts, at = [">"], 0
    args: list[str] = []
    items = [f"'message_type': {spec.type!r}"]
    for i, f in enumerate(fields):
        if f.offset > at:
            parts.append(f"{f.offset - at}x")
        at = f.offset + f.length
        v = f"v{i}"
        if f.kind == "timestamp":
            parts.append("HI")  # 6 bytes: high 16 bits, low 32 bits
            args += [v + "h", v + "l"]
            items.append(f"{f.name!r}: ({v}h << 32) | {v}l")
        else:
            parts.append(f"{f.length}s" if f.kind == "alpha" else _INT_FORMATS[f.length])
            args.append(v)
            items.append(f"{f.name!r}: {v}.decode('ascii').rstrip(' ')" if f.kind == "alpha"
                         else f"{f.name!r}: {v}")
    if names is None and at != spec.length:
        raise AssertionError(f"{spec.type}: fields end at {at}, the message at {spec.length}")
    # One generated function per layout: a dict display is the cheapest way to build the dict.
    src = (f"def decode(buf, pos=0, _unpack=_unpack):\n"
           f"    {', '.join(args)}, = _unpack(buf, pos)\n"
           f"    return {{{', '.join(items)}}}\n")
    namespace: dict[str, Any] = {"_unpack": struct.Struct("".join(parts)).unpack_from}
    exec(src, namespace)  # noqa: S102 - source is built from the table above, not from input
    return namespace["decode"]


class _Codec:
    __slots__ = ("spec", "decode")

    def __init__(self, spec: MessageSpec):
        self.spec = spec
        self.decode = field_decoder(spec)


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
        (nanoseconds since midnight) are ``int``; alpha fields, one byte long or more, are
        ``str`` with the right padding of spaces stripped (all spaces: ``""``).

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
    if f.kind == "alpha":
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
