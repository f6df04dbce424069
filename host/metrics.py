"""Prometheus metrics of the daemon and threshold alerts in the log.

All metrics live in a dedicated :class:`prometheus_client.CollectorRegistry` (never the global
one), so several daemons or tests in one process do not collide. The hardware latency
histogram is filled a whole BBO batch at a time with numpy and exported through a custom
collector, since prometheus-client's ``Histogram`` observes one value per call.

Alerts are edge-triggered: a ``WARNING`` on logger ``ticklane.alerts`` when a condition starts
and an ``INFO`` when it clears.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import numpy as np
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram,
                               start_http_server)
from prometheus_client.core import HistogramMetricFamily

from hdl.wire import BBO_UPDATE, CYCLE_STAMP_BITS
from host.config import MetricsConfig

__all__ = ["Metrics", "MetricsServer", "Alert", "CycleHistogram", "HW_LATENCY_BUCKETS",
           "HOST_LATENCY_BUCKETS_US"]

_alert_log = logging.getLogger("ticklane.alerts")

# Cycle buckets: the book path is tens of cycles; powers of two up to a few microseconds.
HW_LATENCY_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
HOST_LATENCY_BUCKETS_US = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000)
_CYCLE_MASK = (1 << CYCLE_STAMP_BITS) - 1


class CycleHistogram:
    """A Prometheus histogram of cycle counts filled from numpy arrays.

    Parameters
    ----------
    name, documentation : str
        Metric name (without ``_bucket`` etc.) and help text.
    buckets : tuple of int
        Upper bounds, increasing; ``+Inf`` is added.
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[int, ...]):
        if list(buckets) != sorted(set(buckets)):
            raise ValueError(f"buckets must increase strictly, got {buckets!r}")
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(buckets, np.int64)
        self._counts = np.zeros(len(buckets) + 1, np.int64)  # last: above every bound
        self._sum = 0
        self._lock = threading.Lock()

    def observe_many(self, cycles: np.ndarray) -> None:
        """Add many observations (non-negative integers)."""
        cycles = np.asarray(cycles, np.int64)
        if cycles.size == 0:
            return
        # side="left": a value equal to a bound belongs to that bound's bucket (le semantics).
        per_bucket = np.bincount(np.searchsorted(self.bounds, cycles, side="left"),
                                 minlength=self._counts.size)
        with self._lock:
            self._counts += per_bucket
            self._sum += int(cycles.sum())

    @property
    def count(self) -> int:
        """Observations so far."""
        return int(self._counts.sum())

    def collect(self):
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        buckets = [(str(int(b)), c) for b, c in zip(self.bounds.tolist(), cumulative)]
        buckets.append(("+Inf", cumulative[-1]))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets,
                                    sum_value=total)

    def describe(self):
        return []


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert transition.

    Attributes
    ----------
    kind : {"reject_rate", "gaps", "stale_book"}
    active : bool
        True when the condition started, False when it cleared.
    message : str
    """

    kind: str
    active: bool
    message: str


class MetricsServer:
    """The running HTTP endpoint; :meth:`close` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread):
        self._server = server
        self._thread = thread
        self.host, self.port = server.server_address[:2]

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Metrics:
    """The daemon's counters, histograms, gauges and alert thresholds.

    Parameters
    ----------
    config : MetricsConfig
        Endpoint address and alert thresholds.
    registry : CollectorRegistry, optional
        Default: a new registry owned by this object.

    Attributes
    ----------
    messages : Counter
        ``ticklane_messages_total``: feed messages the gateware delimited.
    bbo_records : Counter
        ``ticklane_bbo_records_total``.
    orders : Counter
        ``ticklane_orders_total``: order requests sent to the risk gate.
    rejects : Counter
        ``ticklane_rejects_total{reason}``.
    gaps : Counter
        ``ticklane_gaps_total``: sequence gaps detected in market data.
    hw_latency : CycleHistogram
        ``ticklane_hw_latency_cycles``: egress minus ingress cycle of BBO records.
    host_latency : Histogram
        ``ticklane_host_latency_seconds``: the host's time from a batch's BBO records in host
        memory to its order requests sent, the link's and the paper venue's time left out.
    queue_depth : Gauge
        ``ticklane_queue_depth{queue}``.
    refills : Counter
        ``ticklane_book_refills_total{event}``: ``flagged`` gateware records that carried the
        refill flag, ``substituted`` BBO records the host published from its software book in
        their place, ``sent`` refill batches sent on ``refill_in``, ``cleared`` symbols the
        gateware publishes exactly again after a refill, ``abandoned`` symbols whose refill the
        gateware would not take (left to the host's book).
    """

    def __init__(self, config: MetricsConfig = MetricsConfig(), *,
                 registry: CollectorRegistry | None = None):
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.messages = Counter("ticklane_messages", "feed messages delimited", registry=r)
        self.bbo_records = Counter("ticklane_bbo_records", "BBO update records", registry=r)
        self.orders = Counter("ticklane_orders", "order requests sent to the risk gate",
                              registry=r)
        self.rejects = Counter("ticklane_rejects",
                               "refusals by reason: host: intents the pre-check refused, gate: "
                               "and venue: order requests", ["reason"], registry=r)
        self.gaps = Counter("ticklane_gaps", "market-data sequence gaps", registry=r)
        self.host_latency = Histogram("ticklane_host_latency_seconds",
                                      "BBO records in host memory to order requests sent",
                                      buckets=[b / 1e6 for b in HOST_LATENCY_BUCKETS_US],
                                      registry=r)
        self.queue_depth = Gauge("ticklane_queue_depth", "items waiting in a queue", ["queue"],
                                 registry=r)
        self.refills = Counter("ticklane_book_refills", "book refill events", ["event"],
                               registry=r)
        self.hw_latency = CycleHistogram("ticklane_hw_latency_cycles",
                                         "BBO record egress minus ingress cycle",
                                         HW_LATENCY_BUCKETS)
        r.register(self.hw_latency)
        # Plain integers for the alert window: reading values back out of prometheus-client
        # would need its private attributes.
        self._window_start_ns: int | None = None
        self._window_orders = 0
        self._window_rejects = 0
        self._window_gaps = 0
        self._last_bbo_ns: dict[int, int] = {}
        self._active: dict[str, bool] = {}
        self._stale_slots: set[int] = set()

    # -- recording -----------------------------------------------------------------------

    def record_messages(self, n: int = 1) -> None:
        """Count feed messages."""
        self.messages.inc(n)

    def record_bbo_batch(self, batch: np.ndarray, now_ns: int) -> None:
        """Count a batch of BBO records, their hardware latency and each slot's last update.

        Parameters
        ----------
        batch : numpy.ndarray
            ``BBO_UPDATE.dtype`` records.
        now_ns : int
            Host time the batch arrived, for book staleness.
        """
        if batch.dtype != BBO_UPDATE.dtype:
            raise TypeError(f"expected BBO_UPDATE.dtype, got {batch.dtype!r}")
        if batch.size == 0:
            return
        self.bbo_records.inc(int(batch.size))
        # Stamps are the low CYCLE_STAMP_BITS of the counter: difference modulo 2**bits.
        latency = (batch["egress_cycle"].astype(np.int64)
                   - batch["ingress_cycle"].astype(np.int64)) & _CYCLE_MASK
        self.hw_latency.observe_many(latency)
        self._last_bbo_ns.update(dict.fromkeys(batch["slot"].tolist(), now_ns))

    def record_order(self, n: int = 1) -> None:
        """Count order requests sent."""
        self.orders.inc(n)
        self._window_orders += n

    def record_reject(self, reason: str, n: int = 1, *, sent: bool = True) -> None:
        """Count refusals by reason (e.g. ``gate:POSITION_LIMIT``).

        ``sent``: the refused were order requests sent to the gate (counted by
        :meth:`record_order`), which the reject rate is judged on; False for intents the host
        refused before they became orders.
        """
        self.rejects.labels(reason=reason).inc(n)
        if sent:
            self._window_rejects += n

    def record_gap(self, n: int = 1) -> None:
        """Count market-data sequence gaps."""
        self.gaps.inc(n)
        self._window_gaps += n

    def record_refill(self, event: str, n: int = 1) -> None:
        """Count book refill events (see :attr:`refills`)."""
        if n:
            self.refills.labels(event=event).inc(n)

    def observe_host_latency(self, seconds: float) -> None:
        """One host-side latency observation (see :attr:`host_latency`)."""
        self.host_latency.observe(seconds)

    def set_queue_depth(self, queue: str, depth: int) -> None:
        """Current depth of a named queue (``intents``, ``bbo``, ``journal`` ...)."""
        self.queue_depth.labels(queue=queue).set(depth)

    # -- alerts --------------------------------------------------------------------------

    def _transition(self, kind: str, active: bool, message: str, out: list[Alert]) -> None:
        if self._active.get(kind, False) == active:
            return
        self._active[kind] = active
        out.append(Alert(kind=kind, active=active, message=message))
        if active:
            _alert_log.warning("ALERT %s: %s", kind, message)
        else:
            _alert_log.info("cleared %s: %s", kind, message)

    def check_alerts(self, now_ns: int) -> list[Alert]:
        """Compare the current window with the thresholds; log and return transitions.

        Reject rate and gaps are judged over a window of ``config.window_s`` seconds that
        starts at the first call; a window is judged while it runs and again when it closes,
        then the next window starts from zero. Staleness is judged per slot at every call.
        """
        cfg = self.config
        out: list[Alert] = []
        if self._window_start_ns is None:
            self._window_start_ns = now_ns
        orders, rejects, gaps = self._window_orders, self._window_rejects, self._window_gaps
        if orders >= cfg.min_orders_for_reject_alert:
            rate = rejects / orders
            self._transition("reject_rate", rate > cfg.reject_rate_alert,
                             f"{rejects} of {orders} orders rejected ({rate:.1%}, threshold "
                             f"{cfg.reject_rate_alert:.1%})", out)
        self._transition("gaps", gaps >= cfg.gap_alert,
                         f"{gaps} sequence gap(s) in the window (threshold {cfg.gap_alert})",
                         out)
        limit_ns = cfg.stale_book_alert_ms * 1_000_000
        stale = {s for s, t in self._last_bbo_ns.items() if now_ns - t > limit_ns}
        if stale != self._stale_slots:
            self._stale_slots = stale
            if stale:
                self._active["stale_book"] = False  # re-announce a changed set of slots
            self._transition("stale_book", bool(stale),
                             f"no book update for > {cfg.stale_book_alert_ms} ms on slots "
                             f"{sorted(stale)}", out)
        if now_ns - self._window_start_ns >= cfg.window_s * 1e9:
            self._window_start_ns = now_ns
            self._window_orders = self._window_rejects = self._window_gaps = 0
        return out

    # -- endpoint ------------------------------------------------------------------------

    def serve(self, host: str | None = None, port: int | None = None) -> MetricsServer | None:
        """Start the HTTP endpoint in a daemon thread.

        Parameters
        ----------
        host, port
            Default: ``config.host`` (``127.0.0.1``) and ``config.port``. Port 0 means
            disabled.

        Returns
        -------
        MetricsServer or None
            None when disabled.
        """
        host = self.config.host if host is None else host
        port = self.config.port if port is None else port
        if port == 0:
            return None
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return MetricsServer(server, thread)
