"""The board link's logic against a fake of the pynq calls it makes.

The fake ``pynq`` module (injected through ``sys.modules``) has ``DefaultIP`` with a driver table
filled by ``bindto``, ``Overlay`` with ``ip_dict``, ``download`` and attribute access to IPs, AXI DMA
channels with ``transfer``/``idle``/``transferred``/``wait_async``, and ``allocate``. Behind it a
tiny device answers each order request with an accepting verdict, so that the receive path is
exercised too.
"""

from __future__ import annotations

import asyncio
import json
import sys
import types

import numpy as np
import pytest

from hdl import wire
from host.link.base import LinkError

_ACCEPTED = wire.VERDICT.flag("flags", "accepted")


class FakeBuffer(np.ndarray):
    def flush(self):
        self.flushed = getattr(self, "flushed", 0) + 1

    def invalidate(self):
        pass

    def freebuffer(self):
        self.freed = True


class FakeChannel:
    def __init__(self, device, name, direction):
        self.device, self.name, self.direction = device, name, direction
        self.idle = True
        self.transferred = 0
        self.buffer = None
        self.transfers = []
        self.async_waits = 0

    def transfer(self, array, start=0, nbytes=0):
        nbytes = nbytes or array.nbytes
        self.transfers.append(nbytes)
        if self.direction == "in":
            self.device.consume(self.name, bytes(array.view(np.uint8)[:nbytes]))
            self.idle = True
        else:
            self.buffer, self.idle, self.transferred = array, False, 0
            self.device.deliver()

    async def wait_async(self):
        self.async_waits += 1
        await asyncio.sleep(0)


class FakeDevice:
    """Registers and streams of a gateware that accepts every order request."""

    def __init__(self):
        self.words = {wire.REGISTERS.address("DEVICE_ID"): wire.DEVICE_ID,
                      wire.REGISTERS.address("FORMAT_HASH"): wire.FORMAT_HASH & 0xFFFF_FFFF}
        self.cycle = 0
        self.channels = {}
        self.pending = {n: b"" for n, s in wire.STREAMS.items() if s.direction == "out"}
        self.consumed = {}
        self.writes = []

    def read(self, address):
        if address == wire.REGISTERS.address("CYCLE_LO"):
            self.cycle += 1000
            return self.cycle & 0xFFFF_FFFF
        if address == wire.REGISTERS.address("CYCLE_HI"):
            return self.cycle >> 32
        return self.words.get(address, 0)

    def write(self, address, value):
        self.writes.append((address, value))
        self.words[address] = value

    def consume(self, stream, raw):
        self.consumed.setdefault(stream, []).append(raw)
        if stream == "order_in":
            reqs = np.frombuffer(raw, wire.ORDER_REQUEST.dtype)
            v = wire.VERDICT.array(len(reqs))
            v["client_order_id"] = reqs["client_order_id"]
            v["flags"] = _ACCEPTED
            v["kind"] = reqs["kind"]
            self.pending["verdict_out"] += v.tobytes()
            self.pending["order_out"] += reqs.tobytes()
        elif stream == "refill_in":
            # The book stage answers each installed side batch with the symbol's new top.
            levels = np.frombuffer(raw, wire.BOOK_REFILL_LEVEL.dtype)
            last = levels[(levels["flags"] & wire.BOOK_REFILL_LEVEL.flag("flags", "last")) != 0]
            bbo = wire.BBO_UPDATE.array(len(last))
            bbo["seq"], bbo["slot"], bbo["locate"] = last["seq"], last["slot"], last["locate"]
            self.pending["bbo_out"] += bbo.tobytes()
        self.deliver()

    def deliver(self):
        for name, data in self.pending.items():
            ch = self.channels.get(name)
            if data and ch is not None and not ch.idle:
                n = min(len(data), ch.buffer.nbytes)
                ch.buffer.view(np.uint8)[:n] = np.frombuffer(data[:n], np.uint8)
                ch.transferred, ch.idle = n, True
                self.pending[name] = data[n:]


def make_fake_pynq(device: FakeDevice, vlnv: str):
    pynq = types.ModuleType("pynq")
    drivers = {}

    class DefaultIP:
        def __init_subclass__(cls, **kw):
            super().__init_subclass__(**kw)
            for v in getattr(cls, "bindto", ()):
                drivers[v] = cls

        def __init__(self, description):
            self.description = description

        def read(self, offset=0):
            return device.read(offset)

        def write(self, offset, value):
            device.write(offset, value)

    class Dma:
        def __init__(self, name):
            stream = name[len("axi_dma_"):]
            direction = wire.STREAMS[stream].direction
            ch = FakeChannel(device, stream, direction)
            device.channels[stream] = ch
            if direction == "in":
                self.sendchannel = ch
            else:
                self.recvchannel = ch

    class Overlay:
        loads = 0

        def __init__(self, path):
            Overlay.loads += 1
            self.path = path
            self.ip_dict = {"ticklane_0": {"type": vlnv, "phys_addr": 0x43C0_0000}}
            self.ip_dict.update({f"axi_dma_{n}": {"type": "xilinx.com:ip:axi_dma:7.1"}
                                 for n in wire.STREAMS})
            self._ips = {}

        def download(self):
            Overlay.loads += 1

        def __getattr__(self, name):
            if name.startswith("_") or name not in self.ip_dict:
                raise AttributeError(name)
            if name not in self._ips:
                d = self.ip_dict[name]
                self._ips[name] = (drivers[d["type"]](d) if d["type"] in drivers
                                   else Dma(name))
            return self._ips[name]

    def allocate(shape, dtype):
        return np.zeros(shape, dtype).view(FakeBuffer)

    pynq.DefaultIP, pynq.Overlay, pynq.allocate, pynq.drivers = DefaultIP, Overlay, allocate, drivers
    return pynq


@pytest.fixture
def board(tmp_path, monkeypatch):
    """A bitstream folder with .bit, .hwh and manifest, and a fake pynq over a fake device."""
    from hdl.platform.pynq_z2 import IP_VLNV, register_map

    device = FakeDevice()
    monkeypatch.setitem(sys.modules, "pynq", make_fake_pynq(device, IP_VLNV))
    bit = tmp_path / "ticklane.bit"
    bit.write_bytes(b"\0" * 16)
    (tmp_path / "ticklane.hwh").write_text(f'<MODULE VLNV="{IP_VLNV}" INSTANCE="ticklane_0"/>')
    manifest = {"format_hash": f"0x{wire.FORMAT_HASH:016x}", "ip_vlnv": IP_VLNV,
                "registers": register_map(wire.REGISTERS),
                "streams": [{"name": n, "dma": f"axi_dma_{n}"} for n in wire.STREAMS]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return types.SimpleNamespace(bit=bit, device=device, manifest=manifest, dir=tmp_path)


def _requests(n):
    reqs = wire.ORDER_REQUEST.array(n)
    reqs["client_order_id"] = np.arange(1, n + 1)
    reqs["kind"] = 1
    reqs["price"], reqs["quantity"] = 1000, 10
    return reqs


def test_driver_is_bound_to_our_ip_vlnv(board):
    # Arrange
    from hdl.platform.pynq_z2 import IP_VLNV
    from host.link.board import IP_VLNV as HOST_VLNV, BoardLink

    # Act
    link = BoardLink(board.bit)

    # Assert
    assert HOST_VLNV == IP_VLNV
    assert type(link._core).bindto == [IP_VLNV]
    assert sys.modules["pynq"].drivers[IP_VLNV] is type(link._core)


def test_registers_are_written_at_the_contract_address_by_name(board):
    # Arrange
    from host.link.board import BoardLink
    link = BoardLink(board.bit)

    # Act
    link.write_reg("RISK_MAX_LONG", 700, 3)

    # Assert
    assert board.device.writes[-1] == (wire.REGISTERS.address("RISK_MAX_LONG", 3), 700)
    assert link.read_reg("RISK_MAX_LONG", 3) == 700


def test_order_requests_go_out_by_dma_and_verdicts_come_back(board):
    # Arrange
    from host.link.board import BoardLink
    link = BoardLink(board.bit)
    reqs = _requests(5)

    # Act
    link.send("order_in", reqs)
    stats = link.run()
    verdicts = link.receive("verdict_out")
    passed = link.receive("order_out")

    # Assert
    assert board.device.consumed["order_in"] == [reqs.tobytes()]
    assert verdicts["client_order_id"].tolist() == [1, 2, 3, 4, 5]
    assert np.all(verdicts["flags"] & _ACCEPTED)
    assert passed.tobytes() == reqs.tobytes()
    assert stats.drained and stats.cycles > 0
    assert link.receive("verdict_out").size == 0   # taken once


def test_batch_larger_than_the_buffer_is_sent_in_several_transfers(board):
    # Arrange
    from host.link.board import BoardLink
    link = BoardLink(board.bit, capacity=4)
    reqs = _requests(10)

    # Act
    link.send("order_in", reqs)
    link.run()

    # Assert
    channel = board.device.channels["order_in"]
    assert channel.transfers == [4 * 32, 4 * 32, 2 * 32]
    assert b"".join(board.device.consumed["order_in"]) == reqs.tobytes()
    assert link.receive("verdict_out")["client_order_id"].tolist() == list(range(1, 11))


def test_interrupt_mode_awaits_the_channel(board):
    # Arrange
    from host.link.board import BoardLink
    link = BoardLink(board.bit, mode="interrupt")

    # Act
    link.send("fill_in", wire.FILL.array(3))
    link.run()

    # Assert
    assert board.device.channels["fill_in"].async_waits == 1


def test_every_stream_has_its_own_dma_channel(board):
    from host.link.board import BoardLink
    BoardLink(board.bit)
    assert set(board.device.channels) == set(wire.STREAMS)


def test_manifest_with_another_format_hash_is_refused(board):
    # Arrange
    from host.link.board import BoardLink
    board.manifest["format_hash"] = "0x0000000000000001"
    (board.dir / "manifest.json").write_text(json.dumps(board.manifest))

    # Act / Assert
    with pytest.raises(LinkError, match="format hash"):
        BoardLink(board.bit)


def test_manifest_with_a_moved_register_is_refused(board):
    # Arrange
    from host.link.board import BoardLink
    board.manifest["registers"][2]["address"] += 4
    (board.dir / "manifest.json").write_text(json.dumps(board.manifest))

    # Act / Assert
    with pytest.raises(LinkError, match=board.manifest["registers"][2]["name"]):
        BoardLink(board.bit)


def test_hwh_without_our_ip_is_refused(board):
    from host.link.board import BoardLink
    (board.dir / "ticklane.hwh").write_text('<MODULE VLNV="xilinx.com:ip:axi_dma:7.1"/>')
    with pytest.raises(LinkError, match=r"\.hwh"):
        BoardLink(board.bit)


def test_wrong_device_id_is_refused(board):
    from host.link.board import BoardLink
    board.device.words[wire.REGISTERS.address("DEVICE_ID")] = 0x1234
    with pytest.raises(LinkError, match="DEVICE_ID"):
        BoardLink(board.bit)


def test_power_on_reloads_the_overlay(board):
    # Arrange
    from host.link.board import BoardLink
    link = BoardLink(board.bit)
    loads = sys.modules["pynq"].Overlay.loads

    # Act
    link.power_on()

    # Assert
    assert sys.modules["pynq"].Overlay.loads > loads


def test_missing_pynq_is_a_clear_error(board, monkeypatch):
    from host.link.board import BoardLink
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(LinkError, match="pynq"):
        BoardLink(board.bit)


def test_board_module_does_not_import_pynq_or_amaranth_at_import():
    import subprocess
    code = ("import sys, host.link.board; "
            "print('pynq' in sys.modules, 'amaranth' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.split()[0] == "False"


def test_daemon_refills_the_gateware_book_through_the_refill_dma(board, tmp_path):
    # Arrange: a daemon on the board link whose software book has a flagged symbol
    from host.daemon import Daemon, demo_config
    from host.link.board import BoardLink
    from sim.gen.itchgen import generate
    buf = generate(3, 600, n_symbols=2, target_live_orders=100)
    link = BoardLink(board.bit, capacity=4)
    daemon = Daemon(demo_config(journal_dir=str(tmp_path / "j")), link, feed=buf, slots=16)
    daemon._refill_levels = 3
    daemon._host_book.advance(daemon.plan.messages)
    locate = next(iter(daemon.plan.slot_of_locate))
    daemon._refill.carried.add(locate)
    daemon._refill.slot[locate] = daemon.plan.slot_of_locate[locate]
    want = daemon._host_book.refill_levels(locate, slot=daemon._refill.slot[locate], levels=3)

    # Act
    daemon._refill_gateware()

    # Assert: both sides' levels went out on refill_in's own DMA, in buffer-sized transfers
    assert b"".join(board.device.consumed["refill_in"]) == want.tobytes()
    assert len(board.device.channels["refill_in"].transfers) == -(-len(want) // 4)
    assert daemon.summary.refills_sent == 2 and daemon.summary.refills_abandoned == 0
    answers = np.concatenate(daemon._pending_hw)
    assert answers["locate"].tolist() == [locate, locate]
    assert np.all(answers["seq"] == daemon.plan.messages)
    daemon.stop(graceful=False)


def test_latencies_of_a_board_run_convert_at_the_clock_its_manifest_records(board):
    # Arrange: a bitstream built at 125 MHz
    from host.link.board import BoardLink
    from host.replay import CLOCK_MHZ
    board.manifest["clock"] = {"name": "FCLK_CLK0", "requested_mhz": 125.0, "mhz": 125.0,
                               "source": "PS7 IO PLL 1000 MHz / (DIVISOR0 * DIVISOR1)"}
    (board.dir / "manifest.json").write_text(json.dumps(board.manifest))

    # Act
    mhz, source = BoardLink(board.bit).clock()

    # Assert
    assert mhz == 125.0 != CLOCK_MHZ
    assert source.startswith("FCLK_CLK0 = 125 MHz") and "manifest.json" in source


def test_a_manifest_without_a_clock_gives_the_build_target_and_says_so(board):
    # Arrange: the fixture's manifest has no clock entry
    from host.link.board import BoardLink
    from host.replay import CLOCK_MHZ

    # Act
    mhz, source = BoardLink(board.bit).clock()

    # Assert
    assert mhz == CLOCK_MHZ and source.startswith("the bitstream's manifest.json records no clock")
