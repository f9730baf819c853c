"""B7: file import (CSV, JSONL and XLSX) against B1 with agreements on the same rows, and the import's peak memory.

Every line carries the identifiers, native fields, ten custom attributes, two agreements (e-mail and SMS) and
two tags. The baseline is ``profiles_upsert_many`` (B1 with agreements) of the very same items, built outside
the clock by the import's own mapping from the same records, in calls of ``--chunk`` items from a truncated
state. Each import runs in a child process (``manage.py``-free: ``import_create`` + ``import_run``) from a
truncated state, timed from the stored file to the finished job (staging, writing, report bookkeeping), so its
peak RSS (``ru_maxrss``) is the import's alone. Memory flat: the peak at ``--profiles`` lines within 10 % of the
peak at a tenth of them (same child set-up, CSV).

Goals: CSV and JSONL import rows/s ≥ 0.8 of the baseline's; peak RSS flat (≤ 1.10 of the small run's). With
``--dry-run``, the CSV file's dry run too (one transaction rolled back at the end): its time, and its peak RSS
flat the same way with nothing left in the database. The same lines as an XLSX workbook written the way Excel
writes one (every text in the shared-strings table, dates as serial numbers in date cells, numbers and booleans
typed): its rows/s against the baseline (no goal: a figure), and its peak RSS at N against N/10 (flat, ≤ 1.10).

    flock /tmp/bench.lock .venv/bin/python bench/b7_import.py --profiles 100000

The last lines are the figures and the ratios. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.b1_b3_batch import NATIVE, first_of_each_kind, row_chunks

DEFAULT_DB = f"{common.DEFAULT_DB}_b7"
TAGS = ["newsletter", "vip", "returning", "cart-abandoner", "gold", "silver", "bronze", "outlet"]
FIELD_API = {"first_name": "firstName", "last_name": "lastName", "company": "company", "address": "address",
             "city": "city", "zip_code": "zipCode", "country_code": "countryCode", "birth_date": "birthDate",
             "sex": "sex"}  # fmt: skip
TYPES = {"number": "number", "boolean": "boolean"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000, help="lines per file (default 100000)")
    parser.add_argument("--chunk", type=int, default=1000, help="items per batch call (the import's IMPORT_CHUNK_ROWS)")
    parser.add_argument("--seed", type=int, default=common.DEFAULT_SEED)
    parser.add_argument("--db", default=DEFAULT_DB)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database and files afterwards")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of baseline, CSV, JSONL (ratios: medians)")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the CSV import at --profiles and at a tenth (the memory goal), no baseline or JSONL",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="also a dry run of the CSV at --profiles and at a tenth: its time and peak RSS (memory flat too)",
    )
    parser.add_argument("--child", nargs=2, metavar=("FILE", "MAPPING"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def mapping(fmt: str) -> dict:
    columns: dict = {kind: {"to": kind} for kind in ("email", "phone", "customId", "uuid")}
    for api in FIELD_API.values():
        columns[api] = {"to": api}
    for name, kind in common.ATTRIBUTE_TYPES.items():
        spec: dict = {"to": f"attributes.{name}"}
        if fmt in ("csv", "xlsx"):
            if kind in TYPES:
                spec["type"] = TYPES[kind]
            if kind == "list":
                spec["split"] = "|"
        columns[name] = spec
    columns["emailConsent"] = {"to": "agreements.email", "map": {"Y": True, "N": False}}
    columns["smsConsent"] = {"to": "agreements.sms", "map": {"Y": True, "N": False}}
    columns["tags"] = {"to": "tags", "split": "|"} if fmt in ("csv", "xlsx") else {"to": "tags"}
    return {"columns": columns}


def records(n: int, size: int, seed: int):
    """One dict per line (JSON types), the same rows as B1's generator; two agreements and two tags each."""
    for chunk in row_chunks(n, size, seed):
        out = []
        for profile, identifiers, consents in chunk:
            record: dict = dict(first_of_each_kind(identifiers))
            for column, index in NATIVE.items():
                value = profile[index]
                if value is not None:
                    record[FIELD_API[column]] = value.isoformat() if hasattr(value, "isoformat") else value
            record.update(profile[17])
            states = {key: status for _, key, status, _, _ in consents}
            record["emailConsent"] = "Y" if states.get("email") == "granted" else "N"
            record["smsConsent"] = "Y" if states.get("sms") == "granted" else "N"
            pid = profile[0]
            first = TAGS[pid % len(TAGS)]
            second = TAGS[(pid // len(TAGS)) % len(TAGS)]
            record["tags"] = [first, second if second != first else TAGS[(pid + 1) % len(TAGS)]]
            out.append(record)
        yield out


def csv_cell(value) -> str:
    if isinstance(value, list):
        return "|".join(map(str, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def write_files(args, folder: Path, n: int) -> tuple[Path, Path]:
    columns = list(mapping("csv")["columns"])
    csv_path, jsonl_path = folder / f"people-{n}.csv", folder / f"people-{n}.jsonl"
    with csv_path.open("w", encoding="utf-8", newline="") as c, jsonl_path.open("w", encoding="utf-8") as j:
        writer = csv.writer(c)
        writer.writerow(columns)
        for chunk in records(n, args.chunk, args.seed):
            for record in chunk:
                writer.writerow([csv_cell(record.get(col)) for col in columns])
                j.write(json.dumps(record, separators=(",", ":")) + "\n")
    return csv_path, jsonl_path


# --- an XLSX workbook as Excel writes it, streamed to disk (the sheet and the strings table grow in temp files) ----

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_FIXED = {
    "[Content_Types].xml": f'<Types xmlns="{_PKG}/content-types"><Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_MAIN}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_MAIN}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_MAIN}.sharedStrings+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_MAIN}.styles+xml"/></Types>',
    "_rels/.rels": f'<Relationships xmlns="{_PKG}/relationships"><Relationship Id="rId1" '
    f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>'
    '<sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    f'<Relationship Id="rId3" Type="{_REL}/styles" Target="styles.xml"/></Relationships>',
    "xl/styles.xml": f'<styleSheet xmlns="{_NS}"><fonts count="1"><font/></fonts>'
    '<fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders>'
    '<cellStyleXfs count="1"><xf/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0"/>'
    '<xf numFmtId="14" applyNumberFormat="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>',
}
_EPOCH = date(1899, 12, 30)


def _column_letter(index: int) -> str:
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def write_xlsx(args, folder: Path, n: int) -> Path:
    """The CSV's lines as an XLSX sheet: texts in the shared-strings table (one entry per text cell, as a writer
    that does not look for repeats leaves it), dates as serials, numbers and booleans as such, lists as a|b."""
    columns = list(mapping("xlsx")["columns"])
    letters = [_column_letter(i) for i in range(1, len(columns) + 1)]
    path = folder / f"people-{n}.xlsx"
    sheet_path, strings_path = folder / f"sheet-{n}.xml", folder / f"strings-{n}.xml"
    count = 0
    with sheet_path.open("w", encoding="utf-8") as sheet, strings_path.open("w", encoding="utf-8") as strings:
        # The sheet's extent first, as Excel writes it (without it openpyxl reads the whole sheet to find it).
        sheet.write(f'{_XML}<worksheet xmlns="{_NS}"><dimension ref="A1:{letters[-1]}{n + 1}"/><sheetData>')
        strings.write(f'{_XML}<sst xmlns="{_NS}">')

        def row(number: int, values: list) -> None:
            nonlocal count
            cells = []
            for letter, value in zip(letters, values, strict=True):
                ref = f"{letter}{number}"
                if value is None or value == "":
                    continue
                if isinstance(value, bool):
                    cells.append(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
                elif isinstance(value, int | float):
                    cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
                elif isinstance(value, date):
                    cells.append(f'<c r="{ref}" s="1"><v>{(value - _EPOCH).days}</v></c>')
                else:
                    strings.write(f'<si><t xml:space="preserve">{escape(str(value))}</t></si>')
                    cells.append(f'<c r="{ref}" t="s"><v>{count}</v></c>')
                    count += 1
            sheet.write(f'<row r="{number}">{"".join(cells)}</row>')

        row(1, columns)
        number = 1
        for chunk in records(n, args.chunk, args.seed):
            for record in chunk:
                number += 1
                values = []
                for column in columns:
                    value = record.get(column)
                    if isinstance(value, list):
                        value = "|".join(map(str, value))
                    elif column == "birthDate" and value:
                        value = date.fromisoformat(value)
                    values.append(value)
                row(number, values)
        sheet.write("</sheetData></worksheet>")
        strings.write("</sst>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _FIXED.items():
            archive.writestr(name, _XML + text)
        archive.write(sheet_path, "xl/worksheets/sheet1.xml")
        archive.write(strings_path, "xl/sharedStrings.xml")
    sheet_path.unlink()
    strings_path.unlink()
    return path


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE profiles_profile, consents_consentrecord, profiles_tag, crm_job RESTART IDENTITY CASCADE"
        )


def baseline(args, jsonl_path: Path) -> tuple[float, dict]:
    """B1 with agreements: the same items (mapped outside the clock) through profiles_upsert_many."""
    from collections import Counter

    from imports.mapping import mapping_compile
    from profiles.services.batch import profiles_upsert_many

    truncate()
    compiled = mapping_compile(mapping("jsonl"))
    seconds, statuses, chunk = 0.0, Counter(), []

    def run(items):
        nonlocal seconds
        begin = time.perf_counter()
        results = profiles_upsert_many(items=items, source="bench", actor="bench b7")
        seconds += time.perf_counter() - begin
        statuses.update(r.status for r in results)

    with jsonl_path.open(encoding="utf-8") as handle:
        for line in handle:
            chunk.append(compiled.apply(json.loads(line)))
            if len(chunk) == args.chunk:
                run(chunk)
                chunk = []
    if chunk:
        run(chunk)
    return seconds, dict(statuses)


def child(file: str, mapping_path: str) -> None:
    """In a fresh process: import the file, print one JSON line with the figures and the peak RSS."""
    import resource

    common.setup_django(os.environ["BENCH_DB_NAME"], fresh=False)
    from imports.services import import_create, import_run
    from profiles.models import Profile

    truncate()
    begin = time.perf_counter()
    with open(file, "rb") as handle:
        imp = import_create(
            file=handle,
            name=Path(file).name,
            mapping=json.loads(Path(mapping_path).read_text()),
            dry_run=os.environ.get("BENCH_DRY_RUN") == "1",
            source="bench",
            actor="bench b7",
        )
    imp = import_run(job_id=imp.pk)
    seconds = time.perf_counter() - begin
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {"seconds": seconds, "lines": imp.records_read, "counts": imp.job.counts, "rss_kib": rss_kib}
    print(json.dumps({**figures, "profiles": Profile.objects.count()}))


def run_child(args, file: Path, fmt: str, folder: Path, *, dry_run: bool = False) -> dict:
    mapping_path = folder / f"mapping-{fmt}.json"
    mapping_path.write_text(json.dumps(mapping(fmt)))
    env = {**os.environ, "BENCH_DB_NAME": args.db, "IMPORT_CHUNK_ROWS": str(args.chunk), "LOG_LEVEL": "WARNING"}
    env["BENCH_DRY_RUN"] = "1" if dry_run else "0"
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(file), str(mapping_path), "--db", args.db],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    common.setup_django(args.db)
    from django.conf import settings

    settings.MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="b7-media-"))
    os.environ["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    from bench.b1_b3_batch import define_attributes

    define_attributes()
    folder = Path(tempfile.mkdtemp(prefix="b7-files-"))
    n, small = args.profiles, max(1000, args.profiles // 10)
    print(f"B7 file import: lines={n} chunk={args.chunk} seed={args.seed}  {common.load_average()}", flush=True)
    begin = time.perf_counter()
    csv_path, jsonl_path = write_files(args, folder, n)
    small_csv, _ = write_files(args, folder, small)
    xlsx_path, small_xlsx = write_xlsx(args, folder, n), write_xlsx(args, folder, small)
    jsonl_size = f"{jsonl_path.stat().st_size / 1e6:.1f} MB JSONL"
    if args.memory_only:
        jsonl_path.unlink()  # only the CSV and the XLSX are imported: the disk is given back before the run
    print(
        f"files: {csv_path.stat().st_size / 1e6:.1f} MB CSV, {jsonl_size}, {xlsx_path.stat().st_size / 1e6:.1f} MB "
        f"XLSX (written in {time.perf_counter() - begin:.1f} s)",
        flush=True,
    )
    ratios: dict[str, list[float]] = {"csv": [], "jsonl": [], "xlsx": []}
    results: dict = {}
    for number in range(1, (1 if args.memory_only else args.rounds) + 1):
        base_rps = None
        if not args.memory_only:
            base_seconds, statuses = baseline(args, jsonl_path)
            base_rps = n / base_seconds
            print(
                f"#{number} B1 with agreements (baseline)  rows={n:<8} {base_seconds:8.2f} s {base_rps:7.0f} rows/s  "
                f"{statuses}  {common.load_average()}",
                flush=True,
            )
        formats = (
            (("csv", csv_path), ("xlsx", xlsx_path))
            if args.memory_only
            else (("csv", csv_path), ("jsonl", jsonl_path), ("xlsx", xlsx_path))
        )
        for fmt, path in formats:
            figures = run_child(args, path, fmt, folder)
            if fmt not in results or figures["rss_kib"] > results[fmt]["rss_kib"]:
                results[fmt] = figures
            rps = figures["lines"] / figures["seconds"]
            if base_rps:
                ratios[fmt].append(rps / base_rps)
            print(
                f"#{number} import {fmt:<5}                   rows={figures['lines']:<8} {figures['seconds']:8.2f} s "
                f"{rps:7.0f} rows/s  peak RSS {figures['rss_kib'] / 1024:.0f} MiB  {figures['counts']}",
                flush=True,
            )
    small_figures = run_child(args, small_csv, "csv", folder)
    print(
        f"import csv (memory reference)     rows={small_figures['lines']:<8} {small_figures['seconds']:8.2f} s "
        f"peak RSS {small_figures['rss_kib'] / 1024:.0f} MiB",
        flush=True,
    )
    small_xlsx_figures = run_child(args, small_xlsx, "xlsx", folder)
    print(
        f"import xlsx (memory reference)    rows={small_xlsx_figures['lines']:<8} "
        f"{small_xlsx_figures['seconds']:8.2f} s peak RSS {small_xlsx_figures['rss_kib'] / 1024:.0f} MiB",
        flush=True,
    )
    dry_figures = []
    if args.dry_run:
        for path in (csv_path, small_csv):
            figures = run_child(args, path, "csv", folder, dry_run=True)
            dry_figures.append(figures)
            print(
                f"dry run csv                       rows={figures['lines']:<8} {figures['seconds']:8.2f} s "
                f"{figures['lines'] / figures['seconds']:7.0f} rows/s  peak RSS {figures['rss_kib'] / 1024:.0f} MiB  "
                f"{figures['counts']}  profiles left: {figures['profiles']}  {common.load_average()}",
                flush=True,
            )
    print(common.load_average())
    for fmt, values in ratios.items():
        if not values:
            continue
        ratio = statistics.median(values)
        goal = f"goal ≥ 0.8: {'met' if ratio >= 0.8 else 'MISSED'}" if fmt != "xlsx" else "no goal: a figure"
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"ratio import {fmt} rows/s / B1 with agreements rows/s = {ratio:6.2f}x ({goal})  (rounds: {rounds})")
    memory = results["csv"]["rss_kib"] / small_figures["rss_kib"]
    verdict = "met" if memory <= 1.10 else "MISSED"
    print(f"ratio peak RSS at {n} / at {small} lines            = {memory:6.2f}x (goal ≤ 1.10, memory flat: {verdict})")
    memory = results["xlsx"]["rss_kib"] / small_xlsx_figures["rss_kib"]
    verdict = "met" if memory <= 1.10 else "MISSED"
    print(f"ratio XLSX peak RSS at {n} / at {small} lines       = {memory:6.2f}x (goal ≤ 1.10, memory flat: {verdict})")
    if dry_figures:
        big, little = dry_figures
        memory = big["rss_kib"] / little["rss_kib"]
        verdict = "met" if memory <= 1.10 and big["profiles"] == 0 else "MISSED"
        print(
            f"dry run: peak RSS at {n} / at {small} lines = {memory:6.2f}x, profiles left {big['profiles']} "
            f"(goal ≤ 1.10 and nothing written: {verdict})"
        )
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
        common.drop_database(args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
