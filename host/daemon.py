"""The ticklane daemon: one process, one batch loop, from market data to fills and back.

Each batch takes a chunk of the feed (whole messages) and moves it through the whole path::

    feed chunk ─► link md_in ─► BBO batch ─► metrics, paper venue, order manager marks
               ─► strategies ─► intents ─► host pre-trade check ─► journal
               ─► link order_in ─► verdicts ─► (accepted) paper venue ─► fills ─► journal
               ─► link fill_in (so the gate's positions stay live)

Nothing reaches the venue that the gateware's risk gate did not accept: the venue is handed the
order manager's own copy of each request the gate accepted, and the gate's ``order_out`` is
checked against it. Every input of the order manager is journaled before its outputs move on
(:class:`host.journal.Session`), so ``ticklane recover DIR`` rebuilds the exact state.

The host keeps every symbol's full book in software (:mod:`host.hostbook`). Symbols without a
gateware slot are published from it, as ``ticklane replay`` does. A gateware record flagged
``refill`` (a best level beyond the levels the gateware holds, or its order table full: it cannot
publish that symbol's top exactly) never reaches the strategies: while a symbol is flagged the
host publishes that symbol's changes from its own book, and after the batch it reloads the
gateware's levels through the link's ``refill_in`` stream, after which the gateware publishes the
symbol again. Records from the software book carry no cycle stamps, so they never enter the
hardware latency figures. The book advances in the batch's path only when it must publish; else
after the batch's orders are out.

A strategy's replace goes as one request (kind REPLACE) through the same path: the host check and
the gate check it as the new order it is, with its target still open beside it (the target may
fill until the venue answers); when the venue reports the target replaced, the host releases the
target in the gate (a fill of 0 with ``done``), and when it rejects the replace, the replacement.
Strategies see a target with a replace in flight as its replacement.

Venue time is the feed's own clock (the ITCH timestamp of the batch's last message), so a replay
is deterministic: the same feed and configuration give the same orders and fills.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import resource
import signal
import sys
import tempfile
import time
import types
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hdl import wire
from host.config import Config, ConfigError, RiskConfig, config_from_mapping, load_config
from host.feed.framing import FramingError, scan_historical
from host.journal import (FsyncPolicy, JournalCorrupt, JournalFormatError, JournalLocked,
                          ReplayDivergence, Session)
from host.link.base import Link, LinkError
from host.hostbook import HostBook, RefillMerge, changes_to_records, locate_mask
from host.link.beats import frame_ends_on_messages, pack_beats
from host.metrics import Alert, Metrics
from host.oms.order import OrderState
from host.oms.risk import PreTradeConfig, PreTradeReason
from host.replay import DEMO_STREAM, directory
from host.strategy import OpenOrder, StrategyContext, StrategyHost, StrategySpec
from host.types import Fill, OrderIntent, OrderKind, Side
from host.venue.events import Cancelled, Reject, Replaced, VenueRejectReason
from host.venue.paper import PaperVenue, PaperVenueConfig
from sim.model.bbo_csv import HEADER as BBO_CSV_HEADER, format_row
from sim.model.book import BboChange

__all__ = ["Daemon", "DaemonSummary", "FeedPlan", "demo_config", "gate_registers",
           "precheck_config", "format_dollars", "add_parser", "GATE_STREAMS"]

_log = logging.getLogger("ticklane.daemon")

#: Streams of the top the daemon drives besides market data: the pre-trade risk gate's.
GATE_STREAMS = ("order_in", "verdict_out", "order_out", "fill_in")

_BOOK_TYPES = frozenset(b"AFECXDU")
_CYCLE_MASK = (1 << wire.CYCLE_STAMP_BITS) - 1
_PRICE_SCALE = 10_000            # ITCH Price(4): price units per dollar
_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
_REFILL = wire.BBO_UPDATE.flag("flags", "refill")
_FILL_SELL = wire.FILL.flag("flags", "sell")
_FILL_DONE = wire.FILL.flag("flags", "done")
_VERDICT_ACCEPTED = wire.VERDICT.flag("flags", "accepted")
_SYMBOL_ENABLED = 1               # RISK_SYMBOL_CONTROL bit 0 (hdl/wire.py)
_COLLAR_ENABLED = 1               # RISK_COLLAR_CONFIG bit 0: band in price units
_TOKEN_MAX = 0xFFFF               # the gate's token buckets are 16 bits wide
# (bit, counter key) of every host pre-check reason, once: iterating the enum per refusal costs
# a microsecond a member.
_HOST_REJECT_KEYS = tuple((int(r), f"host:{r.name}") for r in PreTradeReason)


# ------------------------------------------------------------------------------------------
# Configuration helpers
# ------------------------------------------------------------------------------------------

def demo_config(*, journal_dir: str | None = None) -> Config:
    """The embedded default: simulated link, the demo stream, paper venue, four strategies.

    A market maker quotes each of the first two demo symbols (slots 0 and 1, AAPL and MSFT in the
    directory order of ``host/data/demo.itch``) and an imbalance-momentum strategy trades each
    of the next two. Prices are ITCH Price(4): a tick of 100 is one cent.

    Parameters
    ----------
    journal_dir : str, optional
        Journal directory; default a new temporary directory, so that each demo starts a
        fresh session.
    """
    if journal_dir is None:
        journal_dir = tempfile.mkdtemp(prefix="ticklane-journal-")
    mm = {"tick_size": 100, "quote_qty": 100, "half_spread_ticks": 1, "skew_unit": 100,
          "max_position": 500}
    return config_from_mapping({
        "feed": {"format": "itch", "path": str(DEMO_STREAM)},
        "journal": {"dir": journal_dir, "fsync": "group"},
        "strategies": [
            {"module": "host.strategy.builtin", "class": "MarketMaker", "name": f"mm-{slot}",
             "params": {"slot": slot, **mm}} for slot in (0, 1)
        ] + [
            {"module": "host.strategy.builtin", "class": "ImbalanceMomentum",
             "name": f"imbalance-{slot}",
             "params": {"slot": slot, "quantity": 100, "threshold_bp": 3000,
                        "max_position": 500}} for slot in (2, 3)
        ],
    })


def precheck_config(risk: RiskConfig) -> PreTradeConfig:
    """The host pre-check's limits from ``[risk]``.

    The host check is global. The two limits a symbol may override (order quantity and position,
    :class:`host.config.SymbolRiskOverride`) are enforced per symbol slot, exactly, by the gate;
    so that the host never refuses what the configuration allows some symbol, it takes the
    loosest of the global value and the overrides for those two. Notional and open orders have
    one value for every symbol, here and in the gate.
    """
    def loosest(name: str) -> int:
        values = [getattr(risk, name)] + [getattr(o, name) for o in risk.symbols.values()
                                          if getattr(o, name) is not None]
        return max(values)

    position = loosest("max_position")
    return PreTradeConfig(max_order_quantity=loosest("max_order_qty"),
                          max_notional=risk.max_notional,
                          max_long=position, max_short=position,
                          max_open_orders=risk.max_open_orders)


def gate_registers(risk: RiskConfig, tickers: dict[int, str]) -> list[tuple[str, int, int]]:
    """The risk gate's shadow register writes for ``[risk]``: ``(name, index, value)``.

    Parameters
    ----------
    risk : RiskConfig
    tickers : dict of int to str
        Symbol slot → ticker of the gate's slots, for ``[risk.symbols.<TICKER>]`` overrides.

    Notes
    -----
    The gate's notional limit and collar band are global: they take the ``[risk]`` values. The
    collar band is ``collar_ticks * tick_size`` price units: a buy above the ask plus the band, or
    a sell below the bid minus it, is refused (one-sided; a price at the bound passes). The
    configuration has no rate limits yet, so the token buckets are set to refill every cycle
    with the largest burst (no throttling); stale-BBO rejection is off (a replay has no wall
    clock the gate could age against).
    """
    regs = [("RISK_MAX_NOTIONAL_LO", 0, risk.max_notional & 0xFFFF_FFFF),
            ("RISK_MAX_NOTIONAL_HI", 0, risk.max_notional >> 32),
            ("RISK_COLLAR_CONFIG", 0, _COLLAR_ENABLED),
            ("RISK_COLLAR_BAND", 0, min(risk.collar_ticks * risk.tick_size, 0xFFFF_FFFF)),
            ("RISK_BBO_MAX_AGE", 0, 0),
            ("RISK_MAX_OPEN_ORDERS", 0, risk.max_open_orders),
            ("RISK_RATE_SHIFT", 0, 0), ("RISK_RATE_BURST", 0, _TOKEN_MAX),
            ("RISK_SYMBOL_RATE_SHIFT", 0, 0), ("RISK_SYMBOL_RATE_BURST", 0, _TOKEN_MAX)]
    for slot in range(wire.REGISTERS["RISK_SYMBOL_CONTROL"].count):
        limits = risk.limits_for(tickers.get(slot, ""))
        regs += [("RISK_SYMBOL_CONTROL", slot, _SYMBOL_ENABLED),
                 ("RISK_MAX_ORDER_QTY", slot, min(limits.max_order_qty, 0xFFFF_FFFF)),
                 ("RISK_MAX_LONG", slot, min(limits.max_position, 0xFFFF_FFFF)),
                 ("RISK_MAX_SHORT", slot, min(limits.max_position, 0xFFFF_FFFF))]
    return regs


def format_dollars(units: int) -> str:
    """Integer price units × shares (ITCH Price(4)) as dollars, by integer arithmetic only.

    >>> format_dollars(-1234567)
    '-$123.4567'
    """
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(int(units)), _PRICE_SCALE)
    return f"{sign}${whole:,}.{frac:04d}"


def _percentile(values: np.ndarray, p: float) -> float:
    """Nearest-rank percentile: always a value that was measured."""
    if len(values) == 0:
        return 0
    v = np.sort(np.asarray(values))
    return v[min(len(v) - 1, max(0, int(np.ceil(p * len(v))) - 1))]


def _rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), else the peak from getrusage."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------
# The feed
# ------------------------------------------------------------------------------------------

@dataclass
class FeedPlan:
    """A historical ITCH buffer, cut into batches, with the host's view of its symbols.

    Attributes
    ----------
    buf : bytes
        The replayable part of the file (up to the first framing error).
    offsets : numpy.ndarray
        Start offset of every message.
    timestamps : numpy.ndarray
        ITCH timestamp (ns since midnight) of every message.
    symbols : dict of int to str
        Stock locate → ticker from directory messages.
    slot_of_locate : dict of int to int
        The gateware's slot of each locate it subscribes (first-come, as the feed stage does).
    carry : set of int
        Locates the host books in software.
    host_slot : dict of int to int
        Slot used for a carried locate: its gateware slot, else one after the gateware's slots.
    error : FramingError or None
        The framing error that ended the file early, if any.
    """

    buf: bytes
    offsets: np.ndarray
    timestamps: np.ndarray
    symbols: dict[int, str]
    slot_of_locate: dict[int, int]
    carry: set[int]
    host_slot: dict[int, int]
    error: FramingError | None

    @classmethod
    def from_bytes(cls, buf: bytes, *, slots: int) -> "FeedPlan":
        """Scan ``buf`` (historical framing) for a gateware book with ``slots`` slots."""
        offsets, error = scan_historical(buf)
        end = 0
        if len(offsets):
            last = int(offsets[-1])
            end = last + 2 + ((buf[last] << 8) | buf[last + 1])
        buf = bytes(buf[:end])
        raw = np.frombuffer(buf, np.uint8)
        # Timestamp: bytes 5..10 of the message (type, locate, tracking, then 6 bytes BE).
        ts = np.zeros(len(offsets), np.int64)
        for k in range(6):
            ts = (ts << 8) | raw[offsets + 2 + 5 + k].astype(np.int64)
        symbols, subscribed = directory(buf, offsets, slots)
        mtypes = raw[offsets + 2] if len(offsets) else raw[:0]
        book = np.isin(mtypes, np.frombuffer(bytes(_BOOK_TYPES), np.uint8))
        locates = (raw[offsets[book] + 3].astype(np.int64) << 8) | raw[offsets[book] + 4]
        seen = set(np.unique(locates).tolist())
        # Symbols without a gateware slot are booked by the host in software.
        carry = {loc for loc in seen if loc not in subscribed}
        host_slot = {}
        extra = slots
        for loc in sorted(carry):
            if loc in subscribed:
                host_slot[loc] = subscribed[loc]
            else:
                host_slot[loc] = extra
                extra += 1
        return cls(buf=buf, offsets=offsets, timestamps=ts, symbols=symbols,
                   slot_of_locate=subscribed, carry=carry, host_slot=host_slot, error=error)

    @property
    def messages(self) -> int:
        return len(self.offsets)

    def ticker_of_slot(self) -> dict[int, str]:
        """Slot → ticker of every slot the host knows (gateware and host-booked)."""
        out = {slot: self.symbols.get(loc, "") for loc, slot in self.slot_of_locate.items()}
        out.update({slot: self.symbols.get(loc, "") for loc, slot in self.host_slot.items()})
        return out

    def end_of(self, index: int) -> int:
        """Byte offset just past message ``index`` (0-based)."""
        pos = int(self.offsets[index])
        return pos + 2 + ((self.buf[pos] << 8) | self.buf[pos + 1])


# ------------------------------------------------------------------------------------------
# The summary
# ------------------------------------------------------------------------------------------

@dataclass
class DaemonSummary:
    """What one daemon run did. Money in integer price units × shares (ITCH Price(4)).

    Attributes
    ----------
    messages, batches : int
    bbo_records, bbo_hardware, bbo_host : int
        BBO records in all, from the gateware, from the host's software book (symbols without
        a gateware slot, and symbols while the gateware flags them for a refill).
    refill_flagged, refills_sent, refills_cleared, refills_abandoned : int
        Gateware records that carried the refill flag (none reaches the strategies); refill
        batches sent on ``refill_in`` (one per side); flagged periods the gateware ended;
        symbols whose refill the gateware refused (left to the host's book).
    intents, orders, accepted, fills, filled_quantity : int
        Strategy intents, order requests sent to the gate, requests it accepted, fills.
    rejects : dict of str to int
        Refused intents and requests by reason: ``host:<REASON>`` (pre-check), ``gate:<REASON>``
        (risk gate, one count per reason bit), ``venue:<REASON>``.
    realised, unrealised : int
        P&L over all slots; unrealised against the last mid of each slot.
    positions : dict of str to int
        Net position per symbol.
    hw_bbo_cycles, hw_verdict_cycles : numpy.ndarray
        Feed→BBO and order→verdict latencies, cycles, from the records' stamps.
    host_us, strategy_us, cycle_us : numpy.ndarray
        Per batch: host path (BBO records in host memory → order requests handed to the link;
        the link's time and the paper venue's matching excluded, as the gateware's and the
        exchange's work), strategy evaluation, and the whole cycle (link, venue and journal
        included).
    tick_to_order_us : numpy.ndarray
        The host path of the batches that sent orders: the host's tick → order loop.
    cycle_cpu_us, link_cpu_us : numpy.ndarray
        Per batch: CPU time of the daemon's thread over the whole cycle and in the link. On a
        shared machine the wall-clock figures include the time the process waited for a core
        (a preemption is milliseconds); these do not.
    link_us, journal_us, venue_us : numpy.ndarray
        Per batch: time spent in the link (the simulated gateware runs in this process), in
        the journal's calls on the batch's path (its writes, and its fsyncs under the ``batch``
        and ``always`` policies; not the group-commit thread's) and in the paper venue's own
        matching (the exchange's work: market moves and order arrivals; the order manager's
        handling of what it reports is the host's), all inside ``cycle_us``.
    rss_mb, rss_peak_mb : float
        Resident memory at the end, and the process's peak (getrusage) up to then.
    alerts : list of Alert
    notes : list of str
    """

    messages: int = 0
    batches: int = 0
    bbo_records: int = 0
    bbo_hardware: int = 0
    bbo_host: int = 0
    refill_flagged: int = 0
    refills_sent: int = 0
    refills_cleared: int = 0
    refills_abandoned: int = 0
    intents: int = 0
    orders: int = 0
    accepted: int = 0
    fills: int = 0
    filled_quantity: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    realised: int = 0
    unrealised: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    hw_bbo_cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    hw_verdict_cycles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    host_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tick_to_order_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    strategy_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cycle_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    link_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    journal_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    venue_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cycle_cpu_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    link_cpu_us: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wall_s: float = 0.0
    rss_mb: float = 0.0
    rss_peak_mb: float = 0.0
    journal_dir: str = ""
    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def latency_paths(self) -> dict[str, np.ndarray]:
        """The run's latencies per path, as ``ticklane report`` reads them: the gateware's in
        cycles, from the records' stamps (feed → BBO, order → verdict), and the host's tick →
        order loop in nanoseconds (its name ends in ``_ns``), per batch that sent orders."""
        return {"md_to_bbo": self.hw_bbo_cycles, "order_to_verdict": self.hw_verdict_cycles,
                "tick_to_order_host_ns": np.rint(self.tick_to_order_us * 1e3).astype(np.int64)}

    def format(self) -> str:
        """A readable table."""
        def cyc(a):
            if len(a) == 0:
                return "none measured"
            return (f"min {int(a.min())}  p50 {int(_percentile(a, .5))}  "
                    f"p99 {int(_percentile(a, .99))}  max {int(a.max())}  (n={len(a):,})")

        def us(a):
            if len(a) == 0:
                return "none measured"
            return f"p50 {_percentile(a, .5):.1f}  p99 {_percentile(a, .99):.1f}"

        rejects = ", ".join(f"{k} {v:,}" for k, v in sorted(self.rejects.items())) or "none"
        positions = ", ".join(f"{k} {v:+,}" for k, v in sorted(self.positions.items())) or "flat"
        rows = [
            ("messages in", f"{self.messages:,} in {self.batches:,} batches"),
            ("BBO records", f"{self.bbo_records:,} (gateware {self.bbo_hardware:,}, "
                            f"host-booked {self.bbo_host:,})"),
            ("book refills", f"{self.refill_flagged:,} flagged records, "
                             f"{self.refills_sent:,} side batches sent, "
                             f"{self.refills_cleared:,} cleared, "
                             f"{self.refills_abandoned:,} abandoned"),
            ("intents", f"{self.intents:,}"),
            ("orders to the gate", f"{self.orders:,} (accepted {self.accepted:,})"),
            ("fills", f"{self.fills:,} ({self.filled_quantity:,} shares)"),
            ("rejects", rejects),
            ("positions", positions),
            ("realised P&L", format_dollars(self.realised)),
            ("unrealised P&L", format_dollars(self.unrealised)),
            ("feed→BBO (cycles)", cyc(self.hw_bbo_cycles)),
            ("order→verdict (cycles)", cyc(self.hw_verdict_cycles)),
            ("host path / batch (µs)", us(self.host_us)),
            ("  batches with orders", us(self.tick_to_order_us) + "  (tick → order)"),
            ("strategies / batch (µs)", us(self.strategy_us)),
            ("journal / batch (µs)", us(self.journal_us)),
            ("paper venue / batch (µs)", us(self.venue_us) + "  (its matching)"),
            ("whole batch (µs)", us(self.cycle_us) + "  (link included)"),
            ("  without the link", us(self.cycle_us - self.link_us)
             if len(self.cycle_us) == len(self.link_us) else "n/a"),
            ("  without the link, CPU", us(self.cycle_cpu_us - self.link_cpu_us)
             if len(self.cycle_cpu_us) == len(self.link_cpu_us) else "n/a"),
            ("wall time", f"{self.wall_s:.2f} s"),
            ("resident memory", f"{self.rss_mb:.1f} MB (peak {self.rss_peak_mb:.1f} MB)"),
            ("journal", self.journal_dir),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"  {k:<{width}}  {v}" for k, v in rows]
        lines += [f"  alert: {a.kind}: {a.message}" for a in self.alerts if a.active]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# The daemon
# ------------------------------------------------------------------------------------------

class Daemon:
    """The trading daemon around one :class:`~host.link.base.Link`.

    Parameters
    ----------
    config : Config
    link : Link
        A link whose top has the risk gate's streams (:data:`GATE_STREAMS`). It is powered on
        afresh at :meth:`start`.
    feed : bytes, optional
        Historical ITCH data; default the file named by ``config.feed.path``.
    slots : int
        Symbol slots of the gateware's book (the top's ``slots``).
    batch_messages : int
        Feed messages per batch.
    evaluator : str
        Strategy evaluator kind (:func:`host.strategy.make_evaluator`).
    timer_ns : int
        Feed time between strategy timer ticks, nanoseconds.
    bbo_csv : path, optional
        Write every BBO change (CSV of :mod:`sim.model.bbo_csv`, as ``ticklane replay``).
    metrics : Metrics, optional
        Default: a new one from ``config.metrics``.
    """

    def __init__(self, config: Config, link: Link, *, feed: bytes | None = None,
                 slots: int = 256, batch_messages: int = 64, evaluator: str = "auto",
                 timer_ns: int = 1_000_000_000, bbo_csv: str | os.PathLike | None = None,
                 metrics: Metrics | None = None):
        if config.feed.format != "itch":
            raise ConfigError(f"feed.format: the daemon replays 'itch' files; "
                              f"{config.feed.format!r} is not supported yet")
        if config.venue.kind != "paper":
            raise ConfigError(f"venue.kind: only 'paper' is supported, got {config.venue.kind!r}")
        if batch_messages < 1:
            raise ValueError(f"batch_messages must be >= 1, got {batch_messages!r}")
        missing = [s for s in GATE_STREAMS if s not in link.streams]
        if missing:
            raise LinkError(f"the gateware behind this link has no risk gate streams {missing}; "
                            f"orders may not bypass the gate")
        if feed is None:
            if not config.feed.path:
                raise ConfigError("feed.path: no market data to replay (empty path)")
            try:
                feed = Path(config.feed.path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"feed.path: cannot read {config.feed.path}: "
                                  f"{exc.strerror}") from exc
        self.config = config
        self.link = link
        self.slots = slots
        self.batch_messages = batch_messages
        self.timer_ns = timer_ns
        self.plan = FeedPlan.from_bytes(feed, slots=slots)
        self.metrics = metrics if metrics is not None else Metrics(config.metrics)
        self.venue = PaperVenue(PaperVenueConfig(latency_ns=config.venue.latency_ns))
        # Module files are checked for a reload between batches (after the orders are out), not
        # on the path from records to orders: watch=False, and step() calls check_reload().
        self.strategies = StrategyHost([StrategySpec.from_config(s) for s in config.strategies],
                                       evaluator=evaluator, watch=False)
        # fsync "batch": the journal itself never fsyncs; the loop syncs once per batch.
        # "group": the journal's own thread fsyncs, off the batch's path.
        mode = {"always": "always", "batch": "never", "group": "group",
                "never": "never"}[config.journal.fsync]
        policy = FsyncPolicy(mode=mode, every_ms=config.journal.fsync_interval_ms,
                             every_records=config.journal.fsync_every_records)
        self.session = Session.open(config.journal.dir, policy=policy,
                                    config=precheck_config(config.risk),
                                    snapshot_every=config.journal.snapshot_every)
        self._host_book = HostBook(self.plan.buf, self.plan.offsets)
        self._refill = RefillMerge()
        self._refill_levels = 0          # BOOK_LEVELS, read at start()
        self._refill_abandoned: set[int] = set()
        self._pending_hw: list[np.ndarray] = []
        self._csv = None
        if bbo_csv is not None:
            out = Path(bbo_csv)
            out.parent.mkdir(parents=True, exist_ok=True)
            self._csv = open(out, "w", encoding="ascii", newline="\n")
            self._csv.write(BBO_CSV_HEADER + "\n")
        self._next_message = 0
        self._now_ns = 0
        self._ctx_version = -1
        self._ctx = StrategyContext()
        self._ctx_views: dict[int, OpenOrder] = {}
        self._next_timer_ns: int | None = None
        self._pending_gate_fills: list[np.ndarray] = []
        self._stop = False
        self._started = False
        self.summary = DaemonSummary(journal_dir=str(config.journal.dir))
        self._rejects: Counter = Counter()
        self._bbo_lat: list[np.ndarray] = []
        self._verdict_lat: list[np.ndarray] = []
        self._host_us: list[float] = []
        self._tick_to_order_us: list[float] = []   # the host path of batches that sent orders
        self._strategy_us: list[float] = []
        self._cycle_us: list[float] = []
        self._link_us: list[float] = []
        self._journal_us: list[float] = []
        self._venue_us: list[float] = []
        self._venue_s = 0.0
        self._venue_at_records_in = 0.0
        self._cycle_cpu_us: list[float] = []
        self._link_cpu_us: list[float] = []
        self._link_cpu_ns = 0
        self._link_s = 0.0
        self._t_records_in: int | None = None
        self._link_at_records_in = 0.0
        self._host_us_batch: float | None = 0.0   # None while a batch's orders are not out
        if self.session.state.report.replayed or self.session.state.report.snapshot_seq:
            self.summary.notes.append(
                f"continued the session in {config.journal.dir}: "
                f"{self.session.state.report.replayed} journal records replayed")

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Power the gateware on, check it, write and commit the risk limits, and hand the
        gate the positions of a recovered session."""
        self.link.power_on()
        self.link.check_identity()
        self._refill_levels = self.link.read_reg("BOOK_LEVELS")
        self._fit_open_orders(self.link.read_reg("RISK_OPEN_CAPACITY"))
        tickers = {slot: t for slot, t in self.plan.ticker_of_slot().items()
                   if slot < wire.RISK_SLOTS}
        for name, index, value in gate_registers(self.config.risk, tickers):
            self.link.write_reg(name, value, index)
        self.link.write_reg("RISK_KILL", 0)
        self.link.write_reg("RISK_COMMIT", 1)
        # A recovered session's positions reach the fresh gate as fills of no open order: the
        # gate moves the position and counts them in RISK_FILLS_UNKNOWN.
        seed = []
        for pos in self.session.oms.positions.values():
            if pos.quantity:
                seed.append(Fill(client_order_id=0, slot=pos.slot,
                                 side=Side.BUY if pos.quantity > 0 else Side.SELL,
                                 price=0, quantity=abs(pos.quantity), done=False))
        if seed:
            self._pending_gate_fills.append(self.session.oms.fill_records(seed))
        self._end_orders_of_the_last_session()
        self._started = True

    def _end_orders_of_the_last_session(self) -> None:
        """End, in the journal, every order a recovered session left open.

        The paper venue and the gate start empty, so nothing will ever answer those orders:
        left open, they would count against the limits for good, and the strategies would try
        to replace or cancel them, which the gate refuses as unknown. A request still waiting
        for the gate is refused (a verdict with no reason bit), one waiting for the venue is
        rejected with ``SESSION_ENDED``, and a working order is cancelled by the venue
        (``Cancelled`` with no request). These inputs are journaled like any other, so a
        recovery of this session finds the same ends. The gate is not told: it never knew the
        orders (the positions reached it above)."""
        oms = self.session.oms
        waiting = [o for o in oms.orders.values() if o.state is OrderState.NEW]
        if waiting:
            v = wire.VERDICT.array(len(waiting))
            v["client_order_id"] = [o.client_order_id for o in waiting]
            v["slot"] = [o.slot for o in waiting]
            v["kind"] = [int(o.kind) for o in waiting]
            self.session.on_verdicts(v)
        rejects = [Reject(client_order_id=o.client_order_id,
                          reason=VenueRejectReason.SESSION_ENDED)
                   for o in oms.orders.values() if o.state is OrderState.RISK_ACCEPTED]
        if rejects:
            self.session.on_venue_events(rejects)
        working = [Cancelled(client_order_id=o.client_order_id) for o in oms.open_orders()
                   if o.state in (OrderState.ACKNOWLEDGED, OrderState.PARTIALLY_FILLED)]
        if working:
            self.session.on_venue_events(working)
        if waiting or rejects or working:
            self.summary.notes.append(
                f"the recovered session left {len(waiting) + len(rejects) + len(working)} "
                f"order request(s) open that the fresh venue and gate do not know: "
                f"{len(waiting)} refused before the gate, {len(rejects)} rejected "
                f"(SESSION_ENDED), {len(working)} cancelled")
        if oms.open_orders():
            raise RuntimeError(f"orders of the recovered session still open after their ends "
                               f"were journaled: {oms.open_orders()}")

    def _fit_open_orders(self, capacity: int) -> None:
        """Hold the host pre-check's open-order limit to the gate's table, so that the host
        refuses (and counts) an order the gate would have no room for, before it is sent."""
        cfg = self.session.oms.config
        if cfg.max_open_orders <= capacity:
            return
        self.session.reconfigure(dataclasses.replace(cfg, max_open_orders=capacity))
        note = (f"host pre-check: max_open_orders {cfg.max_open_orders} held to the gate's "
                f"{capacity} open-order entries (RISK_OPEN_CAPACITY)")
        self.summary.notes.append(note)
        _log.warning("%s", note)

    def request_stop(self, *_: Any) -> None:
        """Ask the loop to stop after the current batch (signal-handler safe)."""
        self._stop = True

    @property
    def done(self) -> bool:
        return self._next_message >= self.plan.messages

    def run(self, *, max_batches: int | None = None) -> DaemonSummary:
        """Run batches until the feed ends, a stop is requested or ``max_batches`` ran, then
        stop gracefully (:meth:`stop`) and return the summary."""
        if not self._started:
            self.start()
        start = time.perf_counter()
        n = 0
        try:
            while not self._stop and not self.done and (max_batches is None or n < max_batches):
                self.step()
                n += 1
        except BaseException:
            # The journal holds every applied input; close it without trading further.
            self.stop(graceful=False)
            raise
        self.stop()
        self.summary.wall_s = time.perf_counter() - start
        return self.summary

    def stop(self, *, graceful: bool = True) -> None:
        """Cancel every live order through the normal path, settle, snapshot, close.

        Parameters
        ----------
        graceful : bool
            False after an error: only sync and close the journal.
        """
        if self.session is None:
            return
        try:
            if not graceful:
                return
            live = self.session.oms.open_orders()
            if live and self._started:
                intents = [OrderIntent(strategy=o.strategy, slot=o.slot, side=o.side,
                                       price=o.price, quantity=o.leaves, kind=OrderKind.CANCEL,
                                       target=o.client_order_id) for o in live]
                self._orders(intents)
                # Let every request still in flight arrive at the venue.
                self._now_ns += self.config.venue.latency_ns
                self._venue_events(self.venue.advance(self._now_ns))
                self._flush_gate_fills()
            self._finish_summary()
            self.session.snapshot()
        finally:
            self.session.close()
            self.session = None
            self.strategies.close()
            if self._csv is not None:
                self._csv.close()
                self._csv = None

    # -- one batch -----------------------------------------------------------------------

    def step(self) -> None:
        """One batch: the next chunk of the feed through the whole path."""
        t0 = time.perf_counter_ns()
        c0 = time.thread_time_ns()
        link0 = self._link_s
        venue0 = self._venue_s
        link_cpu0 = self._link_cpu_ns
        journal0 = self.session.journal.busy_ns
        self._host_us_batch = None
        first = self._next_message
        last = min(first + self.batch_messages, self.plan.messages)
        self._next_message = last
        self._now_ns = max(self._now_ns, int(self.plan.timestamps[last - 1]))
        now = self._now_ns

        batch, hw = self._market_data(first, last)
        arrived_ns = time.monotonic_ns()
        self.summary.messages += last - first

        # The market moves first: resting orders may fill, and marks follow the book.
        self._venue_events(self._in_venue(self.venue.on_bbo, batch, now))
        if len(batch):
            self.session.on_bbo(batch)

        ts = time.perf_counter_ns()
        if len(batch):
            self.strategies.on_bbo(batch, self._context())
        if self._next_timer_ns is None:
            self._next_timer_ns = now + self.timer_ns
        elif now >= self._next_timer_ns:
            self._next_timer_ns = now + self.timer_ns
            self.strategies.on_timer(now, self._context())
        intents = self.strategies.drain_intents()
        self._strategy_us.append((time.perf_counter_ns() - ts) / 1e3)

        self._orders(intents)
        self._orders_out()
        # Off the path of this batch's orders: metrics, the CSV, the software book catches up,
        # and the gateware's flagged symbols get their levels back.
        self.metrics.record_messages(last - first)
        self.metrics.record_bbo_batch(hw, arrived_ns)
        self._bbo_lat.append((hw["egress_cycle"].astype(np.int64)
                              - hw["ingress_cycle"]) & _CYCLE_MASK)
        if self._csv is not None:
            self._write_csv(batch)
        self.strategies.check_reload()
        self._host_book.advance(last)
        self._refill_gateware()
        if self.config.journal.fsync == "batch":
            self.session.journal.sync()
        self._journal_us.append((self.session.journal.busy_ns - journal0) / 1e3)
        self._link_us.append((self._link_s - link0) * 1e6)
        self._venue_us.append((self._venue_s - venue0) * 1e6)
        for alert in self.metrics.check_alerts(time.monotonic_ns()):
            self.summary.alerts.append(alert)
        self.metrics.set_queue_depth("intents", self.strategies.pending)
        self._cycle_us.append((time.perf_counter_ns() - t0) / 1e3)
        self._cycle_cpu_us.append((time.thread_time_ns() - c0) / 1e3)
        self._link_cpu_us.append((self._link_cpu_ns - link_cpu0) / 1e3)
        self.summary.batches += 1

    # -- the stages ----------------------------------------------------------------------

    # The link's own time (the simulated gateware runs in this process; the board moves DMA
    # buffers) is kept apart from the host's: sends, runs and receives all count as link time.
    def _send(self, stream: str, records: np.ndarray) -> None:
        t, c = time.perf_counter(), time.thread_time_ns()
        self.link.send(stream, records)
        self._link_cpu_ns += time.thread_time_ns() - c
        self._link_s += time.perf_counter() - t

    def _receive(self, stream: str) -> np.ndarray:
        t, c = time.perf_counter(), time.thread_time_ns()
        out = self.link.receive(stream)
        self._link_cpu_ns += time.thread_time_ns() - c
        self._link_s += time.perf_counter() - t
        return out

    def _run_link(self) -> None:
        t, c = time.perf_counter(), time.thread_time_ns()
        stats = self.link.run()
        self._link_cpu_ns += time.thread_time_ns() - c
        self._link_s += time.perf_counter() - t
        if not stats.drained:
            raise LinkError(f"the gateware did not drain within {stats.cycles} cycles")

    def _in_venue(self, method, *args):
        """Call the paper venue, its time counted apart (the exchange's, not the host's)."""
        t = time.perf_counter()
        try:
            return method(*args)
        finally:
            self._venue_s += time.perf_counter() - t

    def _market_data(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        plan = self.plan
        start = int(plan.offsets[first])
        end = plan.end_of(last - 1)
        chunk = plan.buf[start:end]
        ends = frame_ends_on_messages(plan.offsets[first:last] - start, end - start)
        self._send("md_in", pack_beats(chunk, ends))
        self._flush_gate_fills(run=False)
        self._run_link()
        hw = self._receive("bbo_out")
        if "gaps_out" in self.link.streams:
            # MoldUDP64 sequence gaps the feed reported (FEED_GAP records): counted, and judged
            # by the gap alert. Retransmission requests are not made.
            gaps = self._receive("gaps_out")
            if len(gaps):
                self.metrics.record_gap(len(gaps))
        # Host path timing starts when the records are in host memory.
        self._t_records_in = time.perf_counter_ns()
        self._link_at_records_in = self._link_s
        self._venue_at_records_in = self._venue_s
        stamped = hw
        # Sequence numbers of this feed are message indices: the gateware counts from the start
        # of the stream, which is the start of the file (power_on at start()).
        if self._pending_hw:
            # The gateware's answers to the last refills (seq of the previous batch) come first.
            hw = np.concatenate(self._pending_hw + [hw])
            self._pending_hw = []
        if plan.carry:
            hw = hw[~locate_mask(hw["locate"], plan.carry)]
        refill = self._refill
        flagged = int(np.count_nonzero(hw["flags"] & _REFILL))
        involved = refill.involved(hw)
        if plan.carry or involved:
            for locate in involved - refill.carried:
                refill.begin(locate, self._host_book.top(locate))
            changes = self._host_book.advance(last, plan.carry | involved)
            host = changes_to_records([c for c in changes if c.locate in plan.carry],
                                      plan.host_slot)
            hw, substituted, cleared = refill.merge(
                hw, [c for c in changes if c.locate in involved], involved)
            self.summary.bbo_host += len(host) + substituted
            self.summary.refill_flagged += flagged
            self.summary.refills_cleared += cleared
            self.metrics.record_refill("flagged", flagged)
            self.metrics.record_refill("substituted", substituted)
            self.metrics.record_refill("cleared", cleared)
            batch = np.concatenate([hw, host]) if len(host) else hw
            if len(host):
                batch = batch[np.argsort(batch["seq"], kind="stable")]
            self.summary.bbo_hardware += len(hw) - substituted
        else:
            batch = hw
            self.summary.bbo_hardware += len(hw)
        self.summary.bbo_records += len(batch)
        return batch, stamped

    def _refill_gateware(self) -> None:
        """Reload the levels of every flagged symbol through ``refill_in``, exact as of the last
        message sent, and keep the gateware's answers for the next batch.

        The link is drained (no market data in flight), so no refill can be stale; a symbol whose
        refill brings no record back was refused (its hardware book is lost, e.g. its order
        table set was full) and stays with the host's book from then on.
        """
        todo = sorted(self._refill.carried - self._refill_abandoned)
        if not todo:
            return
        levels = [self._host_book.refill_levels(loc, slot=self._refill.slot[loc],
                                                levels=self._refill_levels) for loc in todo]
        self._send("refill_in", np.concatenate(levels))
        self._run_link()
        answers = self._receive("bbo_out")
        self.summary.refills_sent += 2 * len(todo)
        self.metrics.record_refill("sent", 2 * len(todo))
        answered = set(answers["locate"].tolist())
        for loc in todo:
            if loc not in answered:
                self._refill_abandoned.add(loc)
                self.summary.refills_abandoned += 1
                self.metrics.record_refill("abandoned")
                _log.warning("the gateware refused the refill of locate %d (slot %d); the host's "
                             "book publishes it from now on", loc, self._refill.slot[loc])
        if len(answers):
            self._pending_hw.append(answers)

    def _write_csv(self, batch: np.ndarray) -> None:
        symbols = self.plan.symbols
        lines = []
        for r in batch.tolist():
            seq, bid_p, ask_p, bid_s, ask_s, _, _, _, flags, locate, _ = r
            bid_ok, ask_ok = flags & _BID_VALID, flags & _ASK_VALID
            change = BboChange(seq, locate, symbols.get(locate, ""),
                               bid_p if bid_ok else None, bid_s if bid_ok else None,
                               ask_p if ask_ok else None, ask_s if ask_ok else None)
            lines.append(format_row(change) + "\n")
        self._csv.write("".join(lines))

    def _context(self) -> StrategyContext:
        oms = self.session.oms
        if self._ctx_version != oms.version:
            # Positions and open orders change only through the order manager's handlers.
            positions = types.MappingProxyType({slot: p.quantity
                                                for slot, p in oms.positions.items()
                                                if p.quantity})
            # Most open orders are unchanged between two versions: their views are reused. An
            # order's price never changes (a replace is a new order), its open quantity does;
            # live orders are not terminal, so that is quantity - filled (Order.leaves).
            views = self._ctx_views
            fresh: dict[int, OpenOrder] = {}
            first: dict[tuple, OpenOrder] = {}   # the context's index, built in the same pass
            for o in oms.intended_orders():
                coid, leaves = o.client_order_id, o.quantity - o.filled
                v = views.get(coid)
                if v is None or v.quantity != leaves:
                    v = OpenOrder.quick(coid, o.strategy, o.slot, o.side, o.price, leaves)
                fresh[coid] = v
                first.setdefault((v.strategy, v.slot, v.side), v)
            self._ctx_views = fresh
            self._ctx = StrategyContext.indexed(self._now_ns, positions,
                                                tuple(fresh.values()), first)
            self._ctx_version = oms.version
        return self._ctx.at(self._now_ns)

    def _orders(self, intents: list[OrderIntent]) -> None:
        """Intents → host check → journal → gate → verdicts → venue → fills."""
        if not intents:
            return
        self.summary.intents += len(intents)
        requests = self.session.submit(intents)
        if self.session.oms.last_rejections:
            counts: Counter = Counter()
            for rej in self.session.oms.last_rejections:
                bits = int(rej.reasons)
                for bit, key in _HOST_REJECT_KEYS:
                    if bits & bit:
                        counts[key] += 1
            for key, n in counts.items():
                self._reject(key, n)
        if len(requests) == 0:
            return
        self.summary.orders += len(requests)
        self.metrics.record_order(len(requests))
        # Fills of this batch reach the gate before its orders are decided.
        self._flush_gate_fills()
        self._orders_out(sent=True)
        self._send("order_in", requests)
        self._run_link()
        verdicts = self._receive("verdict_out")
        gate_out = self._receive("order_out")
        if len(verdicts) != len(requests) or np.any(
                verdicts["client_order_id"] != requests["client_order_id"]):
            raise LinkError(f"the gate answered {len(verdicts)} verdicts for {len(requests)} "
                            f"requests, or out of order")
        self._verdict_lat.append((verdicts["egress_cycle"].astype(np.int64)
                                  - verdicts["ingress_cycle"]) & _CYCLE_MASK)
        accepted = self.session.on_verdicts(verdicts)
        if accepted.tobytes() != gate_out.tobytes():
            raise LinkError(f"the gate passed {len(gate_out)} requests toward the venue but "
                            f"its verdicts accept {len(accepted)} others")
        self.summary.accepted += len(accepted)
        refused = verdicts["reasons"][(verdicts["flags"] & _VERDICT_ACCEPTED) == 0]
        if len(refused):
            for bit, name in enumerate(wire.RISK_REASONS):
                n = int(np.count_nonzero(refused & (1 << bit)))
                if n:
                    self._reject(f"gate:{name}", n)
        if len(accepted):
            self._venue_events(self._in_venue(self.venue.submit, accepted, self._now_ns))

    def _orders_out(self, sent: bool = False) -> None:
        # Records in → orders out, once per batch; the link's own time in between (fills handed
        # to the gate) and the paper venue's matching (the market's move) are not the host's.
        # ``sent``: the batch's orders leave now (else the batch sends none).
        if self._host_us_batch is not None or self._t_records_in is None:
            return
        us = ((time.perf_counter_ns() - self._t_records_in) / 1e3
              - (self._link_s - self._link_at_records_in) * 1e6
              - (self._venue_s - self._venue_at_records_in) * 1e6)
        self._host_us_batch = us
        self._host_us.append(us)
        if sent:
            self._tick_to_order_us.append(us)
        self.metrics.observe_host_latency(us / 1e6)

    def _reject(self, key: str, n: int = 1) -> None:
        self._rejects[key] += n
        # A host refusal is an intent that never became an order: not part of the reject rate.
        self.metrics.record_reject(key, n, sent=not key.startswith("host:"))

    def _venue_events(self, events: list) -> None:
        if not events:
            return
        oms = self.session.oms
        fills = self.session.on_venue_events(events)
        release = []
        for ev in events:
            if isinstance(ev, Reject):
                self._reject(f"venue:{ev.reason.name}")
                order = oms.orders[ev.client_order_id]
                if order.trades:
                    release.append(order)
            elif isinstance(ev, (Cancelled, Replaced)):
                # A replaced order leaves the gate's open orders only now that the venue says
                # so: until then it could still fill, and the gate counted it beside its
                # replacement.
                release.append(oms.orders[ev.client_order_id])
        if len(fills):
            self.summary.fills += len(fills)
            self.summary.filled_quantity += int(fills["quantity"].sum())
            self._pending_gate_fills.append(fills)
        if release:
            # A fill of quantity 0 with `done` tells the gate the order left the venue.
            self._pending_gate_fills.append(oms.fill_records(
                [Fill(client_order_id=o.client_order_id, slot=o.slot, side=o.side, price=o.price,
                      quantity=0, done=True) for o in release]))
        ctx = None
        for ev in events:
            if isinstance(ev, Fill):
                ctx = ctx or self._context()
                self.strategies.on_fill(ev, ctx, oms.orders[ev.client_order_id].strategy)

    def _flush_gate_fills(self, run: bool = True) -> None:
        if not self._pending_gate_fills:
            return
        fills = np.concatenate(self._pending_gate_fills)
        self._pending_gate_fills = []
        # A release of quantity 0 is the gate's protocol, a fill of 0 shares a venue's
        # contradiction: only the former reaches here.
        self._send("fill_in", fills)
        if run:
            self._run_link()

    # -- summary -------------------------------------------------------------------------

    def _finish_summary(self) -> None:
        s, oms = self.summary, self.session.oms
        s.rejects = dict(self._rejects)
        s.realised = oms.realised_pnl()
        s.unrealised = sum(oms.unrealised_pnl(slot) for slot, p in oms.positions.items()
                           if p.quantity == 0 or slot in oms.marks)
        tickers = self.plan.ticker_of_slot()
        s.positions = {tickers.get(slot) or f"slot {slot}": p.quantity
                       for slot, p in oms.positions.items() if p.quantity}
        unmarked = [slot for slot, p in oms.positions.items()
                    if p.quantity and slot not in oms.marks]
        if unmarked:
            s.notes.append(f"no mark price for slots {unmarked}: their unrealised P&L is left out")
        cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt)  # noqa: E731
        s.hw_bbo_cycles = cat(self._bbo_lat, np.int64)
        s.hw_verdict_cycles = cat(self._verdict_lat, np.int64)
        s.host_us = np.asarray(self._host_us)
        s.tick_to_order_us = np.asarray(self._tick_to_order_us)
        s.strategy_us = np.asarray(self._strategy_us)
        s.cycle_us = np.asarray(self._cycle_us)
        s.link_us = np.asarray(self._link_us)
        s.journal_us = np.asarray(self._journal_us)
        s.venue_us = np.asarray(self._venue_us)
        s.cycle_cpu_us = np.asarray(self._cycle_cpu_us)
        s.link_cpu_us = np.asarray(self._link_cpu_us)
        s.rss_mb = _rss_mb()
        s.rss_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if self.plan.carry:
            s.notes.append(f"{len(self.plan.carry)} symbol(s) booked by the host in software")
        if self.plan.error is not None:
            s.notes.append(f"feed ended early: {self.plan.error}")
        if self.strategies.last_error:
            s.notes.append(self.strategies.last_error)


# ------------------------------------------------------------------------------------------
# Recovery report
# ------------------------------------------------------------------------------------------

def describe_recovery(directory: str | os.PathLike) -> str:
    """Recover the session in ``directory`` and describe its state.

    Raises
    ------
    FileNotFoundError
        The directory holds no journal.
    """
    from host.journal import recover
    from host.journal.journal import JOURNAL_FILE

    path = Path(directory)
    if not (path / JOURNAL_FILE).is_file():
        raise FileNotFoundError(f"{path}: no journal ({JOURNAL_FILE}) in this directory")
    state = recover(path)
    try:
        oms, rep = state.oms, state.report
        states = Counter(o.state.name for o in oms.orders.values())
        rows = [
            ("journal", f"{path / JOURNAL_FILE}, last record {rep.last_seq:,}"),
            ("snapshot", f"after record {rep.snapshot_seq:,}" if rep.snapshot_seq else "none"),
            ("replayed", f"{rep.replayed:,} records after the snapshot"),
            ("torn tail", "none" if rep.torn_tail is None else str(rep.torn_tail)),
            ("orders", f"{len(oms.orders):,} "
                       f"({', '.join(f'{k} {v}' for k, v in sorted(states.items())) or 'none'})"),
            ("next client order id", f"{oms.next_client_order_id:,}"),
            ("live orders", f"{len(oms.open_orders()):,}"),
            ("realised P&L", format_dollars(oms.realised_pnl())),
        ]
        for slot, p in sorted(oms.positions.items()):
            mark = oms.marks.get(slot)
            unreal = format_dollars(p.unrealised(mark)) if mark is not None else "no mark"
            rows.append((f"slot {slot}", f"position {p.quantity:+,}  realised "
                                         f"{format_dollars(p.realised)}  unrealised {unreal}"))
        rows += [(f"counter {k}", f"{v:,}") for k, v in oms.counters.items()]
        width = max(len(k) for k, _ in rows)
        lines = [f"  {k:<{width}}  {v}" for k, v in rows] + [f"  note: {n}" for n in rep.notes]
        return "\n".join(lines)
    finally:
        state.journal.close()


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------

def _open_link(config: Config, slots: int, *, idle: float = 0.0, backpressure: float = 0.0):
    if config.link.backend == "board":
        from host.link.board import BoardLink

        if not config.link.bitstream:
            raise ConfigError("link.bitstream: the board backend needs the overlay's .bit path")
        return BoardLink(config.link.bitstream)
    from hdl.top import Top
    from host.link.sim import SimLink

    return SimLink(Top(slots=slots), idle=idle, backpressure=backpressure)


def cmd_run(args) -> int:
    try:
        if args.config:
            config = load_config(args.config)
        else:
            config = demo_config(journal_dir=args.journal)
        if args.config and args.journal:
            config = dataclasses.replace(
                config, journal=dataclasses.replace(config.journal, dir=args.journal))
        if args.feed:
            config = dataclasses.replace(
                config, feed=dataclasses.replace(config.feed, path=args.feed))
    except (ConfigError, OSError) as exc:
        print(f"ticklane run: {exc}", file=sys.stderr)
        return 2
    source = config.feed.path or "(none)"
    print(f"ticklane run: {source} on {config.link.backend} link, {len(config.strategies)} "
          f"strateg{'y' if len(config.strategies) == 1 else 'ies'}, paper venue", flush=True)
    try:
        link = _open_link(config, args.slots, idle=args.idle, backpressure=args.backpressure)
    except (LinkError, ConfigError, OSError, ImportError) as exc:
        print(f"ticklane run: cannot open the link: {exc}", file=sys.stderr)
        return 2
    server = None
    try:
        with link:
            try:
                daemon = Daemon(config, link, slots=args.slots, batch_messages=args.batch,
                                bbo_csv=args.bbo_csv)
            except (JournalCorrupt, JournalFormatError, JournalLocked, ReplayDivergence) as exc:
                print(f"ticklane run: cannot open the journal {config.journal.dir}: {exc}",
                      file=sys.stderr)
                return 2
            server = daemon.metrics.serve()
            old = {sig: signal.signal(sig, daemon.request_stop)
                   for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                summary = daemon.run(max_batches=args.max_batches)
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)
    except (ConfigError, LinkError) as exc:
        print(f"ticklane run: {exc}", file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.close()
    print(summary.format())
    if args.bbo_csv:
        print(f"  BBO CSV: {args.bbo_csv}")
    if args.latency_out:
        from tools.latency_report import save_run

        out = save_run(args.latency_out, summary.latency_paths(), *link.clock())
        print(f"  latency: {out} (ticklane report {out})")
    return 1 if daemon.plan.error is not None else 0


def cmd_recover(args) -> int:
    try:
        text = describe_recovery(args.dir)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"ticklane recover: {exc}", file=sys.stderr)
        return 2
    print(f"ticklane recover: {args.dir}")
    print(text)
    return 0


def add_parser(subparsers) -> None:
    """Add ``ticklane run`` and ``ticklane recover``."""
    p = subparsers.add_parser(
        "run", help="run the trading daemon",
        description="Run the daemon: market data through the gateware, strategies, the host and "
                    "gateware risk checks, the paper venue and the journal; print a summary. "
                    "Without --config, the embedded demo: the built-in demo stream on the "
                    "simulated gateware with a market maker and an imbalance strategy.")
    p.add_argument("--config", metavar="FILE", help="TOML configuration (see host/default.toml)")
    p.add_argument("--feed", metavar="FILE", help="ITCH file to replay (overrides feed.path)")
    p.add_argument("--journal", metavar="DIR",
                   help="journal directory (default: journal.dir, or a new temporary directory "
                        "for the demo)")
    p.add_argument("--bbo-csv", metavar="OUT.csv",
                   help="write one row per change of a symbol's top of book, as ticklane replay")
    p.add_argument("--latency-out", metavar="RUN.npz",
                   help="write the run's latencies per path for ticklane report: feed → BBO and "
                        "order → verdict in cycles, the host's tick → order loop in ns")
    p.add_argument("--batch", type=int, default=64, help="messages per batch (default 64)")
    p.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    p.add_argument("--slots", type=int, default=256, help="symbol slots of the book (default 256)")
    p.add_argument("--idle", type=float, default=0.0,
                   help="simulated link: probability of an idle input cycle (default 0)")
    p.add_argument("--backpressure", type=float, default=0.0,
                   help="simulated link: probability of output backpressure (default 0)")
    p.set_defaults(func=cmd_run)

    r = subparsers.add_parser("recover", help="rebuild and print a session's state from its journal",
                              description="Rebuild the order manager's exact state from the "
                                          "last snapshot plus the journal in DIR, and print it.")
    r.add_argument("dir", metavar="DIR", help="journal directory")
    r.set_defaults(func=cmd_recover)
