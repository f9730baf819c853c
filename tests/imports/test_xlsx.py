"""XLSX imports: openpyxl's read-only mode, the first sheet or a named one, dates as dates, Excel serial dates where a
mapping says date, identifiers kept as their digits (leading zeros of text cells, no ".0" on numbers)."""

import csv
import io
import zipfile
from datetime import UTC, date, datetime

import pytest
from openpyxl import Workbook

from consents.models import ConsentState
from imports import readers
from imports.mapping import MappingInvalid
from imports.readers import FileUnusable, SpilledStrings, format_guess, read_xlsx, xlsx_header
from imports.services import ImportRefused, import_create, import_detect, import_report_csv, import_run
from profiles.models import Profile

from .excel_files import excel_workbook

HEADER = [
    "E-mail", "Postcode", "Phone", "Customer no", "Born", "Joined", "Last order", "Consent at", "Points", "Member",
]  # fmt: skip


def workbook(rows, *, header=HEADER, first_sheet=None) -> bytes:
    book = Workbook()
    sheet = book.active
    if first_sheet is not None:
        sheet.title = first_sheet
        sheet.append(["not", "this", "sheet"])
        sheet = book.create_sheet("Customers")
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    sheet["F2"].number_format = "DD.MM.YYYY"  # a date cell, shown the European way
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


ROWS = [
    # postcode as text (leading zero), phone as a number, Born as an Excel serial number in a General cell
    ["ann@example.com", "02134", 48601234567, 10042, 32874, date(2021, 3, 4), datetime(2024, 5, 6, 7, 8, 9),
     datetime(2024, 1, 2, 3, 4, 5), 12, True],
    [None] * 10,  # a blank row: skipped, the line numbers stay the sheet's
    ["bob@example.com", 2134, 4.8602345678e10, 10043.0, 29000, date(2020, 1, 1), None, None, 3.5, False],
    ["not-an-email", "00001", None, None, 30000, None, None, None, None, None],
]  # fmt: skip

MAPPING = {
    "columns": {
        "E-mail": {"to": "email"},
        "Postcode": {"to": "zipCode"},
        "Phone": {"to": "phone"},
        "Customer no": {"to": "customId"},
        "Born": {"to": "birthDate"},
        "Joined": {"to": "attributes.joined", "type": "date"},
        "Last order": {"to": "attributes.lastOrder", "type": "datetime"},
        "Points": {"to": "attributes.points", "type": "number"},
        "Member": {"to": "attributes.member"},
    },
    "constants": {"agreements.email": True},
    "consentTime": "Consent at",
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def run(data: bytes, mapping=MAPPING, name="people.xlsx"):
    imp = import_create(file=io.BytesIO(data), name=name, mapping=mapping, source="tests", actor="system")
    return import_run(job_id=imp.pk)


def test_xlsx_import_keeps_identifiers_and_reads_dates(db):
    imp = run(workbook(ROWS))
    assert imp.format == "xlsx" and imp.encoding == "" and imp.delimiter == ""
    assert imp.job.counts["created"] == 2 and imp.job.counts["failed"] == 1
    ann = Profile.objects.get(email="ann@example.com")
    assert ann.zip_code == "02134"  # a text cell keeps its leading zero
    assert ann.phone == "+48601234567" and ann.custom_id == "10042"  # numbers give their digits, no ".0"
    assert ann.birth_date == date(1990, 1, 1)  # Excel serial 32874
    assert ann.attributes["joined"] == "2021-03-04"  # a date cell
    assert ann.attributes["lastOrder"] == "2024-05-06T07:08:09Z"
    assert ann.attributes["points"] == 12 and ann.attributes["member"] is True
    state = ConsentState.objects.get(profile=ann, agreement__key="email")
    assert state.status == "granted" and state.changed_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    bob = Profile.objects.get(email="bob@example.com")
    assert bob.zip_code == "2134"  # a number cell mapped to a text field: its digits
    assert bob.phone == "+48602345678" and bob.custom_id == "10043"
    assert bob.birth_date == date(1979, 5, 25) and bob.attributes["points"] == 3.5
    (row,) = csv.DictReader(io.StringIO("".join(import_report_csv(imp=imp))))
    assert (row["line"], row["code"]) == ("5", "email.invalid")  # the sheet's row
    assert row["original"] == "not-an-email,00001,,,30000,,,,,"


def test_a_named_sheet_and_a_missing_one(db):
    data = workbook(ROWS[:1], first_sheet="Read me")
    imp = run(data, mapping={**MAPPING, "sheet": "Customers"})
    assert imp.job.counts["created"] == 1
    assert Profile.objects.get(email="ann@example.com").zip_code == "02134"
    with pytest.raises(ImportRefused) as refused:
        import_create(
            file=io.BytesIO(data),
            name="people.xlsx",
            mapping={**MAPPING, "sheet": "Nope"},
            source="tests",
            actor="system",
        )
    assert refused.value.field == "mapping.sheet" and "Read me, Customers" in refused.value.message
    with pytest.raises(MappingInvalid) as invalid:  # the first sheet's header has no E-mail
        import_create(file=io.BytesIO(data), name="people.xlsx", mapping=MAPPING, source="tests", actor="system")
    assert invalid.value.field == "mapping.columns.E-mail"


def test_serial_dates_where_a_mapping_says_date_and_not_elsewhere(db):
    mapping = {
        "columns": {
            "E-mail": {"to": "email"},
            "Born": {"to": "attributes.born", "dateFormat": "%d.%m.%Y"},
            "Points": {"to": "attributes.points"},
        }
    }
    rows = [["ann@example.com", None, None, None, 45000, None, None, None, 45000, None]]
    run(workbook(rows), mapping=mapping)
    ann = Profile.objects.get(email="ann@example.com")
    assert ann.attributes == {"born": "2023-03-15", "points": 45000}  # a date where it says so, a number elsewhere


def test_a_serial_out_of_range_fails_its_line(db):
    rows = [["ann@example.com", None, None, None, 99999999, None, None, None, None, None]]
    imp = run(workbook(rows))
    (row,) = csv.DictReader(io.StringIO("".join(import_report_csv(imp=imp))))
    assert (row["code"], row["field"]) == ("import.date", "birthDate")


def test_reader_streams_rows_with_their_sheet_row_numbers():
    data = workbook(ROWS)
    assert xlsx_header(io.BytesIO(data)) == HEADER
    records = list(read_xlsx(io.BytesIO(data)))
    assert [r.line for r in records] == [2, 4, 5]
    assert records[0].data["Postcode"] == "02134" and records[0].data["Phone"] == 48601234567
    assert records[0].data["Joined"] == date(2021, 3, 4)  # a date cell at midnight is a date
    assert records[1].data["Phone"] == 48602345678 and isinstance(records[1].data["Customer no"], int)
    assert "Last order" not in records[1].data  # an empty cell is no value


def test_format_from_the_name_or_the_zip_signature():
    data = workbook(ROWS)
    assert format_guess("people.XLSX", data[:4096]) == "xlsx"
    assert format_guess("upload", data[:4096]) == "xlsx"
    with pytest.raises(FileUnusable, match="not an XLSX workbook"):
        xlsx_header(io.BytesIO(b"E-mail\nann@example.com\n"))


def test_detection_of_an_xlsx_export(db):
    header = ["Record ID", "First Name", "Last Name", "Email", "Create Date", "Postal Code"]
    book = Workbook()
    book.active.append(header)
    book.active.append([1001, "Casey", "Example", "casey@example.com", datetime(2020, 1, 10, 10, 0), "00-950"])
    out = io.BytesIO()
    book.save(out)
    detected = import_detect(file=io.BytesIO(out.getvalue()), name="hubspot-crm-exports-contacts.xlsx")
    assert detected["format"] == "xlsx" and detected["encoding"] is None and detected["delimiter"] is None
    assert detected["preset"] == "hubspot" and detected["header"] == header
    assert detected["rows"] == [
        {
            "Record ID": 1001,
            "First Name": "Casey",
            "Last Name": "Example",
            "Email": "casey@example.com",
            "Create Date": "2020-01-10T10:00:00",
            "Postal Code": "00-950",
        }
    ]
    # the spreadsheet's own date cells need no format
    assert detected["mapping"]["columns"]["Create Date"] == {"to": "attributes.hubspotCreateDate", "type": "datetime"}
    imp = run(out.getvalue(), mapping=detected["mapping"], name="contacts.xlsx")
    casey = Profile.objects.get(email="casey@example.com")
    assert imp.job.counts["created"] == 1
    assert casey.attributes["hubspotRecordId"] == "1001" and casey.zip_code == "00-950"
    assert casey.attributes["hubspotCreateDate"] == "2020-01-10T10:00:00Z"


def test_the_shared_strings_are_spilled_to_disk_and_read_back(monkeypatch):
    monkeypatch.setattr(readers, "STRINGS_IN_MEMORY_BYTES", 0)  # the path of a table of many MiB
    rows = [["E-mail", "Name", "Joined", "Member"]]
    rows += [[f"p{i}@example.com", f"Zażółć <{i}> & co", date(2020, 1, 1), i % 2 == 0] for i in range(6000)]
    data = excel_workbook({"People": rows})  # as Excel writes it: the texts in the shared-strings table
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        strings = SpilledStrings(archive.open("xl/sharedStrings.xml"))
        try:
            assert strings[0] == "E-mail" and strings.count < 100  # read only as far as asked
            assert strings[12003] == "Zażółć <5999> & co" and strings[1] == "Name"  # more than the cache holds
            assert len(strings) == 12004
            with pytest.raises(IndexError):
                strings[12004]
        finally:
            strings.close()
    workbook, _ = readers._worksheet(io.BytesIO(data), "")
    assert isinstance(workbook.spilled_strings, SpilledStrings)
    readers._workbook_close(workbook)
    records = list(read_xlsx(io.BytesIO(data)))
    assert len(records) == 6000 and records[-1].line == 6001
    assert records[0].data == {
        "E-mail": "p0@example.com",
        "Name": "Zażółć <0> & co",
        "Joined": date(2020, 1, 1),
        "Member": True,
    }
    assert records[-1].data["E-mail"] == "p5999@example.com" and records[-1].data["Member"] is False


def test_an_excel_written_workbook_imports(db):
    rows = [
        ["E-mail", "Postcode", "Born", "Tags"],
        ["ann@example.com", "02134", date(1990, 1, 1), '"Gold club", vip'],
        ["bob@example.com", "00950", 29000, "vip"],  # a serial in a General cell
    ]
    mapping = {
        "columns": {
            "E-mail": {"to": "email"},
            "Postcode": {"to": "zipCode"},
            "Born": {"to": "birthDate"},
            "Tags": {"to": "tags", "split": ","},
        },
        "sheet": "Klienci",
    }
    imp = run(excel_workbook({"Arkusz1": [["x"]], "Klienci": rows}), mapping=mapping)
    assert imp.job.counts["created"] == 2
    ann = Profile.objects.get(email="ann@example.com")
    assert (ann.zip_code, ann.birth_date) == ("02134", date(1990, 1, 1))
    assert sorted(t.name for t in ann.tags.all()) == ["Gold club", "vip"]
    assert Profile.objects.get(email="bob@example.com").birth_date == date(1979, 5, 25)
