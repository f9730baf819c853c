"""Readers: one per format, each a generator of ``Record(line, data, original)`` that streams its file.

``line`` is the line number for CSV (where the record starts; quoted newlines span lines), JSONL and XLSX (the
sheet's row), and the record's position (1-based) for a JSON array and XML. ``original`` is the record's own text,
for the report. Nothing reads a whole file: CSV and JSONL go line by line, a JSON array through ijson, XML through
defusedxml's ``iterparse`` (which refuses entity declarations, so no entity expansion and no external entities),
XLSX through openpyxl's read-only mode (the sheet's rows streamed); the workbook's table of shared strings (every
distinct text of the file, which any cell may name by its number), when larger than a few MiB, is written to a
temporary file as it is read and looked up there, so memory stays flat however many distinct texts the file holds.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import IO, Any
from xml.etree.ElementTree import ParseError, tostring

import charset_normalizer
import ijson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from openpyxl.reader.excel import SHARED_STRINGS, ExcelReader
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
csv.field_size_limit(16 * 1024 * 1024)


class FileUnusable(Exception):
    """The file cannot be read as the format says (the whole import stops; the reason is its message)."""


class SheetMissing(FileUnusable):
    """The XLSX workbook has no sheet of the name asked for."""


@dataclass(slots=True)
class Record:
    line: int
    data: dict[str, Any]
    original: str


class CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (the progress of a streaming parser)."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # an XLSX file is a ZIP archive, read from its end
        return self.raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


@dataclass
class Detected:
    encoding: str
    delimiter: str
    header: list[str]


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:  # a character cut by the end of the sample
            return "utf-8"
    matches = list(charset_normalizer.from_bytes(sample))
    if not matches:
        raise FileUnusable("The file's encoding could not be detected; give it (e.g. cp1250, utf-8).")
    # On short samples charset-normalizer often ranks a Western single-byte code page first for Central European
    # text (cp1252 for cp1250: "¿ó³æ" for "żółć"). Among the near-best candidates, take the one whose non-ASCII
    # characters are most often letters; ties keep charset-normalizer's order.
    near = [m for m in matches if m.chaos <= matches[0].chaos + 0.15]
    return max(near, key=lambda m: _letter_share(sample, m.encoding)).encoding


def _letter_share(sample: bytes, encoding: str) -> float:
    text = sample.decode(encoding, errors="replace")
    extra = [c for c in text if ord(c) > 127]
    return sum(c.isalpha() for c in extra) / len(extra) if extra else 0.0


def detect_csv(raw: IO[bytes], *, encoding: str = "", delimiter: str = "") -> Detected:
    """Encoding (BOM, UTF-8, else charset-normalizer), delimiter (csv.Sniffer) and header of a CSV file."""
    sample = raw.read(SAMPLE_BYTES)
    raw.seek(0)
    encoding = encoding or detect_encoding(sample)
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FileUnusable(f"Unknown encoding {encoding!r}.") from None
    text = sample.decode(encoding, errors="ignore")
    if not delimiter:
        lines = text.splitlines()
        head = "\n".join(lines[:50] if len(lines) > 1 else lines)
        try:
            delimiter = csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, [])
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    if not header or not any(h.strip() for h in header):
        raise FileUnusable("The CSV file has no header line.")
    return Detected(encoding=encoding, delimiter=delimiter, header=[h.strip() for h in header])


def read_csv(raw: IO[bytes], *, encoding: str = "", delimiter: str = "", **_) -> Iterator[Record]:
    """CSV records; give the encoding and delimiter (from ``detect_csv``) when the stream cannot seek."""
    if encoding and delimiter:
        detected = Detected(encoding=encoding, delimiter=delimiter, header=[])
    else:
        detected = detect_csv(raw, encoding=encoding, delimiter=delimiter)
    if not hasattr(raw, "read1"):
        raw = io.BufferedReader(raw)
    text = io.TextIOWrapper(raw, encoding=detected.encoding, errors="strict", newline="")
    reader = csv.reader(text, delimiter=detected.delimiter)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=detected.delimiter, lineterminator="")
    try:
        header = next(reader)
        header = [h.strip().removeprefix("\ufeff") for h in header]
        width = len(header)
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            out.seek(0)
            out.truncate()
            writer.writerow(row)
            if len(row) > width:
                data = dict(zip(header, row, strict=False))
                data["\0extra"] = row[width:]
            else:
                data = dict(zip(header, row, strict=False))
            yield Record(line, data, out.getvalue())
    except UnicodeDecodeError as exc:
        raise FileUnusable(
            f"The file is not valid {detected.encoding} near line {reader.line_num + 1}: {exc.reason}."
        ) from None
    except csv.Error as exc:
        raise FileUnusable(f"CSV error at line {reader.line_num}: {exc}.") from None
    finally:
        text.detach()


def read_jsonl(raw: IO[bytes], **_) -> Iterator[Record]:
    for number, bline in enumerate(raw, start=1):
        if not bline.strip():
            continue
        try:
            text = bline.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            text = bline.decode("utf-8", errors="replace").rstrip("\r\n")
            yield Record(number, {"\0error": f"not valid UTF-8 (byte {exc.start + 1})"}, text)
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            yield Record(number, {"\0error": f"not valid JSON: {exc}"}, text)
            continue
        if not isinstance(data, dict):
            yield Record(number, {"\0error": "a line must hold one JSON object"}, text)
            continue
        yield Record(number, data, text)


def _array_events(raw: IO[bytes]):
    events = ijson.parse(raw, use_float=True)
    first = next(events, None)
    if first is None or first[1] != "start_array":
        raise FileUnusable("The file must be a JSON array of objects ([{...}, {...}]).")
    yield first
    yield from events


def read_json(raw: IO[bytes], **_) -> Iterator[Record]:
    position = 0
    try:
        for item in ijson.items(_array_events(raw), "item"):
            position += 1
            original = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            if not isinstance(item, dict):
                yield Record(position, {"\0error": "each element of the array must be a JSON object"}, original)
                continue
            yield Record(position, item, original)
    except ijson.JSONError as exc:
        raise FileUnusable(f"The file is not a JSON array of objects (after record {position}): {exc}.") from None


def _element_dict(element) -> dict[str, Any]:
    data: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
    for child in element:
        value: Any = _element_dict(child) if len(child) or child.attrib else (child.text or "").strip()
        if child.tag in data:
            if not isinstance(data[child.tag], list):
                data[child.tag] = [data[child.tag]]
            data[child.tag].append(value)
        else:
            data[child.tag] = value
    if not len(element) and element.text and element.text.strip():
        data["#text"] = element.text.strip()
    return data


def read_xml(raw: IO[bytes], *, record: str = "", **_) -> Iterator[Record]:

    if not record:
        raise FileUnusable('An XML import needs the mapping\'s "record": the element that holds one profile.')
    position = 0
    root = None
    depth = 0
    try:
        for event, element in iterparse(raw, events=("start", "end"), forbid_dtd=False):
            if event == "start":
                if root is None:
                    root = element
                if element.tag == record:
                    depth += 1
                continue
            if element.tag != record:
                continue
            depth -= 1
            if depth:
                continue  # a nested element of the same name: part of its record
            position += 1
            yield Record(position, _element_dict(element), tostring(element, encoding="unicode").strip())
            element.clear()
            if root is not None:
                root.clear()  # drop the records already read: memory stays flat
    except DefusedXmlException as exc:
        raise FileUnusable(f"The XML file was refused: {exc} (entity declarations are not allowed).") from None
    except ParseError as exc:
        raise FileUnusable(f"The XML file is not well-formed (after record {position}): {exc}.") from None


# --- XLSX ---------------------------------------------------------------------------------------------------------

ZIP_MAGIC = b"PK\x03\x04"
# What a damaged sheet raises while its rows are read (a bad archive member, XML, cell or string reference).
XLSX_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ParseError,
    DefusedXmlException,
    KeyError,
    ValueError,
    IndexError,
    TypeError,
)


_SHARED_STRING = f"{{{SHEET_MAIN_NS}}}si"
_TEXT = f"{{{SHEET_MAIN_NS}}}t"
_RUN = f"{{{SHEET_MAIN_NS}}}r"


def _shared_text(element) -> str:
    """The text of a shared string: its ``t``, or the ``t`` of each of its rich-text runs (phonetic hints left out),
    as openpyxl's ``Text.content`` gives it, without building its objects."""
    parts = []
    for child in element:
        if child.tag == _TEXT:
            parts.append(child.text or "")
        elif child.tag == _RUN:
            parts.extend(t.text or "" for t in child if t.tag == _TEXT)
    return "".join(parts)


_ENTRY = struct.Struct("<QI")  # where a string starts in the data file, and its length in bytes


class SpilledStrings:
    """A workbook's shared strings in two temporary files (the UTF-8 texts, and a fixed-size entry per string),
    looked up by number with ``pread``: the table is read as a stream, only as far as the cells read so far need
    (the header row needs its first entries), and never held in memory."""

    def __init__(self, source: IO[bytes]):
        # The files and the source are closed by close(), when the workbook is.
        self._source = source
        self._data = tempfile.TemporaryFile(prefix="xlsx-strings-")  # noqa: SIM115
        self._entries = tempfile.TemporaryFile(prefix="xlsx-entries-")  # noqa: SIM115
        self._events = iterparse(source, events=("start", "end"), forbid_dtd=False)
        self._root = None
        self._offset = 0
        self._complete = False
        self.count = 0
        self.lookup = lru_cache(maxsize=4096)(self._read)  # texts that repeat (tags, countries) read once

    def _spill(self, index: int) -> None:
        """Read the table on until it holds string ``index`` (or ends)."""
        for event, element in self._events:
            if event == "start":
                if self._root is None:
                    self._root = element
                continue
            if element.tag != _SHARED_STRING:
                continue
            text = _shared_text(element).replace("x005F_", "")  # as openpyxl reads a string
            data = text.encode("utf-8")
            self._entries.write(_ENTRY.pack(self._offset, len(data)))
            self._data.write(data)
            self._offset += len(data)
            self.count += 1
            self._root.clear()  # the strings read so far leave the tree
            if self.count > index:
                break
        else:
            self._complete = True
        self._data.flush()
        self._entries.flush()

    def _read(self, index: int) -> str:
        if index >= self.count and not self._complete:
            self._spill(index)
        if not 0 <= index < self.count:
            raise IndexError(index)
        offset, size = _ENTRY.unpack(os.pread(self._entries.fileno(), _ENTRY.size, index * _ENTRY.size))
        return os.pread(self._data.fileno(), size, offset).decode("utf-8")

    def __getitem__(self, index: int) -> str:
        return self.lookup(index)

    def __len__(self) -> int:
        if not self._complete:
            self._spill(2**63)
        return self.count

    def close(self) -> None:
        self._source.close()
        self._data.close()
        self._entries.close()


# A shared-strings table up to this size (its XML, uncompressed) is read into memory as openpyxl reads it (a few
# MiB at most); a larger one is spilled to disk: memory stays bounded either way, small files stay quick.
STRINGS_IN_MEMORY_BYTES = 4 * 1024 * 1024


_ROW = f"{{{SHEET_MAIN_NS}}}row"
_SHEET_DATA = f"{{{SHEET_MAIN_NS}}}sheetData"


class _RowParser(WorkSheetParser):
    """openpyxl's sheet parser (its cells, dates and strings as it reads them), reading the rows only and dropping
    each row from the tree once read: openpyxl's own loop clears a row but keeps it, so memory grew with the rows."""

    def parse(self):
        data = None
        for event, element in iterparse(self.source, events=("start", "end"), forbid_dtd=False):
            if event == "start":
                if element.tag == _SHEET_DATA:
                    data = element
                continue
            if element.tag == _ROW:
                row = self.parse_row(element)
                if data is not None:
                    data.clear()  # the rows read so far leave the tree
                yield row


class _Sheet(ReadOnlyWorksheet):
    """A read-only worksheet whose rows come from ``_RowParser``, as (row number, values)."""

    def _get_size(self):
        # openpyxl reads the sheet's recorded extent when the workbook is opened, parsing the whole sheet where there
        # is none; the rows are read as they come instead.
        self._min_column = self._min_row = 1
        self._max_column = self._max_row = None

    def numbered_values(self) -> Iterator[tuple[int, list]]:
        workbook = self.parent
        with self._get_source() as source:
            parser = _RowParser(
                source,
                self._shared_strings,
                data_only=True,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            for number, cells in parser.parse():
                row = [None] * max((cell["column"] for cell in cells), default=0)
                for cell in cells:
                    row[cell["column"] - 1] = cell["value"]
                yield number, row


class _StreamingReader(ExcelReader):
    """openpyxl's reader in read-only mode, with a large table of shared strings spilled to disk instead of a list
    in memory, and worksheets whose rows are read by ``_RowParser``."""

    def read_worksheets(self):
        for sheet, rel in self.parser.find_sheets():
            if rel.target not in self.valid_files or "chartsheet" in rel.Type:
                continue
            worksheet = _Sheet(self.wb, sheet.name, rel.target, self.shared_strings)
            worksheet.sheet_state = sheet.state
            self.wb._sheets.append(worksheet)

    def read_strings(self):
        part = self.package.find(SHARED_STRINGS)
        if part is None:
            return
        name = part.PartName[1:]
        if self.archive.getinfo(name).file_size <= STRINGS_IN_MEMORY_BYTES:
            super().read_strings()
            return
        self.shared_strings = SpilledStrings(self.archive.open(name))  # read as the cells need it; closed with it


def _worksheet(raw: IO[bytes], sheet: str):
    """The workbook (read-only: rows are streamed) and its worksheet named ``sheet``, or the first."""
    reader = None
    try:
        reader = _StreamingReader(raw, read_only=True, data_only=True)
        reader.read()
    except Exception as exc:
        _strings_close(reader)
        raise FileUnusable(f"The file is not an XLSX workbook: {exc}.") from None
    workbook = reader.wb
    workbook.spilled_strings = reader.shared_strings
    if sheet:
        if sheet not in workbook.sheetnames:
            _workbook_close(workbook)
            raise SheetMissing(f"The workbook has no sheet {sheet!r} (its sheets: {', '.join(workbook.sheetnames)}).")
        worksheet = workbook[sheet]
    elif workbook.worksheets:
        worksheet = workbook.worksheets[0]
    else:
        _workbook_close(workbook)
        raise FileUnusable("The workbook has no worksheet.")
    return workbook, worksheet


def _strings_close(reader) -> None:
    strings = getattr(reader, "shared_strings", None)
    if isinstance(strings, SpilledStrings):
        strings.close()


def _workbook_close(workbook) -> None:
    strings = getattr(workbook, "spilled_strings", None)
    if isinstance(strings, SpilledStrings):
        strings.close()
    workbook.close()


def _xlsx_value(value: Any) -> Any:
    """A cell's value as the mapping takes it: text as written (leading zeros kept), whole numbers as int (never
    ``48123456789.0``), a date cell at midnight as a date, other date cells as date-times, booleans as booleans."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, datetime) and value.time() == time() and value.tzinfo is None:
        return value.date()
    if isinstance(value, timedelta):
        return str(value)
    return value


def _xlsx_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value.isoformat() if isinstance(value, date | time) else str(value)


def _xlsx_rows(worksheet) -> Iterator[tuple[int, list]]:
    """(the sheet's row number, the values); a blank row of the sheet is not in its file and does not come."""
    for number, row in worksheet.numbered_values():
        yield number, [_xlsx_value(value) for value in row]


def _xlsx_header(row: list) -> list[str]:
    header = [_xlsx_text(value).strip() for value in row]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise FileUnusable("The sheet's first row (the header) is empty.")
    return header


def xlsx_header(raw: IO[bytes], *, sheet: str = "") -> list[str]:
    """The column names: the first row of the sheet named ``sheet``, or of the first sheet."""
    workbook, worksheet = _worksheet(raw, sheet)
    rows = _xlsx_rows(worksheet)
    try:
        first = next(rows, None)
        if first is None:
            raise FileUnusable("The sheet is empty (no header row).")
        return _xlsx_header(first[1])
    except XLSX_ERRORS as exc:
        raise FileUnusable(f"The XLSX file's header row cannot be read: {exc}.") from None
    finally:
        rows.close()
        _workbook_close(workbook)
        raw.seek(0)


def read_xlsx(raw: IO[bytes], *, sheet: str = "", **_) -> Iterator[Record]:
    """The rows of an XLSX sheet after its header row, streamed (openpyxl's read-only mode)."""
    workbook, worksheet = _worksheet(raw, sheet)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="")
    number = 1
    rows = _xlsx_rows(worksheet)
    try:
        first = next(rows, None)
        if first is None:
            raise FileUnusable("The sheet is empty (no header row).")
        header = _xlsx_header(first[1])
        width = len(header)
        for number, row in rows:
            if all(value is None or (isinstance(value, str) and not value.strip()) for value in row):
                continue  # a blank row
            if len(row) < width:
                row += [None] * (width - len(row))  # a row's empty cells at its end are not in the file
            out.seek(0)
            out.truncate()
            writer.writerow([_xlsx_text(value) for value in row])
            data = {name: value for name, value in zip(header, row, strict=False) if value is not None}
            if any(value is not None for value in row[width:]):
                data["\0extra"] = row[width:]
            yield Record(number, data, out.getvalue())
    except XLSX_ERRORS as exc:
        raise FileUnusable(f"The XLSX file cannot be read near row {number}: {exc}.") from None
    finally:
        rows.close()
        _workbook_close(workbook)


READERS = {"csv": read_csv, "json": read_json, "jsonl": read_jsonl, "xml": read_xml, "xlsx": read_xlsx}


def format_guess(name: str, head: bytes) -> str:
    """The format from the file name, else from the first bytes (a ZIP archive is taken for an XLSX workbook)."""
    lowered = name.lower()
    for ext, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".xml", "xml"),
        (".csv", "csv"),
        (".xlsx", "xlsx"),
    ):
        if lowered.endswith(ext):
            return fmt
    if head.startswith(ZIP_MAGIC):
        return "xlsx"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    if stripped.startswith(b"<"):
        return "xml"
    return "csv"


def preview(
    raw: IO[bytes],
    fmt: str,
    *,
    record: str = "",
    encoding: str = "",
    delimiter: str = "",
    sheet: str = "",
    rows: int = 5,
):
    """What the wizard shows: the detected encoding and delimiter (CSV), the columns, and the first records."""
    detected = detect_csv(raw, encoding=encoding, delimiter=delimiter) if fmt == "csv" else None
    header = xlsx_header(raw, sheet=sheet) if fmt == "xlsx" else None
    raw.seek(0)
    records = []
    reader = READERS[fmt](raw, record=record, encoding=encoding, delimiter=delimiter, sheet=sheet)
    try:
        for rec in reader:
            records.append(rec)
            if len(records) >= rows:
                break
    finally:
        reader.close()
    if detected:
        columns = detected.header
    elif header is not None:
        columns = header
    else:
        columns = []
        for rec in records:
            for path in _paths(rec.data):
                if path not in columns:
                    columns.append(path)
    return {
        "encoding": detected.encoding if detected else "utf-8",
        "delimiter": detected.delimiter if detected else "",
        "columns": columns,
        "records": records,
    }


def _paths(data: dict, prefix: str = "") -> Iterator[str]:
    for key, value in data.items():
        if key.startswith("\0"):
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _paths(value, path + ".")
        else:
            yield path
