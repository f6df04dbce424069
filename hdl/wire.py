"""The one contract between the gateware and the host.

Every stream record, every in-band message format ticklane defines itself, and every register
that crosses the FPGA boundary is written down here exactly once. From each definition we derive:

* the Amaranth layout the gateware uses (:attr:`Record.layout`),
* the numpy dtype the host uses to read DMA buffers without copying (:attr:`Record.dtype`),
* the register map, with addresses assigned in declaration order (:data:`REGISTERS`),
* a format hash (:data:`FORMAT_HASH`) the gateware reports in a register so that the host refuses
  to talk to a bitstream built against a different contract.

Bit and byte order: a record is a little-endian bit vector. Its first field occupies the least
significant bits, and byte ``k`` of the record in memory holds bits ``8k .. 8k+7``. This is the order
an AXI stream uses for byte lanes and the order x86 and ARM load words in, so a DMA buffer of records
is a numpy structured array with no byte swapping. Fields are therefore declared at natural
alignment with widths of 8, 16, 32 or 64 bits; single-bit flags are grouped in a :class:`Flags`
field of 8 or 16 bits.

Market data on the wire (ITCH, MoldUDP64) is big-endian; those formats are parsed by the feed stage
and described in :mod:`host.feed.itch`, not here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import data

__all__ = [
    "Field", "Flags", "Record", "Register", "RegisterMap",
    "Stream", "STREAMS", "RECORDS", "MD_BEAT", "BBO_UPDATE", "HOST_MESSAGE", "FEED_GAP", "LEVEL_UPDATE", "ORDER_REQUEST", "VERDICT", "FILL",
    "BOOK_REFILL_LEVEL",
    "REGISTERS", "FORMAT_HASH", "DEVICE_ID",
    "CYCLE_STAMP_BITS",
]


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

_NATURAL = {8: "u1", 16: "<u2", 32: "<u4", 64: "<u8"}


@dataclass(frozen=True)
class Field:
    """A named unsigned integer field of a record.

    Parameters
    ----------
    name : str
        The field name; also the numpy field name and the Amaranth layout member name.
    width : int
        Width in bits: 8, 16, 32 or 64.
    doc : str
        What the field holds, with its unit.
    """

    name: str
    width: int
    doc: str = ""

    def __post_init__(self):
        if self.width not in _NATURAL:
            raise ValueError(f"field {self.name!r} has width {self.width!r}; "
                             f"record fields must be 8, 16, 32 or 64 bits wide")

    def amaranth_shape(self):
        return self.width

    def signature(self) -> str:
        return f"{self.name}:{self.width}"


@dataclass(frozen=True)
class Flags(Field):
    """A field of single-bit flags, bit 0 first; unnamed high bits are reserved and zero.

    Parameters
    ----------
    name : str
    width : int
        8 or 16.
    bits : tuple of str
        Flag names, least significant bit first.
    doc : str
    """

    def __init__(self, name: str, width: int, bits: tuple, doc: str = ""):
        object.__setattr__(self, "bits", tuple(bits))
        super().__init__(name, width, doc)

    def __post_init__(self):
        super().__post_init__()
        if len(self.bits) > self.width:
            raise ValueError(f"flags field {self.name!r} names {len(self.bits)} bits "
                             f"but is only {self.width} bits wide")

    def amaranth_shape(self):
        members = {name: 1 for name in self.bits}
        if len(self.bits) < self.width:
            members["_reserved"] = self.width - len(self.bits)
        return data.StructLayout(members)

    def mask(self, name: str) -> int:
        """The integer mask of flag ``name`` within this field."""
        try:
            return 1 << self.bits.index(name)
        except ValueError:
            raise KeyError(f"field {self.name!r} has no flag {name!r}; "
                           f"it has {list(self.bits)!r}") from None

    def signature(self) -> str:
        return f"{self.name}:{self.width}[{','.join(self.bits)}]"


class Record:
    """A fixed-size record crossing the FPGA boundary.

    Parameters
    ----------
    name : str
        The record's name, in CamelCase.
    fields : list of Field
        Fields, least significant first. Every field must start at a multiple of its own width
        (natural alignment) so that the numpy dtype needs no packing tricks.
    doc : str
        What one record means.
    """

    def __init__(self, name: str, fields: list[Field], doc: str = ""):
        self.name = name
        self.fields = tuple(fields)
        self.doc = doc
        self.offsets = {}
        bit = 0
        for f in self.fields:
            if f.name in self.offsets:
                raise ValueError(f"record {name!r} declares field {f.name!r} twice")
            if bit % f.width:
                raise ValueError(f"record {name!r}: field {f.name!r} ({f.width} bits) starts at "
                                 f"bit {bit}, which is not a multiple of its width")
            self.offsets[f.name] = bit
            bit += f.width
        if bit % 64:
            raise ValueError(f"record {name!r} is {bit} bits long; pad it to a multiple of 64 "
                             f"so that records stay aligned in a DMA buffer")
        self.width = bit
        self.size = bit // 8
        self.layout = data.StructLayout({f.name: f.amaranth_shape() for f in self.fields})
        self.dtype = np.dtype({
            "names": [f.name for f in self.fields],
            "formats": [_NATURAL[f.width] for f in self.fields],
            "offsets": [self.offsets[f.name] // 8 for f in self.fields],
            "itemsize": self.size,
        })
        self._by_name = {f.name: f for f in self.fields}

    def __repr__(self):
        return f"Record({self.name!r}, {self.size} bytes)"

    def __getitem__(self, name: str) -> Field:
        return self._by_name[name]

    def flag(self, field: str, name: str) -> int:
        """Mask of flag ``name`` in flags field ``field``."""
        return self._by_name[field].mask(name)

    # Host-side packing. These are for tests, tools and small control traffic; bulk data moves as
    # numpy arrays of :attr:`dtype`.
    def pack(self, **values) -> bytes:
        """Pack field values (integers) into the record's bytes."""
        unknown = set(values) - set(self._by_name)
        if unknown:
            raise KeyError(f"record {self.name!r} has no field(s) {sorted(unknown)!r}")
        word = 0
        for name, value in values.items():
            f = self._by_name[name]
            value = int(value)
            if not 0 <= value < (1 << f.width):
                raise ValueError(f"{self.name}.{name} = {value!r} does not fit in {f.width} bits")
            word |= value << self.offsets[name]
        return word.to_bytes(self.size, "little")

    def unpack(self, raw: bytes) -> dict:
        """Unpack the record's bytes into a dict of integers."""
        if len(raw) != self.size:
            raise ValueError(f"record {self.name!r} is {self.size} bytes, got {len(raw)}")
        word = int.from_bytes(raw, "little")
        return {f.name: (word >> self.offsets[f.name]) & ((1 << f.width) - 1)
                for f in self.fields}

    def array(self, n: int = 0) -> np.ndarray:
        """A zeroed numpy array of ``n`` records."""
        return np.zeros(n, dtype=self.dtype)

    def signature(self) -> str:
        return f"{self.name}{{{';'.join(f.signature() for f in self.fields)}}}"


# Cycle stamps carried in records are the low bits of the free-running cycle counter. Latency is
# their difference modulo 2**CYCLE_STAMP_BITS (about 17 s at 250 MHz before it wraps).
CYCLE_STAMP_BITS = 32


# Market data into the feed stage: a 64-bit AXI-Stream-like beat. Byte lane k is bits 8k..8k+7 and
# carries the k-th byte of the beat in stream order. `keep` marks the lanes that hold bytes; the held
# lanes must be contiguous from lane 0 (a packed stream: only the last beat of a frame is partial).
# `last` marks the final beat of a frame: one MoldUDP64 payload, or a chunk of a historical file
# that ends on a message boundary.
MD_BEAT = Record("MdBeat", [
    Field("data", 64, "stream bytes, lane 0 first"),
    Flags("keep", 8, tuple(f"lane{k}" for k in range(8))),
    Flags("flags", 8, ("last",)),
    Field("_pad0", 16),
    Field("_pad1", 32),
], doc="One 64-bit beat of the market-data input stream.")


BBO_UPDATE = Record("BboUpdate", [
    Field("seq", 64, "sequence number of the message that caused the change: the 1-based index "
                     "of the message in a historical file, or the MoldUDP64 sequence number"),
    Field("bid_price", 32, "best bid, in the feed's integer price units (ITCH Price(4): 1e-4 $)"),
    Field("ask_price", 32, "best ask, in the feed's integer price units"),
    Field("bid_size", 64, "aggregate displayed size at the best bid (shares or lots); 64 bits "
                          "because several orders of up to 2**32-1 shares may share a level"),
    Field("ask_size", 64, "aggregate displayed size at the best ask"),
    Field("ingress_cycle", 32, "cycle at which the causing message's last byte entered"),
    Field("egress_cycle", 32, "cycle at which the book wrote this record into its output "
                              "queue; time the record then waits there for a backpressured "
                              "reader is not counted"),
    Field("slot", 16, "symbol slot"),
    Flags("flags", 16, ("bid_valid", "ask_valid", "refill", "crossed"),
          "bid_valid / ask_valid: the side has a level; refill: the symbol's hardware book needs "
          "levels from the host; crossed: both sides present and bid >= ask (locked or crossed)"),
    Field("locate", 16, "ITCH stock locate of the symbol (0 for crypto)"),
    Field("_pad0", 16),
], doc="The top of book of one symbol after a change of its best bid or ask price or size.")


# A compact level-update message for crypto venues. It travels in-band on the market-data stream
# with the same 2-byte big-endian length prefix as ITCH, so one feed stage decodes both. Its type
# byte is 'l', which ITCH 5.0 does not use. The host produces these from exchange feeds. Unlike
# ITCH its integers are little-endian: it is ours, and the rest of the contract is little-endian.
LEVEL_UPDATE_TYPE = ord("l")
LEVEL_UPDATE = Record("LevelUpdate", [
    Field("message_type", 8, "always ord('l')"),
    Flags("flags", 8, ("sell", "snapshot_begin", "snapshot_end", "delete")),
    Field("slot", 16, "symbol slot"),
    Field("price", 32, "price in integer ticks of the instrument"),
    Field("size", 32, "new aggregate size at this price, in integer lots (ignored on delete)"),
    Field("_pad0", 32),
    Field("exchange_seq", 64, "the venue's update id, for the host's gap checks"),
], doc="Set (or delete) the aggregate size of one price level of a crypto book.")


ORDER_REQUEST = Record("OrderRequest", [
    Field("client_order_id", 64, "unique per session"),
    Field("orig_client_order_id", 64, "the order a cancel or replace refers to"),
    Field("price", 32, "limit price in integer price units"),
    Field("quantity", 32, "quantity in shares or lots"),
    Field("slot", 16, "symbol slot"),
    Field("kind", 8, "1 new, 2 cancel, 3 replace"),
    Flags("flags", 8, ("sell", "ioc", "fok", "post_only")),
    Field("_pad0", 32),
], doc="An order request from the host to the risk gate; accepted ones go on toward the venue.")

ORDER_KIND_NEW, ORDER_KIND_CANCEL, ORDER_KIND_REPLACE = 1, 2, 3


VERDICT = Record("Verdict", [
    Field("client_order_id", 64, "the request this verdict answers"),
    Field("reasons", 32, "bit set of reject reasons (0 when accepted)"),
    Field("ingress_cycle", 32, "cycle at which the request entered"),
    Field("egress_cycle", 32, "cycle at which the gate registered the verdict on its output "
                              "(it decides only while its outputs have room)"),
    Field("slot", 16, "symbol slot"),
    Flags("flags", 8, ("accepted",)),
    Field("kind", 8, "the request's kind"),
], doc="The risk gate's answer to one order request.")


FILL = Record("Fill", [
    Field("client_order_id", 64, "the order that was filled"),
    Field("price", 32, "execution price in integer price units"),
    Field("quantity", 32, "executed quantity"),
    Field("slot", 16, "symbol slot"),
    Flags("flags", 8, ("sell", "done")),
    Field("_pad0", 8),
    Field("_pad1", 32),
], doc="A fill from the venue, forwarded by the host so the gate's positions stay live.")




# --------------------------------------------------------------------------------------------
# Registers
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Register:
    """A 32-bit register of the register bank.

    Parameters
    ----------
    name : str
        UPPER_SNAKE name; the host addresses registers by this name only.
    access : {"r", "rw"}
        ``r``: read-only status or counter; ``rw``: control the host writes.
    doc : str
        Meaning and unit.
    count : int
        Number of consecutive instances (an array indexed from 0).
    init : int
        Value after reset (``rw`` registers).
    """

    name: str
    access: str
    doc: str = ""
    count: int = 1
    init: int = 0

    def __post_init__(self):
        if self.access not in ("r", "rw"):
            raise ValueError(f"register {self.name!r} has access {self.access!r}; "
                             f"expected 'r' or 'rw'")
        if self.count < 1:
            raise ValueError(f"register {self.name!r} has count {self.count!r}; expected >= 1")


class RegisterMap:
    """Registers in declaration order; each takes 4 bytes of address space per instance."""

    def __init__(self, registers: list[Register]):
        self.registers = tuple(registers)
        self._addr = {}
        addr = 0
        for reg in self.registers:
            if reg.name in self._addr:
                raise ValueError(f"register {reg.name!r} is declared twice")
            self._addr[reg.name] = addr
            addr += 4 * reg.count
        self.size = addr
        self._by_name = {reg.name: reg for reg in self.registers}

    def __iter__(self):
        return iter(self.registers)

    def __getitem__(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no register named {name!r}") from None

    def address(self, name: str, index: int = 0) -> int:
        """Byte address of register ``name`` (instance ``index`` of an array)."""
        reg = self[name]
        if not 0 <= index < reg.count:
            raise IndexError(f"register {name!r} has {reg.count} instance(s); "
                             f"index {index!r} is out of range")
        return self._addr[name] + 4 * index

    def signature(self) -> str:
        return ";".join(f"{r.name}:{r.access}:{r.count}:{r.init}" for r in self.registers)


DEVICE_ID = 0x544B4C4E  # "TKLN"

# --- risk gate registers (hdl/risk) ---
# Limits are double-buffered: the host writes the shadow values (the rw registers below, except
# RISK_KILL and RISK_COMMIT) and any write to RISK_COMMIT copies the whole set into the gate's
# active set on one clock edge, so every order is checked against one complete set. A limit of 0
# rejects (the gate fails closed until the host commits limits). Per-symbol arrays have one
# instance per symbol slot.
RISK_SLOTS = 16  # per-symbol limits live in flip-flops: 16 symbols keep the bank small
RISK_REASONS = (
    "KILL_SWITCH",      # global (RISK_KILL) or per-symbol kill; new and replace only
    "SYMBOL_DISABLED",  # slot out of range (any kind), or symbol not enabled (new, replace)
    "RESTRICTED",       # reduce-only symbol and the order's worst case (position + open buys
                        # + quantity for a buy, position - open sells - quantity for a sell)
                        # would end long (buy) or short (sell): it may only move the position
                        # toward zero, never past it (at +100, a sell of 150 is refused)
    "BAD_REQUEST",      # unknown kind, zero price or quantity, value wider than the gate's width
    "MAX_QUANTITY",     # quantity above RISK_MAX_ORDER_QTY of the symbol
    "MAX_NOTIONAL",     # price * quantity above RISK_MAX_NOTIONAL_HI:LO
    "PRICE_COLLAR",     # one-sided, against the live BBO: a buy above ask + band or a sell
                        # below bid - band (band in price units), a buy above
                        # ask * (1 + band / 10^4) or a sell below bid * (1 - band / 10^4) (in
                        # basis points); a price at the bound passes, and so does a buy below
                        # the ask or a sell above the bid, however far; or the side it is
                        # checked against empty, or the BBO stale
    "POSITION_LIMIT",   # worst case (fills + open orders + this order) beyond max long/short
    "OPEN_ORDERS",      # open orders at RISK_MAX_OPEN_ORDERS or at the gate's table size
    "RATE_GLOBAL",      # global token bucket empty
    "RATE_SYMBOL",      # the symbol's token bucket empty
    "DUPLICATE_ID",     # client order id seen among the most recent requests (any kind),
                        # or (new, replace) still held by an order open in the gate
    "SELF_TRADE",       # would cross one of our own open orders on the other side
    "UNKNOWN_ORDER",    # cancel or replace of an order the gate does not hold open
)
RISK_REGISTERS = [
    Register("RISK_KILL", "rw", "bit 0: global kill switch, without a commit: new and replace "
                                "orders decided from the second cycle after the bank's write "
                                "strobe are refused (a commit acts from the first); cancels pass"),
    Register("RISK_COMMIT", "rw", "any write copies the shadow limit set into the active set"),
    Register("RISK_MAX_NOTIONAL_LO", "rw", "max price * quantity of one order, low word "
                                           "(price units * shares)"),
    Register("RISK_MAX_NOTIONAL_HI", "rw", "max price * quantity of one order, high word"),
    Register("RISK_COLLAR_CONFIG", "rw", "bit 0: collar enabled; bit 1: band in basis points "
                                         "(else in price units)"),
    Register("RISK_COLLAR_BAND", "rw", "collar band: how far above the ask a buy, or below the "
                                       "bid a sell, may be priced; price units, or basis points "
                                       "of that ask or bid"),
    Register("RISK_BBO_MAX_AGE", "rw", "cycles after which a BBO is stale (0: never stale)"),
    Register("RISK_MAX_OPEN_ORDERS", "rw", "max orders open in the gate at once"),
    Register("RISK_RATE_SHIFT", "rw", "global bucket gains a token every 2**(bits 0-5) cycles"),
    Register("RISK_RATE_BURST", "rw", "global bucket size in orders (saturates at 65535)"),
    Register("RISK_SYMBOL_RATE_SHIFT", "rw", "each symbol's bucket gains a token every "
                                             "2**(bits 0-5) cycles"),
    Register("RISK_SYMBOL_RATE_BURST", "rw", "each symbol's bucket size (saturates at 65535)"),
    Register("RISK_SYMBOL_CONTROL", "rw", "bit 0: enabled; bit 1: kill; bit 2: reduce-only",
             count=RISK_SLOTS),
    Register("RISK_MAX_ORDER_QTY", "rw", "max quantity of one order", count=RISK_SLOTS),
    Register("RISK_MAX_LONG", "rw", "max long position, worst case", count=RISK_SLOTS),
    Register("RISK_MAX_SHORT", "rw", "max short position, worst case", count=RISK_SLOTS),
    Register("RISK_ACCEPTED", "r", "order requests accepted"),
    Register("RISK_REJECTED", "r", "order requests rejected"),
    Register("RISK_REJECTS", "r", "rejected requests with reason bit i set (RISK_REASONS order)",
             count=len(RISK_REASONS)),
    Register("RISK_FILLS", "r", "fills applied to positions"),
    Register("RISK_FILLS_UNKNOWN", "r", "fills whose client order id was not open in the gate"),
    Register("RISK_DROPPED", "r", "fills and BBO records with a slot out of range, ignored (the "
                                  "top hands the gate only BBO records of its slots)"),
    Register("RISK_OPEN_ORDERS", "r", "orders open in the gate now"),
    Register("RISK_OPEN_CAPACITY", "r", "entries of the gate's open-order table, a build "
                                        "parameter: the gate never holds more orders open"),
]

# --- feed stage registers (hdl/feed) ---
FEED_REGISTERS = [
    Register("MD_BEATS", "r", "market-data beats accepted"),
    Register("MD_FRAMES", "r", "market-data frames (beats with last) accepted"),
    Register("MSGS_IN", "r", "messages delimited by the feed stage"),
    Register("MSGS_DECODED", "r", "messages decoded: delimited, and not dropped by MoldUDP64 "
                                  "sequencing"),
    Register("DROP_BAD_LENGTH", "r", "messages whose length disagrees with their type"),
    Register("DROP_UNKNOWN_TYPE", "r", "messages of a type the feed stage does not know"),
    Register("DROP_TRUNCATED", "r", "frames that ended in the middle of a message"),
    Register("DROP_ZERO_LENGTH", "r", "messages with a length prefix of 0"),
    Register("FEED_EVENTS", "r", "book events handed to the book stage"),
    Register("FEED_HOST_RECORDS", "r", "HOST_MESSAGE records sent to the host"),
    Register("FEED_GAP_RECORDS", "r", "FEED_GAP records sent to the host"),
    Register("FEED_DROP_UNSUBSCRIBED", "r", "book messages of a locate (or level updates of a "
                                           "slot) with no subscription, dropped"),
    Register("FEED_SUBSCRIBED", "r", "slots handed out by directory messages so far"),
    Register("FEED_SLOT_OVERFLOW", "r", "directory messages that would subscribe but found no "
                                        "free slot"),
    Register("FEED_SUB_REFUSED", "r", "host writes of FEED_SUB_SLOT refused: a slot beyond the "
                                      "build's slots (the entry is left as it was)"),
    Register("MOLD_PACKETS", "r", "MoldUDP64 packets whose 20-byte header arrived"),
    Register("MOLD_HEARTBEATS", "r", "MoldUDP64 heartbeats (count 0)"),
    Register("MOLD_END_OF_SESSION", "r", "MoldUDP64 end-of-session packets (count 0xFFFF)"),
    Register("MOLD_GAPS", "r", "packets or heartbeats whose sequence number was ahead of the "
                               "session's expected one (each sends a FEED_GAP record)"),
    Register("MOLD_MISSING_MESSAGES", "r", "messages skipped over by gaps (wraps at 2**32)"),
    Register("MOLD_OVERLAP_PACKETS", "r", "packets that repeated some delivered messages"),
    Register("MOLD_DUPLICATE_PACKETS", "r", "packets with nothing new (duplicate or old), dropped"),
    Register("MOLD_DUPLICATE_MESSAGES", "r", "messages dropped as already delivered"),
    Register("MOLD_AFTER_END", "r", "data packets of a session after its end, dropped"),
    Register("MOLD_BAD_COUNT", "r", "message blocks beyond the header's count (each dropped), "
                                    "plus packets that ended before their count"),
    Register("MOLD_SESSION_OVERFLOW", "r", "packets of a new session when the session table is "
                                           "full, dropped"),
    Register("FEED_FRAMING", "rw", "0: historical-file framing; 1: MoldUDP64 (one packet per "
                                   "frame)"),
    Register("FEED_MOLD_CONFIG", "rw", "bit 0: a new session starts at its first packet's "
                                       "sequence number (else at 1)"),
    Register("FEED_MOLD_RESET", "rw", "any write forgets every MoldUDP64 session"),
    Register("FEED_SUB_MODE", "rw", "bits 0-1: 0 every directory message subscribes the next "
                                    "free slot; 1 only those whose stock is in FEED_SUB_TICKER; "
                                    "2 host-written entries only. bit 2: pass events of "
                                    "unsubscribed locates on (slot 0xFFFF) instead of dropping"),
    Register("FEED_SUB_LOCATE", "rw", "stock locate of the next FEED_SUB_SLOT write"),
    Register("FEED_SUB_SLOT", "rw", "a write sets FEED_SUB_LOCATE -> slot (bits 0-15, below "
                                    "the build's slots, else refused and counted); with "
                                    "bit 31 set it removes the locate's subscription"),
    Register("FEED_SUB_TICKER_LO", "rw", "stock bytes 0-3 (byte 0 in bits 0-7), space padded; "
                                         "0 in LO and HI: unused entry", count=8),
    Register("FEED_SUB_TICKER_HI", "rw", "stock bytes 4-7", count=8),
]

# A message the feed stage forwards to the host as it came (every ITCH type that is not a book
# event: S R H Y L V W K J h P Q B I N O); the host decodes it with host.feed.itch.
HOST_MESSAGE = Record("HostMessage", [
    Field("seq", 64, "the message's sequence number (file index or MoldUDP64 sequence number)"),
    Field("ingress_cycle", 32, "cycle at which the message's last byte entered"),
    Field("slot", 16, "symbol slot of its stock locate, 0xFFFF when not subscribed"),
    Field("length", 8, "message length in bytes, type byte included"),
    Flags("flags", 8, ("subscribed",)),
    *[Field(f"bytes{k}", 64, f"message bytes {8 * k}..{8 * k + 7}, byte {8 * k} in bits 0-7")
      for k in range(7)],
], doc="One whole market-data message for the host: raw bytes in wire order, zero padded.")

# A MoldUDP64 gap: the host may ask the session's retransmission server for expected..received-1.
FEED_GAP = Record("FeedGap", [
    Field("expected", 64, "next sequence number the session expected"),
    Field("received", 64, "sequence number the packet carried"),
    Field("session_head", 64, "session name bytes 0-7 (byte 0 in bits 0-7)"),
    Field("session_tail", 16, "session name bytes 8-9"),
    Field("session_index", 8, "entry of the feed's session table"),
    Flags("flags", 8, ("heartbeat", "end_of_session")),
    Field("ingress_cycle", 32, "cycle at which the packet's header completed"),
], doc="Messages expected .. received-1 of a MoldUDP64 session never arrived.")

# --- book stage registers (hdl/book) ---
BOOK_REGISTERS = [
    Register("BBO_OUT", "r", "BBO update records emitted"),
    Register("BOOK_ORDER_CAPACITY", "r", "orders the order table holds (ways * sets), a build "
                                         "parameter"),
    Register("BOOK_LEVELS", "r", "price levels held per symbol and side, a build parameter"),
    Register("BOOK_ORDERS_LIVE", "r", "orders in the order table now"),
    Register("BOOK_TABLE_FULL", "r", "adds whose order-table set was full: the symbol is handed "
                                     "to the host's book (refill flag, sticky)"),
    Register("BOOK_REFILL", "r", "BBO records that newly set the refill flag: a side's best "
                                 "level lies beyond the held levels, or the symbol is lost"),
    Register("BOOK_SYMBOLS_LOST", "r", "symbols whose hardware book is no longer exact "
                                       "(table full, replace onto a live reference, locate "
                                       "mismatch); the host books them"),
    Register("BOOK_UNKNOWN_ORDER", "r", "executes, cancels, deletes and replaces of a reference "
                                        "not in the order table (ignored)"),
    Register("BOOK_DUPLICATE_ORDER", "r", "adds and replaces onto a reference already live"),
    Register("BOOK_LOCATE_MISMATCH", "r", "modifies whose symbol is not the order's"),
    Register("BOOK_BAD_SLOT", "r", "book events with a slot beyond the build's slots"),
    Register("BOOK_REFILLS_APPLIED", "r", "refill batches installed: the side holds the host's "
                                          "levels as of the batch's seq"),
    Register("BOOK_REFILLS_STALE", "r", "refill batches discarded because a book event of their "
                                        "slot was applied after their seq (the host retries)"),
    Register("BOOK_REFILLS_REJECTED", "r", "refill batches discarded as unusable: slot beyond the "
                                           "build's slots, symbol lost (its order table is "
                                           "incomplete), or records out of order in the batch"),
]

# The host's answer to a ``refill`` flag: the best levels of one side of one symbol from its
# software book, as of message ``seq``. A batch is the records of one (slot, side) from ``first``
# to ``last``, level 0 (the best) first, indices consecutive; the book stage installs the whole
# side at once, and only if no book event of that slot was applied after ``seq`` (otherwise it
# discards the batch and counts it stale: the host sends a newer one). The host must build the
# batch from every message up to ``seq`` and only from a ``seq`` the stage has already reached (a
# record's seq it has received is such a point). Levels beyond the build's BOOK_LEVELS are
# ignored; a side with no level is a single record with ``empty``.
BOOK_REFILL_LEVEL = Record("BookRefillLevel", [
    Field("seq", 64, "message sequence number the levels are exact as of"),
    Field("size", 64, "aggregate size of the level (shares or lots)"),
    Field("price", 32, "price of the level, in the feed's integer price units"),
    Field("orders", 32, "orders resting at the level (1 for a crypto level)"),
    Field("orders_below", 32, "orders resting at prices worse than the batch's last level "
                              "(crypto: levels); read from the record with ``last``"),
    Field("slot", 16, "symbol slot"),
    Field("locate", 16, "ITCH stock locate of the symbol (0 for crypto), copied into the BBO "
                        "record the refill causes"),
    Field("level", 8, "index of the level in the batch, 0 = best"),
    Flags("flags", 8, ("sell", "first", "last", "empty"),
          "sell: ask side (else bid); first / last: the batch's first / last record; empty: the "
          "side has no level (price, size, orders ignored)"),
    Field("_pad0", 16),
    Field("_pad1", 32),
], doc="One price level of a host refill of one side of a symbol's hardware book.")

CORE_REGISTERS = [
    Register("DEVICE_ID", "r", "constant 0x544B4C4E ('TKLN')"),
    Register("FORMAT_HASH", "r", "low 32 bits of the contract's format hash"),
    Register("CYCLE_LO", "r", "free-running cycle counter, low word; reading it latches CYCLE_HI"),
    Register("CYCLE_HI", "r", "cycle counter high word, as latched by the last CYCLE_LO read"),
    Register("CONTROL", "rw", "bit 0: clear all counters (self-clearing)"),
]

REGISTERS = RegisterMap([
    *CORE_REGISTERS,
    *FEED_REGISTERS,
    *BOOK_REGISTERS,
    *RISK_REGISTERS,
])


# --- streams and the format hash ---

RECORDS = (MD_BEAT, BBO_UPDATE, LEVEL_UPDATE, ORDER_REQUEST, VERDICT, FILL, HOST_MESSAGE, FEED_GAP,
           BOOK_REFILL_LEVEL)


@dataclass(frozen=True)
class Stream:
    """A DMA stream of the top: its port name, direction seen from the gateware, and record."""

    name: str
    direction: str      # "in": host → FPGA, "out": FPGA → host
    record: Record
    doc: str = ""


#: The top's streams by port name. The top's ports, the simulated link's buffers and the board's
#: DMA channels are all derived from this table.
STREAMS = {s.name: s for s in (
    Stream("md_in", "in", MD_BEAT, "market data: ITCH historical framing or MoldUDP64 payloads"),
    Stream("bbo_out", "out", BBO_UPDATE, "top-of-book changes of subscribed symbols"),
    Stream("order_in", "in", ORDER_REQUEST, "order requests from the host to the risk gate"),
    Stream("fill_in", "in", FILL, "fills from the venue, so the gate's positions stay live"),
    Stream("verdict_out", "out", VERDICT, "one verdict per order request, in request order"),
    Stream("order_out", "out", ORDER_REQUEST, "accepted requests, toward the venue"),
    Stream("host_out", "out", HOST_MESSAGE, "messages forwarded whole to the host: "
                                            "S R H Y L V W K J h P Q B I N O"),
    Stream("gaps_out", "out", FEED_GAP, "MoldUDP64 sequence gaps, for retransmission requests"),
    Stream("refill_in", "in", BOOK_REFILL_LEVEL, "the host's levels for symbols whose records "
                                                 "carry the refill flag"),
)}


def _format_hash() -> int:
    text = "\n".join([r.signature() for r in RECORDS] + [REGISTERS.signature()])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


FORMAT_HASH = _format_hash()
