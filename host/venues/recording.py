"""Reader of recorded venue sessions in the cryptofeed raw text format.

One line per frame (Ref: cryptofeed ``raw_data_collection`` / ``AsyncFileCallback`` output, as
described in the README of the recordings):

* ``<url> <-> <local ts>``: a WebSocket connection opened;
* ``<url> <- <local ts>: <frame>``: a received WebSocket text frame;
* ``<url> -> <local ts>: <body>``: a REST request to ``url`` and its response body;
* ``<local ts>: <frame>``: a received frame of the connection named last (the URL is left out).

Local timestamps are seconds since the epoch with a decimal fraction; they are kept exact as
integer nanoseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterator

__all__ = ["RecordingError", "Frame", "read_frames"]

_LINE = re.compile(r"^(?:(?P<url>\S+) (?P<dir><->|<-|->) )?(?P<ts>\d+(?:\.\d+)?)"
                   r"(?:: (?P<text>.*))?$")


class RecordingError(ValueError):
    """A line of a recording that does not have the expected shape."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One line of a recording.

    Attributes
    ----------
    url : str
        The connection's or the request's URL.
    direction : str
        ``"<-"`` received WebSocket frame, ``"->"`` REST response, ``"<->"`` connection opened.
    local_ts_ns : int
        Local time of the line, nanoseconds since the epoch.
    text : str
        The frame or response body (``""`` for a connection line).
    line_number : int
        1-based line in the file, for error messages.
    """

    url: str
    direction: str
    local_ts_ns: int
    text: str
    line_number: int


def read_frames(path: str | Path) -> Iterator[Frame]:
    """The frames of one recording file, in file order.

    Raises
    ------
    RecordingError
        On a line that matches none of the shapes, naming the file and line.
    """
    url = ""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            m = _LINE.match(line)
            if m is None:
                raise RecordingError(f"{path}:{number}: not a recorded frame: {line[:80]!r}")
            direction = m["dir"] or "<-"
            if m["url"]:
                if direction != "->":
                    url = m["url"]
                frame_url = m["url"]
            else:
                if not url:
                    raise RecordingError(f"{path}:{number}: frame before any connection line")
                frame_url = url
            if direction != "<->" and m["text"] is None:
                raise RecordingError(f"{path}:{number}: frame without a body")
            ts_ns = int(Decimal(m["ts"]).scaleb(9))
            yield Frame(frame_url, direction, ts_ns, m["text"] or "", number)
