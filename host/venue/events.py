"""What a venue tells us about our orders, besides fills (:class:`host.types.Fill`).

Every venue adapter reports in these types, so the order manager does not know which venue it
talks to.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from host.types import Fill

__all__ = ["VenueRejectReason", "Ack", "Reject", "Cancelled", "Replaced", "VenueEvent"]


class VenueRejectReason(enum.IntEnum):
    NONE = 0
    POST_ONLY_WOULD_CROSS = 1   #: a post-only order would have taken liquidity
    UNKNOWN_ORDER = 2           #: a cancel or replace whose target is not live at the venue
    DUPLICATE_ID = 3            #: a client order id the venue has already seen
    INVALID = 4                 #: zero quantity or price; a replace that changes the side
    UNSUPPORTED = 5             #: a request kind the venue does not implement
    SESSION_ENDED = 6           #: the venue session ended before it answered (the daemon
    #:                             restarted on a recovered journal with a fresh paper venue)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack:
    """The venue accepted a request: a new order is working, or a cancel took effect."""
    client_order_id: int
    ts_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """The venue refused a request."""
    client_order_id: int
    reason: VenueRejectReason
    ts_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancelled:
    """An order left the venue unfilled (remainder).

    Attributes
    ----------
    client_order_id : int
        The order that is no longer working.
    request_id : int
        The cancel request that caused it, or 0 when the venue cancelled on its own (the remainder
        of an immediate-or-cancel or fill-or-kill order).
    """
    client_order_id: int
    request_id: int = 0
    ts_ns: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Replaced:
    """An order was replaced: it no longer works; its replacement (acknowledged in the same
    breath) works on under its own id.

    Attributes
    ----------
    client_order_id : int
        The order that was replaced.
    replacement_id : int
        The replace request, now the working order.
    """
    client_order_id: int
    replacement_id: int
    ts_ns: int = 0


VenueEvent = Ack | Reject | Cancelled | Replaced | Fill
