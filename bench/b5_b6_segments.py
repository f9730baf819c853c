"""B5 and B6: lists filtered through the condition compiler, segment counts, the card's segments, membership
refresh, and the batch write with live segments.

* B5: the list of up to 10,000 profiles matching a custom attribute condition and a tag (the rows a list reads:
  id, e-mail, names, city), compiled from the condition tree and read through the ORM, against the same SQL text
  run through raw psycopg. Goal ≤ 2×.
* B6a: the count of a segment with attribute + tag + consent + event conditions (``segment_count``, the tree
  evaluated, not the rows). Goal < 1 s.
* B6b: the card's "segments this profile is in" with 50 segments (``profile_segments``). Goal < 50 ms (p95).
* B6c: refreshing 1,000 changed profiles against 50 segments (``membership_refresh``). Goal < 1 s.
* B6d: B1 (``profiles_upsert_many`` of new profiles, batches of 1,000) with 20 live segments against B1 with
  none, interleaved in the same run. Goal ≥ 0.9. The write only records the touched profiles; the refresh
  they cause runs in the worker and is timed separately (reported, no goal).

Data: ``--profiles`` profiles (``bench.common``: identifiers, ten attributes, three consents), 20 tags (a skewed
share, "vip" on ~30 %), ``--events-per-profile`` events each (default 5) over the last 90 days.

    .venv/bin/python bench/b5_b6_segments.py --profiles 100000
    flock /tmp/bench.lock .venv/bin/python bench/b5_b6_segments.py --profiles 1000000 --b1-profiles 20000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "crm_bench_b5_b6"
TAGS = [("vip", 0.30), ("newsletter", 0.45), ("returning", 0.2), ("b2b", 0.05), ("student", 0.08)] + [
    (f"tag-{i}", 0.01 * i) for i in range(1, 16)
]
ACTIONS = ["page.visit", "product.view", "cart.add", "search", "email.open"]
B5_TREE = {"all": [{"attribute": "loyaltyPoints", "op": "gte", "value": 2000}, {"tag": "vip"}]}
B6_TREE = {
    "all": [
        {"attribute": "loyaltyPoints", "op": "gte", "value": 1000},
        {"tag": "vip"},
        {"agreement": "email", "state": "granted"},
        {"event": "page.visit", "op": "gte", "count": 2, "withinDays": 30},
    ]
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--events-per-profile", type=int, default=5)
    parser.add_argument("--b1-profiles", type=int, default=10_000, help="new profiles per B1 phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--parts", default="b5,b6,b1", help="which parts to run: b5, b6, b1 (comma-separated)")
    return parser.parse_args(argv)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        begin = time.perf_counter()
        fn()
        out.append(time.perf_counter() - begin)
    return out


def load(args) -> str:
    from django.db import connection

    data = common.load_profiles(args.profiles)
    begin = time.perf_counter()
    with connection.cursor() as cursor:
        for name, share in TAGS:
            cursor.execute("INSERT INTO profiles_tag (name, color, description, created_at, created_by) "
                           "VALUES (%s, '', '', now(), 'bench') RETURNING id", [name])  # fmt: skip
            tag_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO profiles_profiletag (profile_id, tag_id, created_at) "
                "SELECT id, %s, now() FROM profiles_profile WHERE random() < %s",
                [tag_id, share],
            )
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO profiles_event (profile_id, action, label, time, params, source, actor, is_system,
                                        request_id, created_at)
            SELECT p.id, (%s::text[])[1 + floor(random() * %s)::int], '', now() - random() * interval '90 days',
                   '{}'::jsonb, 'bench', '', false, '', now()
            FROM profiles_profile p CROSS JOIN generate_series(1, %s)
            """,
            [ACTIONS, len(ACTIONS), args.events_per_profile],
        )
        events = cursor.rowcount
        cursor.execute("ANALYZE profiles_profile, profiles_profiletag, profiles_event, consents_consentstate")
    return f"{data.describe()}; tags and {events} events in {time.perf_counter() - begin:.1f} s"


def b5(lines: list[str]) -> None:
    from django.db import connection

    from profiles.conditions import condition_compile
    from profiles.models import Profile

    columns = ("id", "email", "first_name", "last_name", "city")

    def orm():
        q = condition_compile(B5_TREE)
        return list(Profile.objects.filter(q).order_by("-id").values_list(*columns)[:10_000])

    rows = orm()
    sql, params = (
        Profile.objects.filter(condition_compile(B5_TREE))
        .order_by("-id")
        .values_list(*columns)[:10_000]
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
    raw_conn = common.raw_connection()

    def raw():
        return raw_conn.execute(sql, params).fetchall()

    assert len(raw()) == len(rows), (len(raw()), len(rows))
    for _ in range(3):
        orm(), raw()
    orm_times, raw_times = [], []
    for _ in range(7):
        orm_times += timed(orm, 1)
        raw_times += timed(raw, 1)
    o, r = statistics.median(orm_times), statistics.median(raw_times)
    lines.append(f"B5 list of {len(rows)} profiles (attribute + tag): compiler+ORM {o * 1000:.1f} ms, "
                 f"raw psycopg {r * 1000:.1f} ms (medians of 7)")  # fmt: skip
    lines.append(f"B5 ratio ORM/raw {o / r:.2f}× goal ≤ 2× {'met' if o / r <= 2 else 'MISSED'}")
    raw_conn.close()


def make_segments(n: int) -> list:
    """n segments of every kind of condition (attributes, tags, consents, events, fields, commerce, nesting)."""
    from segments.models import Segment
    from segments.services import segment_create

    rng = random.Random(5)
    trees = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            trees.append({"attribute": "loyaltyPoints", "op": "gte", "value": rng.randrange(0, 5000, 250)})
        elif kind == 1:
            trees.append({"all": [{"tag": TAGS[i % len(TAGS)][0]}, {"agreement": "sms", "state": "granted"}]})
        elif kind == 2:
            trees.append({"event": rng.choice(ACTIONS), "op": "gte", "count": 1 + i % 3, "withinDays": 30})
        elif kind == 3:
            trees.append({"attribute": "favouriteCategory", "op": "eq", "value": common.CATEGORIES[i % 10]})
        elif kind == 4:
            trees.append({"any": [{"attribute": "clubMember", "op": "eq", "value": True}, {"tag": "newsletter"}]})
        else:
            trees.append(
                {"all": [{"agreement": "email", "state": "granted"}, {"not": {"tag": TAGS[(i + 3) % len(TAGS)][0]}}]}
            )
    created = [segment_create(name=f"bench segment {i}", tree=tree, actor="bench") for i, tree in enumerate(trees)]
    return [Segment.objects.get(pk=s.pk) for s in created]


def b6(args, lines: list[str]) -> None:
    from segments.membership import membership_refresh, segment_fill, segments_compiled
    from segments.models import Segment
    from segments.services import profile_segments, segment_count, segment_create

    segment = segment_create(name="B6", tree=B6_TREE, actor="bench")
    counts = [segment_count(segment=segment) for _ in range(5)]
    took = statistics.median(c.took_ms for c in counts)
    lines.append(f"B6 count of attribute + tag + consent + event segment over {args.profiles} profiles: "
                 f"{counts[0].count} profiles in {took:.0f} ms (median of 5) goal < 1000 ms "
                 f"{'met' if took < 1000 else 'MISSED'}")  # fmt: skip
    Segment.objects.filter(pk=segment.pk).delete()

    segments = make_segments(50)
    begin = time.perf_counter()
    for s in segments:
        segment_fill(segment=s)
    fill = time.perf_counter() - begin
    builds = [s.evaluation_ms for s in Segment.objects.all()]
    lines.append(f"B6 filling 50 segments: {fill:.1f} s in all, build time per segment median "
                 f"{statistics.median(builds):.0f} ms, max {max(builds):.0f} ms")  # fmt: skip
    rng = random.Random(9)
    ids = [rng.randint(1, args.profiles) for _ in range(200)]
    for pid in ids[:20]:
        profile_segments(profile_id=pid)
    samples = []
    for pid in ids:
        begin = time.perf_counter()
        profile_segments(profile_id=pid)
        samples.append(time.perf_counter() - begin)
    p50, p95 = common.percentile(samples, 50) * 1000, common.percentile(samples, 95) * 1000
    lines.append(f"B6 card's segments (50 segments): p50 {p50:.2f} ms, p95 {p95:.2f} ms goal < 50 ms "
                 f"{'met' if p95 < 50 else 'MISSED'}")  # fmt: skip

    compiled = segments_compiled()
    refresh = []
    for r in range(3):
        changed = rng.sample(range(1, args.profiles + 1), 1000)
        begin = time.perf_counter()
        membership_refresh(profile_ids=changed, compiled=compiled if r else None)
        refresh.append(time.perf_counter() - begin)
    med = statistics.median(refresh)
    lines.append(f"B6 refresh of 1,000 changed profiles against 50 segments: {med * 1000:.0f} ms (median of 3) "
                 f"goal < 1000 ms {'met' if med < 1 else 'MISSED'}")  # fmt: skip
    Segment.objects.all().delete()


def b1_with_segments(args, lines: list[str]) -> None:
    from django.db import connection

    from bench import b1_b3_batch as b1
    from profiles.services.batch import profiles_upsert_many
    from segments.membership import live_cache_clear, segments_refresh_touched
    from segments.models import Segment

    b1.define_attributes()
    from profiles.models import Tag

    for name, _ in TAGS:
        Tag.objects.get_or_create(name=name)
    chunks = [
        [b1.new_item(row, consents=False) for row in chunk] for chunk in b1.row_chunks(args.b1_profiles, 1000, 77)
    ]

    def reset():
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE profiles_profile, consents_consentrecord, segments_touchedprofile RESTART IDENTITY CASCADE"
            )
        live_cache_clear()

    def run() -> float:
        begin = time.perf_counter()
        for items in chunks:
            profiles_upsert_many(items=items, source="bench", actor="bench b6")
        return args.b1_profiles / (time.perf_counter() - begin)

    # What a write adds with live segments: recording its 1,000 profiles (one INSERT in the write's transaction).
    from django.db import transaction

    from segments.membership import touched_record

    reset()
    make_segments(1)
    record = []
    for r in range(30):
        ids = list(range(r * 1000 + 1, r * 1000 + 1001))
        with transaction.atomic():
            begin = time.perf_counter()
            touched_record(ids)
            record.append(time.perf_counter() - begin)
    lines.append(f"recording 1,000 touched profiles in a write: median {statistics.median(record) * 1000:.2f} ms")

    none, live, refresh = [], [], []
    for r in range(args.rounds):
        for with_segments in (False, True) if r % 2 == 0 else (True, False):
            reset()
            Segment.objects.all().delete()
            if with_segments:
                make_segments(20)
            live_cache_clear()
            (live if with_segments else none).append(run())
            if with_segments:
                begin = time.perf_counter()
                done = segments_refresh_touched()
                refresh.append(done / (time.perf_counter() - begin))
    a, b = statistics.median(none), statistics.median(live)
    lines.append(f"B1 ({args.b1_profiles} new profiles, batches of 1,000): no segments {a:.0f} rows/s, "
                 f"20 live segments {b:.0f} rows/s (medians of {args.rounds})")  # fmt: skip
    lines.append(f"B1 with 20 live segments / without {b / a:.2f} goal ≥ 0.9 {'met' if b / a >= 0.9 else 'MISSED'}")
    rate = statistics.median(refresh)
    lines.append(f"(the worker's refresh of those touched profiles against 20 segments: {rate:.0f} profiles/s)")


def main(argv=None) -> None:
    args = parse_args(argv)
    common.setup_django(DB_NAME)
    parts = set(args.parts.split(","))
    lines = [common.machine(), common.load_average()]
    if parts & {"b5", "b6"}:
        lines.append(load(args))
        print(lines[-1], flush=True)
    if "b5" in parts:
        b5(lines)
    if "b6" in parts:
        b6(args, lines)
    if "b1" in parts:
        b1_with_segments(args, lines)
    lines.append(common.load_average())
    if not args.keep:
        common.drop_database(DB_NAME)
    common.print_lines(lines)


if __name__ == "__main__":
    main()
