"""Evaluating many strategies per BBO batch.

Three evaluators with one interface (``evaluate(batch, ctx) -> list[OrderIntent]``,
``on_fill``, ``on_timer``, ``close``), giving the same intents in the same order (strategy order):

* :class:`SerialEvaluator`: each strategy's own ``on_bbo`` in turn; the reference.
* :class:`VectorisedEvaluator`: one :class:`BatchSummary` pass over the batch, then one kernel
  call per strategy class, which evaluates all its instances at once: each from its slot's last
  record in plain integers with the lookups bound once, or in one numpy pass with their
  parameters as arrays (:class:`host.strategy.builtin.RowKernel`). Classes without a kernel run
  serially.
* :class:`ProcessPoolEvaluator`: strategies split across worker processes, each running its
  share serially; the batch goes to every worker and the results are joined in order.

``tools/bench_strategies.py`` measures them; :data:`DEFAULT_EVALUATOR` is the faster one on
this machine class (see ``host/strategy/README.md`` for the numbers).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import traceback
from collections.abc import Sequence

import numpy as np

from host.strategy.api import Strategy, StrategyContext
from host.strategy.summary import BatchSummary
from host.types import Fill, OrderIntent

__all__ = [
    "Evaluator", "SerialEvaluator", "VectorisedEvaluator", "ProcessPoolEvaluator",
    "StrategyError", "make_evaluator", "DEFAULT_EVALUATOR", "SERIAL_BELOW", "EVALUATORS",
]

# Measured with tools/bench_strategies.py (host/strategy/README.md): the vectorised evaluator
# is faster than the process pool for 1, 8 and 32 strategies, because a round trip to a worker
# process costs more than evaluating all strategies in-process. It shares one pass over the batch
# between all strategies, so from two strategies on it is also faster than calling each one's
# own on_bbo; "auto" runs a single strategy serially.
DEFAULT_EVALUATOR = "vectorised"
SERIAL_BELOW = 2
EVALUATORS = ("serial", "vectorised", "process")

_log = logging.getLogger("ticklane.strategy")


class StrategyError(RuntimeError):
    """A strategy raised; the message names it and carries the traceback text."""


class Evaluator:
    """Common interface; see the module docstring.

    Parameters
    ----------
    strategies : sequence of Strategy
        Evaluated in this order; names must be unique.
    """

    def __init__(self, strategies: Sequence[Strategy]):
        self.strategies = tuple(strategies)
        names = [s.name for s in self.strategies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"strategy names must be unique; repeated: {dupes!r}")
        self._by_name = {s.name: s for s in self.strategies}
        # Timer ticks go only to strategies that override on_timer (the base class's answers
        # nothing), so a tick costs nothing for the others.
        self._timed = tuple(s for s in self.strategies
                            if type(s).on_timer is not Strategy.on_timer)

    def evaluate(self, batch: np.ndarray, ctx: StrategyContext) -> list[OrderIntent]:
        """Intents of all strategies for one batch, in strategy order."""
        raise NotImplementedError

    def on_fill(self, fill: Fill, ctx: StrategyContext, strategy: str) -> list[OrderIntent]:
        """Deliver a fill to the strategy that owns the order."""
        target = self._by_name.get(strategy)
        if target is None:
            raise KeyError(f"no strategy named {strategy!r}")
        return _call(target, "on_fill", fill, ctx)

    def on_timer(self, now_ns: int, ctx: StrategyContext) -> list[OrderIntent]:
        """Timer tick to every strategy, intents in strategy order."""
        out: list[OrderIntent] = []
        for s in self._timed:
            out.extend(_call(s, "on_timer", now_ns, ctx))
        return out

    def close(self) -> None:
        """Release workers (no-op for in-process evaluators)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _call(strategy: Strategy, method: str, *args) -> list[OrderIntent]:
    try:
        result = getattr(strategy, method)(*args)
    except Exception as exc:
        raise StrategyError(f"strategy {strategy.name!r}.{method} raised "
                            f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}") from exc
    if isinstance(result, OrderIntent):
        # An intent is a tuple: list() would make one "intent" of each of its fields.
        raise StrategyError(f"strategy {strategy.name!r}.{method} returned one OrderIntent; "
                            f"return a list of them")
    return list(result or ())


class SerialEvaluator(Evaluator):
    """Each strategy's own ``on_bbo``, one after the other."""

    def evaluate(self, batch, ctx):
        out: list[OrderIntent] = []
        for s in self.strategies:
            out.extend(_call(s, "on_bbo", batch, ctx))
        return out


class VectorisedEvaluator(Evaluator):
    """One pass over the batch shared by all strategies, one kernel call per class."""

    def __init__(self, strategies):
        super().__init__(strategies)
        groups: dict[type, list[int]] = {}
        self._serial: list[int] = []
        for i, s in enumerate(self.strategies):
            if s.kernel is None:
                self._serial.append(i)
            else:
                groups.setdefault(type(s), []).append(i)
        self._kernels = [(members, type(self.strategies[members[0]]).kernel(
            [self.strategies[i] for i in members])) for members in groups.values()]

    def evaluate(self, batch, ctx):
        per_strategy: list[list[OrderIntent]] = [[] for _ in self.strategies]
        summary = BatchSummary(batch)
        for members, kernel in self._kernels:
            try:
                results = kernel.evaluate(summary, ctx)
            except Exception as exc:
                names = [self.strategies[i].name for i in members]
                raise StrategyError(f"kernel of {names!r} raised {type(exc).__name__}: "
                                    f"{exc}\n{traceback.format_exc()}") from exc
            for i, intents in zip(members, results):
                per_strategy[i] = intents
        for i in self._serial:
            per_strategy[i] = _call(self.strategies[i], "on_bbo", batch, ctx)
        return [intent for intents in per_strategy for intent in intents]


def _worker_main(conn, payload: bytes) -> None:
    try:
        evaluator = SerialEvaluator(pickle.loads(payload))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        op, args = message
        try:
            if op == "bbo":
                result = evaluator.evaluate(*args)
            elif op == "fill":
                result = evaluator.on_fill(*args)
            elif op == "timer":
                result = evaluator.on_timer(*args)
            else:
                raise ValueError(f"unknown operation {op!r}")
            conn.send(("ok", result))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class ProcessPoolEvaluator(Evaluator):
    """Strategies split in contiguous shards over worker processes.

    Each worker keeps its strategies (and their state) for its whole life; every batch goes to
    all workers at once and the answers are joined in strategy order. Strategy classes must be
    importable by name in a fresh interpreter (the ``spawn`` start method), i.e. live in a
    module on ``sys.path``.

    Parameters
    ----------
    strategies : sequence of Strategy
    workers : int
        Worker processes (at most one per strategy).
    start_method : str
        ``multiprocessing`` start method; ``spawn`` avoids forking a process that runs threads
        (HTTP metrics, onnxruntime).
    """

    def __init__(self, strategies, *, workers: int = 2, start_method: str = "spawn"):
        super().__init__(strategies)
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        n = max(1, min(workers, len(self.strategies)))
        bounds = np.linspace(0, len(self.strategies), n + 1).round().astype(int)
        self._shards = [list(range(bounds[k], bounds[k + 1])) for k in range(n)]
        self._owner = {self.strategies[i].name: k
                       for k, shard in enumerate(self._shards) for i in shard}
        context = mp.get_context(start_method)
        self._conns = []
        self._procs = []
        try:
            for shard in self._shards:
                payload = pickle.dumps([self.strategies[i] for i in shard])
                parent, child = context.Pipe()
                proc = context.Process(target=_worker_main, args=(child, payload), daemon=True,
                                       name="ticklane-strategy-worker")
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
            for conn in self._conns:
                status, detail = conn.recv()
                if status != "ready":
                    raise StrategyError(f"strategy worker failed to start:\n{detail}")
        except BaseException:
            self.close()
            raise

    def _round_trip(self, targets: list[int], op: str, args: tuple) -> list[OrderIntent]:
        for k in targets:
            self._conns[k].send((op, args))
        out: list[OrderIntent] = []
        errors = []
        for k in targets:
            status, result = self._conns[k].recv()
            if status == "ok":
                out.extend(result)
            else:
                errors.append(result)
        if errors:
            raise StrategyError("strategy worker raised:\n" + "\n".join(errors))
        return out

    def evaluate(self, batch, ctx):
        return self._round_trip(list(range(len(self._conns))), "bbo", (batch, ctx))

    def on_fill(self, fill, ctx, strategy):
        if strategy not in self._owner:
            raise KeyError(f"no strategy named {strategy!r}")
        return self._round_trip([self._owner[strategy]], "fill", (fill, ctx, strategy))

    def on_timer(self, now_ns, ctx):
        return self._round_trip(list(range(len(self._conns))), "timer", (now_ns, ctx))

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=1)
        self._conns, self._procs = [], []


def make_evaluator(strategies: Sequence[Strategy], kind: str = "auto", *,
                   workers: int = 2) -> Evaluator:
    """Build an evaluator by name.

    Parameters
    ----------
    strategies : sequence of Strategy
    kind : {"auto", "serial", "vectorised", "process"}
        ``auto`` is :data:`DEFAULT_EVALUATOR`, or ``serial`` for fewer than
        :data:`SERIAL_BELOW` strategies.
    workers : int
        Worker processes for ``process``.
    """
    if kind == "auto":
        kind = DEFAULT_EVALUATOR if len(strategies) >= SERIAL_BELOW else "serial"
    if kind == "serial":
        return SerialEvaluator(strategies)
    if kind == "vectorised":
        return VectorisedEvaluator(strategies)
    if kind == "process":
        return ProcessPoolEvaluator(strategies, workers=workers)
    raise ValueError(f"evaluator kind must be one of {('auto',) + EVALUATORS!r}, got {kind!r}")
