"""Running configured strategies, with hot reload of their module files between batches.

:class:`StrategyHost` owns the strategies, their evaluator and the queue of intents waiting for
the order manager. Before each batch (and timer tick) it compares the modification stamp of
every strategy module file with the one it loaded. A changed file is executed into a fresh
module object; only if that succeeds and every strategy of the module can be built again are
the new instances swapped in (taking over ``export_state()`` of the old ones) and the evaluator
rebuilt. A file that fails (syntax error, exception, missing class) leaves the old version
running; the error is logged and kept in :attr:`StrategyHost.last_error`.

Reloads happen only between batches, and the intent queue is never touched by a reload, so
intents queued before a reload are delivered exactly once.
"""

from __future__ import annotations

import collections
import hashlib
import importlib
import importlib.util
import logging
import sys
import traceback
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from host.strategy.api import Strategy, StrategyContext
from host.strategy.engine import Evaluator, make_evaluator
from host.types import Fill, OrderIntent

__all__ = ["StrategySpec", "StrategyHost", "ReloadError"]

_log = logging.getLogger("ticklane.strategy")


class ReloadError(RuntimeError):
    """A strategy module could not be loaded."""


@dataclass(frozen=True, kw_only=True)
class StrategySpec:
    """How to build one strategy.

    Attributes
    ----------
    module : str
        Dotted module name, or the path of a ``.py`` file.
    class_name : str
        A :class:`~host.strategy.api.Strategy` subclass defined in the module.
    name : str
        Default ``""``: ``<class_name>#<index>``.
    params : mapping
        Default empty: keyword arguments of the class (besides ``name``).
    """

    module: str
    class_name: str
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))

    @classmethod
    def from_config(cls, config: Any) -> "StrategySpec":
        """From a :class:`host.config.StrategyConfig`."""
        return cls(module=config.module, class_name=config.class_name, name=config.name,
                   params=config.params)


def _is_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module


def _module_name_for(module: str) -> str:
    if not _is_path(module):
        return module
    path = Path(module).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    return f"ticklane_strategy_{path.stem}_{digest}"


def _origin(module: str) -> Path:
    if _is_path(module):
        path = Path(module)
        if not path.is_file():
            raise ReloadError(f"strategy module file {module!r} does not exist")
        return path.resolve()
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.has_location:
        raise ReloadError(f"strategy module {module!r} is not importable from a file")
    return Path(spec.origin).resolve()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _exec_fresh(name: str, path: Path) -> types.ModuleType:
    """Execute ``path`` into a new module object without touching ``sys.modules``."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ReloadError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Source is read and compiled afresh: loaders cache bytecode by mtime, and a rewrite within
    # the same second could otherwise run the old bytecode.
    source = path.read_text(encoding="utf-8")
    code = compile(source, str(path), "exec")
    exec(code, module.__dict__)
    return module


class StrategyHost:
    """Configured strategies, their evaluator, the intent queue and hot reload.

    Parameters
    ----------
    specs : sequence of StrategySpec
    evaluator : {"auto", "serial", "vectorised", "process"}
        Evaluator kind (see :func:`host.strategy.engine.make_evaluator`).
    workers : int
        Worker processes for the ``process`` evaluator.
    watch : bool
        Check module files for changes before each batch.

    Raises
    ------
    ReloadError
        A module cannot be loaded or a class cannot be built at start-up.
    """

    def __init__(self, specs: Sequence[StrategySpec], *, evaluator: str = "auto",
                 workers: int = 2, watch: bool = True):
        self.specs = tuple(specs)
        self.evaluator_kind = evaluator
        self.workers = workers
        self.watch = watch
        self.reloads = 0
        self.reload_failures = 0
        self.last_error: str | None = None
        self._queue: collections.deque[OrderIntent] = collections.deque()
        self._modules: dict[str, types.ModuleType] = {}
        self._paths: dict[str, Path] = {}
        self._stamps: dict[str, tuple | None] = {}
        self._rejected: dict[str, tuple | None] = {}
        for spec in self.specs:
            if spec.module in self._modules:
                continue
            path = _origin(spec.module)
            self._paths[spec.module] = path
            self._stamps[spec.module] = _stamp(path)
            try:
                if _is_path(spec.module):
                    module = _exec_fresh(_module_name_for(spec.module), path)
                    sys.modules[module.__name__] = module
                else:
                    module = importlib.import_module(spec.module)
            except Exception as exc:
                raise ReloadError(f"cannot load strategy module {spec.module!r}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            self._modules[spec.module] = module
        try:
            self.strategies = tuple(self._build(i, spec, self._modules[spec.module])
                                    for i, spec in enumerate(self.specs))
        except Exception as exc:
            raise ReloadError(str(exc)) from exc
        self._evaluator: Evaluator = make_evaluator(self.strategies, evaluator, workers=workers)

    @staticmethod
    def _build(index: int, spec: StrategySpec, module: types.ModuleType) -> Strategy:
        cls = getattr(module, spec.class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise ReloadError(f"{spec.module}: {spec.class_name!r} is not a Strategy subclass")
        name = spec.name or f"{spec.class_name}#{index}"
        try:
            return cls(name=name, **dict(spec.params))
        except Exception as exc:
            raise ReloadError(f"strategies[{index}] ({spec.module}.{spec.class_name}): cannot "
                              f"build with params {dict(spec.params)!r}: "
                              f"{type(exc).__name__}: {exc}") from exc

    # -- intents -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Intents queued and not yet drained."""
        return len(self._queue)

    def drain_intents(self, limit: int | None = None) -> list[OrderIntent]:
        """Take up to ``limit`` (default all) queued intents, oldest first."""
        n = len(self._queue) if limit is None else min(limit, len(self._queue))
        return [self._queue.popleft() for _ in range(n)]

    # -- events --------------------------------------------------------------------------

    def on_bbo(self, batch: np.ndarray, ctx: StrategyContext) -> int:
        """Reload changed modules, evaluate one batch and queue its intents.

        Returns
        -------
        int
            Intents queued by this batch.
        """
        if self.watch:
            self.check_reload()
        intents = self._evaluator.evaluate(batch, ctx)
        self._queue.extend(intents)
        return len(intents)

    def on_fill(self, fill: Fill, ctx: StrategyContext, strategy: str) -> int:
        """Deliver a fill to the owning strategy; returns the intents it queued."""
        intents = self._evaluator.on_fill(fill, ctx, strategy)
        self._queue.extend(intents)
        return len(intents)

    def on_timer(self, now_ns: int, ctx: StrategyContext) -> int:
        """Reload changed modules, then tick every strategy; returns the intents queued."""
        if self.watch:
            self.check_reload()
        intents = self._evaluator.on_timer(now_ns, ctx)
        self._queue.extend(intents)
        return len(intents)

    # -- reload --------------------------------------------------------------------------

    def check_reload(self) -> list[str]:
        """Reload every module whose file changed since it was loaded.

        Returns
        -------
        list of str
            Modules now running a new version. A module that fails to load is not listed;
            see :attr:`last_error` and :attr:`reload_failures`.
        """
        reloaded = []
        for module_ref, path in self._paths.items():
            stamp = _stamp(path)
            if stamp is None or stamp == self._stamps[module_ref] \
                    or stamp == self._rejected.get(module_ref):
                continue
            try:
                self._reload(module_ref, path)
            except Exception as exc:
                self._rejected[module_ref] = stamp
                self.reload_failures += 1
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                self.last_error = f"reload of {module_ref!r} failed, old version kept: {detail}"
                _log.error("%s", self.last_error)
                continue
            self._stamps[module_ref] = stamp
            self._rejected.pop(module_ref, None)
            self.reloads += 1
            self.last_error = None
            reloaded.append(module_ref)
            _log.info("strategy module %r reloaded", module_ref)
        return reloaded

    def _reload(self, module_ref: str, path: Path) -> None:
        module = _exec_fresh(_module_name_for(module_ref), path)
        strategies = list(self.strategies)
        for i, spec in enumerate(self.specs):
            if spec.module != module_ref:
                continue
            fresh = self._build(i, spec, module)
            fresh.import_state(self.strategies[i].export_state())
            strategies[i] = fresh
        evaluator = make_evaluator(strategies, self.evaluator_kind, workers=self.workers) \
            if self.evaluator_kind != "process" else None
        # Commit point: from here on nothing can fail half-way.
        sys.modules[module.__name__] = module
        self._modules[module_ref] = module
        old = self._evaluator
        self.strategies = tuple(strategies)
        if evaluator is None:
            # Workers import the module by name, so they start after sys.modules is updated.
            evaluator = make_evaluator(self.strategies, "process", workers=self.workers)
        self._evaluator = evaluator
        old.close()

    def close(self) -> None:
        """Stop the evaluator's workers, if any."""
        self._evaluator.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
