"""ITCH 5.0 message table, decoder and encoder (host.feed.itch)."""

from __future__ import annotations

import collections
import csv
import re
import struct
from pathlib import Path

import pytest

from host.feed.itch import (
    FIELD_KINDS, MESSAGE_LENGTHS, MESSAGE_SPECS, PRICE4_MAX, FieldSpec, ItchError, MessageSpec,
    decode_message, encode_message, message_type_of,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "itch50"
ALL_TYPES = "SRHYLVWKJhAFECXDUPQBINO"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (it lives in ../shared/data, outside the repo)")
    return path


def _sample_fields(spec: MessageSpec, salt: int) -> dict:
    """A message of every field filled with a value that uses the field's whole width."""
    fields = {}
    for i, f in enumerate(spec.fields):
        if f.name == "message_type":
            fields[f.name] = spec.type
        elif f.kind in ("int", "price4", "price8", "timestamp"):
            top = (1 << (8 * f.length)) - 1
            fields[f.name] = top - (salt * 7919 + i) % 1000 if salt else top
        elif f.length == 1:
            fields[f.name] = chr(ord("A") + (salt + i) % 26)
        else:
            full = "".join(chr(ord("A") + (salt + i + k) % 26) for k in range(f.length))
            # salt 1: a short value, so the padding path is exercised too
            fields[f.name] = full[: max(1, f.length // 2)] if salt == 1 else full
    return fields


# ------------------------------------------------------------------------------------------
# The table against the specification
# ------------------------------------------------------------------------------------------

def test_table_covers_every_message_type_of_the_specification():
    assert sorted(MESSAGE_SPECS) == sorted(ALL_TYPES)
    assert sorted(MESSAGE_LENGTHS) == sorted(ord(t) for t in ALL_TYPES)


def test_every_length_equals_the_reference_csv():
    rows = list(csv.DictReader(_need(DATA / "itch50_message_lengths.csv").open()))
    assert len(rows) == len(ALL_TYPES)
    for row in rows:
        t = row["type"]
        assert MESSAGE_SPECS[t].length == int(row["length_bytes"]), t
        assert MESSAGE_LENGTHS[ord(t)] == int(row["length_bytes"]), t


def test_every_last_field_matches_the_pdf_column_of_the_reference_csv():
    rows = list(csv.DictReader(_need(DATA / "itch50_message_lengths.csv").open()))
    for row in rows:
        m = re.search(r"@(\d+)\+(\d+)$", row["pdf_last_field"])
        assert m, row
        last = MESSAGE_SPECS[row["type"]].fields[-1]
        assert (last.offset, last.length) == (int(m[1]), int(m[2])), row


# (type, field, offset, length, kind) read off the tables of the specification PDF.
SPEC_OFFSETS = [
    ("S", "event_code", 11, 1, "alpha"),
    ("R", "stock", 11, 8, "alpha"),
    ("R", "round_lot_size", 21, 4, "int"),
    ("R", "issue_sub_type", 27, 2, "alpha"),
    ("R", "etp_leverage_factor", 34, 4, "int"),
    ("R", "inverse_indicator", 38, 1, "alpha"),
    ("H", "reason", 21, 4, "alpha"),
    ("Y", "reg_sho_action", 19, 1, "alpha"),
    ("L", "mpid", 11, 4, "alpha"),
    ("L", "stock", 15, 8, "alpha"),
    ("L", "market_participant_state", 25, 1, "alpha"),
    ("V", "level_1", 11, 8, "price8"),
    ("V", "level_3", 27, 8, "price8"),
    ("W", "breached_level", 11, 1, "alpha"),
    ("K", "ipo_quotation_release_time", 19, 4, "int"),
    ("K", "ipo_price", 24, 4, "price4"),
    ("J", "auction_collar_reference_price", 19, 4, "price4"),
    ("J", "auction_collar_extension", 31, 4, "int"),
    ("h", "operational_halt_action", 20, 1, "alpha"),
    ("A", "order_reference_number", 11, 8, "int"),
    ("A", "buy_sell_indicator", 19, 1, "alpha"),
    ("A", "shares", 20, 4, "int"),
    ("A", "stock", 24, 8, "alpha"),
    ("A", "price", 32, 4, "price4"),
    ("F", "attribution", 36, 4, "alpha"),
    ("E", "executed_shares", 19, 4, "int"),
    ("E", "match_number", 23, 8, "int"),
    ("C", "printable", 31, 1, "alpha"),
    ("C", "execution_price", 32, 4, "price4"),
    ("X", "cancelled_shares", 19, 4, "int"),
    ("D", "order_reference_number", 11, 8, "int"),
    ("U", "original_order_reference_number", 11, 8, "int"),
    ("U", "new_order_reference_number", 19, 8, "int"),
    ("U", "shares", 27, 4, "int"),
    ("U", "price", 31, 4, "price4"),
    ("P", "price", 32, 4, "price4"),
    ("P", "match_number", 36, 8, "int"),
    ("Q", "shares", 11, 8, "int"),
    ("Q", "cross_price", 27, 4, "price4"),
    ("Q", "cross_type", 39, 1, "alpha"),
    ("B", "match_number", 11, 8, "int"),
    ("I", "imbalance_direction", 27, 1, "alpha"),
    ("I", "stock", 28, 8, "alpha"),
    ("I", "current_reference_price", 44, 4, "price4"),
    ("I", "price_variation_indicator", 49, 1, "alpha"),
    ("N", "interest_flag", 19, 1, "alpha"),
    ("O", "near_execution_time", 32, 8, "int"),
    ("O", "upper_price_range_collar", 44, 4, "price4"),
]


@pytest.mark.parametrize("mtype,name,offset,length,kind", SPEC_OFFSETS)
def test_field_offset_length_and_kind_match_the_specification(mtype, name, offset, length, kind):
    f = MESSAGE_SPECS[mtype].field(name)
    assert (f.offset, f.length, f.kind) == (offset, length, kind)


@pytest.mark.parametrize("mtype", ALL_TYPES)
def test_every_message_starts_with_the_common_header(mtype):
    head = [(f.name, f.offset, f.length, f.kind) for f in MESSAGE_SPECS[mtype].fields[:4]]
    assert head == [("message_type", 0, 1, "alpha"), ("stock_locate", 1, 2, "int"),
                    ("tracking_number", 3, 2, "int"), ("timestamp", 5, 6, "timestamp")]


def test_repeated_spec_names_are_made_unique_in_mwcb_levels():
    assert MESSAGE_SPECS["V"].field_names[4:] == ("level_1", "level_2", "level_3")


def test_fieldspec_rejects_unknown_kind_and_wrong_width():
    with pytest.raises(ValueError, match="kind 'float'"):
        FieldSpec("x", 11, 4, "float")
    with pytest.raises(ValueError, match="length 3 is not valid for kind 'int'"):
        FieldSpec("x", 11, 3, "int")
    assert FIELD_KINDS == {"int", "alpha", "price4", "price8", "timestamp"}


def test_messagespec_rejects_a_hole_between_fields():
    with pytest.raises(ValueError, match="field 'b' at offset 3, expected 2"):
        MessageSpec("Z", "bad", 4, (FieldSpec("a", 0, 2, "int"), FieldSpec("b", 3, 1, "alpha")),
                    "0")


# ------------------------------------------------------------------------------------------
# Decoding raw bytes built independently of the table
# ------------------------------------------------------------------------------------------

def test_add_order_bytes_decode_to_spec_fields():
    # Arrange: spec 1.3.1 layout packed by hand
    ts = 0x0123_4567_89AB
    raw = (b"A" + struct.pack(">HH", 7, 3) + ts.to_bytes(6, "big")
           + struct.pack(">Q", 0x1122334455667788) + b"S" + struct.pack(">I", 250)
           + b"AAPL    " + struct.pack(">I", 1_234_500))
    # Act
    d = decode_message(raw)
    # Assert
    assert d == {"message_type": "A", "stock_locate": 7, "tracking_number": 3, "timestamp": ts,
                 "order_reference_number": 0x1122334455667788, "buy_sell_indicator": "S",
                 "shares": 250, "stock": "AAPL", "price": 1_234_500}
    assert list(d) == list(MESSAGE_SPECS["A"].field_names)


def test_mwcb_levels_decode_as_price8_integers():
    level = 3_211_234_567_890_000  # 32,112,345.6789 in Price(8)
    raw = (b"V" + bytes(4) + (1).to_bytes(6, "big") + level.to_bytes(8, "big")
           + (level + 1).to_bytes(8, "big") + (2**64 - 1).to_bytes(8, "big"))
    d = decode_message(raw)
    assert (d["level_1"], d["level_2"], d["level_3"]) == (level, level + 1, 2**64 - 1)


def test_every_alpha_field_is_stripped_of_its_right_padding_one_byte_ones_too():
    # Spec "Data Types": every alpha field is left justified and padded on the right with
    # spaces, whatever its length, so a field of spaces ("<space> = not available") is empty.
    raw = encode_message({**_sample_fields(MESSAGE_SPECS["H"], 0), "reserved": "",
                          "stock": "ZVZZT", "reason": ""})
    assert raw[11:19] == b"ZVZZT   " and raw[20:25] == b"     "
    d = decode_message(raw)
    assert (d["reserved"], d["stock"], d["reason"]) == ("", "ZVZZT", "")
    assert encode_message(d) == raw


def test_a_leading_space_is_data_and_is_kept():
    raw = bytearray(encode_message({**_sample_fields(MESSAGE_SPECS["H"], 0), "reason": "T1"}))
    raw[21:25] = b" T1 "
    assert decode_message(bytes(raw))["reason"] == " T1"


# ------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("salt", [0, 1, 2])
@pytest.mark.parametrize("mtype", ALL_TYPES)
def test_every_type_round_trips_through_encode_and_decode(mtype, salt):
    spec = MESSAGE_SPECS[mtype]
    fields = _sample_fields(spec, salt)
    raw = encode_message(fields)
    assert len(raw) == spec.length
    assert raw[0] == ord(mtype)
    assert decode_message(raw) == fields
    assert encode_message(decode_message(raw)) == raw


@pytest.mark.parametrize("mtype", ALL_TYPES)
def test_integer_fields_land_big_endian_at_their_spec_offsets(mtype):
    spec = MESSAGE_SPECS[mtype]
    fields = _sample_fields(spec, 2)
    raw = encode_message(fields)
    for f in spec.fields[1:]:
        chunk = raw[f.offset:f.end]
        if f.kind == "alpha":
            assert chunk == fields[f.name].encode().ljust(f.length, b" "), f.name
        else:
            assert int.from_bytes(chunk, "big") == fields[f.name], f.name


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------

def test_unknown_type_is_rejected_with_the_type_byte_named():
    with pytest.raises(ItchError, match=r"unknown ITCH message type 0x7a \('z'\)"):
        decode_message(b"z" + bytes(20))
    with pytest.raises(ItchError, match="unknown ITCH message type 0x00"):
        message_type_of(b"\x00")


def test_empty_message_is_rejected():
    with pytest.raises(ItchError, match="empty"):
        decode_message(b"")


@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_length_is_rejected_with_both_lengths(delta):
    raw = encode_message(_sample_fields(MESSAGE_SPECS["E"], 0))
    bad = raw[:-1] if delta < 0 else raw + b"\x00"
    with pytest.raises(ItchError, match=f"must be 31 bytes, got {31 + delta}"):
        decode_message(bad)


def test_non_ascii_alpha_byte_is_an_itch_error():
    raw = bytearray(encode_message(_sample_fields(MESSAGE_SPECS["A"], 0)))
    raw[24] = 0xE9
    with pytest.raises(ItchError, match="non-ASCII byte 0xe9"):
        decode_message(bytes(raw))
    assert issubclass(ItchError, ValueError)


def test_encode_rejects_missing_and_unknown_fields():
    fields = _sample_fields(MESSAGE_SPECS["D"], 0)
    with pytest.raises(ItchError, match=r"missing field\(s\) \['order_reference_number'\]"):
        encode_message({k: v for k, v in fields.items() if k != "order_reference_number"})
    with pytest.raises(ItchError, match=r"unknown field\(s\) \['colour'\]"):
        encode_message({**fields, "colour": "red"})
    with pytest.raises(ItchError, match="unknown ITCH message type 'z'"):
        encode_message({**fields, "message_type": "z"})


@pytest.mark.parametrize("name,value,match", [
    ("shares", 2**32, "does not fit in 4 unsigned bytes"),
    ("shares", -1, "does not fit"),
    ("timestamp", 2**48, "does not fit in 6 unsigned bytes"),
    ("price", "1.00", "must be an int"),
    ("price", 1.0, "must be an int"),
    ("stock", "TOOLONGXX", "at most 8 characters"),
    ("stock", "ÄPFEL", "must be ASCII"),
    ("buy_sell_indicator", "BS", "at most 1 characters"),
    ("stock", 5, "must be a str"),
])
def test_encode_rejects_values_that_do_not_fit(name, value, match):
    fields = {**_sample_fields(MESSAGE_SPECS["A"], 0), name: value}
    with pytest.raises(ItchError, match=match):
        encode_message(fields)


def test_price4_maximum_is_the_spec_value():
    assert PRICE4_MAX == 2_000_000_000 == 0x77359400


# ------------------------------------------------------------------------------------------
# Real data
# ------------------------------------------------------------------------------------------

def _sample_messages() -> list[bytes]:
    buf = _need(DATA / "sample.itch").read_bytes()
    msgs, pos = [], 0
    while pos < len(buf):
        n = int.from_bytes(buf[pos:pos + 2], "big")
        msgs.append(buf[pos + 2:pos + 2 + n])
        pos += 2 + n
    return msgs


def test_real_sample_decodes_fully_with_the_documented_counts_and_timestamps():
    msgs = _sample_messages()
    decoded = [decode_message(m) for m in msgs]
    counts = collections.Counter(d["message_type"] for d in decoded)
    assert len(decoded) == 1000
    assert counts == {"S": 1, "R": 993, "H": 3, "Y": 3}
    assert decoded[0]["timestamp"] == 11_072_057_543_747
    assert decoded[-1]["timestamp"] == 11_354_360_581_176
    assert decoded[0]["event_code"] == "O"  # start of messages
    r = [d for d in decoded if d["message_type"] == "R"]
    assert [d["stock_locate"] for d in r] == list(range(1, 994))
    assert r[0]["stock"] == "A" and r[0]["round_lot_size"] == 100


def test_real_sample_reencodes_byte_for_byte():
    for m in _sample_messages():
        assert encode_message(decode_message(m)) == m
