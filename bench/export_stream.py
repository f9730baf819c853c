"""Exports: ``GET /v4/clients/export.csv`` (and ``.jsonl``) of every profile against a raw ``COPY (SELECT …) TO
STDOUT`` of the same columns, and the exporting process's peak memory at two sizes.

Goal: the CSV export streams at ≥ 0.5 of the raw COPY's rows per second over the same profiles, with the exporting
process's peak RSS flat (within 10 %) between the sizes.

Data per size (Faker, fixed seed, ``bench.common.load_profiles``): profiles with 2–3 identifiers, native fields,
ten custom attributes (~300 B JSON), three consents; plus two tags each (of 20).

Each measure runs in a fresh child process (so its ``ru_maxrss`` is its own), ``--rounds`` times interleaved,
median reported:

* ``raw COPY``: psycopg, ``COPY (SELECT <native columns>, attributes, <tags as a JSON array>, <consents as a JSON
  object> FROM profiles_profile … ORDER BY id) TO STDOUT (FORMAT csv)`` read to the end: the same data, no
  per-attribute columns, no formula guard, no Django;
* ``export.csv``: the endpoint through Django's test client (authentication, the API view, the exporter), the
  streamed body read to the end;
* ``export.jsonl``: the same for JSON Lines (Synerise documents, Python-built; reported, no goal).

    flock /tmp/bench.lock .venv/bin/python bench/export_stream.py --sizes 10000,100000
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "crm_bench_export"
GOAL_RATIO = 0.5
GOAL_RSS_GROWTH = 0.10
TAGS = 20

RAW_SQL = """
COPY (
    SELECT p.id, p.email, p.phone, p.custom_id, p.uuid, p.first_name, p.last_name, p.display_name, p.company,
           p.address, p.city, p.province, p.zip_code, p.country_code, p.birth_date, p.sex, p.avatar_url,
           p.attributes, p.correlation_id, p.last_activity_date, p.created_at, p.updated_at,
           (SELECT json_agg(t.name ORDER BY t.name) FROM profiles_profiletag pt
             JOIN profiles_tag t ON t.id = pt.tag_id WHERE pt.profile_id = p.id),
           cs.states
    FROM profiles_profile p
    LEFT JOIN LATERAL (
        SELECT jsonb_object_agg(ag.key, s.status) AS states
        FROM consents_consentstate s JOIN consents_agreement ag ON ag.id = s.agreement_id
        WHERE s.profile_id = p.id
    ) cs ON true
    ORDER BY p.id
) TO STDOUT WITH (FORMAT csv)
"""


def _setup_light() -> None:
    """Django on the benchmark database without ``migrate`` (whose own memory would hide the export's peak)."""
    import os

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["BENCH_DB_NAME"] = DB_NAME
    import django

    django.setup()


def _child(kind: str) -> dict:
    if kind == "load":
        common.setup_django(DB_NAME, fresh=False)
        return _load(int(sys.argv[sys.argv.index("--n") + 1]))
    _setup_light()
    if kind == "raw":
        with common.raw_connection() as conn, conn.cursor() as cur:
            started = time.perf_counter()
            size = 0
            with cur.copy(RAW_SQL) as copy:
                for data in copy:
                    size += len(data)
            seconds = time.perf_counter() - started
            rows = cur.rowcount
    else:
        from django.test import Client

        from crm.services import api_key_create

        _, secret = api_key_create(name=f"bench {kind}", scopes=["export"], rate_limit="")
        client = Client()
        headers = {"authorization": f"Bearer {secret}"}
        # A server process is warm: one request that matches nothing first (imports, URL resolver, connection).
        warm = client.get(f"/v4/clients/export.{kind}?customId=nobody", headers=headers)
        assert warm.status_code == 200 and len(b"".join(warm.streaming_content)) < 10_000
        started = time.perf_counter()
        response = client.get(f"/v4/clients/export.{kind}", headers=headers)
        assert response.status_code == 200, response.content
        size = 0
        for piece in response.streaming_content:
            size += len(piece)
        response.close()
        seconds = time.perf_counter() - started
        from profiles.models import Profile

        rows = Profile.objects.count()  # every profile is exported (cells may hold line breaks: no line count)
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "bytes": size, "rows": rows, "maxrss_kb": maxrss_kb}


def _load(n: int) -> dict:
    data = common.load_profiles(n)
    with common.raw_connection() as conn:
        conn.execute(
            "INSERT INTO profiles_tag (name, color, description, created_at, created_by) "
            "SELECT 'tag-' || i, '', '', now(), 'bench' FROM generate_series(1, %s) i",
            [TAGS],
        )
        first = conn.execute("SELECT min(id) FROM profiles_tag").fetchone()[0]
        conn.execute(
            "INSERT INTO profiles_profiletag (profile_id, tag_id, created_at) "
            "SELECT p.id, %(first)s + p.id %% %(n)s, now() FROM profiles_profile p "
            "UNION ALL SELECT p.id, %(first)s + (p.id %% %(n)s + 1 + p.id %% (%(n)s - 1)) %% %(n)s, now() "
            "FROM profiles_profile p",
            {"first": first, "n": TAGS},
        )
        conn.execute("ANALYZE profiles_tag, profiles_profiletag")
    return {"describe": data.describe(), "machine": common.machine()}


def _run_child(kind: str, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, *extra], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated profile counts (default 10000,100000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database of the last size")
    parser.add_argument("--formats", default="csv,jsonl", help="exports to time against the raw COPY (csv,jsonl)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    formats = [f for f in args.formats.split(",") if f in ("csv", "jsonl")]
    kinds = ["raw", *formats]
    results: dict[int, dict[str, list[dict]]] = {}
    lines = [common.load_average()]
    for n in sizes:
        _fresh_database()
        loaded = _run_child("load", "--n", str(n))
        if n == sizes[0]:
            lines.insert(0, loaded["machine"])
        lines.append(f"{n:,} profiles: {loaded['describe']}")
        results[n] = {k: [] for k in kinds}
        for _ in range(args.rounds):
            for kind in kinds:
                results[n][kind].append(_run_child(kind))
    if not args.keep:
        _drop_database()
    lines.append(common.load_average())
    for n in sizes:
        med = {k: _median(results[n][k]) for k in kinds}
        raw = med["raw"]
        for kind in kinds:
            m = med[kind]
            lines.append(
                f"{n:>9,} {kind:<6} rows={int(m['rows']):,} bytes={m['bytes'] / 1e6:8.1f} MB  {m['seconds']:7.2f} s  "
                f"{m['rows'] / m['seconds']:9,.0f} rows/s  {m['bytes'] / m['seconds'] / 1e6:6.1f} MB/s  "
                f"peak RSS {m['maxrss_kb'] / 1024:6.1f} MiB"
            )
        for kind in formats:
            ratio = (med[kind]["rows"] / med[kind]["seconds"]) / (raw["rows"] / raw["seconds"])
            goal = common.verdict(ratio, GOAL_RATIO, at_most=False) if kind == "csv" else "(no goal)"
            lines.append(f"goal {n:,} export.{kind} rows/s vs raw COPY: {ratio:.2f} {goal}")
    for small in sizes[:-1]:
        large = sizes[-1]
        for kind in kinds:
            a = _median(results[small][kind])["maxrss_kb"]
            b = _median(results[large][kind])["maxrss_kb"]
            growth = b / a - 1
            verdict = common.verdict(growth, GOAL_RSS_GROWTH, at_most=True) if kind != "raw" else "(baseline)"
            lines.append(
                f"goal peak RSS export.{kind} {large:,} vs {small:,}: {a / 1024:.1f} → {b / 1024:.1f} MiB, "
                f"{growth:+.1%} {verdict}"
            )
    common.print_lines(lines)


def _median(samples: list[dict]) -> dict:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def _fresh_database() -> None:
    subprocess.run([sys.executable, __file__, "--child", "create"], check=True)


def _drop_database() -> None:
    subprocess.run([sys.executable, __file__, "--child", "drop"], check=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        kind = sys.argv[sys.argv.index("--child") + 1]
        if kind == "create":
            common.setup_django(DB_NAME, fresh=True)
        elif kind == "drop":
            common.setup_django(DB_NAME, fresh=False)
            from django.db import connections

            connections.close_all()
            common.drop_database(DB_NAME)
        else:
            print(json.dumps(_child(kind)))
    else:
        main()
