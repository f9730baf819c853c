"""Shared set-up of the benchmarks: Django on a dedicated database, generated data, timing, printing.

Rules: a real PostgreSQL (the embedded one, or ``DATABASE_URL``), data generated
with Faker and a fixed seed, size from an argument, ratios against a baseline measured in the same run,
figures and ratios printed as the last lines.

Usage from a benchmark script run as ``python bench/bNN_name.py``::

    from bench import common
    common.setup_django()                 # creates/migrates crm_bench, then django.setup()
    data = common.load_profiles(10_000)   # COPY, set-based
    stats = common.run_interleaved({...}, items, rounds=5)
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "crm_bench"
DEFAULT_SEED = 20261123
LOCALES = ["pl_PL", "en_GB", "de_DE", "fr_FR", "es_ES"]
COUNTRY = {"pl_PL": "PL", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "es_ES": "ES"}
SEXES = ["FEMALE", "MALE", "NOT_SPECIFIED", "OTHER"]
MOBILE_PREFIXES = ["50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"]
CATEGORIES = ["shoes", "books", "garden", "electronics", "toys", "beauty", "sports", "home", "fashion", "food"]
INTERESTS = ["running", "cooking", "travel", "gaming", "cycling", "music", "photography", "yoga", "diy", "wine"]
SEGMENTS = ["new", "active", "loyal", "at-risk", "lapsed", "vip"]
FREQUENCIES = ["daily", "weekly", "monthly", "never"]
# Consents of each profile: three of the seven default agreements.
CONSENT_KEYS = ("email", "sms", "push")
# Custom attributes of each profile: ten, ~300 bytes of JSON (types as AttributeDefinition records them).
ATTRIBUTE_TYPES = {
    "loyaltyPoints": "number",
    "clubMember": "boolean",
    "favouriteCategory": "string",
    "lastOrderDate": "date",
    "lifetimeValue": "number",
    "preferredStore": "string",
    "newsletterFrequency": "string",
    "segment": "string",
    "lastCampaign": "string",
    "interests": "list",
}
PROFILE_COLUMNS = [
    "id", "email", "phone", "custom_id", "uuid", "first_name", "last_name", "display_name", "company", "address",
    "city", "province", "zip_code", "country_code", "birth_date", "sex", "avatar_url", "attributes",
    "correlation_id", "last_activity_date", "created_at", "updated_at",
]  # fmt: skip
CHUNK = 20_000


# --- Django on the benchmark database -------------------------------------------------------------


def setup_django(db_name: str = DEFAULT_DB, *, fresh: bool = True) -> None:
    """Point ``bench.settings`` at ``db_name`` on the app's server, (re)create it, django.setup(), migrate."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["BENCH_DB_NAME"] = db_name
    import django
    import psycopg
    from django.conf import settings

    settings_dict = settings.DATABASES["default"]  # starts the embedded server when DATABASE_URL is unset
    with psycopg.connect(**libpq_params(settings_dict, dbname="postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{db_name}" WITH (FORCE)')
        if fresh or not exists:
            conn.execute(f'CREATE DATABASE "{db_name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def drop_database(db_name: str = DEFAULT_DB) -> None:
    import psycopg
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    with psycopg.connect(**libpq_params(settings.DATABASES["default"], dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def libpq_params(settings_dict: dict, *, dbname: str | None = None) -> dict:
    """psycopg.connect() keyword arguments for a Django DATABASES entry."""
    django_only = {"server_side_binding", "pool", "isolation_level", "assume_role", "prepare_threshold"}
    params = {
        "dbname": dbname or settings_dict["NAME"],
        "user": settings_dict.get("USER"),
        "password": settings_dict.get("PASSWORD"),
        "host": settings_dict.get("HOST"),
        "port": settings_dict.get("PORT"),
        **{k: v for k, v in settings_dict.get("OPTIONS", {}).items() if k not in django_only},
    }
    return {k: v for k, v in params.items() if v not in (None, "")}


def raw_connection(**kwargs):
    """A plain psycopg connection to the benchmark database (autocommit, like Django's)."""
    import psycopg
    from django.conf import settings

    return psycopg.connect(**libpq_params(settings.DATABASES["default"]), autocommit=True, **kwargs)


# --- data -----------------------------------------------------------------------------------------


@dataclass
class Dataset:
    profiles: int
    seed: int
    emails: list[str]  # emails[i] belongs to the profile with id i + 1
    identifiers: int = 0
    consents: int = 0
    attributes_bytes: float = 0.0
    seconds: float = 0.0

    def describe(self) -> str:
        return (
            f"data: {self.profiles} profiles, {self.identifiers} identifiers, {self.consents} consents, "
            f"attributes {self.attributes_bytes:.0f} B JSON on average, loaded in {self.seconds:.1f} s (COPY)"
        )


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class _Pools:
    """Names, cities, streets… drawn once from Faker (seeded), then combined with a seeded Random.

    Faker costs ~50 µs a call; combining pools keeps generation fast enough for the 1,000,000-profile run
    while the values stay realistic (lengths, alphabets, locales).
    """

    def __init__(self, seed: int, size: int = 300):
        from faker import Faker

        Faker.seed(seed)
        fake = Faker(LOCALES)
        self.by_locale = {}
        for locale in LOCALES:
            f = fake[locale]
            self.by_locale[locale] = {
                "first": [f.first_name() for _ in range(size)],
                "last": [f.last_name() for _ in range(size)],
                "city": [f.city() for _ in range(size // 2)],
                "street": [f.street_address() for _ in range(size)],
                "zip": [f.postcode() for _ in range(size)],
                "company": [f.company() for _ in range(size // 3)],
                "domain": sorted({f.free_email_domain() for _ in range(40)}),
            }


def _profile_rows(n: int, seed: int, start: int = 1):
    """Yield (profile row, identifier rows, consent rows) for profiles start..start+n-1, deterministically."""
    pools = _Pools(seed)
    rng = random.Random(seed)
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    for pid in range(start, start + n):
        locale = rng.choice(LOCALES)
        pool = pools.by_locale[locale]
        first, last, city = rng.choice(pool["first"]), rng.choice(pool["last"]), rng.choice(pool["city"])
        email = f"{_ascii(first)}.{_ascii(last)}.{pid}@{rng.choice(pool['domain'])}"
        main_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        identifiers = [("email", email), ("uuid", main_uuid)]
        phone = custom_id = None
        if rng.random() < 0.5:
            # Unique for up to 9,000,000 profiles: the subscriber number is a permutation of the profile id.
            phone = f"+48{rng.choice(MOBILE_PREFIXES)}{1_000_000 + (pid * 7919) % 9_000_000}"
            identifiers.append(("phone", phone))
        if rng.random() < 0.3:
            custom_id = f"CRM-{100000 + pid}"
            identifiers.append(("customId", custom_id))
        if rng.random() < 0.25:
            identifiers.append(("uuid", str(uuid.UUID(int=rng.getrandbits(128), version=4))))
        created = now - timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        attributes = {
            "loyaltyPoints": rng.randint(0, 5000),
            "clubMember": rng.random() < 0.3,
            "favouriteCategory": rng.choice(CATEGORIES),
            "lastOrderDate": (date(2026, 11, 23) - timedelta(days=rng.randint(0, 700))).isoformat(),
            "lifetimeValue": round(rng.uniform(0, 20000), 2),
            "preferredStore": f"{city}, {rng.choice(pool['street'])}",
            "newsletterFrequency": rng.choice(FREQUENCIES),
            "segment": rng.choice(SEGMENTS),
            "lastCampaign": f"autumn-sale-2026-{rng.randint(1, 40):02d}",
            "interests": rng.sample(INTERESTS, 3),
        }
        profile = (
            pid,
            email,
            phone,
            custom_id,
            main_uuid,
            first,
            last,
            None,
            rng.choice(pool["company"]) if rng.random() < 0.2 else None,
            rng.choice(pool["street"]),
            city,
            None,
            rng.choice(pool["zip"]),
            COUNTRY[locale],
            date(1946, 1, 1) + timedelta(days=rng.randint(0, 60 * 365)),
            rng.choice(SEXES),
            None,
            attributes,
            f"{rng.getrandbits(96):024x}",
            created + timedelta(seconds=rng.randint(0, 86400 * 30)),
            created,
            created,
        )
        consents = [(pid, key, rng.choice(["granted", "granted", "denied"]), created, "bench") for key in CONSENT_KEYS]
        yield profile, identifiers, consents


def load_profiles(n: int, *, seed: int = DEFAULT_SEED) -> Dataset:
    """Generate ``n`` profiles (Faker, fixed seed) and COPY them with their identifiers and consents.

    Set-based on purpose: the services' per-item path is what B1–B3 measure, not what B4's set-up needs.
    Leaves the tables analysed and the sequences after the highest id.
    """
    import json

    from django.utils import timezone

    from profiles.attribute_names import attribute_key

    started = time.perf_counter()
    data = Dataset(profiles=n, seed=seed, emails=[])
    attr_bytes = 0
    with raw_connection() as conn:
        agreement_ids = dict(conn.execute("SELECT key, id FROM consents_agreement").fetchall())
        with conn.transaction():
            now = timezone.now()
            with conn.cursor().copy(
                "COPY profiles_attributedefinition (name, key, type, description, created_at, created_by) FROM STDIN"
            ) as copy:
                for name, type_ in ATTRIBUTE_TYPES.items():
                    copy.write_row((name, attribute_key(name), type_, "", now, "bench"))
            rows = _profile_rows(n, seed)
            while True:
                chunk = [row for _, row in zip(range(CHUNK), rows, strict=False)]
                if not chunk:
                    break
                cur = conn.cursor()
                with cur.copy(f"COPY profiles_profile ({', '.join(PROFILE_COLUMNS)}) FROM STDIN") as copy:
                    for profile, _, _ in chunk:
                        attributes = json.dumps(profile[17], separators=(",", ":"))
                        attr_bytes += len(attributes)
                        copy.write_row((*profile[:17], attributes, *profile[18:]))
                        data.emails.append(profile[1])
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
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('profiles_profile', 'id'), "
                "(SELECT max(id) FROM profiles_profile))"
            )
        conn.execute("ANALYZE profiles_profile, profiles_identifier, consents_consentstate, consents_agreement")
    data.attributes_bytes = attr_bytes / max(n, 1)
    data.seconds = time.perf_counter() - started
    return data


# --- timing ---------------------------------------------------------------------------------------


@dataclass
class Stats:
    name: str
    samples: list[float] = field(default_factory=list)  # seconds per call
    wall: float = 0.0  # seconds the calls took end to end (loop included)
    errors: int = 0

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def rps(self) -> float:
        return len(self.samples) / self.wall if self.wall else 0.0

    def line(self, width: int = 22) -> str:
        errors = f"  errors={self.errors}" if self.errors else ""
        return (
            f"{self.name:<{width}} n={len(self.samples):<6} p50={ms(self.p50)}  p95={ms(self.p95)}  "
            f"mean={ms(self.mean)}  req/s={self.rps:8.0f}{errors}"
        )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.3f} ms"


def run_interleaved(
    targets: dict[str, Callable[[object], object]], items: Sequence, *, rounds: int = 5, warmup: int = 200
) -> dict[str, Stats]:
    """Time each target on the same items, in ``rounds`` interleaved slices so drift hits all alike.

    A target returns something falsy-or-True: ``False`` counts as an error (e.g. a non-200 response).
    """
    for fn in targets.values():
        for item in items[:warmup]:
            fn(item)
    stats = {name: Stats(name) for name in targets}
    size = max(1, len(items) // rounds)
    clock = time.perf_counter
    for r in range(rounds):
        part = items[r * size : (r + 1) * size] if r < rounds - 1 else items[r * size :]
        for name, fn in targets.items():
            s = stats[name]
            samples = s.samples
            begin = clock()
            for item in part:
                t = clock()
                ok = fn(item)
                samples.append(clock() - t)
                if ok is False:
                    s.errors += 1
            s.wall += clock() - begin
    return stats


def sample(values: Sequence, k: int, *, seed: int = DEFAULT_SEED) -> list:
    """k values drawn with replacement (a fixed seed), the lookups' random keys."""
    rng = random.Random(seed + 1)
    return [values[rng.randrange(len(values))] for _ in range(k)]


# --- reporting ------------------------------------------------------------------------------------


def machine() -> str:
    """One line: cores, CPU, Python, PostgreSQL server version, date."""
    from django.db import connection

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    import django

    return (
        f"machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, Django {django.get_version()}, "
        f"PostgreSQL {pg}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def print_lines(lines: Iterable[str]) -> None:
    for line in lines:
        print(line, flush=True)


def verdict(value: float, goal: float, *, at_most: bool) -> str:
    met = value <= goal if at_most else value >= goal
    return f"(goal {'≤' if at_most else '≥'} {goal:g}: {'met' if met else 'MISSED'})"


# --- helpers added for B1–B3 (bench/b1_b3_batch.py) ------------------------------------------------


def profile_row_chunks(n: int, size: int, *, seed: int = DEFAULT_SEED):
    """The rows of ``_profile_rows(n, seed)`` in lists of ``size``: one chunk in memory at a time (1,000,000 runs)."""
    rows = _profile_rows(n, seed)
    while True:
        chunk = [row for _, row in zip(range(size), rows, strict=False)]
        if not chunk:
            return
        yield chunk


def load_average() -> str:
    """``uptime``'s load averages (1, 5, 15 min), to print with figures taken on a shared machine."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return "load average: ?"
    return f"load average: {one}, {five}, {fifteen}"
