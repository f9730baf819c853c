"""B8: the cost of system events on the batch upsert — ``profiles_upsert_many`` with events on vs off.

Baseline in the same run, on the same tables and indexes: the same batches with the receivers switched off
(``SYSTEM_EVENTS_ENABLED = False``). Two phases, each timed in both modes, interleaved over ``--rounds``
rounds from truncated tables so drift hits both alike:

* new: every item creates a profile (one ``profile.created`` per profile);
* update: the same profiles sent again with one native field and three attributes changed (one
  ``profile.updated`` per profile carrying four old/new pairs).

Goal: rows/s with events ≥ 0.8 of rows/s without.

    .venv/bin/python bench/b8_events.py --profiles 10000

The last lines are the figures and the ratios. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

SOURCE = "bench"
ACTOR = "bench b8"
NATIVE = {"first_name": 5, "last_name": 6, "address": 9, "city": 10, "zip_code": 12, "country_code": 13, "sex": 15}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=10_000, help="profiles per phase (default 10000)")
    parser.add_argument("--chunk", type=int, default=1000, help="items per profiles_upsert_many call (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per mode (default 3)")
    parser.add_argument("--seed", type=int, default=common.DEFAULT_SEED)
    parser.add_argument("--db", default="crm_bench_b8", help="benchmark database (created, dropped at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    return parser.parse_args(argv)


def new_item(row):
    from profiles.services import ProfileInput

    profile, identifiers, _ = row
    first: dict[str, str] = {}
    for kind, value in identifiers:
        first.setdefault(kind, value)
    return ProfileInput(
        identifiers=first,
        fields={name: profile[i] for name, i in NATIVE.items() if profile[i] is not None},
        attributes=dict(profile[17]),
    )


def update_item(row):
    item = new_item(row)
    item.fields["address"] = f"{item.fields['address']} / 2"
    item.attributes["loyaltyPoints"] += 100
    item.attributes["segment"] = "vip" if item.attributes["segment"] != "vip" else "new"
    item.attributes["lastOrderDate"] = "2026-11-23"
    return item


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE profiles_profile, profiles_event RESTART IDENTITY CASCADE")
        cursor.execute("ANALYZE profiles_profile, profiles_identifier, profiles_event")


def run_batches(items, chunk: int) -> float:
    from profiles.services.batch import profiles_upsert_many

    started = time.perf_counter()
    for start in range(0, len(items), chunk):
        results = profiles_upsert_many(items=items[start : start + chunk], source=SOURCE, actor=ACTOR)
        errors = [r for r in results if getattr(r, "status", "") == "failed"]
        if errors:
            raise SystemExit(f"batch item failed: {errors[0]}")
    return time.perf_counter() - started


def main(argv=None) -> None:
    args = parse_args(argv)
    common.setup_django(args.db)
    try:
        run(args)
    finally:
        if not args.keep:
            common.drop_database(args.db)


def run(args) -> None:
    from django.test import override_settings

    from profiles.models import Event

    rows = list(common._profile_rows(args.profiles, args.seed))
    new_items = [new_item(row) for row in rows]
    update_items = [update_item(row) for row in rows]
    timings: dict[tuple[str, str], list[float]] = {}
    events: dict[str, int] = {}
    for r in range(args.rounds):
        modes = ("off", "on") if r % 2 == 0 else ("on", "off")
        for mode in modes:
            with override_settings(SYSTEM_EVENTS_ENABLED=mode == "on"):
                truncate()
                timings.setdefault((mode, "new"), []).append(run_batches(new_items, args.chunk))
                timings.setdefault((mode, "update"), []).append(run_batches(update_items, args.chunk))
                events[mode] = Event.objects.count()
    n = args.profiles
    lines = [
        common.machine(),
        f"data: {n} profiles per phase, batches of {args.chunk}, {args.rounds} interleaved rounds per mode",
        f"system events written per round: on={events['on']}, off={events['off']}",
    ]
    for phase in ("new", "update"):
        off = n / statistics.median(timings[("off", phase)])
        on = n / statistics.median(timings[("on", phase)])
        lines.append(f"B8 {phase:<6} events off: {off:9.0f} rows/s   events on: {on:9.0f} rows/s")
        lines.append(f"B8 {phase:<6} ratio on/off = {on / off:.2f} {common.verdict(on / off, 0.8, at_most=False)}")
    common.print_lines(lines)


if __name__ == "__main__":
    main()
