"""Metrics: a dedicated registry, a localhost endpoint, batch latency histograms, alerts."""

import logging
import socket
import urllib.request

import numpy as np
import pytest

from hdl.wire import BBO_UPDATE
from host.config import MetricsConfig
from host.metrics import Metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(n: int, *, slot: int = 0, ingress: int = 1000, latency: int = 20) -> np.ndarray:
    batch = BBO_UPDATE.array(n)
    batch["slot"] = slot
    batch["ingress_cycle"] = ingress
    batch["egress_cycle"] = (ingress + latency) & 0xFFFFFFFF
    return batch


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in scrape")


def test_scrape_of_localhost_endpoint_shows_recorded_counts():
    # Arrange
    metrics = Metrics()
    metrics.record_messages(7)
    metrics.record_bbo_batch(_batch(5, latency=20), now_ns=0)
    metrics.record_order(3)
    metrics.record_reject("collar")
    metrics.record_gap()
    metrics.observe_host_latency(42e-6)
    metrics.set_queue_depth("intents", 9)
    port = _free_port()

    # Act
    server = metrics.serve(port=port)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.close()

    # Assert
    assert server.host == "127.0.0.1"
    assert _sample(text, "ticklane_messages_total") == 7
    assert _sample(text, "ticklane_bbo_records_total") == 5
    assert _sample(text, "ticklane_orders_total") == 3
    assert _sample(text, 'ticklane_rejects_total{reason="collar"}') == 1
    assert _sample(text, "ticklane_gaps_total") == 1
    assert _sample(text, 'ticklane_queue_depth{queue="intents"}') == 9
    assert _sample(text, 'ticklane_hw_latency_cycles_bucket{le="16"}') == 0
    assert _sample(text, 'ticklane_hw_latency_cycles_bucket{le="32"}') == 5
    assert _sample(text, "ticklane_hw_latency_cycles_sum") == 100
    assert _sample(text, 'ticklane_host_latency_seconds_bucket{le="5e-05"}') == 1
    assert _sample(text, 'ticklane_host_latency_seconds_bucket{le="2.5e-05"}') == 0


def test_port_zero_disables_the_endpoint():
    assert Metrics(MetricsConfig(port=0)).serve() is None


def test_two_instances_do_not_collide_in_their_registries():
    a, b = Metrics(), Metrics()
    a.record_order(2)

    assert a.registry.get_sample_value("ticklane_orders_total") == 2
    assert b.registry.get_sample_value("ticklane_orders_total") == 0


def test_hardware_latency_across_cycle_counter_wrap_is_small():
    metrics = Metrics()

    metrics.record_bbo_batch(_batch(4, ingress=0xFFFFFFF0, latency=24), now_ns=0)

    assert metrics.registry.get_sample_value("ticklane_hw_latency_cycles_sum") == 4 * 24
    assert metrics.registry.get_sample_value("ticklane_hw_latency_cycles_bucket",
                                             {"le": "32"}) == 4


def test_reject_rate_over_threshold_logs_alert_then_clears_next_window(caplog):
    # Arrange
    cfg = MetricsConfig(reject_rate_alert=0.1, min_orders_for_reject_alert=10, window_s=1.0)
    metrics = Metrics(cfg)
    metrics.record_order(10)
    metrics.record_reject("max_qty", 2)

    # Act
    with caplog.at_level(logging.INFO, logger="ticklane.alerts"):
        raised = metrics.check_alerts(now_ns=0)
        metrics.check_alerts(now_ns=1_500_000_000)  # closes the window
        metrics.record_order(10)
        cleared = metrics.check_alerts(now_ns=1_600_000_000)

    # Assert
    assert [(a.kind, a.active) for a in raised] == [("reject_rate", True)]
    assert [(a.kind, a.active) for a in cleared] == [("reject_rate", False)]
    assert any(r.levelno == logging.WARNING and "reject_rate" in r.getMessage()
               for r in caplog.records)


def test_reject_rate_at_threshold_raises_no_alert():
    metrics = Metrics(MetricsConfig(reject_rate_alert=0.2, min_orders_for_reject_alert=10))
    metrics.record_order(10)
    metrics.record_reject("collar", 2)

    assert metrics.check_alerts(now_ns=0) == []


def test_host_refusals_are_counted_but_not_in_the_reject_rate():
    # The rate is refused orders over orders sent: intents the host refused were never sent.
    metrics = Metrics(MetricsConfig(reject_rate_alert=0.2, min_orders_for_reject_alert=10))
    metrics.record_order(10)
    metrics.record_reject("host:OPEN_ORDERS", 30, sent=False)
    metrics.record_reject("gate:POSITION_LIMIT", 2)
    assert metrics.check_alerts(now_ns=0) == []

    metrics.record_reject("venue:UNKNOWN_ORDER", 1)
    (alert,) = metrics.check_alerts(now_ns=1)
    assert (alert.kind, alert.active) == ("reject_rate", True)
    assert alert.message.startswith("3 of 10 orders rejected (30.0%")


def test_gap_count_at_threshold_raises_alert_once():
    metrics = Metrics(MetricsConfig(gap_alert=2))
    metrics.record_gap()
    assert metrics.check_alerts(now_ns=0) == []
    metrics.record_gap()

    first = metrics.check_alerts(now_ns=1)
    second = metrics.check_alerts(now_ns=2)

    assert [(a.kind, a.active) for a in first] == [("gaps", True)]
    assert second == []


def test_book_without_updates_past_threshold_is_reported_stale_by_slot(caplog):
    metrics = Metrics(MetricsConfig(stale_book_alert_ms=100))
    metrics.record_bbo_batch(_batch(1, slot=3), now_ns=0)
    metrics.record_bbo_batch(_batch(1, slot=4), now_ns=150_000_000)

    with caplog.at_level(logging.WARNING, logger="ticklane.alerts"):
        alerts = metrics.check_alerts(now_ns=200_000_000)

    assert len(alerts) == 1 and alerts[0].active and "[3]" in alerts[0].message
    assert "stale_book" in caplog.text


def test_batch_of_wrong_dtype_is_refused():
    with pytest.raises(TypeError, match="BBO_UPDATE"):
        Metrics().record_bbo_batch(np.zeros(3, np.int64), now_ns=0)
