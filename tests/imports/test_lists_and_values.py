"""List cells as people write them (quoted items, escaped quotes, trimmed), JSON arrays, the apostrophe of
spreadsheet-safe exports, and typed values (numbers, dates) in the mapping."""

from datetime import UTC, date, datetime

import pytest

from imports.mapping import MappingInvalid, RowInvalid, excel_serial, mapping_compile, split_items

AGREEMENTS = {"email"}


def compile_(columns, **extra):
    return mapping_compile({"columns": {"mail": {"to": "email"}, **columns}, **extra}, agreements=AGREEMENTS)


@pytest.mark.parametrize(
    ("cell", "separator", "items"),
    [
        ('"Customer","VIP Club"', ",", ["Customer", "VIP Club"]),
        ('"Customer", "VIP Club"', ",", ["Customer", "VIP Club"]),  # a space after the separator
        ('"a ""b"""', ",", ['a "b"']),  # a doubled quote is one quote
        ('"Smith, John",Doe', ",", ["Smith, John", "Doe"]),  # the separator inside quotes
        ("retail, ag-exempt", ",", ["retail", "ag-exempt"]),  # Shopify's tags: each item trimmed
        ("vip| newsletter ||", "|", ["vip", "newsletter"]),  # empty items dropped
        ('"x|y"|z', "|", ["x|y", "z"]),
        ("a ; b", " ; ", ["a", "b"]),  # a separator with spaces around it
        ("a||b||", "||", ["a", "b"]),  # a separator of several characters splits plainly
        ('5" screen,case', ",", ['5" screen', "case"]),  # a quote inside an unquoted item stays
        ("one\ntwo", ",", ["one", "two"]),  # one per line
        ('"unclosed', ",", ["unclosed"]),
        ("", ",", []),
    ],
)
def test_split_items(cell, separator, items):
    assert split_items(cell, separator) == items


def test_tags_and_list_attributes_from_quoted_cells():
    mapping = compile_({"tags": {"to": "tags", "split": ","}, "sports": {"to": "attributes.sports", "split": ","}})
    data = mapping.apply({"mail": "a@example.com", "tags": '"Customer","VIP Club"', "sports": '"run", "yoga"'})
    assert data.tags == ["Customer", "VIP Club"] and data.attributes == {"sports": ["run", "yoga"]}


def test_type_list_reads_a_json_array():
    mapping = compile_({"tags": {"to": "tags", "type": "list"}, "nums": {"to": "attributes.nums", "type": "list"}})
    data = mapping.apply({"mail": "a@example.com", "tags": '["a, b", "c \\"d\\""]', "nums": "[1, 2.5, true]"})
    assert data.tags == ["a, b", 'c "d"'] and data.attributes == {"nums": [1, 2.5, True]}
    assert mapping.apply({"mail": "a@example.com", "nums": ["x", "y"]}).attributes == {"nums": ["x", "y"]}  # JSON
    for bad in ("a, b", '{"a": 1}', "[[1]]"):
        with pytest.raises(RowInvalid) as refused:
            mapping.apply({"mail": "a@example.com", "nums": bad})
        assert (refused.value.code, refused.value.field) == ("import.type", "attributes.nums")


def test_split_and_type_list_together_are_refused():
    with pytest.raises(MappingInvalid) as refused:
        compile_({"t": {"to": "tags", "split": ",", "type": "list"}})
    assert refused.value.field == "mapping.columns.t"


def test_the_apostrophe_of_a_spreadsheet_safe_cell():
    mapping = compile_(
        {
            "phone": {"to": "phone", "transform": ["apostrophe"]},
            "zip": {"to": "zipCode", "transform": ["trim", "apostrophe"]},
            "note": {"to": "attributes.note", "transform": ["apostrophe"]},
            "points": {"to": "attributes.points", "transform": ["apostrophe"], "type": "number"},
        }
    )
    data = mapping.apply(
        {"mail": "a@example.com", "phone": "'+48601234567", "zip": " '02134", "note": "'Tis", "points": "'-5"}
    )
    assert data.identifiers["phone"] == "+48601234567" and data.fields["zip_code"] == "02134"
    assert data.attributes == {"note": "'Tis", "points": -5}  # only before a formula character or a digit


def test_numbers_in_text_targets_give_their_digits():
    mapping = compile_(
        {
            "phone": {"to": "phone"},
            "zip": {"to": "zipCode"},
            "no": {"to": "customId"},
            "code": {"to": "attributes.code", "type": "string"},
        }
    )
    data = mapping.apply({"mail": "a@example.com", "phone": 48601234567.0, "zip": 2134, "no": 10042.0, "code": 7.0})
    assert data.identifiers == {"email": "a@example.com", "phone": "48601234567", "customId": "10042"}
    assert data.fields == {"zip_code": "2134"} and data.attributes == {"code": "7"}


def test_date_cells_and_serial_dates():
    mapping = compile_(
        {
            "born": {"to": "birthDate"},
            "joined": {"to": "attributes.joined", "type": "date"},
            "seen": {"to": "attributes.seen", "type": "datetime"},
            "at": {"to": "attributes.at"},
            "since": {"to": "attributes.since", "dateFormat": "%d.%m.%Y"},
            "nl": {"to": "agreements.email", "type": "boolean"},
        },
        consentTime="when",
    )
    data = mapping.apply(
        {
            "mail": "a@example.com",
            "born": 32874,  # an Excel serial date
            "joined": datetime(2021, 3, 4, 0, 0),
            "seen": 45000.5,
            "at": date(2022, 2, 2),
            "since": 45000,
            "nl": True,
            "when": datetime(2024, 1, 2, 3, 4, 5),
        }
    )
    assert data.fields == {"birth_date": date(1990, 1, 1)}
    assert data.attributes == {
        "joined": "2021-03-04",
        "seen": "2023-03-15T12:00:00+00:00",
        "at": "2022-02-02",
        "since": "2023-03-15",
    }
    assert data.agreements_decided_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(RowInvalid) as refused:
        mapping.apply({"mail": "a@example.com", "born": 0})
    assert (refused.value.code, refused.value.field) == ("import.date", "birthDate")


def test_excel_serial_dates():
    assert excel_serial(1) == datetime(1900, 1, 1)
    assert excel_serial(59) == datetime(1900, 2, 28)
    assert excel_serial(61) == datetime(1900, 3, 1)  # after Excel's 29 February 1900 that never was
    assert excel_serial(45000.25) == datetime(2023, 3, 15, 6)
    for bad in (0, -1, 2958466, float("nan"), True):
        with pytest.raises(ValueError):
            excel_serial(bad)


def test_sheet_is_a_name():
    assert compile_({}, sheet="Customers").sheet == "Customers"
    with pytest.raises(MappingInvalid) as refused:
        compile_({}, sheet=3)
    assert refused.value.field == "mapping.sheet"
