"""The ITCH 5.0 table (host.feed.itch) against the specification itself.

Two independent checks: a table of every message's keys, typed from the PDF's tables, and a
reading of the PDF's own text (``pdftotext -layout`` from poppler, or pypdf) that rebuilds every
table (name, offset, length, type) and compares it with :data:`host.feed.itch.MESSAGE_SPECS`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from host.feed.itch import MESSAGE_SPECS, decode_message, encode_message, snake_case

PDF = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "itch50"
       / "NQTVITCHSpecification.pdf")
ALL_TYPES = "SRHYLVWKJhAFECXDUPQBINO"

_HEAD = ("message_type", "stock_locate", "tracking_number", "timestamp")

# Every key of every message, in table order, typed from the PDF's tables (sections 1.1-1.8).
PINNED_KEYS = {
    "S": _HEAD + ("event_code",),
    "R": _HEAD + ("stock", "market_category", "financial_status_indicator", "round_lot_size",
                  "round_lots_only", "issue_classification", "issue_sub_type", "authenticity",
                  "short_sale_threshold_indicator", "ipo_flag", "luld_reference_price_tier",
                  "etp_flag", "etp_leverage_factor", "inverse_indicator"),
    "H": _HEAD + ("stock", "trading_state", "reserved", "reason"),
    "Y": _HEAD + ("stock", "reg_sho_action"),
    "L": _HEAD + ("mpid", "stock", "primary_market_maker", "market_maker_mode",
                  "market_participant_state"),
    "V": _HEAD + ("level_1", "level_2", "level_3"),
    "W": _HEAD + ("breached_level",),
    "K": _HEAD + ("stock", "ipo_quotation_release_time", "ipo_quotation_release_qualifier",
                  "ipo_price"),
    "J": _HEAD + ("stock", "auction_collar_reference_price", "upper_auction_collar_price",
                  "lower_auction_collar_price", "auction_collar_extension"),
    "h": _HEAD + ("stock", "market_code", "operational_halt_action"),
    "A": _HEAD + ("order_reference_number", "buy_sell_indicator", "shares", "stock", "price"),
    "F": _HEAD + ("order_reference_number", "buy_sell_indicator", "shares", "stock", "price",
                  "attribution"),
    "E": _HEAD + ("order_reference_number", "executed_shares", "match_number"),
    "C": _HEAD + ("order_reference_number", "executed_shares", "match_number", "printable",
                  "execution_price"),
    "X": _HEAD + ("order_reference_number", "cancelled_shares"),
    "D": _HEAD + ("order_reference_number",),
    "U": _HEAD + ("original_order_reference_number", "new_order_reference_number", "shares",
                  "price"),
    "P": _HEAD + ("order_reference_number", "buy_sell_indicator", "shares", "stock", "price",
                  "match_number"),
    "Q": _HEAD + ("shares", "stock", "cross_price", "match_number", "cross_type"),
    "B": _HEAD + ("match_number",),
    "I": _HEAD + ("paired_shares", "imbalance_shares", "imbalance_direction", "stock",
                  "far_price", "near_price", "current_reference_price", "cross_type",
                  "price_variation_indicator"),
    "N": _HEAD + ("stock", "interest_flag"),
    "O": _HEAD + ("stock", "open_eligibility_status", "minimum_allowable_price",
                  "maximum_allowable_price", "near_execution_price", "near_execution_time",
                  "lower_price_range_collar", "upper_price_range_collar"),
}

# Every price field and its scale (spec "Data Types": Price (4), except the MWCB levels).
PRICE_FIELDS = {
    ("V", "level_1"): "price8", ("V", "level_2"): "price8", ("V", "level_3"): "price8",
    ("K", "ipo_price"): "price4",
    ("J", "auction_collar_reference_price"): "price4", ("J", "upper_auction_collar_price"): "price4",
    ("J", "lower_auction_collar_price"): "price4",
    ("A", "price"): "price4", ("F", "price"): "price4", ("C", "execution_price"): "price4",
    ("U", "price"): "price4", ("P", "price"): "price4", ("Q", "cross_price"): "price4",
    ("I", "far_price"): "price4", ("I", "near_price"): "price4",
    ("I", "current_reference_price"): "price4",
    ("O", "minimum_allowable_price"): "price4", ("O", "maximum_allowable_price"): "price4",
    ("O", "near_execution_price"): "price4", ("O", "lower_price_range_collar"): "price4",
    ("O", "upper_price_range_collar"): "price4",
}


def _filled(mtype: str) -> dict:
    fields = {}
    for f in MESSAGE_SPECS[mtype].fields:
        if f.name == "message_type":
            fields[f.name] = mtype
        elif f.kind == "alpha":
            fields[f.name] = "Z" * f.length
        else:
            fields[f.name] = f.offset
    return fields


@pytest.mark.parametrize("mtype", ALL_TYPES)
def test_keys_of_every_type_are_the_pinned_snake_case_names_in_table_order(mtype):
    assert MESSAGE_SPECS[mtype].field_names == PINNED_KEYS[mtype]
    assert tuple(decode_message(encode_message(_filled(mtype)))) == PINNED_KEYS[mtype]


def test_pinned_table_covers_every_type():
    assert sorted(PINNED_KEYS) == sorted(ALL_TYPES) == sorted(MESSAGE_SPECS)


def test_every_price_field_has_its_specification_scale_and_no_other_field_is_a_price():
    prices = {(t, f.name): f.kind for t, s in MESSAGE_SPECS.items() for f in s.fields
              if f.kind.startswith("price")}
    assert prices == PRICE_FIELDS


@pytest.mark.parametrize("printed,key", [
    ("Buy/Sell Indicator", "buy_sell_indicator"),
    ("Issue Sub-Type", "issue_sub_type"),
    ("FinancialStatus Indicator", "financial_status_indicator"),
    ("LULDReference Price Tier", "luld_reference_price_tier"),
    ("Level 1", "level_1"),
    ("MPID", "mpid"),
    ("Reg SHO Action", "reg_sho_action"),
    ("IPO Quotation Release Time", "ipo_quotation_release_time"),
    ("ETP Leverage Factor", "etp_leverage_factor"),
])
def test_snake_case_rule(printed, key):
    assert snake_case(printed) == key


def test_every_key_is_the_snake_case_of_the_name_the_table_transcribes():
    for spec in MESSAGE_SPECS.values():
        for f in spec.fields:
            assert f.name == snake_case(f.spec_name), (spec.type, f.spec_name)


# ------------------------------------------------------------------------------------------
# The PDF's own text
# ------------------------------------------------------------------------------------------

# A table row: name (possibly empty: the PDF sometimes prints it on the lines below), offset,
# length, then the type (or, for Message Type, the quoted type letter).
_ROW = re.compile(r"^\s*(.*?)\s+(\d+)\s+(\d+)\s+(Integer|Alpha|Price\s*\(\s*\d\s*\)|“(.)”)(\s|$)")
_FOOTER = re.compile(r"Nasdaq TotalView-+ITCH(\s+PAGE\s+\d+)?\s*$")
_SECTION = re.compile(r"^\s*\d+\.\d+(\.\d+)*\.?\s")
# The rest of a wrapped name in the name column: one to three capitalised words.
_NAME_PART = re.compile(
    r"^\s{0,12}([A-Z][A-Za-z/]*(?:[-•]+[A-Za-z]+)*(?: [A-Z][A-Za-z/]*){0,2})(?:\s{3,}|\s*$)")
_KINDS = {"Integer": "int", "Alpha": "alpha", "Price(4)": "price4", "Price(8)": "price8"}


def _pdf_tables(text: str) -> dict[str, list[list]]:
    """Every message table of the specification's text: type -> [name, offset, length, type]."""
    tables: dict[str, list[list]] = {}
    cur = None
    for line in text.splitlines():
        if not line.strip() or _FOOTER.search(line):
            continue
        indent = len(line) - len(line.lstrip())
        m = _ROW.match(line)
        if m:
            if m[5] and m[1].strip() == "Message Type" and m[2] == "0":
                cur = tables.setdefault(m[5], [])
            if cur is not None:
                cur.append([m[1].strip(), int(m[2]), int(m[3]), m[4]])
            continue
        if cur is None or indent >= 20:
            continue        # outside a table, or the description column
        part = _NAME_PART.match(line)
        if part and not _SECTION.match(line):
            cur[-1][0] = f"{cur[-1][0]} {part[1]}".strip()
        else:
            cur = None      # a section heading or prose: the table is over
    return tables


@pytest.fixture(scope="module")
def pdf_tables() -> dict[str, list[list]]:
    if not PDF.exists():
        pytest.skip(f"the specification {PDF} is absent (it lives in ../shared/data)")
    return _pdf_tables(_pdf_text(PDF))


def _pdf_text(path) -> str:
    """The PDF's text with its layout: poppler's ``pdftotext -layout`` where installed, else
    pypdf's layout mode (a dev dependency). pypdf prints the hyphen glyph as a soft hyphen and
    the page footer without its page number; both readings give the same tables."""
    if shutil.which("pdftotext") is not None:
        return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                              text=True, check=True).stdout
    pypdf = pytest.importorskip("pypdf", reason="neither pdftotext nor pypdf can read the PDF")
    pages = pypdf.PdfReader(str(path)).pages
    return "\n".join(p.extract_text(extraction_mode="layout") for p in pages).replace("\xad", "-")


def _from_pdf(row: list) -> tuple[str, int, int, str]:
    name, offset, length, typ = row
    name = re.sub(r"-[-•]*", "-", name)          # the PDF's hyphen glyphs: "-•-", "---"
    key = snake_case(name)
    if (offset, length, key) == (1, 2, "locate_code"):
        key = "stock_locate"                      # 'Y' prints the stock locate "Locate Code"
    if typ.startswith("“"):
        kind = "alpha"                            # the Message Type byte
    elif typ == "Integer" and key == "timestamp":
        kind = "timestamp"
    else:
        kind = _KINDS[typ.replace(" ", "")]
    return key, offset, length, kind


def test_the_pdf_text_yields_every_message_table(pdf_tables):
    assert sorted(pdf_tables) == sorted(ALL_TYPES)


@pytest.mark.parametrize("mtype", ALL_TYPES)
def test_table_equals_the_pdf_name_offset_length_and_type_of_every_field(pdf_tables, mtype):
    pdf = [_from_pdf(r) for r in pdf_tables[mtype]]
    ours = [(f.name, f.offset, f.length, f.kind) for f in MESSAGE_SPECS[mtype].fields]
    assert ours == pdf
    last = pdf[-1]
    assert MESSAGE_SPECS[mtype].length == last[1] + last[2]
