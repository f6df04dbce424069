"""The Verilog cache of sim/toolchain.py and Amaranth's warning about unused elaboratables.

A conversion found in the cache does not elaborate the component, nor the blocks its constructor
made; a constructor that refuses its parameters leaves an object nobody can use. Neither may
make Amaranth warn that something was "created but never used".
"""

import gc
import warnings

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hdl.book.order_book import OrderBook
from hdl.feed.decoder import Decoder
from hdl.feed.subscriptions import SubscriptionTable
from sim import toolchain
from tools.bench_risk import StandaloneRiskGate


class _Inner(wiring.Component):
    def __init__(self):
        super().__init__({"a": In(8), "y": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a + 1)
        return m


class _Outer(wiring.Component):
    """Its constructor makes the blocks elaborate() adds, in an attribute and in a list."""

    def __init__(self):
        self.inner = _Inner()
        self.more = [_Inner()]
        super().__init__({"a": In(8), "y": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        m.submodules.more = self.more[0]
        acc = Signal(8)
        m.d.comb += [self.inner.a.eq(self.a), self.more[0].a.eq(self.inner.y),
                     acc.eq(self.more[0].y), self.y.eq(acc)]
        return m


def _unused_warnings(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make()
        gc.collect()
    return [str(w.message) for w in caught if "never used" in str(w.message)]


def test_a_cached_conversion_marks_the_blocks_the_constructor_made_as_used(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("TICKLANE_CACHE", str(tmp_path))
    first = toolchain.emit_verilog(_Outer(), "outer", config="t")
    assert (first / "outer.v").exists()

    folders = []
    assert _unused_warnings(lambda: folders.append(
        toolchain.emit_verilog(_Outer(), "outer", config="t"))) == []
    assert folders == [first]                      # the second one came from the cache


def test_without_the_mark_the_same_cached_conversion_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKLANE_CACHE", str(tmp_path))
    toolchain.emit_verilog(_Outer(), "outer", config="t")
    monkeypatch.setattr(toolchain, "_mark_used", lambda component: None)
    assert len(_unused_warnings(lambda: toolchain.emit_verilog(_Outer(), "outer",
                                                               config="t"))) == 3


@pytest.mark.parametrize("make", [
    lambda: OrderBook(slots=100),
    lambda: OrderBook(levels=0),
    lambda: SubscriptionTable(locates=3),
    lambda: Decoder(slots=0),
    lambda: StandaloneRiskGate(open_orders=0),
])
def test_a_refused_component_raises_without_an_unused_warning(make):
    def refuse():
        with pytest.raises(ValueError):
            make()
    assert _unused_warnings(refuse) == []


def test_two_threads_writing_one_cache_file_at_once_both_succeed(tmp_path):
    # Arrange: two threads of one process replace the same file many times at once (two
    # conversions of one design: the temporary names must differ between threads, not only
    # between processes)
    import threading

    from sim.toolchain import _write_replace

    path = tmp_path / "design.v"
    start = threading.Barrier(2)
    errors = []

    def writer(text):
        try:
            start.wait()
            for _ in range(300):
                _write_replace(path, text)
        except Exception as exc:    # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in ("a" * 4096, "b" * 4096)]

    # Act
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Assert: no write failed, the file is one writer's whole text, no temporary file is left
    assert errors == []
    assert path.read_text() in ("a" * 4096, "b" * 4096)
    assert [p.name for p in tmp_path.iterdir()] == ["design.v"]
