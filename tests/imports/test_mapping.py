"""The mapping: every target and transformation, and what is refused before a run."""

from datetime import UTC, date, datetime

import pytest

from imports.mapping import MappingInvalid, RowInvalid, mapping_compile

AGREEMENTS = {"email", "sms"}


def compile_(columns, **extra):
    return mapping_compile({"columns": columns, **extra}, agreements=AGREEMENTS)


def test_every_transform_and_target():
    mapping = compile_(
        {
            "mail": {"to": "email", "transform": ["trim", "lower"]},
            "first": {"to": "firstName", "transform": ["trim", "title"]},
            "last": {"to": "lastName", "transform": "upper"},
            "born": {"to": "birthDate", "dateFormat": "%d.%m.%Y"},
            "nl": {"to": "agreements.email", "map": {"Y": True, "N": False}},
            "sms": {"to": "agreements.sms", "type": "boolean"},
            "groups": {"to": "tags", "split": "|"},
            "points": {"to": "attributes.points", "type": "number"},
            "visits": {"to": "attributes.visits", "type": "integer", "default": 0},
            "vip": {"to": "attributes.vip", "type": "boolean"},
            "since": {"to": "attributes.since", "dateFormat": "%Y/%m/%d"},
            "seen": {"to": "attributes.seen", "type": "datetime"},
            "joined": {"to": "attributes.joined", "type": "date"},
            "code": {"to": "customId", "type": "string"},
            "tier": {"to": "attributes.tier", "map": {"G": "gold", "S": "silver"}},
            "junk": {"skip": True},
        },
        constants={"attributes.source": "crm-2026", "tags": ["imported"]},
    )
    data = mapping.apply(
        {
            "mail": "  Ann@Example.COM ",
            "first": "  ann marie ",
            "last": "smith",
            "born": "01.02.1990",
            "nl": "Y",
            "sms": "no",
            "groups": "vip| newsletter ||",
            "points": "12,5",
            "visits": "",
            "vip": "yes",
            "since": "2020/05/06",
            "seen": "2024-01-02T03:04:05",
            "joined": "2023-07-08",
            "code": 1234,
            "tier": "G",
            "junk": "x",
        }
    )
    assert data.identifiers == {"email": "ann@example.com", "customId": "1234"}
    assert data.fields == {"first_name": "Ann Marie", "last_name": "SMITH", "birth_date": date(1990, 2, 1)}
    assert data.agreements == {"email": True, "sms": False}
    assert data.tags == ["imported", "vip", "newsletter"]
    assert data.attributes == {
        "source": "crm-2026",
        "points": 12.5,
        "visits": 0,
        "vip": True,
        "since": "2020-05-06",
        "seen": "2024-01-02T03:04:05+00:00",
        "joined": "2023-07-08",
        "tier": "gold",
    }


def test_dotted_paths_and_consent_time():
    mapping = compile_(
        {"contact.email": {"to": "email"}, "consents.0.granted": {"to": "agreements.email"}},
        consentTime={"column": "consents.0.at", "dateFormat": "%Y-%m-%d %H:%M"},
    )
    data = mapping.apply(
        {"contact": {"email": "a@example.com"}, "consents": [{"granted": True, "at": "2024-05-01 10:00"}]}
    )
    assert data.identifiers == {"email": "a@example.com"}
    assert data.agreements == {"email": True}
    assert data.agreements_decided_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_empty_cells_are_not_sent():
    mapping = compile_({"mail": {"to": "email"}, "city": {"to": "city"}})
    data = mapping.apply({"mail": "a@example.com", "city": "  "})
    assert "city" not in data.fields


@pytest.mark.parametrize(
    ("columns", "extra", "field"),
    [
        ({"a": {"to": "nickname"}}, {}, "mapping.columns.a.to"),
        ({"a": {"to": "email"}, "b": {"to": "agreements.unknown"}}, {}, "mapping.columns.b.to"),
        ({"a": {"to": "firstName"}}, {}, "mapping.columns"),  # no identifier
        ({"a": {"to": "email", "transform": ["reverse"]}}, {}, "mapping.columns.a.transform"),
        ({"a": {"to": "email"}, "b": {"to": "firstName", "type": "number"}}, {}, "mapping.columns.b.type"),
        ({"a": {"to": "email"}, "b": {"to": "city", "split": ","}}, {}, "mapping.columns.b"),
        ({"a": {"to": "email"}, "b": {"to": "city", "dateFormat": "%d.%m.%Y"}}, {}, "mapping.columns.b"),
        (
            {"a": {"to": "email"}, "b": {"to": "birthDate", "dateFormat": "dd.mm.yyyy"}},
            {},
            "mapping.columns.b.dateFormat",
        ),
        ({"a": {"to": "email", "colour": "red"}}, {}, "mapping.columns.a"),
        ({"a": {"to": "email"}}, {"consentTime": "when"}, "mapping.consentTime"),
        ({"a": {"to": "email"}}, {"extra": 1}, "mapping.extra"),
        ({"a": {"to": "email"}, "b": {"to": "agreements.email", "type": "number"}}, {}, "mapping.columns.b.type"),
    ],
)
def test_refused_before_the_run_naming_the_part(columns, extra, field):
    with pytest.raises(MappingInvalid) as caught:
        compile_(columns, **extra)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("spec", "value", "code"),
    [
        ({"to": "attributes.n", "type": "number"}, "twelve", "import.type"),
        ({"to": "attributes.n", "type": "integer"}, "1.5", "import.type"),
        ({"to": "birthDate", "dateFormat": "%d.%m.%Y"}, "1990-02-01", "import.date"),
        ({"to": "agreements.email"}, "maybe", "import.type"),
        ({"to": "birthDate"}, "01/02/1990", "import.date"),
    ],
)
def test_values_that_do_not_convert_fail_the_line(spec, value, code):
    mapping = compile_({"mail": {"to": "email"}, "v": spec})
    with pytest.raises(RowInvalid) as caught:
        mapping.apply({"mail": "a@example.com", "v": value})
    assert caught.value.code == code
    assert caught.value.field == spec["to"]
