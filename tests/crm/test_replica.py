"""A real streaming replica: a fresh primary (initdb) and its standby (pg_basebackup -R) from the embedded
PostgreSQL's binaries; the app, pointed at both, reads marked reads from the replica and never writes there."""

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bench.pg_pair import PgPair

ROOT = Path(__file__).resolve().parents[2]


def _verb(sql: str) -> str:
    return sql.split(None, 1)[0].upper()


@pytest.fixture(scope="module")
def scenario():
    with PgPair() as pair:
        with psycopg.connect(pair.url("primary"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE crm")
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "crm.settings_test",
            "DATABASE_URL": pair.url("primary", "crm"),
            "DATABASE_REPLICA_URL": pair.url("replica", "crm"),
            "API_KEY_CACHE_SECONDS": "0",
        }
        for command in (["manage.py", "migrate", "--no-input", "-v", "0"], ["tests/crm/replica_scenario.py"]):
            done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_replica_read_runs_on_the_replica_only(scenario):
    lookup = scenario["replica_lookup"]
    assert lookup["found"]
    assert lookup["statements"]["default"] == []
    assert lookup["statements"]["replica"] and all(_verb(s) == "SELECT" for s in lookup["statements"]["replica"])


def test_the_replica_answers_from_what_it_has_replayed(scenario):
    # Replay paused: the profile written since is on the primary and not (yet) on the replica.
    assert scenario["stale_read"]["replica"] is None
    assert scenario["stale_read"]["primary"] is not None
    assert scenario["after_resume"]  # replay resumed: the replica shows it


def test_a_write_never_goes_to_the_replica_nor_do_its_reads(scenario):
    write = scenario["write_in_replica_block"]
    assert write["same_profile"] and write["profiles"] == 1
    assert write["statements"]["replica"] == []
    verbs = {_verb(s) for s in write["statements"]["default"]}
    assert "UPDATE" in verbs or "INSERT" in verbs


def test_the_api_lookup_is_served_by_the_replica(scenario):
    api = scenario["api_lookup"]
    assert api["status"] == 200 and api["clientId"]
    assert any("profiles_profile" in s for s in api["statements"]["replica"])
    # The key check and rate limit run on the primary; the profile read does not.
    assert not any("FROM profiles_profile" in s for s in api["statements"]["default"])
    assert all(_verb(s) in {"SELECT", "WITH"} for s in api["statements"]["replica"])


def test_health_reports_the_replica_lag(scenario):
    paused = scenario["health_paused"]
    assert paused["replica"]["status"] == "ok"
    assert paused["replica"]["lagSeconds"] >= 1.0  # the paused replay is a second behind at least
    resumed = scenario["health_resumed"]
    assert resumed["replica"]["status"] == "ok" and resumed["replica"]["lagSeconds"] < paused["replica"]["lagSeconds"]
    assert resumed["status"] == "ok"


def test_exports_stream_from_the_replica(scenario):
    # Replay is paused behind bob's write: an export that leaves him out was read from the replica.
    for fmt, export in scenario["exports"].items():
        assert export["status"] == 200, fmt
        assert "ann@example.com" in export["body"] and "bob@example.com" not in export["body"], fmt
    # The JSON Lines documents go through Django's cursors (the CSV's COPY runs on psycopg's own cursor, which
    # Django's statement hooks do not see): on the replica, none on the primary.
    jsonl = scenario["exports"]["jsonl"]["statements"]
    assert any("profiles_profile" in s for s in jsonl["replica"])
    assert not any("profiles_profile" in s for s in jsonl["default"])


def test_a_replica_further_behind_than_allowed_is_not_read_from(scenario):
    fallback = scenario["lagging_fallback"]
    assert fallback["found"]  # bob, whom the paused replica does not know, found on the primary
    assert not any("profiles_profile" in s for s in fallback["statements"]["replica"])
    assert any("profiles_profile" in s for s in fallback["statements"]["default"])
    # the lag check itself is the one statement the replica answered
    assert all("pg_is_in_recovery" in s for s in fallback["statements"]["replica"])
