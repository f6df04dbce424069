"""Exact conversion of venue decimal strings to integer ticks and lots, and LEVEL_UPDATE messages.

Crypto venues send prices and sizes as decimal strings ("0.35130000", "6195.00000000"). The
gateware works in integers: a price is a count of the instrument's ticks and a size a count of its
lots, both 32 bits (:data:`hdl.wire.LEVEL_UPDATE`). The conversion here is exact (``Decimal``
arithmetic, never float): a price that is not a whole number of ticks, or a value that does not fit
in 32 bits, is refused with an error naming the instrument and the value.

A level update travels in-band on the market-data stream like an ITCH message: a 2-byte big-endian
length, then the record's bytes (type byte ``ord('l')``, fields little-endian as the record says).
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Sequence

from hdl.wire import LEVEL_UPDATE, LEVEL_UPDATE_TYPE

__all__ = ["LevelError", "Instrument", "LevelUpdate", "LevelBatch", "decimal_grid",
           "encode_level_message", "decode_level_message", "snapshot_updates", "diff_updates",
           "clear_batch",
           "FLAG_SELL", "FLAG_SNAPSHOT_BEGIN", "FLAG_SNAPSHOT_END", "FLAG_DELETE",
           "LEVEL_MESSAGE_LENGTH"]

FLAG_SELL = LEVEL_UPDATE.flag("flags", "sell")
FLAG_SNAPSHOT_BEGIN = LEVEL_UPDATE.flag("flags", "snapshot_begin")
FLAG_SNAPSHOT_END = LEVEL_UPDATE.flag("flags", "snapshot_end")
FLAG_DELETE = LEVEL_UPDATE.flag("flags", "delete")

LEVEL_MESSAGE_LENGTH = LEVEL_UPDATE.size  # bytes after the 2-byte length prefix

_U32 = 1 << 32
_U64 = 1 << 64
_SLOTS = 1 << LEVEL_UPDATE["slot"].width
# Enough digits for any integer quotient below 2**64 and any venue string: divmod stays exact.
_EXACT = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                                          decimal.Inexact, decimal.Overflow])


_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)


class LevelError(ValueError):
    """A venue value that cannot become a LEVEL_UPDATE field exactly."""


def _decimal(value, what: str) -> Decimal:
    if isinstance(value, float):
        raise LevelError(f"{what} must be a decimal string or Decimal, not the float {value!r}")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, str):
        # Venues send plain ASCII decimals ("0.35130000"); Decimal() alone would also take
        # spaces, "_" separators, exponents, a "+" and non-ASCII digits.
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise LevelError(f"{what} {value!r} is not a plain decimal number")
        d = Decimal(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        d = Decimal(value)
    else:
        raise LevelError(f"{what} must be a decimal string or Decimal, got "
                         f"{type(value).__name__} {value!r}")
    if not d.is_finite():
        raise LevelError(f"{what} {value!r} is not a finite number")
    return d


@dataclass(frozen=True)
class Instrument:
    """A crypto instrument as the gateware sees it: a slot and the integer grid of its book.

    Parameters
    ----------
    symbol : str
        The venue's symbol (e.g. ``"NKNUSDT"``, ``"BTC-USDT"``).
    slot : int
        Symbol slot in the gateware, 0 .. 65535.
    tick : Decimal or str
        Price increment: a price is sent as a whole number of ticks.
    lot : Decimal or str
        Size increment: a size is sent as a whole number of lots.
    """

    symbol: str
    slot: int
    tick: Decimal
    lot: Decimal

    def __post_init__(self):
        if not isinstance(self.symbol, str) or not self.symbol:
            raise LevelError(f"instrument symbol must be a non-empty str, got {self.symbol!r}")
        if isinstance(self.slot, bool) or not isinstance(self.slot, int) \
                or not 0 <= self.slot < _SLOTS:
            raise LevelError(f"instrument {self.symbol!r}: slot must be an int in "
                             f"0..{_SLOTS - 1}, got {self.slot!r}")
        for name in ("tick", "lot"):
            d = _decimal(getattr(self, name), f"instrument {self.symbol!r} {name}")
            if d <= 0:
                raise LevelError(f"instrument {self.symbol!r}: {name} must be > 0, "
                                 f"got {getattr(self, name)!r}")
            object.__setattr__(self, name, d)

    def _units(self, value, unit: Decimal, what: str) -> int:
        d = _decimal(value, f"{self.symbol} {what}")
        if d < 0:
            raise LevelError(f"{self.symbol} {what} {value!r} is negative")
        try:
            count, rest = _EXACT.divmod(d, unit)
        except decimal.DecimalException:
            raise LevelError(f"{self.symbol} {what} {value!r} is out of range") from None
        if rest:
            raise LevelError(f"{self.symbol} {what} {value!r} is not a whole number of "
                             f"{what == 'price' and 'ticks' or 'lots'} of {unit}")
        n = int(count)
        if n >= _U32:
            raise LevelError(f"{self.symbol} {what} {value!r} is {n} "
                             f"{what == 'price' and 'ticks' or 'lots'} of {unit}, which does not "
                             f"fit in 32 bits (max {_U32 - 1})")
        return n

    def price_ticks(self, price) -> int:
        """A price string as a whole number of ticks; :class:`LevelError` if it is off the grid
        or does not fit in 32 bits."""
        return self._units(price, self.tick, "price")

    def size_lots(self, size) -> int:
        """A size string as a whole number of lots; :class:`LevelError` if it is not a multiple
        of the lot or does not fit in 32 bits."""
        return self._units(size, self.lot, "size")

    def price_text(self, ticks: int) -> str:
        """Ticks back to the venue's shortest decimal string (``30244``, ``0.08``)."""
        return _plain(ticks * self.tick)

    def size_text(self, lots: int) -> str:
        """Lots back to the venue's shortest decimal string."""
        return _plain(lots * self.lot)


def _plain(d: Decimal) -> str:
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def decimal_grid(values: Iterable[str]) -> Decimal:
    """The coarsest power-of-ten grid that holds every value: ``10**-k`` with ``k`` the largest
    number of significant decimal places among ``values`` (``1`` for whole numbers).

    Used when a recording carries no instrument definition: the tick and lot are then the
    finest increments the venue actually sent.
    """
    places = 0
    for v in values:
        exponent = _decimal(v, "value").normalize().as_tuple().exponent
        if exponent < 0:
            places = max(places, -exponent)
    return Decimal(1).scaleb(-places)


@dataclass(frozen=True, slots=True)
class LevelUpdate:
    """One LEVEL_UPDATE record (:data:`hdl.wire.LEVEL_UPDATE`), fields as integers.

    Attributes
    ----------
    slot : int
    flags : int
        Bit set of ``FLAG_SELL``, ``FLAG_SNAPSHOT_BEGIN``, ``FLAG_SNAPSHOT_END``, ``FLAG_DELETE``.
    price : int
        Ticks.
    size : int
        Lots (0 on delete).
    exchange_seq : int
        The venue's update id.
    """

    slot: int
    flags: int
    price: int
    size: int
    exchange_seq: int

    @property
    def sell(self) -> bool:
        return bool(self.flags & FLAG_SELL)

    @property
    def delete(self) -> bool:
        return bool(self.flags & FLAG_DELETE)

    def body(self) -> bytes:
        """The record's bytes (no length prefix)."""
        return LEVEL_UPDATE.pack(message_type=LEVEL_UPDATE_TYPE, flags=self.flags, slot=self.slot,
                                 price=self.price, size=self.size,
                                 exchange_seq=self.exchange_seq)

    def encode(self) -> bytes:
        """The in-band message: 2-byte big-endian length, then the record."""
        return LEVEL_MESSAGE_LENGTH.to_bytes(2, "big") + self.body()


@dataclass(frozen=True, slots=True)
class LevelBatch:
    """The level updates one venue message turns into.

    Attributes
    ----------
    symbol : str
    slot : int
    update_id : int
        The venue's update id of the book state after this batch.
    updates : tuple of LevelUpdate
        Possibly empty (a venue message that changed no level still advances ``update_id``).
    snapshot : bool
        True if the batch replaces the book (first update flagged ``snapshot_begin``).
    local_ts_ns : int
        Local receive time of the venue message, ns since the epoch.
    """

    symbol: str
    slot: int
    update_id: int
    updates: tuple
    snapshot: bool
    local_ts_ns: int = 0

    def encode(self) -> bytes:
        """The batch's in-band messages, concatenated."""
        return b"".join(u.encode() for u in self.updates)


def encode_level_message(*, slot: int, price: int, size: int, sell: bool = False,
                         exchange_seq: int = 0, snapshot_begin: bool = False,
                         snapshot_end: bool = False, delete: bool = False) -> bytes:
    """One in-band LEVEL_UPDATE message: 2-byte big-endian length, then the record.

    Parameters
    ----------
    slot : int
        Symbol slot.
    price : int
        Price in ticks (32 bits).
    size : int
        New aggregate size in lots (32 bits); ignored by the book on delete.
    sell : bool
        Ask side if True, bid side otherwise.
    exchange_seq : int
        The venue's update id (64 bits).
    snapshot_begin, snapshot_end, delete : bool
        The record's flags.

    Returns
    -------
    bytes
        ``2 + LEVEL_MESSAGE_LENGTH`` bytes.

    Raises
    ------
    ValueError
        If a value does not fit its field.
    """
    flags = ((FLAG_SELL if sell else 0) | (FLAG_SNAPSHOT_BEGIN if snapshot_begin else 0)
             | (FLAG_SNAPSHOT_END if snapshot_end else 0) | (FLAG_DELETE if delete else 0))
    return LevelUpdate(slot, flags, price, size, exchange_seq).encode()


def decode_level_message(message: bytes) -> LevelUpdate:
    """Parse one in-band LEVEL_UPDATE message (with its 2-byte length prefix).

    Raises
    ------
    ValueError
        On a wrong length or type byte.
    """
    if len(message) != 2 + LEVEL_MESSAGE_LENGTH:
        raise ValueError(f"a level message is {2 + LEVEL_MESSAGE_LENGTH} bytes with its prefix, "
                         f"got {len(message)}")
    length = int.from_bytes(message[:2], "big")
    if length != LEVEL_MESSAGE_LENGTH:
        raise ValueError(f"level message length prefix is {length}, "
                         f"expected {LEVEL_MESSAGE_LENGTH}")
    fields = LEVEL_UPDATE.unpack(bytes(message[2:]))
    if fields["message_type"] != LEVEL_UPDATE_TYPE:
        raise ValueError(f"type byte is 0x{fields['message_type']:02x}, "
                         f"expected 0x{LEVEL_UPDATE_TYPE:02x} ('l')")
    return LevelUpdate(fields["slot"], fields["flags"], fields["price"], fields["size"],
                       fields["exchange_seq"])


def _check_seq(instrument: Instrument, exchange_seq: int) -> None:
    if not 0 <= exchange_seq < _U64:
        raise LevelError(f"{instrument.symbol} update id {exchange_seq!r} does not fit in 64 bits")


def snapshot_updates(instrument: Instrument, bids: Sequence, asks: Sequence,
                     exchange_seq: int) -> tuple[LevelUpdate, ...]:
    """Level updates that replace the instrument's whole book.

    Parameters
    ----------
    instrument : Instrument
    bids, asks : sequence of [price, size, ...]
        Decimal strings as the venue sent them; extra elements per level are ignored. Levels of
        size 0 are left out.
    exchange_seq : int
        The snapshot's update id.

    Returns
    -------
    tuple of LevelUpdate
        Bids then asks; the first flagged ``snapshot_begin``, the last ``snapshot_end``. An empty
        book is one delete flagged both, at price 0.
    """
    _check_seq(instrument, exchange_seq)
    slot = instrument.slot
    out = []
    for flags, levels in ((0, bids), (FLAG_SELL, asks)):
        for level in levels:
            price = instrument.price_ticks(level[0])
            size = instrument.size_lots(level[1])
            if size:
                out.append([slot, flags, price, size])
    if not out:
        return (LevelUpdate(slot, FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END | FLAG_DELETE, 0, 0,
                            exchange_seq),)
    out[0][1] |= FLAG_SNAPSHOT_BEGIN
    out[-1][1] |= FLAG_SNAPSHOT_END
    return tuple(LevelUpdate(s, f, p, q, exchange_seq) for s, f, p, q in out)


def clear_batch(instrument: Instrument, update_id: int, local_ts_ns: int = 0) -> LevelBatch:
    """The batch that empties the instrument's book in the gateware (an empty snapshot), sent
    when the host's book loses its sync with the venue; ``update_id`` is the last id the book
    was right at."""
    return LevelBatch(instrument.symbol, instrument.slot, update_id,
                      snapshot_updates(instrument, (), (), update_id), True, local_ts_ns)


def diff_updates(instrument: Instrument, bids: Sequence, asks: Sequence,
                 exchange_seq: int) -> tuple[LevelUpdate, ...]:
    """Level updates for an incremental venue message: each level's new size; 0 deletes it.

    Parameters are as for :func:`snapshot_updates`.
    """
    _check_seq(instrument, exchange_seq)
    slot = instrument.slot
    out = []
    for side, levels in ((0, bids), (FLAG_SELL, asks)):
        for level in levels:
            price = instrument.price_ticks(level[0])
            size = instrument.size_lots(level[1])
            flags = side if size else side | FLAG_DELETE
            out.append(LevelUpdate(slot, flags, price, size, exchange_seq))
    return tuple(out)
