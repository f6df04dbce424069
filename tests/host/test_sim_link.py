"""SimLink's run() returns once the top is drained: nothing the design still holds comes out
after it.

run() stops after ``SimLink.SETTLE`` quiet cycles (no input presented, no output valid). That is
only right if the top never works longer than that with nothing on its ports. The daemon's flows
are run on a link that, after each of its runs, clocks on for many more cycles and counts what
comes out then: market data with refills and host-booked symbols, quotes with replaces, cancels
and fills through the gate, batches of 64 messages and of one.
"""

from __future__ import annotations

import pytest

from hdl.top import Top
from host.daemon import Daemon, demo_config
from host.link.sim import SimLink
from sim.gen.itchgen import generate

# Cycles clocked after each run: far past any latency of the stages.
_AFTER = 16 * SimLink.SETTLE


class _Watched(SimLink):
    """A SimLink that clocks on after every run and counts the records that came out late."""

    def __init__(self, top, **kwargs):
        super().__init__(top, **kwargs)
        self.runs = 0
        self.late: dict[str, int] = {}

    def run(self, *, max_cycles=None):
        stats = super().run(max_cycles=max_cycles)
        h = self._harness
        outputs = [n for n, s in self.streams.items() if s.direction == "out"]
        before = {n: h.pending(n) for n in outputs}
        h.run(max_cycles=_AFTER, stop_when_drained=False)
        for n in outputs:
            if h.pending(n) != before[n]:
                self.late[n] = self.late.get(n, 0) + h.pending(n) - before[n]
        self.runs += 1
        return stats


@pytest.fixture(scope="module")
def watched():
    # the 2-level build of tests/host/test_daemon_sim.py: its symbols need refills often
    with _Watched(Top(slots=16, levels=2)) as link:
        yield link


@pytest.mark.parametrize("batch", [64, 1])
def test_no_record_comes_out_after_a_run_of_the_daemons_flows(watched, tmp_path, batch):
    # Arrange: deep books over more symbols than slots (refills, host-booked symbols)
    buf = generate(31, 3_000 if batch == 1 else 12_000, n_symbols=20, target_live_orders=300)
    watched.power_on()
    watched.runs, watched.late = 0, {}
    daemon = Daemon(demo_config(journal_dir=str(tmp_path / "journal")), watched, feed=buf,
                    slots=16, batch_messages=batch)

    # Act
    summary = daemon.run()

    # Assert: the flows were all there, and no run left a record behind
    assert summary.refills_sent > 0 and summary.orders > 0 and summary.fills > 0
    assert watched.runs > 100
    assert watched.late == {}
