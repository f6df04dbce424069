"""The contract: layouts, dtypes, register map and format hash all derive from one definition."""

import random

import numpy as np
import pytest
from amaranth.lib import data

from hdl import wire


def _random_values(record, rng):
    values = {}
    for f in record.fields:
        if isinstance(f, wire.Flags):
            values[f.name] = rng.getrandbits(len(f.bits))
        else:
            values[f.name] = rng.getrandbits(f.width)
    return values


def _gateware_const(record, values):
    """Pack ``values`` with the Amaranth layout, as the gateware does."""
    init = {}
    for f in record.fields:
        if isinstance(f, wire.Flags):
            init[f.name] = {name: (values[f.name] >> i) & 1 for i, name in enumerate(f.bits)}
        else:
            init[f.name] = values[f.name]
    return record.layout.const(init).as_value().value


@pytest.mark.parametrize("record", wire.RECORDS, ids=lambda r: r.name)
def test_record_packed_by_gateware_layout_reads_back_bit_for_bit_in_host_dtype(record):
    rng = random.Random(record.name)
    for _ in range(200):
        values = _random_values(record, rng)
        raw = _gateware_const(record, values).to_bytes(record.size, "little")

        host = np.frombuffer(raw, dtype=record.dtype)[0]

        assert {name: int(host[name]) for name in record.dtype.names} == values
        assert record.pack(**values) == raw
        assert record.unpack(raw) == values


@pytest.mark.parametrize("record", wire.RECORDS, ids=lambda r: r.name)
def test_record_layout_and_dtype_have_the_same_size_and_field_offsets(record):
    assert record.layout.size == record.width == 8 * record.dtype.itemsize
    for f in record.fields:
        assert record.layout[f.name].offset == record.offsets[f.name]
        assert record.dtype.fields[f.name][1] * 8 == record.offsets[f.name]


def test_flag_masks_follow_the_amaranth_flag_bits():
    bbo = wire.BBO_UPDATE
    for i, name in enumerate(bbo["flags"].bits):
        const = bbo.layout.const({"flags": {name: 1}}).as_value().value
        assert const >> bbo.offsets["flags"] == bbo.flag("flags", name) == 1 << i


def test_register_addresses_are_unique_word_aligned_and_in_declaration_order():
    addrs = []
    for reg in wire.REGISTERS:
        for i in range(reg.count):
            addrs.append(wire.REGISTERS.address(reg.name, i))
    assert addrs == sorted(addrs) and len(set(addrs)) == len(addrs)
    assert all(a % 4 == 0 for a in addrs)
    assert wire.REGISTERS.size == 4 * len(addrs)


def test_stream_table_names_each_stream_once_with_a_known_record():
    assert set(wire.STREAMS) >= {"md_in", "bbo_out"}
    for name, stream in wire.STREAMS.items():
        assert stream.name == name and stream.direction in ("in", "out")
        assert stream.record in wire.RECORDS


def test_field_not_naturally_aligned_is_refused_with_its_position():
    with pytest.raises(ValueError, match=r"field 'b' \(32 bits\) starts at bit 8"):
        wire.Record("Bad", [wire.Field("a", 8), wire.Field("b", 32), wire.Field("c", 8),
                            wire.Field("d", 16)])


def test_record_not_padded_to_64_bits_is_refused():
    with pytest.raises(ValueError, match="is 32 bits long"):
        wire.Record("Short", [wire.Field("a", 32)])


def test_field_of_odd_width_is_refused_with_the_width():
    with pytest.raises(ValueError, match="width 12"):
        wire.Field("x", 12)


def test_pack_refuses_a_value_that_does_not_fit():
    with pytest.raises(ValueError, match="does not fit in 16 bits"):
        wire.BBO_UPDATE.pack(slot=1 << 16)


def test_unknown_register_name_is_a_clear_error():
    with pytest.raises(KeyError, match="no register named 'NOPE'"):
        wire.REGISTERS.address("NOPE")


def test_format_hash_changes_when_a_record_changes():
    before = wire._format_hash()
    saved = wire.RECORDS
    try:
        wire.RECORDS = saved + (wire.Record("Extra", [wire.Field("x", 64)]),)
        assert wire._format_hash() != before
    finally:
        wire.RECORDS = saved
    assert wire._format_hash() == before == wire.FORMAT_HASH
