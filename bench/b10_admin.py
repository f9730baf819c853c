"""B10: the admin card of a profile with 10,000 events, and the admin profile list on N profiles.

Goal: under 200 ms server time each, a fixed number of queries.

Server time is measured in-process: ``django.test.Client`` (middleware, session, the admin's view, template
rendering), logged in with ``force_login`` as a superuser and as a marketer (a staff user in the "Marketers"
group of ``crm/migrations/0003_roles.py``). No network, no gunicorn: what the server spends on a request.

Data (Faker pools and a fixed seed, ``bench.common``), COPY in chunks of 20,000 profiles so memory stays flat:

* ``--profiles`` profiles with 2–3 identifiers, native fields, ten custom attributes (~300 B JSON), three consents,
  two tags each (``profiles_profiletag``; 20 tags, a skewed distribution so there are common and rare tags) and
  ``--events-per-profile`` events each (default 5);
* one profile (the middle clientId) with ``--events`` events (default 10,000) over the last 26 weeks: custom
  actions (page.visit, product.view, cart, search, e-mail opens, transactions) and system ones (profile.updated,
  tag, consent, note, identified); a third of them carry a ``userAgent`` param.

Measures, each ``--requests`` times (after ``--warmup`` requests), p50/p95, and the queries of one request
(``CaptureQueriesContext``, a separate request so the timed ones carry no query log):

* the card ``/admin/profiles/profile/<id>/change/`` (plain, ``?tl_action=page.visit``, ``?tl_kind=system``,
  ``?tl_action=<rare action>``), and the card of a 5-event profile (the query count must be the same);
* the list ``/admin/profiles/profile/`` unfiltered, ``?q=<e-mail>``, ``?q=<first.last>`` and ``?q=<last name>``
  (parts, through the trigram indexes), ``?recognized=yes``, ``?recognized=no``
  (matches nothing: every generated profile has an e-mail), ``?tag=<common tag>``, ``?tag=<rare tag>``.

The last lines: each measure's p50/p95 against the 200 ms goal (verdict on p95), and the query counts.
``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of the slowest query of every measure that misses the goal.

    .venv/bin/python bench/b10_admin.py --profiles 100000 --events 10000
    .venv/bin/python bench/b10_admin.py --profiles 1000000 --events 10000 --explain
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

GOAL_MS = 200.0
DB_NAME = "crm_bench_b10"
TAGS = [
    "newsletter", "vip", "b2b", "wholesale", "student", "returning", "black-friday", "app-user", "loyalty-gold",
    "loyalty-silver", "outlet", "gift-card", "survey-2026", "winback", "influencer", "staff", "press", "partner",
    "beta-tester", "do-not-call",
]  # fmt: skip
CUSTOM_ACTIONS = [  # (action, label, weight)
    ("page.visit", "Page visit", 45),
    ("product.view", "Product view", 20),
    ("product.addToCart", "Added to cart", 8),
    ("search", "Search", 8),
    ("email.open", "E-mail opened", 6),
    ("email.click", "E-mail link clicked", 4),
    ("transaction.charge", "Order", 2),
    ("push.open", "Push opened", 1),
]
SYSTEM_ACTIONS = [
    ("profile.updated", "Profile changed", 50),
    ("tag.added", "Tag added", 15),
    ("tag.removed", "Tag removed", 5),
    ("consent.changed", "Consent changed", 10),
    ("note.added", "Note", 10),
    ("profile.identified", "Profile recognized", 10),
]
RARE_ACTION = "push.open"
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 "
    "Edg/131.0.0.0",
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
]
EVENT_COLUMNS = "profile_id, action, label, time, params, source, actor, is_system"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000, help="profiles in the list (default 100,000)")
    parser.add_argument("--events", type=int, default=10_000, help="events of the card's profile (default 10,000)")
    parser.add_argument("--events-per-profile", type=int, default=5, help="events of every other profile (5)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per measure (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per measure first (default 3)")
    parser.add_argument("--db", default=DB_NAME, help=f"benchmark database (default {DB_NAME}; dropped at the end)")
    parser.add_argument("--seed", type=int, default=common.DEFAULT_SEED)
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--reuse", action="store_true", help="reuse a database kept by --keep (no data load)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest query of a missed goal")
    parser.add_argument("--only", default="", help="run only the measures whose name contains this text")
    # Experiments (not the app's behaviour; they print as such): what the list would cost with another policy.
    parser.add_argument(
        "--count",
        choices=["app", "planner", "capped"],
        default="app",
        help="experiment: count of a filtered list on a large table from the planner's estimate (like the app's "
        "unfiltered list), or exact up to 10,000 only; default: the app's exact COUNT(*)",
    )
    parser.add_argument("--per-page", type=int, default=0, help="experiment: list_per_page (default: the app's)")
    return parser.parse_args(argv)


# --- data -----------------------------------------------------------------------------------------------


@dataclass
class Data:
    profiles: int = 0
    identifiers: int = 0
    consents: int = 0
    profile_tags: int = 0
    events: int = 0
    heavy_events: int = 0
    heavy_id: int = 0
    light_id: int = 0
    email: str = ""
    tag_ids: dict[str, int] = field(default_factory=dict)
    tag_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self) -> str:
        common_tag, rare_tag = self.common_tag, self.rare_tag
        return (
            f"data: {self.profiles:,} profiles, {self.identifiers:,} identifiers, {self.consents:,} consents, "
            f"{self.profile_tags:,} profile tags ({common_tag} on {self.tag_counts[common_tag]:,}, {rare_tag} on "
            f"{self.tag_counts[rare_tag]:,}), {self.events:,} events ({self.heavy_events:,} on clientId "
            f"{self.heavy_id}); "
            + (f"loaded in {self.seconds:.1f} s (COPY)" if self.seconds >= 0 else "reused (--reuse)")
        )

    @property
    def common_tag(self) -> str:
        return max(self.tag_counts, key=self.tag_counts.get)

    @property
    def rare_tag(self) -> str:
        return min(self.tag_counts, key=self.tag_counts.get)


def _weighted(rng: random.Random, table):
    return rng.choices(table, weights=[row[-1] for row in table])[0]


def event_row(rng: random.Random, pid: int, now: datetime, *, system_share: float = 0.2, weeks: int = 26):
    """One event of the profile ``pid`` within the last ``weeks`` weeks, as a COPY row."""
    at = now - timedelta(seconds=rng.randint(60, weeks * 7 * 86400 - 3600))
    if rng.random() < system_share:
        action, label, _ = _weighted(rng, SYSTEM_ACTIONS)
        if action == "profile.updated":
            city = rng.choice(["Warszawa", "Kraków", "Gdańsk", "Berlin", "Lyon"])
            params = {"changes": {"city": {"old": "Poznań", "new": city}, "loyaltyPoints": {"old": 10, "new": 42}}}
        elif action in ("tag.added", "tag.removed"):
            params = {"name": rng.choice(TAGS)}
        elif action == "consent.changed":
            params = {"agreement": rng.choice(common.CONSENT_KEYS), "old": "denied", "new": "granted"}
        elif action == "note.added":
            params = {"text": "Called about the order; will come back next week."}
        else:
            params = {"email": f"someone.{pid}@example.com"}
        return (pid, action, label, at, json.dumps(params), "admin", "bench", True)
    action, label, _ = _weighted(rng, CUSTOM_ACTIONS)
    params: dict = {}
    if action in ("page.visit", "product.view"):
        params = {"url": f"https://shop.example.com/p/{rng.randint(1, 5000)}", "title": "Running shoes"}
    elif action == "search":
        params = {"query": rng.choice(["shoes", "garden chair", "lego", "yoga mat"])}
    elif action == "transaction.charge":
        params = {"orderId": f"ORD-{rng.randint(1, 10**8)}", "value": round(rng.uniform(10, 900), 2)}
    if action in ("page.visit", "product.view", "product.addToCart", "search") and rng.random() < 0.45:
        params["userAgent"] = rng.choice(USER_AGENTS)
    return (pid, action, label, at, json.dumps(params), "api", "", False)


def unique_phone(row):
    """The generator's random phone numbers collide from ~100,000 profiles on (the identifier is unique): keep the
    operator prefix, make the subscriber number the clientId. Deterministic, and no set of seen numbers to hold."""
    profile, identifiers, consents = row
    if profile[2] is None:
        return row
    phone = f"{profile[2][:5]}{profile[0]:07d}"
    identifiers = [(kind, phone if kind == "phone" else value) for kind, value in identifiers]
    return (*profile[:2], phone, *profile[3:]), identifiers, consents


def load_data(args) -> Data:
    """Profiles, identifiers, consents, tags, events: COPY per chunk of profiles (memory flat at 1,000,000)."""
    from django.utils import timezone

    from profiles.attribute_names import attribute_key

    started = time.perf_counter()
    n = args.profiles
    data = Data(heavy_id=max(1, n // 2), light_id=max(1, n // 3))
    rng = random.Random(args.seed + 10)
    tag_weights = [1 / (i + 1) ** 1.2 for i in range(len(TAGS))]  # a skewed (Zipf-like) distribution of tags
    now = timezone.now()
    with common.raw_connection() as conn:
        agreement_ids = dict(conn.execute("SELECT key, id FROM consents_agreement").fetchall())
        with conn.transaction():
            cur = conn.cursor()
            with cur.copy(
                "COPY profiles_attributedefinition (name, key, type, description, created_at, created_by) FROM STDIN"
            ) as copy:
                for name, type_ in common.ATTRIBUTE_TYPES.items():
                    copy.write_row((name, attribute_key(name), type_, "", now, "bench"))
            with cur.copy("COPY profiles_tag (name, color, description, created_at, created_by) FROM STDIN") as copy:
                for name in TAGS:
                    copy.write_row((name, "", "", now, "bench"))
            data.tag_ids = dict(conn.execute("SELECT name, id FROM profiles_tag").fetchall())
            data.tag_counts = dict.fromkeys(TAGS, 0)
        rows = common._profile_rows(n, args.seed)
        while True:
            chunk = [unique_phone(row) for _, row in zip(range(common.CHUNK), rows, strict=False)]
            if not chunk:
                break
            with conn.transaction():
                cur = conn.cursor()
                with cur.copy(f"COPY profiles_profile ({', '.join(common.PROFILE_COLUMNS)}) FROM STDIN") as copy:
                    for profile, _, _ in chunk:
                        attributes = json.dumps(profile[17], separators=(",", ":"))
                        copy.write_row((*profile[:17], attributes, *profile[18:]))
                with cur.copy(
                    "COPY profiles_identifier (profile_id, kind, value, first_seen, last_seen) FROM STDIN"
                ) as copy:
                    for profile, identifiers, _ in chunk:
                        for kind, value in identifiers:
                            copy.write_row((profile[0], kind, value, profile[20], profile[20]))
                            data.identifiers += 1
                with cur.copy(
                    "COPY consents_consentstate (profile_id, agreement_id, status, changed_at, source) FROM STDIN"
                ) as copy:
                    for _, _, consents in chunk:
                        for pid, key, status, changed_at, source in consents:
                            copy.write_row((pid, agreement_ids[key], status, changed_at, source))
                            data.consents += 1
                with cur.copy("COPY profiles_profiletag (profile_id, tag_id, created_at) FROM STDIN") as copy:
                    for profile, _, _ in chunk:
                        first = rng.choices(TAGS, weights=tag_weights)[0]
                        second = first
                        while second == first:
                            second = rng.choices(TAGS, weights=tag_weights)[0]
                        for name in (first, second):
                            copy.write_row((profile[0], data.tag_ids[name], profile[20]))
                            data.tag_counts[name] += 1
                            data.profile_tags += 1
                with cur.copy(f"COPY profiles_event ({EVENT_COLUMNS}) FROM STDIN") as copy:
                    for profile, _, _ in chunk:
                        pid = profile[0]
                        if pid == data.heavy_id:
                            for _ in range(args.events):
                                copy.write_row(event_row(rng, pid, now))
                            data.heavy_events = args.events
                            data.events += args.events
                            continue
                        for _ in range(args.events_per_profile):
                            copy.write_row(event_row(rng, pid, now))
                        data.events += args.events_per_profile
                data.profiles += len(chunk)
                if chunk[0][0][0] <= data.heavy_id <= chunk[-1][0][0]:
                    data.email = next(p[1] for p, _, _ in chunk if p[0] == data.heavy_id)
            if n >= 200_000 and data.profiles % 200_000 == 0:
                print(f"  loaded {data.profiles:,} profiles in {time.perf_counter() - started:.0f} s", flush=True)
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('profiles_profile', 'id'), (SELECT max(id) FROM profiles_profile))"
        )
    # The events table is partitioned by month: the history just loaded into its default partition moves into
    # months of its own, as the worker's recurring maintenance does on a live installation.
    from profiles.partitions import event_partitions_ensure

    moved = event_partitions_ensure()
    print(f"  event partitions created for the loaded history: {len(moved)}", flush=True)
    with common.raw_connection() as conn:
        conn.execute("VACUUM ANALYZE")
    data.seconds = time.perf_counter() - started
    return data


def existing_data(args) -> Data:
    """The figures of a database kept by an earlier ``--keep`` run (``--reuse``)."""
    data = Data(heavy_id=max(1, args.profiles // 2), light_id=max(1, args.profiles // 3), seconds=-1.0)
    with common.raw_connection() as conn:
        data.profiles = conn.execute("SELECT count(*) FROM profiles_profile").fetchone()[0]
        data.identifiers = conn.execute("SELECT count(*) FROM profiles_identifier").fetchone()[0]
        data.consents = conn.execute("SELECT count(*) FROM consents_consentstate").fetchone()[0]
        data.events = conn.execute("SELECT count(*) FROM profiles_event").fetchone()[0]
        data.heavy_id, data.heavy_events = conn.execute(
            "SELECT profile_id, count(*) FROM profiles_event GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        data.email = conn.execute("SELECT email FROM profiles_profile WHERE id = %s", [data.heavy_id]).fetchone()[0]
        data.tag_ids = dict(conn.execute("SELECT name, id FROM profiles_tag").fetchall())
        counts = conn.execute(
            "SELECT t.name, count(pt.id) FROM profiles_tag t LEFT JOIN profiles_profiletag pt ON pt.tag_id = t.id "
            "GROUP BY 1"
        ).fetchall()
        data.tag_counts = dict(counts)
        data.profile_tags = sum(data.tag_counts.values())
    return data


# --- measuring ------------------------------------------------------------------------------------------


@dataclass
class Measure:
    name: str
    user: str
    url: str
    stats: common.Stats | None = None
    queries: list[dict] = field(default_factory=list)
    status: int = 0
    size: int = 0

    @property
    def label(self) -> str:
        return f"{self.name} [{self.user}]"


def users():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    admin = user_model.objects.filter(username="bench-admin").first() or user_model.objects.create_superuser(
        "bench-admin", "admin@example.com", None
    )
    marketer = user_model.objects.filter(username="bench-marketer").first()
    if marketer is None:
        marketer = user_model.objects.create_user("bench-marketer", "marketer@example.com", None, is_staff=True)
        marketer.groups.add(Group.objects.get(name="Marketers"))
    return {"superuser": admin, "marketer": marketer}


def measures(data: Data) -> list[Measure]:
    card = f"/admin/profiles/profile/{data.heavy_id}/change/"
    listing = "/admin/profiles/profile/"
    common_tag, rare_tag = data.common_tag, data.rare_tag
    targets = [
        (f"card {data.heavy_events:,} events", card),
        ("card ?tl_action=page.visit", f"{card}?tl_action=page.visit"),
        ("card ?tl_kind=system", f"{card}?tl_kind=system"),
        (f"card ?tl_action={RARE_ACTION}", f"{card}?tl_action={RARE_ACTION}"),
        ("card, a 5-event profile", f"/admin/profiles/profile/{data.light_id}/change/"),
        ("list", listing),
        ("list ?q=<e-mail>", f"{listing}?q={data.email}"),
        # Parts: "first.last" of the e-mail (a prefix, few matches), and the last name alone (a part, many).
        ("list ?q=<e-mail prefix>", f"{listing}?q={'.'.join(data.email.split('.')[:2])}"),
        ("list ?q=<last name>", f"{listing}?q={data.email.split('.')[1]}"),
        ("list ?recognized=yes", f"{listing}?recognized=yes"),
        ("list ?recognized=no", f"{listing}?recognized=no"),
        (f"list ?tag={common_tag}", f"{listing}?tag={data.tag_ids[common_tag]}"),
        (f"list ?tag={rare_tag}", f"{listing}?tag={data.tag_ids[rare_tag]}"),
    ]
    return [Measure(name, user, url) for name, url in targets for user in ("superuser", "marketer")]


def run_measure(measure: Measure, client, *, requests: int, warmup: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        client.get(measure.url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(measure.url)
    measure.status = response.status_code
    measure.size = len(response.content)
    measure.queries = list(captured.captured_queries)
    stats = common.Stats(measure.label)
    clock = time.perf_counter
    begin = clock()
    for _ in range(requests):
        t = clock()
        response = client.get(measure.url)
        stats.samples.append(clock() - t)
        if response.status_code != 200:
            stats.errors += 1
    stats.wall = clock() - begin
    measure.stats = stats


def explain(sql: str) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return [row[0] for row in cursor.fetchall()]


def slowest(measure: Measure, k: int = 3) -> list[dict]:
    return sorted(measure.queries, key=lambda q: float(q["time"]), reverse=True)[:k]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    try:
        return "load average: " + ", ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average: ?"


def static_manifest(tmp: str):
    """The production static storage reads a manifest that ``collectstatic`` writes: write one in a temporary folder.

    ``ManifestStaticFilesStorage`` (whitenoise's compressed variant minus the gzip/brotli files, which only the
    static file server reads): templates resolve ``{% static %}`` through the manifest as in production.
    """
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import override_settings

    backend = {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}
    override = override_settings(STATIC_ROOT=tmp, STORAGES={**settings.STORAGES, "staticfiles": backend})
    override.enable()
    call_command("collectstatic", interactive=False, verbosity=0)
    return override


COUNT_CAP = 10_000


def apply_experiments(args) -> str:
    """Patch the list as ``--count``/``--per-page`` ask; returns a label for the printed figures ("" if none)."""
    from django.contrib import admin
    from django.core.paginator import Paginator
    from django.db import connection
    from django.utils.functional import cached_property

    from profiles.admin.profile import EstimatedCountPaginator
    from profiles.models import Profile

    labels = []
    if args.per_page:
        admin.site._registry[Profile].list_per_page = args.per_page
        labels.append(f"list_per_page={args.per_page}")
    if args.count == "planner":

        def count(self):
            if self.table_is_large:
                sql, params = self.object_list.order_by().values("pk").query.sql_with_params()
                with connection.cursor() as cursor:
                    cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                    plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                estimate = int(plan[0]["Plan"]["Plan Rows"])
                if estimate >= self.large_table:
                    return estimate
            return Paginator.count.func(self)

        labels.append("count: the planner's estimate when ≥ 100,000 on a large table")
    elif args.count == "capped":

        def count(self):
            if self.object_list.query.has_filters() and self.table_is_large:
                return self.object_list.order_by()[: COUNT_CAP + 1].count()
            return self.table_estimate if self.table_is_large else Paginator.count.func(self)

        labels.append(f"count: exact up to {COUNT_CAP:,}, else {COUNT_CAP + 1:,}")
    if args.count != "app":
        EstimatedCountPaginator.count = cached_property(count)
        EstimatedCountPaginator.count.__set_name__(EstimatedCountPaginator, "count")
    return "; ".join(labels)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    common.setup_django(args.db, fresh=not args.reuse)
    from django.test import Client

    data = existing_data(args) if args.reuse else load_data(args)
    rss_after_load = peak_rss_mb()
    print(data.describe(), flush=True)
    print(common.machine(), flush=True)
    print(f"{load_average()} (before measuring)", flush=True)

    experiment = apply_experiments(args)
    if experiment:
        print(f"EXPERIMENT (not the app's behaviour): {experiment}", flush=True)
    static_dir = tempfile.TemporaryDirectory(prefix="b10-static-")
    static_manifest(static_dir.name)
    clients = {}
    for role, user in users().items():
        client = Client()
        client.force_login(user)
        clients[role] = client

    todo = [m for m in measures(data) if args.only in m.name]
    for measure in todo:
        run_measure(measure, clients[measure.user], requests=args.requests, warmup=args.warmup)
        s = measure.stats
        print(
            f"  {measure.label:<44} HTTP {measure.status}  {measure.size / 1024:6.0f} KiB  "
            f"p50={common.ms(s.p50)}  p95={common.ms(s.p95)}  queries={len(measure.queries)}",
            flush=True,
        )

    # The slowest queries of the slowest measures (the query log's own timings, one request each).
    print("\nslowest queries (one captured request; time as Django's query log measured it):")
    for measure in todo:
        if measure.stats.p95 * 1000 < GOAL_MS / 2:
            continue
        for q in slowest(measure, 2):
            print(f"  {measure.label}: {float(q['time']) * 1000:.1f} ms  {q['sql'][:300]}")
        if args.explain and measure.stats.p95 * 1000 >= GOAL_MS and measure.user == "superuser":
            print(f"\n  EXPLAIN (ANALYZE, BUFFERS) of the slowest query of {measure.label}:")
            for line in explain(slowest(measure, 1)[0]["sql"]):
                print(f"    {line}")
            print()

    rss = f"peak RSS {peak_rss_mb():.0f} MiB (after the load {rss_after_load:.0f})"
    print(f"\n{load_average()} (after measuring); {rss}")
    width = max(len(m.label) for m in todo) + 1
    print(f"\nB10 (goal: each under {GOAL_MS:.0f} ms server time, verdict on p95; {args.requests} requests, warm)")
    if experiment:
        print(f"EXPERIMENT (not the app's behaviour): {experiment}")
    print(f"{data.profiles:,} profiles; card profile with {data.heavy_events:,} events; started {started:%H:%M} UTC")
    for measure in todo:
        s = measure.stats
        verdict = "OK" if s.p95 * 1000 < GOAL_MS and not s.errors and measure.status == 200 else "MISSED"
        errors = f"  HTTP errors {s.errors}" if s.errors or measure.status != 200 else ""
        print(
            f"{measure.label:<{width}} p50={common.ms(s.p50)}  p95={common.ms(s.p95)}  "
            f"queries={len(measure.queries):>2}  vs {GOAL_MS:.0f} ms: {verdict}{errors}"
        )
    by_label = {m.label: len(m.queries) for m in todo}
    for user in ("superuser", "marketer"):
        heavy = by_label.get(f"card {data.heavy_events:,} events [{user}]")
        light = by_label.get(f"card, a 5-event profile [{user}]")
        if heavy is not None and light is not None:
            same = "the same: fixed" if heavy == light else "DIFFERENT: not fixed"
            print(f"queries, card [{user}]: {data.heavy_events:,} events {heavy}, 5 events {light} ({same})")
    lists = sorted({n for label, n in by_label.items() if label.startswith("list")})
    if lists:
        print(f"queries, list pages: {', '.join(map(str, lists))} (per page, whatever the number of profiles)")

    static_dir.cleanup()
    if not args.keep:
        common.drop_database(args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
