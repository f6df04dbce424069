"""ONNX models: export of a logistic regression, and a host that serves and hot-swaps one.

The exported graph is ``p_up = Sigmoid(features @ W + b)`` with input ``features`` (float32,
``[N, N_FEATURES]``) and output ``p_up`` (float32, ``[N, 1]``). It uses opset 17 and IR version 8,
both accepted by onnxruntime 1.17 and later (onnxruntime's compatibility table).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from host.ml.features import FEATURE_NAMES, N_FEATURES

if TYPE_CHECKING:
    import onnx
    import onnxruntime as ort

# onnx and onnxruntime are imported where a model is built or loaded, not with this module: a
# daemon without an ML strategy never needs them, and onnxruntime alone adds about 30 MB of
# resident memory.

__all__ = [
    "DEFAULT_MODEL_PATH", "OPSET", "IR_VERSION", "ModelError", "ModelHost",
    "logistic_model", "write_model_atomic", "shared_model",
]

DEFAULT_MODEL_PATH = Path(__file__).with_name("model.onnx")
OPSET = 17
IR_VERSION = 8
INPUT_NAME = "features"
OUTPUT_NAME = "p_up"

_log = logging.getLogger("ticklane.ml")


class ModelError(RuntimeError):
    """A model file cannot be loaded or does not fit the feature set."""


def logistic_model(weights: np.ndarray, bias: float, *, metadata: dict[str, str] | None = None
                   ) -> "onnx.ModelProto":
    """Build the ONNX graph of a logistic regression over :data:`FEATURE_NAMES`.

    Parameters
    ----------
    weights : numpy.ndarray
        Shape ``(N_FEATURES,)``, on raw (unscaled) features.
    bias : float
    metadata : dict, optional
        Extra ``metadata_props`` (e.g. training set, accuracy).

    Returns
    -------
    onnx.ModelProto
        Checked with :func:`onnx.checker.check_model`.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.asarray(weights, np.float32).reshape(N_FEATURES, 1)
    w = numpy_helper.from_array(weights, "W")
    b = numpy_helper.from_array(np.asarray([bias], np.float32), "b")
    nodes = [
        helper.make_node("MatMul", [INPUT_NAME, "W"], ["logit_raw"]),
        helper.make_node("Add", ["logit_raw", "b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], [OUTPUT_NAME]),
    ]
    graph = helper.make_graph(
        nodes, "ticklane_mid_direction",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", N_FEATURES])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ticklane")
    model.ir_version = IR_VERSION
    props = {"feature_names": ",".join(FEATURE_NAMES)}
    props.update(metadata or {})
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def write_model_atomic(model: "onnx.ModelProto | bytes", path: str | Path) -> Path:
    """Write a model so that a reader sees either the old file or the whole new one.

    The bytes go to a temporary file in the same directory, are fsynced, and replace ``path``
    with :func:`os.replace` (atomic on POSIX within one file system).
    """
    path = Path(path)
    data = model if isinstance(model, bytes) else model.SerializeToString()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    # The inode changes on os.replace even when mtime granularity hides a quick rewrite.
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _load_session(path: Path) -> "ort.InferenceSession":
    import onnxruntime as ort

    try:
        opts = ort.SessionOptions()
        # The daemon shares two cores with the link; one intra-op thread per session suffices
        # for a model this small.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), sess_options=opts,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types
        raise ModelError(f"{path}: cannot load ONNX model: {exc}") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].shape[-1] != N_FEATURES:
        raise ModelError(f"{path}: expected one input of shape [N, {N_FEATURES}], got "
                         f"{[(i.name, i.shape) for i in inputs]!r}")
    names = session.get_modelmeta().custom_metadata_map.get("feature_names")
    if names is not None and names != ",".join(FEATURE_NAMES):
        raise ModelError(f"{path}: model was trained on features {names!r}, "
                         f"this build computes {','.join(FEATURE_NAMES)!r}")
    probe = session.run(None, {inputs[0].name: np.zeros((1, N_FEATURES), np.float32)})[0]
    if probe.shape != (1, 1) or not np.all(np.isfinite(probe)):
        raise ModelError(f"{path}: model output on a zero row is {probe!r}; "
                         f"expected one finite probability")
    return session


class ModelHost:
    """Serves one ONNX model file and swaps in a rewritten file between calls.

    The session is created once per file version. :meth:`maybe_reload` compares the file's
    mtime, size and inode with the loaded version; a new file that fails to load (corrupt,
    wrong feature set) leaves the old model serving, is logged, and is counted in
    :attr:`reload_failures` with the message in :attr:`last_error`.

    Parameters
    ----------
    path : str or Path
        The model file; default the shipped ``host/ml/model.onnx``.

    Raises
    ------
    ModelError
        When the initial file cannot be loaded.
    """

    def __init__(self, path: str | Path = DEFAULT_MODEL_PATH):
        self.path = Path(path)
        self.generation = 0
        self.reload_failures = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        signature = _file_signature(self.path)
        if signature is None:
            raise ModelError(f"{self.path}: model file does not exist")
        self._session = _load_session(self.path)
        self._input = self._session.get_inputs()[0].name
        self._signature = signature
        self._rejected: tuple | None = None

    @property
    def metadata(self) -> dict[str, str]:
        """The loaded model's ``metadata_props``."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Probability that the mid goes up next, per row.

        Parameters
        ----------
        features : numpy.ndarray
            Shape ``(n, N_FEATURES)``; converted to float32.

        Returns
        -------
        numpy.ndarray
            float32, shape ``(n,)``.
        """
        features = np.ascontiguousarray(features, np.float32)
        if features.ndim != 2 or features.shape[1] != N_FEATURES:
            raise ValueError(f"features must have shape (n, {N_FEATURES}), got {features.shape}")
        if features.shape[0] == 0:
            return np.zeros(0, np.float32)
        session = self._session  # one reference: a concurrent swap cannot split this call
        return session.run(None, {self._input: features})[0].reshape(-1)

    def maybe_reload(self) -> bool:
        """Load the file again if it changed since the last look.

        Returns
        -------
        bool
            True when a new model is now serving.
        """
        signature = _file_signature(self.path)
        if signature is None or signature == self._signature or signature == self._rejected:
            return False
        with self._lock:
            try:
                session = _load_session(self.path)
            except ModelError as exc:
                self._rejected = signature
                self.reload_failures += 1
                self.last_error = str(exc)
                _log.error("model reload failed, keeping generation %d: %s",
                           self.generation, exc)
                return False
            self._session = session
            self._input = session.get_inputs()[0].name
            self._signature = signature
            self._rejected = None
            self.generation += 1
            self.last_error = None
            _log.info("model %s reloaded (generation %d)", self.path, self.generation)
            return True


_shared: dict[Path, ModelHost] = {}
_shared_lock = threading.Lock()


def shared_model(path: str | Path = DEFAULT_MODEL_PATH) -> ModelHost:
    """One :class:`ModelHost` per model file per process, shared by the strategies using it."""
    key = Path(path).resolve()
    with _shared_lock:
        host = _shared.get(key)
        if host is None:
            host = _shared[key] = ModelHost(key)
        return host
