"""The fast batch harness: a generated C++ Verilator driver for any ticklane top, loaded by ctypes.

:class:`Harness` is what the host's simulated link, long replays, fuzz runs and benchmarks use;
:func:`build_harness` is the cached build behind :meth:`Harness.build`.
"""

from .generator import HarnessBuild, HarnessBuildError, StreamPort, build_harness, discover_streams
from .harness import Harness, StreamStats, load

__all__ = ["Harness", "StreamStats", "HarnessBuild", "HarnessBuildError", "StreamPort",
           "build_harness", "discover_streams", "load"]
