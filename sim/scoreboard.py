"""Score gateware output against the reference model, record by record."""

from __future__ import annotations

import numpy as np

from hdl import wire

__all__ = ["BBO_COMPARED_FIELDS", "compare_bbo"]

#: the fields a BBO record must match exactly (cycle stamps are checked separately)
BBO_COMPARED_FIELDS = ("seq", "locate", "slot", "bid_price", "bid_size", "ask_price", "ask_size")

_SIDES = wire.BBO_UPDATE.flag("flags", "bid_valid") | wire.BBO_UPDATE.flag("flags", "ask_valid")


def compare_bbo(got: np.ndarray, expected: np.ndarray, *, context: int = 3) -> None:
    """Raise AssertionError naming the first record where ``got`` and ``expected`` differ."""
    n = min(len(got), len(expected))
    for i in range(n):
        g, e = got[i], expected[i]
        bad = [f for f in BBO_COMPARED_FIELDS if g[f] != e[f]]
        if (g["flags"] & _SIDES) != (e["flags"] & _SIDES):
            bad.append("flags")
        if bad:
            lo = max(0, i - context)
            rows = "\n".join(f"  [{j}] got {_fmt(got[j])}\n       exp {_fmt(expected[j])}"
                             for j in range(lo, min(n, i + context + 1)))
            raise AssertionError(f"BBO record {i} differs in {bad}:\n{rows}")
    if len(got) != len(expected):
        extra = got[n:n + context] if len(got) > n else expected[n:n + context]
        raise AssertionError(f"got {len(got)} BBO records, expected {len(expected)}; first "
                             f"unmatched: {[_fmt(r) for r in extra]}")


def _fmt(r) -> str:
    return ("seq={seq} loc={locate} slot={slot} bid={bid_price}x{bid_size} "
            "ask={ask_price}x{ask_size} flags={flags:#x}").format(
                **{k: int(r[k]) for k in r.dtype.names if not k.startswith("_")})
