"""A deterministic scripted trading session for crash drills.

``python -m host.journal.drill DIR --steps N [--seed S] [--snapshot-every K] [--fsync MODE]`` runs
a session
against the paper venue with a simple stand-in for the risk gate, journaling into ``DIR``. After
every journaled call it prints ``acked <seq>`` (flushed): every record up to ``seq`` has been
handed to the OS. Kill it anywhere, then :func:`host.journal.recover` ``DIR``. The same seed gives
the same records, so a killed run's journal must be a prefix of an uninterrupted run's.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hdl import wire
from host.journal.journal import FsyncPolicy
from host.journal.recovery import Session
from host.oms.risk import PreTradeConfig
from host.types import OrderIntent, OrderKind, Side
from host.venue.paper import PaperVenue, PaperVenueConfig

_BOTH = wire.BBO_UPDATE.flag("flags", "bid_valid") | wire.BBO_UPDATE.flag("flags", "ask_valid")
_ACCEPTED = wire.VERDICT.flag("flags", "accepted")
#: Stand-in gate: refuse orders above this quantity with reason bit 0.
GATE_MAX_QUANTITY = 400


def gate_verdicts(requests: np.ndarray) -> np.ndarray:
    """Verdicts of a stand-in risk gate (accepts all but quantities above GATE_MAX_QUANTITY)."""
    v = wire.VERDICT.array(len(requests))
    v["client_order_id"] = requests["client_order_id"]
    v["slot"] = requests["slot"]
    v["kind"] = requests["kind"]
    over = requests["quantity"] > GATE_MAX_QUANTITY
    v["flags"] = np.where(over, 0, _ACCEPTED)
    v["reasons"] = np.where(over, 1, 0)
    return v


def run(directory: Path, steps: int, seed: int = 1, snapshot_every: int = 25,
        on_ack: Callable[[int], None] | None = None, fsync: str = "never") -> Session:
    """Run the scripted session with the journal's fsync ``mode`` ``fsync``; return it (open)."""
    rng = random.Random(seed)
    session = Session.open(directory, policy=FsyncPolicy(mode=fsync, every_ms=1, every_records=4),
                           config=PreTradeConfig(max_order_quantity=500, max_long=2_000,
                                                 max_short=2_000, max_open_orders=8),
                           snapshot_every=snapshot_every)
    venue = PaperVenue(PaperVenueConfig(latency_ns=2_000))
    ack = on_ack or (lambda seq: None)
    mid = {0: 1_000_000, 1: 2_500_000}
    now = 0
    for _ in range(steps):
        now += 1_000 * rng.randint(1, 5)
        slot = rng.choice((0, 1))
        mid[slot] += 100 * rng.randint(-2, 2)
        bbo = wire.BBO_UPDATE.array(1)
        bbo["slot"], bbo["flags"] = slot, _BOTH
        bbo["bid_price"], bbo["ask_price"] = mid[slot] - 100, mid[slot] + 100
        bbo["bid_size"], bbo["ask_size"] = rng.randint(1, 6) * 100, rng.randint(1, 6) * 100
        session.on_bbo(bbo)
        ack(session.journal.last_seq)
        events = venue.on_bbo(bbo, now)
        if rng.random() < 0.6:
            live = session.oms.open_orders()
            pick = rng.random()
            if live and pick < 0.25:
                t = live[0]
                intents = [OrderIntent(strategy="drill", slot=t.slot, side=t.side, price=t.price,
                                       quantity=t.leaves, kind=OrderKind.CANCEL,
                                       target=t.client_order_id)]
            elif live and pick < 0.45:
                t = live[-1]
                intents = [OrderIntent(strategy="drill", slot=t.slot, side=t.side,
                                       price=t.price + 100 * rng.randint(-1, 1),
                                       quantity=100 * rng.randint(1, 4), kind=OrderKind.REPLACE,
                                       target=t.client_order_id)]
            else:
                side = rng.choice((Side.BUY, Side.SELL))
                offset = 100 * rng.randint(-2, 1)
                price = mid[slot] - offset if side is Side.BUY else mid[slot] + offset
                intents = [OrderIntent(strategy="drill", slot=slot, side=side, price=price,
                                       quantity=100 * rng.randint(1, 5),
                                       ioc=rng.random() < 0.2)]
            requests = session.submit(intents)
            ack(session.journal.last_seq)
            if len(requests):
                accepted = session.on_verdicts(gate_verdicts(requests))
                ack(session.journal.last_seq)
                events += venue.submit(accepted, now)
        if events:
            session.on_venue_events(events)
            ack(session.journal.last_seq)
    return session


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--snapshot-every", type=int, default=25)
    ap.add_argument("--fsync", default="never", help="the journal's fsync policy mode")
    args = ap.parse_args(argv)

    def ack(seq: int) -> None:
        sys.stdout.write(f"acked {seq}\n")
        sys.stdout.flush()

    run(args.directory, args.steps, args.seed, args.snapshot_every, ack, args.fsync).close()
    sys.stdout.write("done\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
