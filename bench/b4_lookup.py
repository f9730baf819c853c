"""B4: lookup by e-mail through the Synerise GET endpoint ``/v4/clients/by-email/{email}``.

Baseline in the same run, on the same tables: the raw psycopg queries the endpoint needs (the API key,
the profile by e-mail through the identifier table, its consents), prepared. Goals: endpoint p50 ≤ 2× those
queries in-process; endpoint requests/s ≥ 2× a stock DRF ``RetrieveAPIView`` + ``ModelSerializer`` of the same
profile, in-process and under gunicorn with a load generator on loopback.

    .venv/bin/python bench/b4_lookup.py --profiles 10000            # in-process (django.test.Client)
    .venv/bin/python bench/b4_lookup.py --profiles 10000 --http     # also under gunicorn with a load generator
    GUNICORN_WORKER_CLASS=gthread GUNICORN_THREADS=4 .venv/bin/python bench/b4_lookup.py --http   # threaded workers

The last lines are the figures and the ratios. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import os
import pstats
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

ENDPOINT = "/v4/clients/by-email/"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=10_000, help="profiles to generate (default 10000)")
    parser.add_argument("--requests", type=int, default=3000, help="timed lookups per target (default 3000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seed", type=int, default=common.DEFAULT_SEED)
    parser.add_argument("--db", default=common.DEFAULT_DB, help="benchmark database (created, dropped at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database (with --keep) instead of reloading")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="profile N endpoint requests, print top")
    parser.add_argument(
        "--server-side-binding",
        action="store_true",
        help="experiment: Django's psycopg server-side binding (automatic prepared statements)",
    )
    parser.add_argument("--http", action="store_true", help="also measure under gunicorn with a load generator")
    parser.add_argument("--http-requests", type=int, default=4000, help="requests per target under gunicorn")
    parser.add_argument("--http-threads", type=int, default=4, help="load generator threads (default 4)")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--http-slices", type=int, default=8, help="interleaved slices per target (default 8)")
    parser.add_argument("--http-time-limit", type=float, default=30.0, help="seconds per target at most")
    return parser.parse_args(argv)


# --- raw psycopg baseline -------------------------------------------------------------------------


def raw_sql():
    """The SQL the endpoint's queries boil down to, written by hand (same columns, same plan)."""
    from profiles.models import Profile

    columns = ", ".join(f'p."{f.column}"' for f in Profile._meta.concrete_fields)
    profile = (
        f"SELECT {columns} FROM profiles_profile p JOIN profiles_identifier i ON i.profile_id = p.id "
        "WHERE i.kind = %s AND i.value = %s ORDER BY p.id DESC LIMIT 1"
    )
    # One profile's consents, by a scalar id (an ANY(array) form costs four times as much prepared).
    consents = (
        "SELECT c.profile_id, a.key FROM consents_consentstate c JOIN consents_agreement a ON a.id = c.agreement_id "
        "WHERE c.profile_id = %s AND a.key = ANY(%s::text[]) AND c.status = %s"
    )
    api_key = (
        "SELECT id, name, prefix, secret_hash, scopes, is_active, created_at, created_by_id, last_used_at "
        "FROM crm_apikey WHERE prefix = %s AND is_active LIMIT 1"
    )
    return profile, consents, api_key


def raw_targets(conn, prefix: str):
    from consents.selectors import DEFAULT_KEYS

    profile_sql, consents_sql, key_sql = raw_sql()
    cur = conn.cursor()
    keys = list(DEFAULT_KEYS)

    def profile(email):
        cur.execute(profile_sql, ("email", email), prepare=True)
        return cur.fetchone() is not None

    def profile_consents(email):
        cur.execute(profile_sql, ("email", email), prepare=True)
        row = cur.fetchone()
        cur.execute(consents_sql, (row[0], keys, "granted"), prepare=True)
        cur.fetchall()
        return True

    def key_profile_consents(email):
        cur.execute(key_sql, (prefix,), prepare=True)
        cur.fetchone()
        return profile_consents(email)

    return profile, profile_consents, key_profile_consents


# --- Django in-process ----------------------------------------------------------------------------


def wsgi_caller(secret: str):
    """Call Django's WSGIHandler as a WSGI server would (request_started/finished, connection checks)."""
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def get(path: str) -> bool:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {secret}",
            "HTTP_ACCEPT": "application/json",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        statuses.clear()
        response = handler(environ, start_response)
        try:
            b"".join(response)
        finally:
            response.close()
        return statuses[0].startswith("200")

    return get


def path_of(base: str, email: str) -> str:
    return base + quote(email, safe="@+")


def queries_per_request(client, path: str) -> tuple[int, list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return len(captured.captured_queries), [q["sql"] for q in captured.captured_queries]


def breakdown(secret: str, emails: list[str]) -> list[str]:
    """Median cost of each step of the endpoint, called directly (no HTTP/WSGI/DRF around them)."""
    from rest_framework.renderers import JSONRenderer

    from crm.services import api_key_authenticate
    from profiles.documents import profile_document_by_identifier
    from profiles.selectors import profile_with_extras
    from profiles.services import identifier_normalize

    documents = [profile_document_by_identifier(kind="email", value=e) for e in emails]
    renderer = JSONRenderer()
    steps = {
        "api_key_authenticate": (lambda _: api_key_authenticate(secret=secret), emails),
        "identifier_normalize": (lambda e: identifier_normalize("email", e), emails),
        "profile_with_extras": (lambda e: profile_with_extras(kind="email", value=e), emails),
        "read + document": (lambda e: profile_document_by_identifier(kind="email", value=e), emails),
        "JSONRenderer.render": (renderer.render, documents),
    }
    lines = []
    for name, (fn, items) in steps.items():
        stats = common.run_interleaved({name: fn}, items, rounds=1, warmup=50)[name]
        lines.append(f"  step {name:<22} p50={common.ms(stats.p50)}")
    return lines


def run_cprofile(client, paths: list[str], top: int = 30) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for path in paths:
        client.get(path)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)
    print(f"cProfile of {len(paths)} endpoint requests (test client), by own time:")
    print(out.getvalue())


# --- gunicorn -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(db_name: str, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_DB_NAME": db_name,
        "PYTHONPATH": str(common.ROOT),
    }
    # The product's gunicorn.conf.py (read from the working directory; GUNICORN_WORKER_CLASS/GUNICORN_THREADS
    # choose threaded workers) with the bench's address, worker count and quieter logs. Both targets, one server.
    cmd = [sys.executable, "-m", "gunicorn", "crm.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    cmd += ["--log-level", "warning", "--graceful-timeout", "5"]
    proc = subprocess.Popen(cmd, cwd=common.ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                conn.close()
                return proc, port
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise RuntimeError("gunicorn did not answer /health within 60 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class LeanClient:
    """A minimal HTTP/1.1 GET client on one socket: the load generator's per-request cost stays small.

    The load generator shares the machine's cores with the server, so its own cost is a fixed overhead added
    to every request of both targets, which squeezes their ratio. ``http.client`` spends about 0.3 ms of CPU
    a request (header objects, the e-mail parser); this spends a tenth of that. It keeps the connection while
    the server does (threaded workers) and reconnects when it closes (sync workers close after each answer).
    """

    def __init__(self, port: int, headers: dict[str, str]):
        self.port = port
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def get(self, path: str) -> int:
        """Send ``GET path`` and read the whole answer; returns the status code."""
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.extra}\r\n".encode())
        buffer = b""
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the answer's headers")
            buffer += chunk
        head = buffer[:end].decode("latin-1").lower()
        status = int(head[9:12])
        length = None
        for line in head.split("\r\n")[1:]:
            if line.startswith("content-length:"):
                length = int(line[15:])
        body = len(buffer) - end - 4
        closing = "\r\nconnection: close" in head or length is None
        while (length is None or body < length) and (chunk := self.sock.recv(65536)):
            body += len(chunk)
        if closing:
            self.close()
        return status


def load(port: int, paths: list[str], secret: str, *, threads: int, time_limit: float, name: str) -> common.Stats:
    """Send each path once from ``threads`` clients (kept-alive connections where the server keeps them)."""
    stats = common.Stats(name)
    lock = threading.Lock()
    cursor = iter(range(len(paths)))
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
    deadline = time.monotonic() + time_limit

    def worker():
        client = LeanClient(port, headers)
        local, errors = [], 0
        clock = time.perf_counter
        while time.monotonic() < deadline:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            t = clock()
            try:
                ok = client.get(paths[index]) == 200
            except (OSError, ValueError):
                client.close()
                ok = False
            local.append(clock() - t)
            errors += not ok
        client.close()
        with lock:
            stats.samples.extend(local)
            stats.errors += errors

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    begin = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    stats.wall = time.perf_counter() - begin
    return stats


def run_http(args, secret: str, emails: list[str]) -> list[common.Stats]:
    from bench.urls import STOCK_PATH

    proc, port = start_gunicorn(args.db, args.http_workers)
    try:
        targets = {
            "gunicorn endpoint": [path_of(ENDPOINT, e) for e in emails],
            "gunicorn stock DRF": [path_of("/" + STOCK_PATH, e) for e in emails],
        }
        for name, paths in targets.items():  # warm-up: imports, connections, caches in every worker
            load(port, paths[:300], secret, threads=args.http_threads, time_limit=args.http_time_limit, name=name)
        results = {name: common.Stats(name) for name in targets}
        # Interleaved slices, like the in-process rounds: a burst of load from elsewhere on the machine falls on
        # both targets alike instead of on one half of one of them.
        slices = max(1, args.http_slices)
        size = -(-len(emails) // slices)
        for start in range(0, len(emails), size):
            for name, paths in targets.items():
                s = load(
                    port,
                    paths[start : start + size],
                    secret,
                    threads=args.http_threads,
                    time_limit=args.http_time_limit / slices,
                    name=name,
                )
                results[name].samples += s.samples
                results[name].wall += s.wall
                results[name].errors += s.errors
        return list(results.values())
    finally:
        stop(proc)


# --- main -----------------------------------------------------------------------------------------


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.server_side_binding:
        os.environ["BENCH_SERVER_SIDE_BINDING"] = "1"  # read by bench/settings.py, inherited by gunicorn
    common.setup_django(args.db, fresh=not args.reuse)
    try:
        run(args)
    finally:
        if not args.keep:
            common.drop_database(args.db)


def run(args) -> None:
    from django.test import Client

    from bench.urls import FLOOR_DJANGO_PATH, FLOOR_DRF_PATH, STOCK_PATH
    from crm.services import api_key_create
    from profiles.models import Profile

    if args.reuse and Profile.objects.exists():
        emails = list(Profile.objects.order_by("id").values_list("email", flat=True))
        data_line = f"data: reused database {args.db}, {len(emails)} profiles"
    else:
        data = common.load_profiles(args.profiles, seed=args.seed)
        emails, data_line = data.emails, data.describe()
    print(data_line, flush=True)
    with common.raw_connection() as conn:
        # Fresh COPYed tables have no planner statistics yet (autovacuum would gather them in production):
        # without them the consents subquery is planned on the wrong index.
        conn.execute("ANALYZE")
    # Rate limiting is on (every request is counted, as in production) with a limit the run never reaches.
    key, secret = api_key_create(
        name="bench b4", scopes=["read"], rate_limit=os.environ.get("BENCH_RATE_LIMIT", "100000000/day")
    )
    lookups = common.sample(emails, args.requests, seed=args.seed)
    client = Client(headers={"Authorization": f"Bearer {secret}", "Accept": "application/json"})

    # Correctness first: both views answer 200 with the profile asked for.
    for base, field in ((ENDPOINT, "email"), ("/" + STOCK_PATH, "email")):
        response = client.get(path_of(base, lookups[0]))
        assert response.status_code == 200 and response.json()[field] == lookups[0], response.content[:300]
    n_endpoint, sql_endpoint = queries_per_request(client, path_of(ENDPOINT, lookups[1]))
    n_stock, _ = queries_per_request(client, path_of("/" + STOCK_PATH, lookups[1]))
    print(f"queries per request: endpoint {n_endpoint}, stock DRF {n_stock}")
    for sql in sql_endpoint:
        print(f"  endpoint SQL: {sql[:160]}")

    if args.cprofile:
        run_cprofile(client, [path_of(ENDPOINT, e) for e in lookups[: args.cprofile]])

    with common.raw_connection() as conn:
        raw_profile, raw_profile_consents, raw_all = raw_targets(conn, key.prefix)
        wsgi_get = wsgi_caller(secret)
        stock_base = "/" + STOCK_PATH
        targets = {
            "raw SELECT (prepared)": raw_profile,
            "raw + consents": raw_profile_consents,
            "raw key+profile+cons.": raw_all,
            "endpoint (test client)": lambda e: client.get(path_of(ENDPOINT, e)).status_code == 200,
            "stock DRF (test client)": lambda e: client.get(path_of(stock_base, e)).status_code == 200,
            "endpoint (WSGIHandler)": lambda e: wsgi_get(path_of(ENDPOINT, e)),
            "stock DRF (WSGIHandler)": lambda e: wsgi_get(path_of(stock_base, e)),
            "floor: Django view": lambda e: client.get("/" + FLOOR_DJANGO_PATH).status_code == 200,
            "floor: DRF APIView": lambda e: client.get("/" + FLOOR_DRF_PATH).status_code == 200,
        }
        stats = common.run_interleaved(targets, lookups, rounds=args.rounds)
    steps = breakdown(secret, lookups[:1000])

    http_stats = (
        run_http(args, secret, common.sample(emails, args.http_requests, seed=args.seed + 7)) if args.http else []
    )

    raw, endpoint, stock = (
        stats["raw SELECT (prepared)"],
        stats["endpoint (test client)"],
        stats["stock DRF (test client)"],
    )
    needed = stats["raw key+profile+cons."]
    p50_ratio = endpoint.p50 / needed.p50
    rps_ratio = endpoint.rps / stock.rps
    wsgi_ratio = stats["endpoint (WSGIHandler)"].rps / stats["stock DRF (WSGIHandler)"].rps
    lines = [
        "",
        common.machine(),
        f"B4 lookup by e-mail: profiles={args.profiles} lookups={args.requests} rounds={args.rounds} seed={args.seed}"
        f"{' server_side_binding' if args.server_side_binding else ''}",
        "endpoint steps, called directly (median):",
        *steps,
        f"queries per request: endpoint {n_endpoint}, stock DRF {n_stock}",
        *(s.line(24) for s in stats.values()),
        *(s.line(24) for s in http_stats),
        f"ratio endpoint p50 / raw SELECT p50        = {endpoint.p50 / raw.p50:6.2f}x",
        f"ratio endpoint p50 / raw + consents p50    = {endpoint.p50 / stats['raw + consents'].p50:6.2f}x",
        f"ratio endpoint p50 / raw key+profile+cons. = {p50_ratio:6.2f}x {common.verdict(p50_ratio, 2, at_most=True)}",
        f"ratio endpoint req/s / stock DRF req/s     = {rps_ratio:6.2f}x {common.verdict(rps_ratio, 2, at_most=False)}",
        f"ratio (WSGIHandler) endpoint / stock req/s = {wsgi_ratio:6.2f}x "
        f"{common.verdict(wsgi_ratio, 2, at_most=False)}",
    ]
    if http_stats:
        worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
        lines.append(
            f"gunicorn: gunicorn.conf.py with {args.http_workers} workers, worker class {worker_class}, "
            f"threads {os.environ.get('GUNICORN_THREADS', '1')}; {args.http_threads} load-generator threads",
        )
        gun_endpoint, gun_stock = http_stats
        ratio = gun_endpoint.rps / gun_stock.rps
        lines.append(
            f"ratio gunicorn endpoint / stock req/s     = {ratio:6.2f}x {common.verdict(ratio, 2, at_most=False)}"
        )
    common.print_lines(lines)


if __name__ == "__main__":
    main()
