"""The readers stream each format into records with line numbers and the record's own text."""

import io

import pytest

from imports.readers import FileUnusable, detect_csv, read_csv, read_json, read_jsonl, read_xml


def records(reader, data: bytes, **kwargs):
    return list(reader(io.BufferedReader(io.BytesIO(data)), **kwargs))


def test_csv_windows_1250_with_semicolons_is_detected():
    text = "E-mail;Imię;Miasto\nzofia@example.com;Zofia Żółć;Łódź\njan@example.com;Jan Gęśla;Kraków\n"
    data = text.encode("cp1250")
    detected = detect_csv(io.BytesIO(data))
    assert detected.delimiter == ";"
    assert detected.header == ["E-mail", "Imię", "Miasto"]
    rows = records(read_csv, data)
    assert [r.data["Imię"] for r in rows] == ["Zofia Żółć", "Jan Gęśla"]
    assert rows[0].data["Miasto"] == "Łódź"
    assert [r.line for r in rows] == [2, 3]


def test_csv_utf8_bom_is_not_part_of_the_first_column():
    data = "\ufeffE-mail,Name\nann@example.com,Ann\n".encode()
    detected = detect_csv(io.BytesIO(data))
    assert detected.encoding == "utf-8-sig"
    assert detected.header == ["E-mail", "Name"]
    (row,) = records(read_csv, data)
    assert row.data == {"E-mail": "ann@example.com", "Name": "Ann"}


def test_csv_quoted_newlines_keep_the_record_and_its_starting_line():
    data = b'email,note\na@example.com,"two\nlines"\nb@example.com,plain\n'
    rows = records(read_csv, data)
    assert rows[0].data["note"] == "two\nlines"
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].original == 'a@example.com,"two\nlines"'


def test_csv_without_header_is_refused():
    with pytest.raises(FileUnusable):
        detect_csv(io.BytesIO(b""))


def test_jsonl_lines_and_bad_lines():
    data = b'{"email": "a@example.com"}\n\nnot json\n[1]\n{"email": "b@example.com"}\n'
    rows = records(read_jsonl, data)
    assert [r.line for r in rows] == [1, 3, 4, 5]
    assert "\0error" in rows[1].data and "\0error" in rows[2].data
    assert rows[3].original == '{"email": "b@example.com"}'


def test_json_array_is_streamed_by_position():
    data = b'[{"email": "a@example.com", "n": {"x": 1.5}}, 7, {"email": "b@example.com"}]'
    rows = records(read_json, data)
    assert [r.line for r in rows] == [1, 2, 3]
    assert rows[0].data["n"]["x"] == 1.5
    assert "\0error" in rows[1].data


def test_json_that_is_not_an_array_is_refused():
    with pytest.raises(FileUnusable):
        records(read_json, b'{"email": "a@example.com"}')


def test_xml_records_by_element_name():
    data = (
        b"<?xml version='1.0'?><customers><customer id='7'><email>a@example.com</email>"
        b"<name><first>Ann</first></name></customer><other/><customer><email>b@example.com</email></customer>"
        b"</customers>"
    )
    rows = records(read_xml, data, record="customer")
    assert [r.line for r in rows] == [1, 2]
    assert rows[0].data == {"@id": "7", "email": "a@example.com", "name": {"first": "Ann"}}
    assert rows[1].original == "<customer><email>b@example.com</email></customer>"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<customers><customer><email>&lol9;</email></customer></customers>"""


def test_xml_billion_laughs_is_refused():
    with pytest.raises(FileUnusable, match="entit"):
        records(read_xml, BILLION_LAUGHS, record="customer")


def test_xml_external_entity_is_refused():
    data = (
        b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<customers><customer><email>&x;</email></customer></customers>"
    )
    with pytest.raises(FileUnusable):
        records(read_xml, data, record="customer")
