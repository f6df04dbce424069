"""Message types and lengths the feed stage knows.

# Ref: NASDAQ TotalView-ITCH 5.0 specification (rev. 2023-04-28), section 1.3 (message formats).
The type → length table is taken from the host's ITCH specification table
(:mod:`host.feed.itch`) so the gateware and the host cannot disagree; ticklane's own level update
(:data:`hdl.wire.LEVEL_UPDATE`) is added here.
"""

from __future__ import annotations

from .. import wire

try:  # the one table of the specification
    from host.feed.itch import MESSAGE_LENGTHS as _ITCH_LENGTHS
except ImportError:  # pragma: no cover - only while host.feed.itch is being written
    _ITCH_LENGTHS = {ord(t): n for t, n in {
        "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
        "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
        "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48}.items()}

#: type byte → message length without the 2-byte prefix
MESSAGE_LENGTHS: dict[int, int] = {**{int(k): v for k, v in _ITCH_LENGTHS.items()},
                                   wire.LEVEL_UPDATE_TYPE: wire.LEVEL_UPDATE.size}

VALID_LENGTHS = tuple(sorted(set(MESSAGE_LENGTHS.values())))

#: bytes of the gather buffer: the longest message plus its prefix, rounded up to whole beats
MAX_MESSAGE = -(-(max(VALID_LENGTHS) + 2) // 8) * 8

assert min(VALID_LENGTHS) + 2 > 8, "a beat must never hold the end of two messages"
