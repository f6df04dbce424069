"""Drive a verilated ticklane top in batches, like a DMA engine would.

Hand the harness buffers of input records, let it clock until everything is drained, take back the
output buffers: the clock loop runs in C++ (see ``harness_core.h``), Python only moves buffers.

Example
-------
>>> h = Harness.build(top, "ticklane_top", dtypes={"bbo": wire.BBO_UPDATE.dtype})
>>> h.reset()
>>> h.push("md", beats)
>>> cycles = h.run(max_cycles=10_000_000, idle={"md": 0.2}, backpressure={"bbo": 0.1}, seed=1)
>>> updates = h.pop("bbo")
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .generator import HarnessBuild, StreamPort, build_harness

__all__ = ["Harness", "StreamStats"]

if sys.byteorder != "little":  # records are copied into the model's words as raw bytes
    raise ImportError("sim.harness needs a little-endian host")

_ADDR_WORDS = 1 << 10  # hdl.regs.ADDR_BITS word addresses
_DEFAULT_SETTLE = 256  # above any latency of the stages so far; costs microseconds per run


def _bind(lib: ctypes.CDLL) -> None:
    vp, u8p, u64p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_uint64)
    sigs = {
        "th_stream_count": ([], ctypes.c_int),
        "th_stream_name": ([ctypes.c_int], ctypes.c_char_p),
        "th_stream_is_input": ([ctypes.c_int], ctypes.c_int),
        "th_stream_width": ([ctypes.c_int], ctypes.c_int),
        "th_stream_bytes": ([ctypes.c_int], ctypes.c_int),
        "th_has_csr": ([], ctypes.c_int),
        "th_create": ([], vp),
        "th_destroy": ([vp], None),
        "th_reset": ([vp, ctypes.c_uint32], None),
        "th_seed": ([vp, ctypes.c_uint64], None),
        "th_set_settle": ([vp, ctypes.c_uint32], None),
        "th_set_throttle": ([vp, ctypes.c_int, ctypes.c_double], ctypes.c_int),
        "th_push": ([vp, ctypes.c_int, u8p, ctypes.c_uint64], ctypes.c_int64),
        "th_pending": ([vp, ctypes.c_int], ctypes.c_int64),
        "th_pop": ([vp, ctypes.c_int, u8p, ctypes.c_uint64], ctypes.c_int64),
        "th_run": ([vp, ctypes.c_uint64, ctypes.c_int], ctypes.c_uint64),
        "th_cycle": ([vp], ctypes.c_uint64),
        "th_status": ([vp], ctypes.c_int),
        "th_stats": ([vp, ctypes.c_int, u64p], ctypes.c_int),
        "th_clear_stats": ([vp], None),
        "th_reg_write": ([vp, ctypes.c_uint32, ctypes.c_uint32], ctypes.c_int),
        "th_reg_read": ([vp, ctypes.c_uint32], ctypes.c_uint32),
    }
    for name, (args, res) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = res


class StreamStats(dict):
    """Counters of one stream: ``records`` transferred, ``stall_cycles`` (valid high, ready low)
    and ``throttle_cycles`` (input: valid held low on purpose with a record pending; output:
    ready held low on purpose)."""


class Harness:
    """One simulated instance of a design, clocked in batches.

    Build with :meth:`build`. Streams are named by their signature members; input streams take
    records with :meth:`push`, output streams give them back with :meth:`pop`. The register port
    (``csr``) is reached through :meth:`read_reg` and :meth:`write_reg`, each one clock cycle.

    Parameters
    ----------
    build : HarnessBuild
        A finished build (see :func:`sim.harness.generator.build_harness`).
    dtypes : mapping of str to numpy.dtype, optional
        Record dtype per stream; :meth:`pop` returns arrays of it, :meth:`push` checks against it.
    settle : int
        Cycles with no valid output after the inputs drain before :meth:`run` stops; must exceed
        the design's longest internal latency.
    """

    def __init__(self, build: HarnessBuild, *, dtypes: Mapping[str, np.dtype] | None = None,
                 settle: int = _DEFAULT_SETTLE):
        # Each design's library is opened by its own path; the symbols are local to it.
        self._lib = ctypes.CDLL(str(build.library))
        _bind(self._lib)
        self.build_info = build
        self._streams: dict[str, tuple[int, StreamPort]] = {}
        if self._lib.th_stream_count() != len(build.streams):
            raise RuntimeError(f"{build.library} has {self._lib.th_stream_count()} streams, "
                               f"the design {len(build.streams)}: stale build")
        for i, port in enumerate(build.streams):
            lib_view = (self._lib.th_stream_name(i).decode(), bool(self._lib.th_stream_is_input(i)),
                        self._lib.th_stream_width(i))
            if lib_view != (port.name, port.is_input, port.width):
                raise RuntimeError(f"{build.library} stream {i} is {lib_view!r}, "
                                   f"the design's is {port!r}: stale build")
            self._streams[port.name] = (i, port)
        self._dtypes: dict[str, np.dtype] = {}
        for name, dtype in (dtypes or {}).items():
            _, port = self._stream(name)
            dtype = np.dtype(dtype)
            if dtype.itemsize != port.record_bytes:
                raise ValueError(f"dtype for stream {name!r} is {dtype.itemsize} bytes; "
                                 f"its records are {port.record_bytes} bytes ({port.width} bits)")
            self._dtypes[name] = dtype
        self._handle = self._lib.th_create()
        if not self._handle:
            raise RuntimeError("th_create failed")
        self.set_settle(settle)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, component, name: str, config: str = "", *,
              dtypes: Mapping[str, np.dtype] | None = None, settle: int = _DEFAULT_SETTLE,
              fold: bool = True, gate: bool = True, pgo: str | None = None,
              schedule: bool = True) -> "Harness":
        """Build (or reuse from the cache) the harness of ``component`` and load it.

        Parameters
        ----------
        component : amaranth.lib.wiring.Component
            A ticklane top: stream members, optional ``csr`` register port.
        name : str
            Verilog module name of the top.
        config : str
            Description of the build parameters; part of the cache folder name.
        dtypes : mapping of str to numpy.dtype, optional
            Record dtype per stream name.
        settle : int
            See :class:`Harness`.
        fold : bool
            See :func:`sim.harness.build_harness`; the default folds next-state blocks.
        gate : bool
            See :func:`sim.harness.build_harness`; the default gates the clocks of the blocks
            the component names in ``sim_gates``.
        pgo : str, optional
            See :func:`sim.harness.build_harness`: ``"module:function"`` of a trainer for a
            profile-guided build.
        schedule : bool
            See :func:`sim.harness.build_harness`; the default steps the model by the
            harness's own schedule where the generated code allows it.

        Returns
        -------
        Harness
            A fresh instance at cycle 0, not yet reset.
        """
        return cls(build_harness(component, name, config=config, fold=fold, gate=gate, pgo=pgo,
                                 schedule=schedule),
                   dtypes=dtypes, settle=settle)

    def spawn(self) -> "Harness":
        """Another independent instance of the same design (same library, own state)."""
        return type(self)(self.build_info, dtypes=self._dtypes, settle=self._settle)

    def close(self) -> None:
        """Free the simulated instance; the harness is unusable afterwards."""
        if getattr(self, "_handle", None):
            self._lib.th_destroy(self._handle)
            self._handle = None

    def __del__(self):
        self.close()

    def __enter__(self) -> "Harness":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------
    @property
    def streams(self) -> dict[str, StreamPort]:
        """The design's streams by name, in the library's order."""
        return {name: port for name, (_, port) in self._streams.items()}

    @property
    def cycle(self) -> int:
        """Rising edges clocked since creation (reset, run and register cycles alike)."""
        return int(self._lib.th_cycle(self._h))

    @property
    def _h(self):
        if not self._handle:
            raise RuntimeError("the harness was closed")
        return self._handle

    def _stream(self, name: str) -> tuple[int, StreamPort]:
        try:
            return self._streams[name]
        except KeyError:
            raise KeyError(f"the design has no stream {name!r}; "
                           f"it has {sorted(self._streams)!r}") from None

    def set_settle(self, cycles: int) -> None:
        """Set the quiet cycles :meth:`run` waits for after the inputs drain."""
        if not 1 <= int(cycles) < 1 << 32:
            raise ValueError(f"settle must be in 1 .. 2**32-1 cycles, got {cycles!r}")
        self._settle = int(cycles)
        self._lib.th_set_settle(self._h, self._settle)

    def reset(self, cycles: int = 4) -> None:
        """Hold ``rst`` for ``cycles`` rising edges with all valid and ready low.

        Records already queued stay queued; a record that was being presented is presented again.
        """
        if not 1 <= int(cycles) < 1 << 32:
            raise ValueError(f"reset needs 1 .. 2**32-1 cycles, got {cycles!r}")
        self._lib.th_reset(self._h, int(cycles))

    # ------------------------------------------------------------------------------------------
    def push(self, stream_name: str, records) -> int:
        """Queue records on an input stream.

        Parameters
        ----------
        stream_name : str
        records : numpy.ndarray or bytes-like
            A 1-D array of a dtype whose itemsize is the record size, a 2-D ``uint8`` array of
            record rows, or bytes whose length is a multiple of the record size.

        Returns
        -------
        int
            Records queued.
        """
        index, port = self._stream(stream_name)
        if not port.is_input:
            raise ValueError(f"stream {stream_name!r} is an output of the design; pop it")
        size = port.record_bytes
        if isinstance(records, np.ndarray):
            if records.dtype.itemsize == size and records.ndim == 1 and records.dtype != np.uint8:
                expected = self._dtypes.get(stream_name)
                if expected is not None and records.dtype != expected:
                    raise TypeError(f"stream {stream_name!r} takes dtype {expected!r}, "
                                    f"got {records.dtype!r}")
                raw = np.ascontiguousarray(records).view(np.uint8).reshape(-1)
            elif records.dtype == np.uint8 and (records.ndim == 1 or records.shape[-1] == size):
                raw = np.ascontiguousarray(records).reshape(-1)
            else:
                raise TypeError(f"stream {stream_name!r} takes {size}-byte records; got an array "
                                f"of dtype {records.dtype!r} and shape {records.shape!r}")
        else:
            raw = np.frombuffer(bytes(records), dtype=np.uint8)
        if raw.size % size:
            raise ValueError(f"stream {stream_name!r} takes {size}-byte records; "
                             f"{raw.size} bytes is not a whole number of them")
        n = raw.size // size
        if n == 0:
            return 0
        done = self._lib.th_push(self._h, index, raw.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
                                 n)
        if done != n:
            raise RuntimeError(f"push to {stream_name!r} failed ({done})")
        return n

    def pending(self, stream_name: str) -> int:
        """Records queued and not yet accepted (input), or received and not yet popped (output)."""
        index, _ = self._stream(stream_name)
        return int(self._lib.th_pending(self._h, index))

    def pop(self, stream_name: str, max_records: int | None = None,
            dtype: np.dtype | None = None) -> np.ndarray:
        """Take the records an output stream has produced.

        Parameters
        ----------
        stream_name : str
        max_records : int, optional
            At most this many (default: all).
        dtype : numpy.dtype, optional
            Overrides the dtype given at build time; ``numpy.uint8`` asks for raw rows.

        Returns
        -------
        numpy.ndarray
            1-D array of the stream's dtype, or ``uint8`` rows of shape ``(n, record_bytes)`` when
            no dtype is known.
        """
        index, port = self._stream(stream_name)
        if port.is_input:
            raise ValueError(f"stream {stream_name!r} is an input of the design; push to it")
        n = self.pending(stream_name)
        if max_records is not None:
            n = min(n, int(max_records))
        rows = np.empty((n, port.record_bytes), dtype=np.uint8)
        got = self._lib.th_pop(self._h, index, rows.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)),
                               n) if n else 0
        if got != n:
            raise RuntimeError(f"pop from {stream_name!r} returned {got}, expected {n}")
        dtype = dtype if dtype is not None else self._dtypes.get(stream_name)
        if dtype is None or np.dtype(dtype) == np.uint8:
            return rows
        return rows.reshape(-1).view(np.dtype(dtype))

    # ------------------------------------------------------------------------------------------
    def run(self, max_cycles: int = 10_000_000, *, idle: Mapping[str, float] | None = None,
            backpressure: Mapping[str, float] | None = None, seed: int | None = None,
            stop_when_drained: bool = True) -> int:
        """Clock the design until it has drained, or for a budget of cycles.

        Parameters
        ----------
        max_cycles : int
            Budget of rising edges for this call.
        idle : mapping of str to float, optional
            Per input stream, the probability that a pending record is held back one more cycle
            (valid low). Streams not named get 0 for this run.
        backpressure : mapping of str to float, optional
            Per output stream, the probability that ready is low in a cycle. Streams not named
            get 0 for this run.
        seed : int, optional
            Reseed the idle/backpressure generator; without it the sequence continues.
        stop_when_drained : bool
            Stop once every input queue is empty and no output has been valid for ``settle``
            cycles; otherwise run exactly ``max_cycles``.

        Returns
        -------
        int
            Cycles run.

        Raises
        ------
        RuntimeError
            The design executed ``$finish``/``$stop`` or reported an error.
        """
        if max_cycles < 0:
            raise ValueError(f"max_cycles must be >= 0, got {max_cycles!r}")
        self._apply_throttle(idle or {}, backpressure or {})
        if seed is not None:
            self._lib.th_seed(self._h, int(seed) & ((1 << 64) - 1))
        cycles = int(self._lib.th_run(self._h, int(max_cycles), int(bool(stop_when_drained))))
        status = self._lib.th_status(self._h)
        if status:
            raise RuntimeError(f"the design stopped the simulation at cycle {self.cycle} "
                               f"({'an error' if status & 2 else '$finish/$stop'}); "
                               f"this instance cannot run further")
        return cycles

    def _apply_throttle(self, idle: Mapping[str, float], backpressure: Mapping[str, float]):
        for kind, table, want_input in (("idle", idle, True),
                                        ("backpressure", backpressure, False)):
            for name, p in table.items():
                _, port = self._stream(name)
                if port.is_input != want_input:
                    raise ValueError(f"{kind} applies to {'input' if want_input else 'output'} "
                                     f"streams; {name!r} is an "
                                     f"{'input' if port.is_input else 'output'}")
                if not 0.0 <= float(p) <= 1.0:
                    raise ValueError(f"{kind} probability for {name!r} must be in [0, 1], "
                                     f"got {p!r}")
        for name, (index, port) in self._streams.items():
            p = idle.get(name, 0.0) if port.is_input else backpressure.get(name, 0.0)
            self._lib.th_set_throttle(self._h, index, float(p))

    # ------------------------------------------------------------------------------------------
    def _check_addr(self, word: int) -> int:
        if not self.build_info.has_csr:
            raise RuntimeError("the design has no 'csr' register port")
        word = int(word)
        if not 0 <= word < _ADDR_WORDS:
            raise ValueError(f"register word address {word!r} is outside 0 .. {_ADDR_WORDS - 1}")
        return word

    def read_reg(self, word: int) -> int:
        """Read the register at word address ``word`` (one clock cycle)."""
        return int(self._lib.th_reg_read(self._h, self._check_addr(word)))

    def write_reg(self, word: int, value: int) -> None:
        """Write ``value`` (32 bits) to the register at word address ``word`` (one clock cycle)."""
        if not 0 <= int(value) < 1 << 32:
            raise ValueError(f"register value {value!r} does not fit in 32 bits")
        self._lib.th_reg_write(self._h, self._check_addr(word), int(value))

    # ------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, StreamStats]:
        """Counters per stream since creation or :meth:`clear_stats`."""
        out = {}
        buf = (ctypes.c_uint64 * 3)()
        for name, (index, _) in self._streams.items():
            self._lib.th_stats(self._h, index, buf)
            out[name] = StreamStats(records=buf[0], stall_cycles=buf[1], throttle_cycles=buf[2])
        return out

    def clear_stats(self) -> None:
        """Zero every stream counter (the cycle counter keeps running)."""
        self._lib.th_clear_stats(self._h)


def load(library: Path | str, streams: tuple[StreamPort, ...], *, has_csr: bool,
         dtypes: Mapping[str, np.dtype] | None = None) -> Harness:
    """Load an already built harness library without Amaranth (e.g. a shipped build)."""
    library = Path(library)
    info = HarnessBuild(library=library, streams=tuple(streams), has_csr=has_csr,
                        folder=library.parent, rebuilt=False)
    return Harness(info, dtypes=dtypes)
