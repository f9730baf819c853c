"""Run by test_replica.py in a process of its own, on a fresh primary and its streaming replica
(DATABASE_URL, DATABASE_REPLICA_URL): prints, as JSON, what each step saw and on which server it ran."""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings_test")

import django

django.setup()

from django.db import connections  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from crm.errors import NotFound  # noqa: E402
from crm.replica import replica_reads, replica_usable_forget  # noqa: E402
from crm.services import api_key_create  # noqa: E402
from profiles.models import Profile  # noqa: E402
from profiles.selectors import profile_lookup  # noqa: E402
from profiles.services import ProfileInput, profile_upsert  # noqa: E402

seen = {"default": [], "replica": []}


def recorder(alias):
    def record(execute, sql, params, many, context):
        seen[alias].append(" ".join(sql.split()))
        return execute(sql, params, many, context)

    return record


def statements(fn):
    """Run fn, return (its result, the statements each server ran meanwhile)."""
    for alias in seen:
        seen[alias].clear()
    with (
        connections["default"].execute_wrapper(recorder("default")),
        connections["replica"].execute_wrapper(recorder("replica")),
    ):
        result = fn()
    return result, {alias: list(sqls) for alias, sqls in seen.items()}


def replica_has(email) -> bool:
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM profiles_profile WHERE email = %s", [email])
        return cursor.fetchone()[0] == 1


def wait_for_replica(email) -> float:
    start = time.monotonic()
    while not replica_has(email):
        if time.monotonic() - start > 15:
            raise SystemExit(f"the replica never saw {email}")
        time.sleep(0.05)
    return time.monotonic() - start


def lookup(email):
    try:
        return profile_lookup(kind="email", value=email).pk
    except NotFound:
        return None


def main():
    out = {}
    ann = profile_upsert(data=ProfileInput(identifiers={"email": "ann@example.com"}), source="tests").profile
    out["catch_up_seconds"] = wait_for_replica("ann@example.com")

    # A lookup marked as a replica read runs there, and only there.
    pk, sqls = statements(lambda: _in_replica(lambda: lookup("ann@example.com")))
    out["replica_lookup"] = {"found": pk == ann.pk, "statements": sqls}

    # Replay paused: the primary has a new profile the replica does not show yet.
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()")
    bob = profile_upsert(data=ProfileInput(identifiers={"email": "bob@example.com"}), source="tests").profile
    time.sleep(1.1)
    out["stale_read"] = {
        "replica": _in_replica(lambda: lookup("bob@example.com")),
        "primary": lookup("bob@example.com"),
    }

    # A write inside replica_reads: its reads and writes all go to the primary (it finds bob, whom the
    # replica does not know yet, and updates him instead of creating a second profile).
    result, sqls = statements(
        lambda: _in_replica(
            lambda: profile_upsert(
                data=ProfileInput(identifiers={"email": "bob@example.com"}, fields={"city": "Gdańsk"}), source="tests"
            )
        )
    )
    out["write_in_replica_block"] = {
        "same_profile": result.profile.pk == bob.pk,
        "profiles": Profile.objects.filter(email="bob@example.com").count(),
        "statements": sqls,
    }

    # /health reports the replica and its lag (replay is paused behind a write).
    client = Client(HTTP_HOST="localhost")
    out["health_paused"] = client.get("/health").json()

    # The API: a lookup by e-mail through the Synerise GET endpoint is served by the replica.
    _, secret = api_key_create(name="replica", scopes=["read"])
    response, sqls = statements(
        lambda: client.get("/v4/clients/by-email/ann@example.com", HTTP_AUTHORIZATION=f"Bearer {secret}")
    )
    out["api_lookup"] = {"status": response.status_code, "clientId": response.json().get("clientId")}
    out["api_lookup"]["statements"] = sqls

    # Exports (streamed after the view returns) read from the replica too: bob is not in it yet.
    _, export_secret = api_key_create(name="replica export", scopes=["export"])
    out["exports"] = {}
    for fmt in ("csv", "jsonl"):
        response, sqls = statements(
            lambda fmt=fmt: _streamed(
                client.get(f"/v4/clients/export.{fmt}", HTTP_AUTHORIZATION=f"Bearer {export_secret}")
            )
        )
        out["exports"][fmt] = {"status": response[0], "body": response[1], "statements": sqls}

    # Replay still paused, now over a second behind: with a lower REPLICA_MAX_LAG_SECONDS the replica is too far
    # behind, and the same marked read is served by the primary (which knows bob).
    with override_settings(REPLICA_MAX_LAG_SECONDS=0.5, REPLICA_LAG_CHECK_SECONDS=0):
        pk, sqls = statements(lambda: _in_replica(lambda: lookup("bob@example.com")))
        out["lagging_fallback"] = {"found": pk == bob.pk, "statements": sqls}
    replica_usable_forget()

    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_resume()")
    wait_for_replica("bob@example.com")
    out["after_resume"] = _in_replica(lambda: lookup("bob@example.com")) == bob.pk
    out["health_resumed"] = client.get("/health").json()
    print(json.dumps(out))


def _streamed(response):
    return response.status_code, b"".join(response.streaming_content).decode()


def _in_replica(fn):
    with replica_reads():
        return fn()


if __name__ == "__main__":
    main()
