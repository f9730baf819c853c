"""B7: file import (CSV and JSONL) against B1 with agreements on the same rows, and the import's peak memory.

Every line carries the identifiers, native fields, ten custom attributes, two agreements (e-mail and SMS) and
two tags. The baseline is ``profiles_upsert_many`` (B1 with agreements) of the very same items, built outside
the clock by the import's own mapping from the same records, in calls of ``--chunk`` items from a truncated
state. Each import runs in a child process (``manage.py``-free: ``import_create`` + ``import_run``) from a
truncated state, timed from the stored file to the finished job (staging, writing, report bookkeeping), so its
peak RSS (``ru_maxrss``) is the import's alone. Memory flat: the peak at ``--profiles`` lines within 10 % of the
peak at a tenth of them (same child set-up, CSV).

Goals: CSV and JSONL import rows/s ≥ 0.8 of the baseline's; peak RSS flat (≤ 1.10 of the small run's). With
``--dry-run``, the CSV file's dry run too (one transaction rolled back at the end): its time, and its peak RSS
flat the same way with nothing left in the database.

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
from pathlib import Path

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
        if fmt == "csv":
            if kind in TYPES:
                spec["type"] = TYPES[kind]
            if kind == "list":
                spec["split"] = "|"
        columns[name] = spec
    columns["emailConsent"] = {"to": "agreements.email", "map": {"Y": True, "N": False}}
    columns["smsConsent"] = {"to": "agreements.sms", "map": {"Y": True, "N": False}}
    columns["tags"] = {"to": "tags", "split": "|"} if fmt == "csv" else {"to": "tags"}
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
    jsonl_size = f"{jsonl_path.stat().st_size / 1e6:.1f} MB JSONL"
    if args.memory_only:
        jsonl_path.unlink()  # only the CSV is imported: the disk is given back before the run
    print(
        f"files: {csv_path.stat().st_size / 1e6:.1f} MB CSV, {jsonl_size} "
        f"(written in {time.perf_counter() - begin:.1f} s)",
        flush=True,
    )
    ratios: dict[str, list[float]] = {"csv": [], "jsonl": []}
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
        formats = (("csv", csv_path),) if args.memory_only else (("csv", csv_path), ("jsonl", jsonl_path))
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
        verdict = "met" if ratio >= 0.8 else "MISSED"
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(
            f"ratio import {fmt} rows/s / B1 with agreements rows/s = {ratio:6.2f}x (goal ≥ 0.8: {verdict})  "
            f"(rounds: {rounds})"
        )
    memory = results["csv"]["rss_kib"] / small_figures["rss_kib"]
    verdict = "met" if memory <= 1.10 else "MISSED"
    print(f"ratio peak RSS at {n} / at {small} lines            = {memory:6.2f}x (goal ≤ 1.10, memory flat: {verdict})")
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
