"""The public BBO CSV format, and the model's CSV for a historical ITCH file.

The format is fixed (tools and users diff these files):

* header ``seq,symbol,bid_price,bid_size,ask_price,ask_size``, then one row per
  :class:`~sim.model.book.BboChange`, lines ended by ``\\n``;
* ``seq``: the 1-based index of the causing message in the file;
* ``symbol`` without padding;
* prices as decimals with exactly four places: the integer Price(4) formatted with integer
  arithmetic (1234500 -> ``123.4500``, 1 -> ``0.0001``); no float is involved;
* sizes as integers;
* an empty side as two empty fields.

The historical-file framing (2-byte big-endian length, then the message) is parsed here directly so
that the model does not share a deframer with the code it checks.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import IO, Iterable, Union

from sim.model.book import BboChange, BookModel

__all__ = ["HEADER", "format_price", "format_row", "write_csv", "csv_text",
           "model_changes_for_file", "model_csv_for_file"]

HEADER = "seq,symbol,bid_price,bid_size,ask_price,ask_size"

_PRICE_SCALE = 10_000  # ITCH Price(4): four implied decimal places


def format_price(price: int) -> str:
    """An integer Price(4) as a decimal string with exactly four places.

    Parameters
    ----------
    price : int
        Non-negative price in 1e-4 units.

    Returns
    -------
    str
    """
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise ValueError(f"price must be a non-negative int, got {price!r}")
    whole, frac = divmod(price, _PRICE_SCALE)
    return f"{whole}.{frac:04d}"


def _side(price: int | None, size: int | None) -> str:
    if price is None:
        return ","
    return f"{format_price(price)},{size:d}"


def format_row(change: BboChange) -> str:
    """One CSV row (without its line end) for one BBO change."""
    symbol = change.symbol
    if "," in symbol or '"' in symbol or "\n" in symbol:
        raise ValueError(f"symbol {symbol!r} cannot be written to the BBO CSV unquoted")
    return (f"{change.seq:d},{symbol},{_side(change.bid_price, change.bid_size)},"
            f"{_side(change.ask_price, change.ask_size)}")


def csv_text(changes: Iterable[BboChange]) -> str:
    """The whole CSV (header and rows) as text."""
    return "".join([HEADER, "\n", *(format_row(c) + "\n" for c in changes)])


def write_csv(changes: Iterable[BboChange], dest: Union[str, os.PathLike, IO[str]]) -> None:
    """Write the CSV of ``changes`` to a path or an open text file.

    Parameters
    ----------
    changes : iterable of BboChange
    dest : path or text file
        A path is created or truncated; a file object is written to and left open.
    """
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "w", encoding="ascii", newline="\n") as f:
            _write(changes, f)
    else:
        _write(changes, dest)


def _write(changes: Iterable[BboChange], f: IO[str]) -> None:
    f.write(HEADER + "\n")
    for c in changes:
        f.write(format_row(c) + "\n")


def iter_framed(buf: bytes, drops: Counter | None = None):
    """Messages of a historical-framed ITCH buffer: each a 2-byte big-endian length, then that
    many bytes. A final message cut short is counted in ``drops['truncated_frame']`` and ends the
    scan; a zero length is a message of no bytes (counted later as undecodable)."""
    view = memoryview(buf)
    end = len(view)
    pos = 0
    while pos < end:
        if pos + 2 > end:
            if drops is not None:
                drops["truncated_frame"] += 1
            return
        n = (view[pos] << 8) | view[pos + 1]
        start = pos + 2
        pos = start + n
        if pos > end:
            if drops is not None:
                drops["truncated_frame"] += 1
            return
        yield view[start:pos]


def model_changes_for_file(buf: bytes, locates: Iterable[int] | None = None
                           ) -> tuple[list[BboChange], BookModel]:
    """Run the reference model over a historical-framed ITCH file.

    Parameters
    ----------
    buf : bytes
        The file's bytes.
    locates : iterable of int, optional
        Locate filter of the model (default: every locate).

    Returns
    -------
    changes : list of BboChange
        With ``seq`` the 1-based index of the message in the file (every delimited message counts,
        including those that cannot be decoded).
    model : BookModel
        The model after the last message. Messages that cannot be decoded (unknown type, wrong
        length) are counted in ``model.anomalies['undecodable_message']``; a truncated final
        message in ``model.anomalies['truncated_frame']``.
    """
    from host.feed.itch import ItchError, decode_message

    model = BookModel(locates)
    apply = model.apply
    changes: list[BboChange] = []
    # Types the book reads; the rest need no decoding, only a length check.
    wanted = frozenset(b"RAFECXDU")
    for seq, msg in enumerate(iter_framed(buf, model.anomalies), start=1):
        if len(msg) == 0 or msg[0] not in wanted:
            try:
                decode_message(bytes(msg))
            except ItchError:
                model.anomalies["undecodable_message"] += 1
            continue
        try:
            fields = decode_message(msg)
        except ItchError:
            model.anomalies["undecodable_message"] += 1
            continue
        change = apply(fields, seq)
        if change is not None:
            changes.append(change)
    return changes, model


def model_csv_for_file(buf: bytes) -> str:
    """The model's BBO CSV for a historical-framed ITCH file (see :func:`model_changes_for_file`).
    """
    changes, _ = model_changes_for_file(buf)
    return csv_text(changes)
