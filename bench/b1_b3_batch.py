"""B1–B3: the set-based batch upsert ``profiles_upsert_many`` — new, updated and unchanged profiles.

Baselines measured in the same run on the same tables and indexes:

* ``COPY`` of the same rows, pre-built (tuples, attributes already JSON), into ``profiles_profile`` and
  ``profiles_identifier`` from a truncated state, in transactions of ``--chunk`` rows (the batch's commit size);
  measured at the start and at the end of each round, the mean is that round's baseline;
* Django ``bulk_create(update_conflicts=True)`` of the same rows (profiles, then their identifiers), model
  instances pre-built.

Goals: B1 (all new) ≥ 0.5 of COPY's rows/s and ≥ 5× bulk_create; B2 (every row updates a profile) ≥ 0.4;
B3 (the B2 batch sent again, nothing changes) ≥ 0.6 with zero new events. Batches of ``--chunk`` (1,000, the
API's limit). Items carry ``agreements`` (three consents) only in the second part (``--consent-profiles``):
the batch then sets them with ``consents_set_many`` (states, ledger records, events set-based). Its goals,
against a COPY of the same rows including the consent states and ledger records: B1 with agreements ≥ 0.3;
B3 with agreements (nothing changes) ≥ 0.5 with zero new ledger records and zero new events.
``--rounds`` (default 3) repeats COPY, bulk_create, B1, B2, B3, COPY; the ratios printed are the medians.

    .venv/bin/python bench/b1_b3_batch.py --profiles 10000
    .venv/bin/python bench/b1_b3_batch.py --profiles 1000000 --rounds 1 --consent-profiles 0 \
        --bulk-create-profiles 50000 --progress
    .venv/bin/python bench/b1_b3_batch.py --profiles 2000 --cprofile        # where the batch's time goes

The last lines are the figures and the ratios. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import pstats
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SOURCE = "bench"
ACTOR = "bench b1-b3"
# Its own database: B4 (crm_bench) may run at the same time and drops its database at the end.
DEFAULT_DB = f"{common.DEFAULT_DB}_b1_b3"
# Native fields sent by the items: model name -> index in common._profile_rows' profile tuple.
NATIVE = {
    "first_name": 5,
    "last_name": 6,
    "company": 8,
    "address": 9,
    "city": 10,
    "zip_code": 12,
    "country_code": 13,
    "birth_date": 14,
    "sex": 15,
}
IDENTIFIER_COLUMNS = "profile_id, kind, value, first_seen, last_seen"
CONSENT_STATE_COLUMNS = "profile_id, agreement_id, status, changed_at, source"
CONSENT_RECORD_COLUMNS = (
    "client_id, seq, agreement_id, text_id, old_status, new_status, source, actor, ip_address, user_agent, details, "
    "created_at, prev_hash, hash"
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=10_000, help="profiles per phase (default 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="items per batch call and rows per COPY transaction")
    parser.add_argument(
        "--consent-profiles",
        type=int,
        default=None,
        help="profiles of the with-agreements part (default: --profiles; 0 skips it)",
    )
    parser.add_argument(
        "--bulk-create-profiles", type=int, default=None, help="profiles of the bulk_create baseline (default: all)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of COPY/bulk_create/B1/B2/B3/COPY (default 3)")
    parser.add_argument("--seed", type=int, default=common.DEFAULT_SEED)
    parser.add_argument(
        "--db", default=DEFAULT_DB, help=f"benchmark database (default {DEFAULT_DB}; created, dropped at the end)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--cprofile", action="store_true", help="cProfile the batch calls (figures are then inflated)")
    parser.add_argument("--top", type=int, default=30, help="functions shown per cProfile table")
    parser.add_argument("--progress", action="store_true", help="print progress every 100 chunks (long runs)")
    args = parser.parse_args(argv)
    if args.consent_profiles is None:
        args.consent_profiles = args.profiles
    if args.bulk_create_profiles is None:
        args.bulk_create_profiles = args.profiles
    return args


# --- data: one generator, three shapes (batch items, COPY rows, model instances) ---------------------------


def row_chunks(n: int, size: int, seed: int):
    """``common.profile_row_chunks`` with each phone made unique: common draws 7 random digits per phone, which
    collide well before 1,000,000 profiles (a unique violation for COPY, a merge for the batch). The phone keeps
    its drawn mobile prefix and takes the profile number as its last 7 digits (still a valid Polish mobile)."""
    for chunk in common.profile_row_chunks(n, size, seed=seed):
        out = []
        for profile, identifiers, consents in chunk:
            if profile[2] is not None:
                phone = f"{profile[2][:5]}{profile[0]:07d}"
                profile = (*profile[:2], phone, *profile[3:])
                identifiers = [(k, phone if k == "phone" else v) for k, v in identifiers]
            out.append((profile, identifiers, consents))
        yield out


def first_of_each_kind(identifiers) -> dict[str, str]:
    """A ProfileInput holds one value per kind: the second uuid of a quarter of the profiles is not sent."""
    out: dict[str, str] = {}
    for kind, value in identifiers:
        out.setdefault(kind, value)
    return out


def new_item(row, *, consents: bool):
    from profiles.services import ProfileInput

    profile, identifiers, consent_rows = row
    return ProfileInput(
        identifiers=first_of_each_kind(identifiers),
        fields={name: profile[i] for name, i in NATIVE.items() if profile[i] is not None},
        attributes=dict(profile[17]),
        agreements={key: status == "granted" for _, key, status, _, _ in consent_rows} if consents else {},
    )


def update_item(row, *, consents: bool):
    """The same profile sent again with one native field and three of its ten attributes changed
    (and, with consents, the e-mail consent flipped): every item updates an existing profile."""
    item = new_item(row, consents=consents)
    pid = row[0][0]
    item.fields["address"] = f"{item.fields['address']} / {pid % 90 + 10}"
    attrs = item.attributes
    attrs["loyaltyPoints"] += 100
    attrs["segment"] = common.SEGMENTS[(common.SEGMENTS.index(attrs["segment"]) + 1) % len(common.SEGMENTS)]
    attrs["lastOrderDate"] = "2026-11-23"
    if consents:
        item.agreements["email"] = not item.agreements["email"]
    return item


def copy_rows(chunk, agreement_ids: dict | None = None):
    """The rows the batch writes for these profiles, pre-built for COPY (ids as generated: 1..n)."""
    profiles, identifiers, states, records = [], [], [], []
    for profile, idents, consents in chunk:
        profiles.append((*profile[:17], json.dumps(profile[17]), *profile[18:]))
        identifiers.extend((profile[0], k, v, profile[20], profile[20]) for k, v in first_of_each_kind(idents).items())
        if agreement_ids is None:
            continue
        prev = "0" * 64
        for seq, (pid, key, status, changed_at, source) in enumerate(consents, start=1):
            states.append((pid, agreement_ids[key], status, changed_at, source))
            digest = hashlib.sha256(f"{prev}{pid}{seq}{key}{status}".encode()).hexdigest()
            records.append(
                (
                    pid,
                    seq,
                    agreement_ids[key],
                    None,
                    "",
                    status,
                    source,
                    ACTOR,
                    None,
                    "",
                    "{}",
                    changed_at,
                    prev,
                    digest,
                ),
            )
            prev = digest
    return profiles, identifiers, states, records


def model_instances(chunk):
    from profiles.models import Profile

    out = []
    for profile, idents, _ in chunk:
        instance = Profile(
            email=profile[1],
            phone=profile[2],
            custom_id=profile[3],
            uuid=profile[4],
            **{name: profile[i] for name, i in NATIVE.items()},
            attributes=profile[17],
            correlation_id=profile[18],
            last_activity_date=profile[19],
        )
        out.append((instance, first_of_each_kind(idents)))
    return out


# --- phases --------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    rows: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    events: int | None = None  # new rows in profiles_event during the phase
    records: int | None = None  # new consent ledger records during the phase
    samples: list[float] = field(default_factory=list)  # seconds per chunk

    @property
    def rps(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        extra = ""
        if self.statuses:
            extra += "  " + " ".join(f"{k}={v}" for k, v in sorted(self.statuses.items()))
        if self.events is not None:
            extra += f"  new_events={self.events}"
        if self.records is not None:
            extra += f"  new_ledger_records={self.records}"
        chunks = ""
        if len(self.samples) > 1:
            chunks = f"  chunk p50={common.percentile(self.samples, 50):.3f} max={max(self.samples):.3f} s"
        return f"{self.name:<34} rows={self.rows:<8} {self.seconds:8.2f} s {self.rps:7.0f} rows/s{chunks}{extra}"


def timed(phase: Phase, payloads, fn, *, progress: bool, profiler: cProfile.Profile | None = None) -> Phase:
    """Time ``fn`` on each payload; the generator builds the payloads outside the clock."""
    clock = time.perf_counter
    for n, (rows, payload) in enumerate(payloads, start=1):
        if profiler:
            profiler.enable()
        begin = clock()
        result = fn(payload)
        spent = clock() - begin
        phase.seconds += spent
        phase.samples.append(spent)
        if profiler:
            profiler.disable()
        phase.rows += rows
        if result is not None:
            phase.statuses.update(r.status for r in result)
        if progress and n % 100 == 0:
            print(f"  … {phase.name}: {phase.rows} rows, {phase.rps:.0f} rows/s", flush=True)
    return phase


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # CASCADE empties every table referencing profiles (identifiers, events, consent states, merges, …);
        # the ledger references profiles by number only. Attribute definitions and agreements stay.
        cursor.execute("TRUNCATE profiles_profile, consents_consentrecord RESTART IDENTITY CASCADE")


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_profile, profiles_identifier")


def events_table_exists() -> bool:
    from django.db import connection

    return "profiles_event" in connection.introspection.table_names()


def count_events() -> int | None:
    from django.db import connection

    if not events_table_exists():
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM profiles_event")
        return cursor.fetchone()[0]


def count_records() -> int:
    from consents.models import ConsentRecord

    return ConsentRecord.objects.count()


def define_attributes() -> None:
    """The ten attribute definitions, as after the first batch that used them (never truncated)."""
    from profiles.attribute_names import attribute_key
    from profiles.models import AttributeDefinition

    AttributeDefinition.objects.bulk_create(
        [AttributeDefinition(name=n, key=attribute_key(n), type=t) for n, t in common.ATTRIBUTE_TYPES.items()],
        ignore_conflicts=True,
    )


def phase_copy(args, n: int, name: str, *, consents: bool) -> Phase:
    from django.db import connection, transaction

    from consents.models import Agreement

    truncate()
    agreement_ids = dict(Agreement.objects.values_list("key", "id")) if consents else None

    def payloads():
        for chunk in row_chunks(n, args.chunk, args.seed):
            yield len(chunk), copy_rows(chunk, agreement_ids)

    def write(payload):
        profiles, identifiers, states, records = payload
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.copy(f"COPY profiles_profile ({', '.join(common.PROFILE_COLUMNS)}) FROM STDIN") as copy:
                for row in profiles:
                    copy.write_row(row)
            with cursor.copy(f"COPY profiles_identifier ({IDENTIFIER_COLUMNS}) FROM STDIN") as copy:
                for row in identifiers:
                    copy.write_row(row)
            if states:
                with cursor.copy(f"COPY consents_consentstate ({CONSENT_STATE_COLUMNS}) FROM STDIN") as copy:
                    for row in states:
                        copy.write_row(row)
                with cursor.copy(f"COPY consents_consentrecord ({CONSENT_RECORD_COLUMNS}) FROM STDIN") as copy:
                    for row in records:
                        copy.write_row(row)

    return timed(Phase(name), payloads(), write, progress=args.progress)


def phase_bulk_create(args, n: int, tag: str = "") -> Phase:
    from django.db import transaction

    from profiles.models import Identifier, Profile
    from profiles.services.batch import UPDATABLE

    truncate()

    def payloads():
        for chunk in row_chunks(n, args.chunk, args.seed):
            yield len(chunk), model_instances(chunk)

    def write(payload):
        with transaction.atomic():
            profiles = Profile.objects.bulk_create(
                [p for p, _ in payload],
                update_conflicts=True,
                unique_fields=["id"],
                update_fields=list(UPDATABLE),
            )
            Identifier.objects.bulk_create(
                [
                    Identifier(profile_id=p.pk, kind=kind, value=value)
                    for p, (_, idents) in zip(profiles, payload, strict=True)
                    for kind, value in idents.items()
                ],
                update_conflicts=True,
                unique_fields=["kind", "value"],
                update_fields=["profile", "last_seen"],
            )

    return timed(Phase(f"bulk_create(update_conflicts){tag}"), payloads(), write, progress=args.progress)


def phase_batch(args, n: int, name: str, make_item, *, consents: bool, profiler=None) -> Phase:
    from profiles.services.batch import profiles_upsert_many

    def payloads():
        for chunk in row_chunks(n, args.chunk, args.seed):
            yield len(chunk), [make_item(row, consents=consents) for row in chunk]

    before, records_before = count_events(), count_records()
    phase = timed(
        Phase(name),
        payloads(),
        lambda items: profiles_upsert_many(items=items, source=SOURCE, actor=ACTOR),
        progress=args.progress,
        profiler=profiler,
    )
    after = count_events()
    phase.events = None if before is None else after - before
    phase.records = count_records() - records_before if consents else None
    return phase


def profile_table(profiler: cProfile.Profile, title: str, top: int) -> str:
    out = io.StringIO()
    out.write(f"cProfile: {title}\n")
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def b3_steps(args) -> tuple[int, str]:
    """Queries of one B3 batch call of --chunk items, and how its time splits: validation (``_clean``, pure
    Python, in identity/input.py) against the rest (resolution, writes, signals). Median of three direct calls."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from consents.models import Agreement
    from profiles.services.attributes import AttributeCatalog
    from profiles.services.batch import profiles_upsert_many
    from profiles.services.identity.input import input_clean as _clean

    chunk = next(row_chunks(args.chunk, args.chunk, args.seed))
    items = [update_item(r, consents=False) for r in chunk]
    with CaptureQueriesContext(connection) as captured:
        profiles_upsert_many(items=items, source=SOURCE, actor=ACTOR)
    totals, cleans = [], []
    for _ in range(3):
        begin = time.perf_counter()
        profiles_upsert_many(items=items, source=SOURCE, actor=ACTOR)
        totals.append(time.perf_counter() - begin)
        catalog = AttributeCatalog.load()
        agreements = {a.key: a for a in Agreement.objects.filter(is_active=True)}
        begin = time.perf_counter()
        for item in items:
            _clean(data=item, catalog=catalog, agreements=agreements)
        cleans.append(time.perf_counter() - begin)
    total, clean = sorted(totals)[1], sorted(cleans)[1]
    return len(captured.captured_queries), (
        f"one B3 call of {args.chunk} items: {total * 1000:.0f} ms, of which validation (_clean) "
        f"{clean * 1000:.0f} ms ({clean / total:.0%}), the rest {(total - clean) * 1000:.0f} ms"
    )


# --- main ----------------------------------------------------------------------------------------------


def main(argv=None) -> None:
    args = parse_args(argv)
    common.setup_django(args.db)
    try:
        run(args)
    finally:
        if not args.keep:
            common.drop_database(args.db)


def ratio_line(label: str, value: float, goal: float | None = None) -> str:
    verdict = f" {common.verdict(value, goal, at_most=False)}" if goal is not None else ""
    return f"ratio {label:<44} = {value:6.2f}x{verdict}"


def run(args) -> None:
    n, m = args.profiles, args.consent_profiles
    define_attributes()
    events_absent = not events_table_exists()
    started = time.perf_counter()
    profilers = {k: cProfile.Profile() for k in ("B1", "B2", "B3")} if args.cprofile else {}
    log = []  # phase lines as they come (also printed at the end)

    def done(phase: Phase) -> Phase:
        log.append(phase.line())
        print(f"[{time.perf_counter() - started:7.1f} s] {phase.line()}", flush=True)
        return phase

    # Each round: COPY, bulk_create, B1, B2, B3, COPY again; its ratios use the mean of its two COPY runs, so
    # load drift on a shared machine hits baseline and batch alike; the result is the median over rounds.
    rounds: list[dict[str, float]] = []
    b3_events: list[int | None] = []
    for r in range(1, args.rounds + 1):
        tag = f" #{r}" if args.rounds > 1 else ""
        copy1 = done(phase_copy(args, n, f"COPY baseline (start){tag}", consents=False))
        bulk = done(phase_bulk_create(args, args.bulk_create_profiles, tag)) if args.bulk_create_profiles else None
        truncate()
        b1 = done(phase_batch(args, n, f"B1 new{tag}", new_item, consents=False, profiler=profilers.get("B1")))
        analyze()
        b2 = done(phase_batch(args, n, f"B2 update{tag}", update_item, consents=False, profiler=profilers.get("B2")))
        b3 = done(phase_batch(args, n, f"B3 unchanged{tag}", update_item, consents=False, profiler=profilers.get("B3")))
        if r == 1:
            q_b3, b3_split = b3_steps(args)
        copy2 = done(phase_copy(args, n, f"COPY baseline (end){tag}", consents=False))
        copy_rps = (copy1.rows + copy2.rows) / (copy1.seconds + copy2.seconds)
        rounds.append(
            {
                "copy": copy_rps,
                "B1": b1.rps / copy_rps,
                "bulk": b1.rps / bulk.rps if bulk else 0.0,
                "B2": b2.rps / copy_rps,
                "B3": b3.rps / copy_rps,
            }
        )
        b3_events.append(b3.events)

    with_consents = []
    if m:
        copy_c = done(phase_copy(args, m, "COPY baseline + consent rows", consents=True))
        truncate()
        b1c = done(phase_batch(args, m, "B1 new, with agreements", new_item, consents=True))
        analyze()
        b2c = done(phase_batch(args, m, "B2 update, with agreements", update_item, consents=True))
        b3c = done(phase_batch(args, m, "B3 unchanged, with agreements", update_item, consents=True))
        copy_c2 = done(phase_copy(args, m, "COPY baseline + consent rows (end)", consents=True))
        with_consents = [b1c, b2c, b3c]
        copy_c_rps = (copy_c.rows + copy_c2.rows) / (copy_c.seconds + copy_c2.seconds)

    if profilers:
        for key, profiler in profilers.items():
            print(profile_table(profiler, f"{key} batch calls, {n} profiles", args.top))

    def median_line(label: str, key: str, goal: float | None) -> str:
        values = [r[key] for r in rounds]
        each = f"  (rounds: {', '.join(f'{v:.2f}' for v in values)})" if len(values) > 1 else ""
        return ratio_line(label, statistics.median(values), goal) + each

    copy_median = statistics.median(r["copy"] for r in rounds)
    lines = [
        "",
        common.machine(),
        common.load_average(),
        f"B1-B3 batch upsert: profiles={n} chunk={args.chunk} rounds={args.rounds} consent_profiles={m} "
        f"bulk_create_profiles={args.bulk_create_profiles} seed={args.seed}"
        f"{'  (cProfile on: figures inflated)' if args.cprofile else ''}",
        f"queries per batch of {args.chunk} unchanged items (B3): {q_b3}",
        b3_split,
        *log,
        f"COPY baseline rows/s (mean of each round's start and end; median of rounds) = {copy_median:.0f}",
        "events table absent" if events_absent else f"new events in B3: {sum(b3_events)} (must be 0)",
        median_line("B1 rows/s / COPY rows/s", "B1", 0.5),
    ]
    if args.bulk_create_profiles:
        lines.append(median_line("B1 rows/s / bulk_create rows/s (no goal)", "bulk", None))
    lines += [
        median_line("B2 rows/s / COPY rows/s", "B2", 0.4),
        median_line("B3 rows/s / COPY rows/s", "B3", 0.6),
    ]
    if with_consents:
        b1c, b2c, b3c = with_consents
        quiet = b3c.records == 0 and not b3c.events
        lines += [
            f"with agreements ({m} profiles, three consents each; consents_set_many per batch call):",
            f"COPY incl. consent rows rows/s (mean of start and end) = {copy_c_rps:.0f}",
            ratio_line("B1+agreements / COPY incl. consent rows", b1c.rps / copy_c_rps, 0.3),
            ratio_line("B2+agreements / COPY incl. consent rows", b2c.rps / copy_c_rps),
            ratio_line("B3+agreements / COPY incl. consent rows", b3c.rps / copy_c_rps, 0.5),
            f"goal B3+agreements writes nothing: new_ledger_records={b3c.records} new_events={b3c.events} "
            f"(goal 0 and 0: {'met' if quiet else 'MISSED'})",
            ratio_line("B1+agreements / COPY rows/s (profiles only)", b1c.rps / copy_median),
            ratio_line("B3+agreements / COPY rows/s (profiles only)", b3c.rps / copy_median),
        ]
    common.print_lines(lines)
    if not events_absent and (any(b3_events) or (with_consents and with_consents[2].events)):
        raise SystemExit("B3 wrote events for unchanged rows")
    if with_consents and with_consents[2].records:
        raise SystemExit("B3 with agreements wrote ledger records for unchanged consents")


if __name__ == "__main__":
    main()
