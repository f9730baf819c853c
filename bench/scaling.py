"""Scale-out figures for docs/scaling.md, measured on this machine.

    flock /tmp/bench.lock .venv/bin/python bench/scaling.py --part lookup  --profiles 10000
    flock /tmp/bench.lock .venv/bin/python bench/scaling.py --part batch   --rows 10000
    flock /tmp/bench.lock .venv/bin/python bench/scaling.py --part replica --profiles 100000

- lookup: ``GET /v4/clients/by-email/{email}`` requests/s under gunicorn with 2 and with 4 workers, a Python
  load generator on loopback (threads with keep-alive connections); baseline: the 2-worker run.
- batch: profile rows/s of batch jobs (``POST /v4/clients/batch``'s path: ``profiles_batch_submit``, jobs of
  ``--job-items``) run by 1 and by 2 worker processes, on the database backend (``manage.py db_worker``) and on
  Celery over Redis (``celery -A crm worker``); baseline: 1 database worker. The workers are started and idle
  (their heartbeats are in) before the jobs are submitted; the clock runs from submission to the last job done.
- replica: a filtered count (the list's filter language: custom attribute, city, recognized; this branch has no
  segments, so the count a segment would run) on a streaming replica and on its primary (a fresh pair from
  the embedded binaries, ``bench/pg_pair.py``); baseline: the primary.

There are no goals for these figures in the benchmark table; each part prints its figures, the ratios and the
machine's load as its last lines.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["lookup", "batch", "replica"], required=True)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=10_000, help="batch rows per run (batch part)")
    parser.add_argument("--job-items", type=int, default=500, help="items per batch job (batch part)")
    parser.add_argument("--batch-rounds", type=int, default=3, help="runs of each configuration (batch part)")
    parser.add_argument("--threads", type=int, default=8, help="load generator threads (lookup part)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per gunicorn run (lookup part)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved count rounds (replica part)")
    parser.add_argument("--db", default="crm_bench_scaling")
    return parser.parse_args(argv)


# --- lookup under gunicorn ------------------------------------------------------------------------


def part_lookup(args) -> list[str]:
    common.setup_django(args.db)
    from bench import b4_lookup as b4
    from crm.services import api_key_create

    data = common.load_profiles(args.profiles)
    _, secret = api_key_create(name="scaling", scopes=["read"], rate_limit="")
    from django.conf import settings

    settings.API_RATE_LIMIT = ""  # the limiter is not what is measured (the workers read the env below)
    os.environ["API_RATE_LIMIT"] = ""
    os.environ["GUNICORN_ACCESS_LOG"] = "0"
    paths = [b4.path_of(b4.ENDPOINT, e) for e in common.sample(data.emails, 200_000)]
    results = {}
    for workers in (2, 4, 2, 4):  # twice each, alternating, so drift hits both
        proc, port = b4.start_gunicorn(args.db, workers)
        try:
            b4.load(port, paths[:500], secret, threads=args.threads, time_limit=3, name="warm-up")
            stats = b4.load(
                port, paths, secret, threads=args.threads, time_limit=args.seconds, name=f"{workers} workers"
            )
        finally:
            b4.stop(proc)
        results.setdefault(workers, []).append(stats)
    lines = [data.describe(), common.machine()]
    best = {}
    for workers, runs in results.items():
        for stats in runs:
            lines.append(stats.line(14))
        best[workers] = max(s.rps for s in runs)
    lines.append(f"lookup req/s, gunicorn 2 workers = {best[2]:8.0f} (best of 2 runs, {args.threads} client threads)")
    lines.append(f"lookup req/s, gunicorn 4 workers = {best[4]:8.0f} (best of 2 runs)")
    lines.append(f"ratio 4 workers / 2 workers      = {best[4] / best[2]:6.2f}x")
    common.drop_database(args.db)
    return lines


# --- batch rows/s on each backend -----------------------------------------------------------------


def _worker_env(args, backend: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_DB_NAME": args.db,
        "PYTHONPATH": str(common.ROOT),
        "WORKER_HEARTBEAT_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }
    if backend == "celery":
        env.update(TASKS_BACKEND="django_tasks_celery.CeleryBackend", CELERY_BROKER_URL=REDIS_URL)
    return env


def _start_workers(args, backend: str, count: int, run: int) -> list[subprocess.Popen]:
    procs = []
    for k in range(count):
        if backend == "db":
            cmd = [sys.executable, "manage.py", "db_worker", "--queue-name", "batches", "--interval", "0.05"]
            cmd += ["--no-startup-delay"]
        else:
            cmd = [sys.executable, "-m", "celery", "-A", "crm", "worker", "-Q", "batches", "--pool", "solo"]
            cmd += ["--hostname", f"bench{run}-{k}@%h", "--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
        procs.append(
            subprocess.Popen(
                cmd, cwd=common.ROOT, env=_worker_env(args, backend), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        )
    return procs


def _stop(procs) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _batch_run(args, backend: str, workers: int, run: int) -> float:
    from django.conf import settings
    from django.test.utils import override_settings

    from crm.models import Job, WorkerHeartbeat
    from profiles.services import ProfileInput
    from profiles.services.batch import profiles_batch_submit

    WorkerHeartbeat.objects.all().delete()
    procs = _start_workers(args, backend, workers, run)
    try:
        deadline = time.monotonic() + 90
        while WorkerHeartbeat.objects.filter(kind=backend).count() < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"{backend} workers did not start: {procs[0].stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        tasks = {"default": {**settings.TASKS["default"]}}
        if backend == "celery":
            tasks["default"].update(
                BACKEND="django_tasks_celery.CeleryBackend", OPTIONS={"CELERY_APP": "crm.celery.app"}
            )
        jobs = []
        with override_settings(TASKS=tasks):
            started = time.perf_counter()
            for j in range(0, args.rows, args.job_items):
                items = [
                    ProfileInput(
                        identifiers={"email": f"r{run}-{i}@scaling.example.com", "customId": f"R{run}-{i}"},
                        fields={"first_name": "Ann", "last_name": f"Batch{i}", "city": "Kraków"},
                        attributes={"loyaltyPoints": i, "segment": "new"},
                    )
                    for i in range(j, min(j + args.job_items, args.rows))
                ]
                jobs.append(profiles_batch_submit(items=items, source="api", actor="bench").pk)
            while Job.objects.filter(pk__in=jobs).exclude(status__in=["done", "failed"]).exists():
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
        failed = Job.objects.filter(pk__in=jobs, status="failed").count()
        if failed:
            raise RuntimeError(f"{failed} jobs failed")
        return args.rows / elapsed
    finally:
        _stop(procs)


def part_batch(args) -> list[str]:
    common.setup_django(args.db)
    import redis

    from crm.celery import app

    common.load_profiles(1000)  # attribute definitions and a populated table
    app.conf.broker_url = app.conf.result_backend = REDIS_URL
    redis.Redis.from_url(REDIS_URL).flushdb()
    results: dict[tuple[str, int], list[float]] = {}
    run = 0
    for _ in range(args.batch_rounds):  # every configuration once per round, alternating
        for backend in ("db", "celery"):
            for workers in (1, 2):
                run += 1
                results.setdefault((backend, workers), []).append(_batch_run(args, backend, workers, run))
    redis.Redis.from_url(REDIS_URL).flushdb()
    lines = [common.machine(), f"{args.rows} new profiles per run in jobs of {args.job_items}"]
    base = statistics.median(results[("db", 1)])
    for (backend, workers), values in results.items():
        middle = statistics.median(values)
        name = "database" if backend == "db" else "Celery/Redis"
        lines.append(
            f"batch rows/s, {name:<12} {workers} worker(s) = {middle:7.0f} median (runs: "
            f"{', '.join(f'{v:.0f}' for v in values)}); ratio to 1 database worker {middle / base:5.2f}x"
        )
    common.drop_database(args.db)
    return lines


# --- count on the replica vs the primary -------------------------------------------------------------


def part_replica(args) -> list[str]:
    from bench.pg_pair import PgPair

    with PgPair() as pair:
        os.environ["DATABASE_URL"] = pair.url("primary", args.db)
        os.environ["DATABASE_REPLICA_URL"] = pair.url("replica", args.db)
        os.environ["BENCH_DB_NAME"] = args.db
        common.setup_django(args.db)
        from django.db import connections

        from crm.replica import replica_reads
        from profiles.filters import ProfileFilterSet
        from profiles.models import Profile

        data = common.load_profiles(args.profiles)
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            (lsn,) = cursor.fetchone()
        waited = time.perf_counter()
        while True:
            with connections["replica"].cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
                if cursor.fetchone()[0]:
                    break
            time.sleep(0.05)
        caught_up = time.perf_counter() - waited
        params = {"attribute": ["loyaltyPoints:gt:500"], "anonymous": "false"}

        def count() -> int:
            filterset = ProfileFilterSet(params, queryset=Profile.objects.all())
            assert filterset.is_valid(), filterset.errors
            return filterset.qs.count()

        def on_replica() -> int:
            with replica_reads():
                return count()

        targets = {"primary": lambda _: count(), "replica": lambda _: on_replica()}
        stats = common.run_interleaved(targets, [0] * (args.rounds * 3), rounds=args.rounds, warmup=2)
        expected = count()
        assert on_replica() == expected
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            assert cursor.fetchone()[0]
        lines = [data.describe(), common.machine(), f"replica caught up {caught_up:.1f} s after the load"]
        lines.append(f"filtered count ({expected} of {args.profiles} profiles): {params}")
        for s in stats.values():
            lines.append(s.line(10))
        ratio = stats["replica"].p50 / stats["primary"].p50
        lines.append(
            f"count p50 primary = {common.ms(stats['primary'].p50)}, replica = {common.ms(stats['replica'].p50)}"
        )
        lines.append(f"ratio replica / primary (p50) = {ratio:5.2f}x")
        connections.close_all()
        return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    lines = {"lookup": part_lookup, "batch": part_batch, "replica": part_replica}[args.part](args)
    lines.append(f"load: {common.load_average()}")
    common.print_lines(lines)


if __name__ == "__main__":
    main()
