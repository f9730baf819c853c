"""Readers: one per format, each a generator of ``Record(line, data, original)`` that streams its file.

``line`` is the line number for CSV (where the record starts; quoted newlines span lines) and JSONL, and the
record's position (1-based) for a JSON array and XML. ``original`` is the record's own text, for the report.
Nothing reads a whole file: CSV and JSONL go line by line, a JSON array through ijson, XML through defusedxml's
``iterparse`` (which refuses entity declarations, so no entity expansion and no external entities).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import charset_normalizer
import ijson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
csv.field_size_limit(16 * 1024 * 1024)


class FileUnusable(Exception):
    """The file cannot be read as the format says (the whole import stops; the reason is its message)."""


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
    from xml.etree.ElementTree import ParseError, tostring

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


READERS = {"csv": read_csv, "json": read_json, "jsonl": read_jsonl, "xml": read_xml}


def format_guess(name: str, head: bytes) -> str:
    """The format from the file name, else from the first bytes."""
    lowered = name.lower()
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".xml", "xml"), (".csv", "csv")):
        if lowered.endswith(ext):
            return fmt
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    if stripped.startswith(b"<"):
        return "xml"
    return "csv"


def preview(raw: IO[bytes], fmt: str, *, record: str = "", encoding: str = "", delimiter: str = "", rows: int = 5):
    """What the wizard shows: the detected encoding and delimiter (CSV), the columns, and the first records."""
    detected = detect_csv(raw, encoding=encoding, delimiter=delimiter) if fmt == "csv" else None
    raw.seek(0)
    records = []
    reader = READERS[fmt](raw, record=record, encoding=encoding, delimiter=delimiter)
    try:
        for rec in reader:
            records.append(rec)
            if len(records) >= rows:
                break
    finally:
        reader.close()
    if detected:
        columns = detected.header
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
