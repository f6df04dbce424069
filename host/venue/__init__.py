"""Venues our orders go to after the risk gate. :mod:`host.venue.paper` is the default."""

from host.venue.events import Ack, Cancelled, Reject, VenueEvent, VenueRejectReason

__all__ = ["Ack", "Cancelled", "Reject", "VenueEvent", "VenueRejectReason"]
