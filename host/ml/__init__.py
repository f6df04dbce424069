"""ML inference for strategies: BBO features, an ONNX model host with hot swap, training."""

from host.ml.features import FEATURE_NAMES, N_FEATURES, FeatureExtractor, label_next_mid_move
from host.ml.model import (DEFAULT_MODEL_PATH, ModelError, ModelHost, logistic_model,
                           shared_model, write_model_atomic)

__all__ = [
    "FEATURE_NAMES", "N_FEATURES", "FeatureExtractor", "label_next_mid_move",
    "DEFAULT_MODEL_PATH", "ModelError", "ModelHost", "logistic_model", "shared_model",
    "write_model_atomic",
]
