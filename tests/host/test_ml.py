"""ML: BBO features, numpy training, ONNX export, the shipped model and hot swap."""

import logging
import os

import numpy as np
import onnx
import pytest

from hdl.wire import BBO_UPDATE
from host.ml import (DEFAULT_MODEL_PATH, FEATURE_NAMES, N_FEATURES, FeatureExtractor, ModelError,
                     ModelHost, label_next_mid_move, logistic_model, write_model_atomic)
from host.ml.train import dataset_from_records, fit_logistic, synthetic_bbo
from host.strategy import MlSignal, empty_context
from tools import train_model


def _records(rows):
    """rows: (slot, bid, ask, bid_size, ask_size, flags)."""
    batch = BBO_UPDATE.array(len(rows))
    for i, (slot, bid, ask, bs, asz, flags) in enumerate(rows):
        batch[i] = (i + 1, bid, ask, bs, asz, 0, 0, slot, flags, 0, 0)
    return batch


def _bump_mtime(path):
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_features_of_known_book_match_hand_computed_values():
    # Arrange: spread 2 ticks around a mid of 100.01 $, sizes 300 / 100
    batch = _records([(0, 1_000_000, 1_000_200, 300, 100, 3)])

    # Act
    features, valid = FeatureExtractor().update(batch)

    # Assert
    assert valid.tolist() == [True]
    spread_bp, imbalance, change, depth = features[0]
    assert spread_bp == pytest.approx(200 / 1_000_100 * 1e4, rel=1e-6)
    assert imbalance == pytest.approx(0.5)
    assert change == 0.0
    assert depth == pytest.approx(np.log1p(400), rel=1e-6)
    assert features.dtype == np.float32 and features.shape == (1, N_FEATURES)


def test_mid_change_refers_to_previous_record_of_same_slot_across_batches():
    extractor = FeatureExtractor()
    extractor.update(_records([(1, 1_000_000, 1_000_200, 1, 1, 3)]))

    features, _ = extractor.update(_records([
        (2, 500_000, 500_100, 1, 1, 3),        # another slot: no history
        (1, 1_000_100, 1_000_300, 1, 1, 3),    # slot 1 mid up one tick
        (1, 1_000_000, 1_000_200, 1, 1, 3),    # and back
    ]))

    assert features[0, 2] == 0.0
    assert features[1, 2] == pytest.approx(200 / 2_000_200 * 1e4, rel=1e-5)
    assert features[2, 2] == pytest.approx(-200 / 2_000_400 * 1e4, rel=1e-5)


def test_one_sided_and_crossed_records_are_invalid_with_zero_features():
    features, valid = FeatureExtractor().update(_records([
        (0, 1_000_000, 0, 5, 0, 1),              # ask missing
        (0, 1_000_200, 1_000_100, 5, 5, 3),      # crossed
    ]))

    assert valid.tolist() == [False, False]
    assert not features.any()


def test_labels_mark_next_mid_direction_per_slot():
    batch = _records([
        (0, 100, 300, 1, 1, 3), (1, 100, 300, 1, 1, 3),
        (0, 200, 400, 1, 1, 3), (1, 50, 250, 1, 1, 3), (0, 200, 400, 1, 1, 3),
    ])

    label, usable = label_next_mid_move(batch)

    assert usable.tolist() == [True, True, False, False, False]
    assert label[:2].tolist() == [1.0, 0.0]


def test_logistic_fit_on_synthetic_stream_learns_imbalance_direction():
    x, y = dataset_from_records(synthetic_bbo(30_000, seed=5))

    fit = fit_logistic(x, y)

    assert fit.weights[FEATURE_NAMES.index("imbalance")] > 0.5
    assert fit.accuracy > 0.65


def test_exported_onnx_matches_numpy_logistic_function(tmp_path):
    weights = np.array([0.5, -1.0, 0.25, 0.1])
    path = write_model_atomic(logistic_model(weights, -0.3), tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(50, N_FEATURES)).astype(np.float32)

    p = ModelHost(path).predict(x)

    expected = 1 / (1 + np.exp(-(x.astype(np.float64) @ weights - 0.3)))
    np.testing.assert_allclose(p, expected, atol=1e-5)


def test_shipped_model_loads_is_small_and_names_its_features():
    host = ModelHost(DEFAULT_MODEL_PATH)
    features, _ = FeatureExtractor().update(synthetic_bbo(100, seed=2))

    p = host.predict(features)

    assert DEFAULT_MODEL_PATH.stat().st_size < 4096
    assert host.metadata["feature_names"] == ",".join(FEATURE_NAMES)
    assert onnx.load(DEFAULT_MODEL_PATH).opset_import[0].version == 17
    assert p.shape == (100,) and np.all((p >= 0) & (p <= 1))


def test_retraining_on_recorded_npy_is_picked_up_by_running_model_host(tmp_path):
    # Arrange: a host serving one model, and recorded records with a reversed signal
    out = tmp_path / "model.onnx"
    train_model.main(["--records", "5000", "--seed", "3", "--out", str(out)])
    host = ModelHost(out)
    recorded = synthetic_bbo(20_000, seed=9, signal=-4.0)
    np.save(tmp_path / "recorded.npy", recorded)
    # Two books that differ only in imbalance: the model's lean between them is its signal.
    probe = np.tile(np.float32([2.0, 0.0, 0.0, 8.0]), (2, 1))
    probe[:, FEATURE_NAMES.index("imbalance")] = [0.9, -0.9]
    lean_before = np.diff(host.predict(probe))[0]

    # Act
    train_model.main(["--data", str(tmp_path / "recorded.npy"), "--out", str(out)])
    swapped = host.maybe_reload()

    # Assert
    assert swapped and host.generation == 1
    assert host.metadata["trained_on"] == "recorded.npy"
    assert lean_before < 0 < np.diff(host.predict(probe))[0]
    assert host.maybe_reload() is False  # unchanged file: no second load


def test_corrupt_model_file_keeps_old_model_and_reports(tmp_path, caplog):
    path = write_model_atomic(logistic_model(np.ones(N_FEATURES), 0.0), tmp_path / "m.onnx")
    host = ModelHost(path)
    probe = np.full((2, N_FEATURES), 0.1, np.float32)
    before = host.predict(probe)

    path.write_bytes(b"\x08\x07 this is not a protobuf")
    _bump_mtime(path)
    with caplog.at_level(logging.ERROR, logger="ticklane.ml"):
        swapped = host.maybe_reload()

    assert swapped is False
    assert host.reload_failures == 1 and "cannot load" in host.last_error
    assert "keeping generation 0" in caplog.text
    np.testing.assert_array_equal(host.predict(probe), before)
    # A good file afterwards is taken.
    write_model_atomic(logistic_model(np.zeros(N_FEATURES), 0.0), path)
    assert host.maybe_reload() and host.last_error is None


def test_model_with_wrong_feature_count_is_refused(tmp_path):
    model = logistic_model(np.ones(N_FEATURES), 0.0)
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = N_FEATURES + 1
    path = tmp_path / "wrong.onnx"
    path.write_bytes(model.SerializeToString())

    with pytest.raises(ModelError):
        ModelHost(path)


def test_ml_strategy_orders_at_integer_bbo_prices(tmp_path):
    path = write_model_atomic(logistic_model(np.zeros(N_FEATURES), 5.0), tmp_path / "up.onnx")
    strategy = MlSignal(name="ml", slot=2, quantity=10, buy_above=0.9, sell_below=0.1,
                        model=str(path))
    batch = _records([(2, 1_000_000, 1_000_100, 50, 40, 3)])

    (intent,) = strategy.on_bbo(batch, empty_context())

    assert intent.price == 1_000_100 and type(intent.price) is int
    assert intent.side.name == "BUY" and intent.ioc and intent.quantity == 10


def test_features_of_the_last_rows_equal_the_full_pass_bit_for_bit():
    # Arrange: two extractors over the same random stream, batches of varying size
    from host.strategy.summary import BatchSummary
    records = synthetic_bbo(300 * 40, slots=5, seed=13)
    full, rows_only = FeatureExtractor(), FeatureExtractor()
    start, checked = 0, 0
    for size in [1, 7, 40, 64, 3] * 60:
        batch = records[start:start + size]
        start += size

        # Act
        features, valid = full.update(batch)
        rows = sorted(BatchSummary(batch).last.values())
        got, ok = rows_only.update_rows(batch, rows)

        # Assert
        assert ok == [bool(valid[r]) for r in rows]
        assert np.array_equal(got, np.where(valid[rows][:, None], features[rows], 0))
        checked += sum(ok)
    assert full._prev_mid2 == rows_only._prev_mid2 and checked > 500
