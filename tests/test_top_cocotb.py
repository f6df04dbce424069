"""cocotb + Verilator: the whole top against the reference model, with idle and backpressure."""

import random

import numpy as np
import pytest
from cocotb_tools.check_results import get_results

from hdl.top import Top
from host.feed.framing import frame_historical
from host.feed.itch import encode_message
from sim.cocotb_run import run_cocotb
from sim.reference import expected_bbo_records

SLOTS = 16


def adds_stream(seed: int, n_adds: int, n_symbols: int) -> bytes:
    """Directory messages for ``n_symbols`` (one more than the design has slots when asked),
    then seeded adds around a mid price with equal, better and worse prices on both sides,
    including adds for an unknown locate."""
    rng = random.Random(seed)
    msgs = [encode_message({"message_type": "S", "stock_locate": 0, "tracking_number": 0,
                            "timestamp": 1, "event_code": "O"})]
    base = dict(market_category="Q", financial_status_indicator="N", round_lot_size=100,
                round_lots_only="N", issue_classification="C", issue_sub_type="Z",
                authenticity="P", short_sale_threshold_indicator="N", ipo_flag="N",
                luld_reference_price_tier="1", etp_flag="N", etp_leverage_factor=0,
                inverse_indicator="N")
    for loc in range(1, n_symbols + 1):
        msgs.append(encode_message({"message_type": "R", "stock_locate": loc,
                                    "tracking_number": 0, "timestamp": 2,
                                    "stock": f"SYM{loc}", **base}))
    ref = 1
    for i in range(n_adds):
        loc = rng.randint(1, n_symbols + 1)        # n_symbols + 1 has no directory message
        sell = rng.random() < 0.5
        price = 1_000_000 + rng.randint(-20, 20) * 100
        mtype = "F" if rng.random() < 0.2 else "A"
        fields = {"message_type": mtype, "stock_locate": loc, "tracking_number": 0,
                  "timestamp": 3 + i, "order_reference_number": ref,
                  "buy_sell_indicator": "S" if sell else "B",
                  "shares": rng.choice([1, 100, 300, 2**32 - 1]), "stock": f"SYM{loc}",
                  "price": price}
        if mtype == "F":
            fields["attribution"] = "MPID"
        msgs.append(encode_message(fields))
        ref += 1
    return frame_historical(msgs)


@pytest.mark.parametrize("idle,backpressure", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.7), (0.3, 0.5)])
def test_top_bbo_records_equal_model_under_idle_and_backpressure(tmp_path, idle, backpressure):
    # Arrange
    stream = adds_stream(seed=7, n_adds=600, n_symbols=SLOTS + 2)
    expected = expected_bbo_records(stream, slots=SLOTS)
    assert len(expected) > 50
    (tmp_path / "stream.itch").write_bytes(stream)
    np.save(tmp_path / "expected.npy", expected)
    # frames that end on message boundaries, some beats partial
    frames = []
    pos = 0
    while pos < len(stream):
        n = int.from_bytes(stream[pos:pos + 2], "big")
        pos += 2 + n
        if len(frames) < 40 and random.Random(pos).random() < 0.1:
            frames.append(pos)
    frames.append(len(stream))

    # Act
    results = run_cocotb(
        Top(slots=SLOTS), toplevel="ticklane_top", config=f"slots{SLOTS}",
        test_module="tb_top",
        env={"TICKLANE_TB_STREAM": tmp_path / "stream.itch",
             "TICKLANE_TB_EXPECTED": tmp_path / "expected.npy",
             "TICKLANE_TB_FRAMES": ",".join(map(str, frames)),
             "TICKLANE_TB_IDLE": idle, "TICKLANE_TB_BACKPRESSURE": backpressure,
             "TICKLANE_TB_SEED": 3})

    # Assert
    tests, failed = get_results(results)
    assert tests == 1 and failed == 0
