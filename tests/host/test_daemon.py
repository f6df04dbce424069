"""The daemon's batch loop, end to end, against a behavioural model of the gateware.

``ModelLink`` implements the :class:`host.link.base.Link` interface with the project's reference
models: the book (:class:`sim.model.book.BookModel`, first-come slots as the feed stage) and the
pre-trade risk gate (:class:`sim.model.risk.RiskModel`), with registers at the addresses of
``hdl.wire.REGISTERS``. It stands in for the Verilated top so these tests run in seconds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from hdl import wire
from host.config import ConfigError, config_from_mapping
from host.daemon import (Daemon, FeedPlan, demo_config, format_dollars,
                         gate_registers, precheck_config)
from host.feed.itch import decode_message
from host.journal import recover
from host.link.base import Link, LinkError, RunStats
from host.oms.order import OrderState
from host.replay import DEMO_STREAM
from sim.model.bbo_csv import csv_text, model_changes_for_file
from sim.model.book import BookModel
from sim.model.risk import RiskLimits, RiskModel

_LAST = wire.MD_BEAT.flag("flags", "last")
_BID_VALID = wire.BBO_UPDATE.flag("flags", "bid_valid")
_ASK_VALID = wire.BBO_UPDATE.flag("flags", "ask_valid")
_ACCEPTED = wire.VERDICT.flag("flags", "accepted")
BOOK_CYCLES = 12     # the model's feed→BBO latency
GATE_CYCLES = 2      # the gate's request→verdict latency (hdl.risk.gate.LATENCY)


class ModelLink(Link):
    """The top as reference models behind the Link interface (test double)."""

    def __init__(self, *, slots: int = 256, streams=None):
        self.streams = streams if streams is not None else dict(wire.STREAMS)
        self.slots = slots
        self.power_ons = 0
        self.power_on()

    def power_on(self) -> None:
        self.power_ons += 1
        self.words = {self.regmap.address(r.name, i): r.init
                      for r in self.regmap for i in range(r.count)}
        self.words[self.regmap.address("DEVICE_ID")] = wire.DEVICE_ID
        self.words[self.regmap.address("FORMAT_HASH")] = wire.FORMAT_HASH & 0xFFFF_FFFF
        self.book = BookModel()
        self.slot_of: dict[int, int] = {}
        self.gate = RiskModel()
        self.cycle = 100
        self.seq = 0
        self.queued: dict[str, list[np.ndarray]] = {n: [] for n in self.streams}
        self.out: dict[str, list[np.ndarray]] = {n: [] for n in self.streams}
        self.register_writes: list[tuple[str, int, int]] = []

    def _name_of(self, address: int) -> tuple[str, int]:
        for reg in self.regmap:
            base = self.regmap.address(reg.name)
            if base <= address < base + 4 * reg.count:
                return reg.name, (address - base) // 4
        raise KeyError(address)

    def _read_word(self, address: int) -> int:
        name, index = self._name_of(address)
        if name.startswith("RISK_") and self.regmap[name].access == "r":
            status = self.gate.status()
            key = name if self.regmap[name].count == 1 else f"{name}_{index}"
            return status.get(key, 0)
        return self.words[address]

    def _write_word(self, address: int, value: int) -> None:
        name, index = self._name_of(address)
        self.words[address] = value
        self.register_writes.append((name, index, value))
        if name == "RISK_COMMIT":
            bank = {}
            for reg in self.regmap:
                if reg.name.startswith("RISK_") and reg.access == "rw":
                    for i in range(reg.count):
                        key = reg.name if reg.count == 1 else f"{reg.name}_{i}"
                        bank[key] = self.words[self.regmap.address(reg.name, i)]
            self.gate.commit(RiskLimits.from_registers(bank, wire.RISK_SLOTS), self.cycle)
            self.cycle += 1
        elif name == "RISK_KILL":
            self.gate.set_kill(value & 1, self.cycle)
            self.cycle += 1

    def send(self, stream: str, records: np.ndarray) -> None:
        self._check_stream(stream, "in", records)
        self.queued[stream].append(records.copy())

    def receive(self, stream: str) -> np.ndarray:
        s = self._check_stream(stream, "out")
        parts = self.out[stream]
        self.out[stream] = []
        return np.concatenate(parts) if parts else s.record.array(0)

    def run(self, *, max_cycles=None) -> RunStats:
        start = self.cycle
        for beats in self.queued.pop("md_in", []):
            self._market_data(beats)
        for fills in self.queued.pop("fill_in", []):
            for f in fills:
                self.gate.fill({k: int(f[k]) for k in f.dtype.names}, self.cycle)
                self.cycle += 1
        for requests in self.queued.pop("order_in", []):
            verdicts = wire.VERDICT.array(len(requests))
            accepted = []
            for v, r in zip(verdicts, requests):
                ingress = self.cycle
                reasons = self.gate.order({k: int(r[k]) for k in r.dtype.names}, self.cycle)
                self.cycle += 1
                v["client_order_id"] = r["client_order_id"]
                v["reasons"] = reasons
                v["ingress_cycle"] = ingress
                v["egress_cycle"] = ingress + GATE_CYCLES
                v["slot"] = r["slot"]
                v["kind"] = r["kind"]
                v["flags"] = 0 if reasons else _ACCEPTED
                if not reasons:
                    accepted.append(r)
            self.out["verdict_out"].append(verdicts)
            if accepted:
                self.out["order_out"].append(np.array(accepted, dtype=wire.ORDER_REQUEST.dtype))
        self.queued = {n: [] for n in self.streams}
        return RunStats(cycles=self.cycle - start, wall_s=0.0, drained=True)

    def _market_data(self, beats: np.ndarray) -> None:
        data = beats["data"].astype("<u8").view(np.uint8).reshape(-1, 8)
        keep = beats["keep"]
        stream = bytearray()
        for row, k in zip(data, keep.tolist()):
            stream += bytes(row[:k.bit_length()])
        pos = 0
        records = []
        while pos < len(stream):
            n = (stream[pos] << 8) | stream[pos + 1]
            msg = decode_message(bytes(stream[pos + 2:pos + 2 + n]))
            pos += 2 + n
            self.seq += 1
            self.cycle += (n + 2 + 7) // 8
            if msg["message_type"] == "R" and len(self.slot_of) < self.slots:
                self.slot_of.setdefault(msg["stock_locate"], len(self.slot_of))
            loc = msg.get("stock_locate")
            change = self.book.apply(msg, self.seq)
            if change is None or loc not in self.slot_of:
                continue
            rec = wire.BBO_UPDATE.array(1)[0]
            rec["seq"] = change.seq
            rec["bid_price"] = change.bid_price or 0
            rec["ask_price"] = change.ask_price or 0
            rec["bid_size"] = change.bid_size or 0
            rec["ask_size"] = change.ask_size or 0
            rec["ingress_cycle"] = self.cycle
            rec["egress_cycle"] = self.cycle + BOOK_CYCLES
            rec["slot"] = self.slot_of[loc]
            rec["locate"] = loc
            rec["flags"] = ((_BID_VALID if change.bid_price is not None else 0)
                            | (_ASK_VALID if change.ask_price is not None else 0))
            records.append(rec)
            if rec["slot"] < wire.RISK_SLOTS:   # the top hands the gate its slots' records
                self.gate.bbo_update({k: int(rec[k]) for k in rec.dtype.names}, self.cycle)
            self.cycle += 1  # the gate applies it from the next cycle on
        if records:
            self.out["bbo_out"].append(np.array(records, dtype=wire.BBO_UPDATE.dtype))


def _config(tmp_path: Path, **sections) -> "host.config.Config":
    base = demo_config(journal_dir=str(tmp_path / "journal"))
    return dataclasses.replace(base, **sections)


def _run(config, link=None, **kwargs):
    link = link or ModelLink()
    daemon = Daemon(config, link, **kwargs)
    oms = daemon.session.oms
    summary = daemon.run()
    return daemon, link, oms, summary


# ------------------------------------------------------------------------------------------

def test_demo_run_trades_through_gate_and_venue_with_integer_pnl(tmp_path):
    # Arrange
    config = _config(tmp_path)

    # Act
    daemon, link, oms, summary = _run(config)

    # Assert: the whole path moved orders and fills, and the books agree with each other.
    assert summary.messages == FeedPlan.from_bytes(DEMO_STREAM.read_bytes(), slots=256).messages
    assert summary.orders > 0 and summary.fills > 0
    assert summary.accepted == link.gate.counters["RISK_ACCEPTED"]
    assert summary.orders == summary.accepted + link.gate.counters["RISK_REJECTED"]
    assert daemon.venue.counters["requests"] == summary.accepted
    assert summary.fills == oms.counters["fills"] == daemon.venue.counters["fills"]
    assert isinstance(summary.realised, int) and isinstance(summary.unrealised, int)
    assert summary.realised == sum(p.realised for p in oms.positions.values())
    # graceful stop: nothing left live on the host, the venue or the gate
    assert oms.open_orders() == []
    assert daemon.venue.working_orders() == []
    assert link.gate.open_count() == 0
    # the gate's positions follow the host's through the fill_in stream
    for slot, pos in oms.positions.items():
        assert link.gate.position[slot] == pos.quantity


def test_summary_reports_cycle_latencies_from_record_stamps(tmp_path):
    # Arrange / Act
    _, _, _, summary = _run(_config(tmp_path))

    # Assert
    assert summary.bbo_hardware == len(summary.hw_bbo_cycles) > 0
    assert set(summary.hw_bbo_cycles.tolist()) == {BOOK_CYCLES}
    assert set(summary.hw_verdict_cycles.tolist()) == {GATE_CYCLES}
    assert len(summary.host_us) == summary.batches
    # the paper venue's matching is counted apart from the host path, inside the whole batch
    assert len(summary.venue_us) == summary.batches and summary.venue_us.sum() > 0
    assert (summary.venue_us <= summary.cycle_us).all()
    text = summary.format()
    for label in ("orders to the gate", "fills", "realised P&L", "feed→BBO (cycles)",
                  "order→verdict (cycles)", "host path / batch", "paper venue / batch",
                  "resident memory"):
        assert label in text


def test_recover_rebuilds_the_exact_state_and_replay_reproduces_the_orders(tmp_path):
    # Arrange
    config = _config(tmp_path)
    _, _, oms, _ = _run(config)
    expected = oms.to_state()
    # The snapshot written at stop would make recovery trivial: drop it, replay everything.
    for snap in (tmp_path / "journal").glob("snapshot-*.json"):
        snap.unlink()

    # Act (recover() re-submits every journaled intent and compares the orders it gets with
    # the journaled ones; a difference raises ReplayDivergence)
    state = recover(tmp_path / "journal")
    state.journal.close()

    # Assert
    assert state.report.snapshot_seq == 0 and state.report.replayed > 0
    assert state.oms.to_state() == expected


def test_same_feed_and_config_give_the_same_orders(tmp_path):
    # Arrange
    first = _config(tmp_path / "a")
    second = _config(tmp_path / "b")

    # Act
    _, _, oms_a, _ = _run(first)
    _, _, oms_b, _ = _run(second)

    # Assert
    assert [o.to_dict() for o in oms_a.orders.values()] == \
        [o.to_dict() for o in oms_b.orders.values()]


def test_limits_are_written_to_gate_registers_by_name_and_committed(tmp_path):
    # Arrange
    config = _config(tmp_path)
    link = ModelLink()

    # Act
    Daemon(config, link).start()

    # Assert
    names = [name for name, _, _ in link.register_writes]
    assert names[-1] == "RISK_COMMIT"
    risk = config.risk
    assert link.gate.limits.max_notional == risk.max_notional
    assert link.gate.limits.max_order_qty[0] == risk.max_order_qty
    assert link.gate.limits.max_long[5] == risk.max_position
    assert link.gate.limits.collar_band == risk.collar_ticks * risk.tick_size
    assert link.gate.limits.max_open_orders == risk.max_open_orders


def test_strategies_see_the_same_view_as_one_built_from_scratch_on_every_call(tmp_path,
                                                                              monkeypatch):
    # Arrange: market makers and imbalance strategies on the demo's symbols, so that quotes
    # are placed, replaced (their targets hidden meanwhile), filled and cancelled
    from host.strategy import OpenOrder, StrategyContext
    from host.types import Side
    specs = [{"module": "host.strategy.builtin", "class": "MarketMaker", "name": f"mm-{i}",
              "params": {"slot": i % 4, "half_spread_ticks": 1 + i // 4}} for i in range(8)]
    specs += [{"module": "host.strategy.builtin", "class": "ImbalanceMomentum",
               "name": f"imb-{i}", "params": {"slot": i, "threshold_bp": 1000}}
              for i in range(4)]
    # and one that rests two buys at once on its symbol, so that a (strategy, slot, side) has
    # more than one open order
    path = tmp_path / "layered_strategy.py"
    path.write_text(_LAYERED)
    specs.append({"module": str(path), "class": "Layered", "name": "layered"})
    config = _config(tmp_path, strategies=config_from_mapping({"strategies": specs}).strategies)
    names = [s["name"] for s in specs]
    layered = []
    built = Daemon._context
    sizes = []

    def checked(self):
        ctx = built(self)
        oms = self.session.oms
        fresh = StrategyContext(
            now_ns=self._now_ns,
            positions={slot: p.quantity for slot, p in oms.positions.items() if p.quantity},
            open_orders=[OpenOrder(client_order_id=o.client_order_id, strategy=o.strategy,
                                   slot=o.slot, side=o.side, price=o.price, quantity=o.leaves)
                         for o in oms.intended_orders()])
        assert ctx == fresh
        for name in names:
            for slot in range(8):
                assert ctx.has_open_orders(name, slot) == fresh.has_open_orders(name, slot)
                for side in Side:
                    assert ctx.open_order(name, slot, side) == fresh.open_order(name, slot, side)
        sizes.append(len(ctx.open_orders))
        layered.append(len(ctx.orders_of("layered")))
        return ctx

    monkeypatch.setattr(Daemon, "_context", checked)

    # Act
    _, _, oms, summary = _run(config)

    # Assert: the check ran on every batch, with open orders to look up
    assert len(sizes) >= summary.batches and max(sizes) >= 8
    assert oms.counters["replaced"] > 0 and max(layered) == 2


_LAYERED = """
from host.strategy.api import BID_VALID, Strategy
from host.types import OrderIntent, Side

class Layered(Strategy):
    def on_bbo(self, batch, ctx):
        rows = batch[(batch["slot"] == 0) & (batch["flags"] & BID_VALID != 0)]
        if len(rows) == 0 or ctx.has_open_orders(self.name, 0):
            return []
        bid = int(rows["bid_price"][-1])
        return [OrderIntent(strategy=self.name, slot=0, side=Side.BUY, price=bid - k * 100,
                            quantity=100) for k in (3, 2)]
"""


class SmallGateLink(ModelLink):
    """A gate whose open-order table holds only ``capacity`` orders."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        super().__init__()

    def power_on(self) -> None:
        super().power_on()
        self.gate = RiskModel(open_orders=self.capacity)


@pytest.mark.parametrize("capacity", [3, 6])
def test_host_holds_open_orders_to_the_gates_table_and_refuses_first(tmp_path, capacity):
    # Arrange: the configuration allows 64 open orders, the gate's table holds a few
    config = _config(tmp_path)
    assert config.risk.max_open_orders > capacity
    link = SmallGateLink(capacity)

    # Act
    daemon, link, oms, summary = _run(config, link)

    # Assert: the host refused what the gate had no room for; the gate never had to
    assert link.read_reg("RISK_OPEN_CAPACITY") == capacity
    assert oms.config.max_open_orders == capacity
    assert summary.rejects.get("host:OPEN_ORDERS", 0) > 0
    assert summary.rejects.get("gate:OPEN_ORDERS", 0) == 0
    assert summary.orders >= capacity
    assert any("RISK_OPEN_CAPACITY" in note for note in summary.notes)
    # the held limit is journaled: a recovery rebuilds it
    assert recover(config.journal.dir).oms.config.max_open_orders == capacity


def test_open_order_limit_within_the_gates_table_is_left_as_configured(tmp_path):
    config = _config(tmp_path)
    link = SmallGateLink(config.risk.max_open_orders + 1)

    daemon, link, oms, summary = _run(config, link)

    assert oms.config.max_open_orders == config.risk.max_open_orders
    assert not any("RISK_OPEN_CAPACITY" in note for note in summary.notes)


def test_symbol_override_is_enforced_by_the_gate_with_its_reason(tmp_path):
    # Arrange: AAPL (slot 0, quoted by mm-0 with 100 shares) may trade at most 50 per order.
    base = _config(tmp_path)
    overrides = config_from_mapping({"risk": {"symbols": {"AAPL": {"max_order_qty": 50}}}})
    config = dataclasses.replace(base, risk=overrides.risk)

    # Act
    daemon, link, oms, summary = _run(config)

    # Assert
    assert summary.rejects.get("gate:MAX_QUANTITY", 0) > 0
    aapl = [o for o in oms.orders.values() if o.slot == 0 and o.kind == 1]
    assert aapl and all(o.state is OrderState.RISK_REJECTED for o in aapl)
    assert 0 not in oms.positions or oms.positions[0].quantity == 0


def test_host_precheck_refuses_intents_before_they_reach_the_gate(tmp_path):
    # Arrange: every strategy wants 100 shares; the global limit is 50.
    base = _config(tmp_path)
    risk = config_from_mapping({"risk": {"max_order_qty": 50}}).risk
    config = dataclasses.replace(base, risk=risk)

    # Act
    _, link, _, summary = _run(config)

    # Assert
    assert summary.intents > 0
    assert summary.rejects["host:ORDER_QUANTITY"] == summary.intents
    assert summary.orders == 0
    assert link.gate.counters["RISK_ACCEPTED"] == link.gate.counters["RISK_REJECTED"] == 0


def test_bbo_csv_equals_the_reference_model_csv(tmp_path):
    # Arrange
    out = tmp_path / "bbo.csv"
    changes, _ = model_changes_for_file(DEMO_STREAM.read_bytes())

    # Act
    _run(_config(tmp_path), bbo_csv=out, batch_messages=37)

    # Assert
    assert out.read_text() == csv_text(changes)


def test_symbols_without_a_slot_are_booked_by_the_host_and_merged_in_order(tmp_path):
    # Arrange: 4 slots for the demo's 8 symbols
    out = tmp_path / "bbo.csv"
    changes, _ = model_changes_for_file(DEMO_STREAM.read_bytes())

    # Act
    _, _, _, summary = _run(_config(tmp_path), link=ModelLink(slots=4), slots=4, bbo_csv=out)

    # Assert
    assert summary.bbo_host > 0 and summary.bbo_hardware > 0
    assert summary.bbo_records == len(changes)
    assert out.read_text() == csv_text(changes)
    assert len(summary.hw_bbo_cycles) == summary.bbo_hardware
    assert any("booked by the host" in n for n in summary.notes)


def test_stop_request_ends_after_the_batch_and_cancels_live_orders(tmp_path):
    # Arrange
    link = ModelLink()
    daemon = Daemon(_config(tmp_path), link)
    oms = daemon.session.oms
    daemon.start()
    for _ in range(10):
        daemon.step()
    had_live = len(oms.open_orders())

    # Act
    daemon.request_stop()
    summary = daemon.run()

    # Assert
    assert had_live > 0
    assert summary.batches == 10
    assert oms.open_orders() == []
    assert link.gate.open_count() == 0


def test_link_without_risk_gate_is_refused_by_name(tmp_path):
    # Arrange
    streams = {k: v for k, v in wire.STREAMS.items() if k in ("md_in", "bbo_out")}

    # Act / Assert
    with pytest.raises(LinkError, match="order_in"):
        Daemon(_config(tmp_path), ModelLink(streams=streams))


def test_unsupported_feed_format_names_the_key(tmp_path):
    # Arrange
    base = _config(tmp_path)
    config = dataclasses.replace(base, feed=dataclasses.replace(base.feed, format="level"))

    # Act / Assert
    with pytest.raises(ConfigError, match=r"^feed\.format"):
        Daemon(config, ModelLink())


def test_gate_registers_use_per_symbol_overrides_by_ticker():
    # Arrange
    risk = config_from_mapping({"risk": {"max_position": 700, "symbols": {
        "MSFT": {"max_position": 300}}}}).risk

    # Act
    regs = {(n, i): v for n, i, v in gate_registers(risk, {0: "AAPL", 1: "MSFT"})}

    # Assert
    assert regs[("RISK_MAX_LONG", 0)] == 700
    assert regs[("RISK_MAX_LONG", 1)] == regs[("RISK_MAX_SHORT", 1)] == 300
    assert all(name in wire.REGISTERS._by_name for name, _ in regs)


def test_dollars_are_formatted_from_integers():
    assert format_dollars(0) == "$0.0000"
    assert format_dollars(12_345_678) == "$1,234.5678"
    assert format_dollars(-1) == "-$0.0001"


def test_cli_run_with_config_file_then_recover_prints_state(tmp_path, monkeypatch, capsys):
    # Arrange
    import host.daemon as daemon_mod
    from host.cli import main

    journal = tmp_path / "j"
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'''
[feed]
path = "{DEMO_STREAM}"
[journal]
dir = "{journal}"
[[strategies]]
module = "host.strategy.builtin"
class = "MarketMaker"
name = "mm"
params = {{ slot = 0, tick_size = 100, quote_qty = 100 }}
''')
    monkeypatch.setattr(daemon_mod, "_open_link", lambda config, slots, **kw: ModelLink())

    # Act
    rc_run = main(["run", "--config", str(cfg), "--bbo-csv", str(tmp_path / "b.csv")])
    run_out = capsys.readouterr().out
    rc_rec = main(["recover", str(journal)])
    rec_out = capsys.readouterr().out

    # Assert
    assert rc_run == 0 and rc_rec == 0
    assert "orders to the gate" in run_out and "realised P&L" in run_out
    assert (tmp_path / "b.csv").read_text().startswith("seq,symbol,")
    assert "next client order id" in rec_out and "realised P&L" in rec_out


def test_cli_run_reports_bad_config_key(tmp_path, capsys):
    # Arrange
    from host.cli import main
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[risk]\nmax_order_qty = \"lots\"\n")

    # Act
    rc = main(["run", "--config", str(cfg)])

    # Assert
    assert rc == 2
    assert "risk.max_order_qty" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["version", "locked"])
def test_cli_run_on_a_journal_it_cannot_open_is_a_clear_error(tmp_path, capsys, damage):
    # Arrange: a journal of another version, or one another session holds open
    from host.cli import main
    from host.journal import FsyncPolicy, Session
    from host.journal.journal import JOURNAL_FILE
    directory = tmp_path / "j"
    Session.open(directory, policy=FsyncPolicy(mode="never")).close()
    held = None
    if damage == "version":
        # the same journal, its file header naming the next version (checksums intact)
        from host.journal import codec, scan
        from host.journal.framing import frame
        records = scan(directory / JOURNAL_FILE).records
        header = codec._FILE_HEADER.pack(codec.MAGIC, codec.VERSION + 1, wire.FORMAT_HASH)
        (directory / JOURNAL_FILE).write_bytes(b"".join(
            frame(r.kind, r.seq, header if r.seq == 1 else r.payload) for r in records))
    else:
        held = Session.open(directory, policy=FsyncPolicy(mode="never"))

    # Act
    rc = main(["run", "--journal", str(directory), "--max-batches", "1"])

    # Assert: one line naming the journal, no traceback
    err = capsys.readouterr().err
    if held is not None:
        held.close()
    assert rc == 2
    assert f"cannot open the journal {directory}" in err and "Traceback" not in err
    assert ("not a ticklane journal of version" if damage == "version"
            else "open in another session") in err


def test_cli_recover_of_directory_without_journal_is_an_error(tmp_path, capsys):
    from host.cli import main
    assert main(["recover", str(tmp_path)]) == 2
    assert "no journal" in capsys.readouterr().err


def test_quote_replaces_reach_the_gate_as_replace_and_their_targets_are_released(tmp_path):
    # Arrange: watch the gate's order stream
    link = ModelLink()
    sent: list[np.ndarray] = []
    send = link.send

    def spy(stream, records):
        if stream == "order_in":
            sent.append(records.copy())
        send(stream, records)

    link.send = spy

    # Act
    _, link, oms, summary = _run(_config(tmp_path), link)

    # Assert: one REPLACE request per replace, each target REPLACED, nothing left in the gate
    requests = np.concatenate(sent)
    replaces = requests[requests["kind"] == wire.ORDER_KIND_REPLACE]
    replaced = {o.client_order_id for o in oms.orders.values()
                if o.state is OrderState.REPLACED}
    assert len(replaces) > 0 and replaced
    assert replaced <= set(replaces["orig_client_order_id"].tolist())
    assert len(requests) == summary.orders
    assert link.gate.open_count() == 0
    assert link.gate.counters["RISK_FILLS_UNKNOWN"] == 0
    for slot, pos in oms.positions.items():
        assert link.gate.position[slot] == pos.quantity


_SIZED = """
from host.strategy.api import Strategy
from host.types import OrderIntent, Side

class Sized(Strategy):
    def __init__(self, *, name, slot=0):
        super().__init__(name=name)
        self.slot = slot

    def on_bbo(self, batch, ctx):
        return [OrderIntent(strategy=self.name, slot=self.slot, side=Side.BUY, price=100,
                            quantity={quantity})]
"""


def test_strategy_module_edited_while_running_is_reloaded_between_batches(tmp_path):
    # Arrange: a strategy module file whose intents say which version made them
    import os
    path = tmp_path / "sized_strategy.py"
    path.write_text(_SIZED.format(quantity=1))
    strategies = config_from_mapping({"strategies": [
        {"module": str(path), "class": "Sized", "name": "sized"}]}).strategies
    daemon = Daemon(_config(tmp_path, strategies=strategies), ModelLink())
    daemon.start()
    made: list[list[int]] = []
    drain = daemon.strategies.drain_intents

    def spy(*args):
        out = drain(*args)
        if out:
            made.append([i.quantity for i in out])
        return out

    daemon.strategies.drain_intents = spy

    def step_until_intents():
        n = len(made)
        while len(made) == n:
            daemon.step()

    # Act: a batch with version 1, the file changes, then two more batches
    step_until_intents()
    path.write_text(_SIZED.format(quantity=2))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    step_until_intents()
    step_until_intents()
    daemon.stop()

    # Assert: the batch after the edit still ran the running version (the check comes after
    # a batch's orders are out), the next one the new version; nothing failed
    assert made == [[1], [1], [2]]
    assert daemon.strategies.reloads == 1 and daemon.strategies.last_error is None


def test_cli_run_writes_every_path_for_the_latency_report(tmp_path, monkeypatch, capsys):
    # Arrange
    import host.daemon as daemon_mod
    from host.cli import main
    from tools.latency_report import load_input

    runs = []

    def open_link(config, slots, **kw):
        runs.append(ModelLink())
        return runs[-1]

    monkeypatch.setattr(daemon_mod, "_open_link", open_link)
    out = tmp_path / "run.npz"

    # Act
    rc = main(["run", "--journal", str(tmp_path / "j"), "--latency-out", str(out)])
    text = capsys.readouterr().out
    rc_report = main(["report", str(out), "--out", str(tmp_path / "report")])

    # Assert
    assert rc == 0 and rc_report == 0
    paths, clock, source = load_input(out)
    assert set(paths) == {"md_to_bbo", "order_to_verdict", "tick_to_order_host_ns"}
    assert clock == 100.0 and "not timing-closed" in source
    assert len(paths["md_to_bbo"]) > 0 and paths["md_to_bbo"].min() >= 0
    assert len(paths["order_to_verdict"]) > 0
    # one tick → order figure per batch that sent orders, none for the others
    host = paths["tick_to_order_host_ns"]
    assert 0 < len(host) < int(text.split("messages in")[1].split(" in ")[1].split()[0])
    assert host.min() > 0
    assert "tick → order" in text and str(out) in text
    assert (tmp_path / "report" / "tick_to_order_host_ns.png").exists()


def test_tick_to_order_is_timed_once_for_each_batch_that_sent_orders(tmp_path):
    # Arrange: count, per batch, the order requests sent on its path
    link = ModelLink()
    daemon = Daemon(_config(tmp_path), link)
    in_step = [False]
    batches_with_orders = []
    send, step = daemon._send, daemon.step

    def spy_send(stream, records):
        if stream == "order_in" and in_step[0] and len(records):
            batches_with_orders[-1] = True
        return send(stream, records)

    def spy_step():
        in_step[0] = True
        batches_with_orders.append(False)
        try:
            step()
        finally:
            in_step[0] = False

    daemon._send, daemon.step = spy_send, spy_step

    # Act
    summary = daemon.run()

    # Assert
    assert len(summary.host_us) == summary.batches
    assert 0 < sum(batches_with_orders) < summary.batches
    assert len(summary.tick_to_order_us) == sum(batches_with_orders)
    host_us_of_order_batches = summary.host_us[np.array(batches_with_orders)]
    assert np.array_equal(summary.tick_to_order_us, host_us_of_order_batches)
    paths = summary.latency_paths()
    assert np.array_equal(paths["tick_to_order_host_ns"],
                          np.rint(summary.tick_to_order_us * 1e3).astype(np.int64))
    assert np.array_equal(paths["md_to_bbo"], summary.hw_bbo_cycles)
    assert np.array_equal(paths["order_to_verdict"], summary.hw_verdict_cycles)
    assert len(summary.hw_verdict_cycles) == summary.orders


def _journal_with_an_order_in_every_open_state(directory: Path) -> dict[str, int]:
    """A session journal left as a crash leaves it: one request waiting for the gate, one for the
    venue, a working order, a partly filled one, and a replace of it still waiting for the
    venue. Returns the client order ids by name."""
    from host.journal import FsyncPolicy, Session
    from host.oms.risk import PreTradeConfig
    from host.types import Fill, OrderIntent, OrderKind, Side
    from host.venue.events import Ack

    accepted = wire.VERDICT.flag("flags", "accepted")

    def verdicts(requests):
        v = wire.VERDICT.array(len(requests))
        for name in ("client_order_id", "slot", "kind"):
            v[name] = requests[name]
        v["flags"] = accepted
        return v

    def new(**kw):
        return OrderIntent(**{"strategy": "t", "slot": 0, "side": Side.BUY, "price": 1_000_000,
                              "quantity": 100, **kw})

    s = Session.open(directory, policy=FsyncPolicy(mode="never"),
                     config=precheck_config(demo_config().risk))
    working, partial, at_venue = s.submit([new(), new(), new()])["client_order_id"]
    s.on_verdicts(verdicts(s.oms.requests_for([s.oms.orders[int(c)]
                                               for c in (working, partial, at_venue)])))
    s.on_venue_events([Ack(client_order_id=int(working)), Ack(client_order_id=int(partial))])
    s.on_venue_events([Fill(client_order_id=int(partial), slot=0, side=Side.BUY,
                            price=1_000_000, quantity=40, done=False)])
    (replace,) = s.submit([new(kind=OrderKind.REPLACE, target=int(partial), quantity=30)])[
        "client_order_id"]
    s.on_verdicts(verdicts(s.oms.requests_for([s.oms.orders[int(replace)]])))
    (waiting,) = s.submit([new(side=Side.SELL, slot=1)])["client_order_id"]
    s.journal.close()          # a crash: no stop, no snapshot
    return {"working": int(working), "partial": int(partial), "at_venue": int(at_venue),
            "replace": int(replace), "waiting": int(waiting)}


def test_a_restart_ends_every_order_the_recovered_session_left_open(tmp_path):
    # Arrange: a crashed session's journal with orders open in every state
    config = _config(tmp_path)
    ids = _journal_with_an_order_in_every_open_state(Path(config.journal.dir))

    # Act: the daemon starts on it, with a fresh paper venue and gate
    daemon = Daemon(config, ModelLink())
    daemon.start()
    oms = daemon.session.oms

    # Assert: nothing is left open, each request ended as its venue or gate would end it
    assert oms.open_orders() == []
    states = {name: oms.orders[coid].state for name, coid in ids.items()}
    assert states == {"waiting": OrderState.RISK_REJECTED, "at_venue": OrderState.REJECTED,
                      "replace": OrderState.REJECTED, "working": OrderState.CANCELLED,
                      "partial": OrderState.CANCELLED}
    assert oms.position(0).quantity == 40          # the fill stays
    assert any("1 refused before the gate, 2 rejected (SESSION_ENDED), 2 cancelled" in note
               for note in daemon.summary.notes)
    # the run goes on with quotes the gate knows: no request names an order it never saw
    summary = daemon.run(max_batches=20)
    assert summary.rejects.get("gate:UNKNOWN_ORDER", 0) == 0
    # and a recovery of this journal finds the same ends
    state = recover(config.journal.dir)
    state.journal.close()
    assert {name: state.oms.orders[coid].state for name, coid in ids.items()} == states


def test_a_restart_after_a_crash_mid_run_leaves_the_market_makers_quoting(tmp_path):
    # Arrange: a run killed after ten batches, with quotes resting at the venue
    config = _config(tmp_path)
    first = Daemon(config, ModelLink())
    first.start()
    for _ in range(10):
        first.step()
    assert first.session.oms.open_orders()
    restart_id = first.session.oms.next_client_order_id
    first.session.journal.close()

    # Act
    daemon, link, oms, summary = _run(config)

    # Assert: the market makers (slots 0 and 1) quote again, and the gate knew every target
    accepted_slots = {o.slot for o in oms.orders.values()
                      if o.client_order_id >= restart_id and o.state not in (
                          OrderState.NEW, OrderState.RISK_REJECTED)}
    assert {0, 1} <= accepted_slots
    assert summary.rejects.get("gate:UNKNOWN_ORDER", 0) == 0
    assert oms.open_orders() == []


def test_feed_gap_records_reach_the_gap_metric_and_its_alert(tmp_path, caplog):
    # Arrange: a link whose feed reports one MoldUDP64 gap in the first batch
    import logging

    class GapLink(ModelLink):
        def run(self, *, max_cycles=None):
            if not getattr(self, "gap_sent", False):
                gap = wire.FEED_GAP.array(1)
                gap["expected"], gap["received"] = 10, 15
                self.out["gaps_out"].append(gap)
                self.gap_sent = True
            return super().run(max_cycles=max_cycles)

    daemon = Daemon(_config(tmp_path), GapLink())

    # Act
    with caplog.at_level(logging.WARNING, logger="ticklane.alerts"):
        daemon.run(max_batches=2)

    # Assert: counted, and the default gap alert (1 per window) fired
    assert daemon.metrics.gaps._value.get() == 1
    assert any("ALERT gaps" in r.getMessage() for r in caplog.records)
