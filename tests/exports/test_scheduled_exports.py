"""Scheduled exports: the HTTP push (signed, checked by the Standard Webhooks library), the SFTP push to a real
SFTP server, incremental runs, the schedule, retries with backoff and the run log."""

import csv
import io
import json
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from crm.errors import ValidationFailed
from exports.models import ExportRun, RunOutcome, ScheduledExport
from exports.services import (
    exports_dispatch,
    exports_due_claim,
    next_scheduled_time,
    scheduled_export_run,
    scheduled_export_save,
)
from profiles.models import Profile, Tag
from profiles.services.tags import tags_add
from tests.exports.sftp_server import openssh_private_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(make_profile):
    vip = Tag.objects.create(name="vip")
    people = [make_profile(email=f"p{i}@example.com", first_name=f"P{i}", city="Warsaw") for i in range(5)]
    tags_add(profiles=people[:3], tags=[vip], source="tests")
    return people


def http_export(url, **kwargs) -> ScheduledExport:
    fields = {"name": "to the shop", "target": "http", "http_url": url, "schedule": "hourly", **kwargs}
    return scheduled_export_save(export=ScheduledExport(**fields))


def sftp_export(server, **kwargs) -> ScheduledExport:
    fields = {
        "name": "to the warehouse", "target": "sftp", "sftp_host": "127.0.0.1", "sftp_port": server.port,
        "sftp_user": server.user, "sftp_password": server.password, "sftp_path": "profiles-%Y%m%d.csv",
        "schedule": "daily", "daily_at": time(3, 0), **kwargs,
    }  # fmt: skip
    return scheduled_export_save(export=ScheduledExport(**fields))


def test_http_push_is_signed_and_checks_with_the_standard_webhooks_library(crowd, receiver, local_targets):
    export = http_export(receiver.url, filters="tags=vip")
    assert export.http_secret.startswith("whsec_")
    run = scheduled_export_run(export_id=export.pk, trigger="manual")
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    ((headers, body),) = receiver.requests
    Webhook(export.http_secret).verify(body, headers, json_parse=False)  # raises when the signature is wrong
    assert headers["webhook-id"] == f"export-run-{run.pk}"
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert sorted(r["email"] for r in rows) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert (run.rows, run.bytes) == (3, len(body))
    assert run.finished_at >= run.started_at and run.destination.endswith("→ 200")
    tampered = dict(headers, **{"webhook-signature": "v1," + "A" * 44})
    with pytest.raises(Exception, match="signature"):
        Webhook(export.http_secret).verify(body, tampered, json_parse=False)


def test_http_jsonl_export(crowd, receiver, local_targets):
    export = http_export(receiver.url, format="jsonl")
    run = scheduled_export_run(export_id=export.pk)
    ((headers, body),) = receiver.requests
    assert headers["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert [json.loads(line)["clientId"] for line in body.decode().splitlines()] == [p.pk for p in crowd]
    assert run.rows == 5


def test_private_targets_are_refused_by_default(crowd, receiver):
    export = http_export(receiver.url)
    run = scheduled_export_run(export_id=export.pk)
    assert run.outcome == RunOutcome.FAILED and "EXPORT_ALLOW_PRIVATE_TARGETS" in run.error
    assert receiver.requests == []


def test_a_failed_push_is_retried_with_backoff_then_waits_for_the_schedule(crowd, receiver, local_targets, settings):
    settings.EXPORT_MAX_ATTEMPTS = 3
    settings.EXPORT_RETRY_BASE_SECONDS = 60
    receiver.status = 503
    export = http_export(receiver.url)
    first = scheduled_export_run(export_id=export.pk, trigger="schedule")
    export.refresh_from_db()
    assert first.outcome == RunOutcome.FAILED and "503" in first.error
    assert export.attempt == 1 and export.next_run_at == first.retry_at
    assert timedelta(seconds=59) < first.retry_at - first.finished_at <= timedelta(seconds=61)
    # The retry is due: the dispatcher claims it as a retry.
    assert exports_due_claim(now=first.retry_at + timedelta(seconds=1)) == [(export.pk, "retry")]
    second = scheduled_export_run(export_id=export.pk, trigger="retry")
    export.refresh_from_db()
    assert second.attempt == 2 and timedelta(seconds=119) < second.retry_at - second.finished_at <= timedelta(
        seconds=121
    )
    third = scheduled_export_run(export_id=export.pk, trigger="retry")
    export.refresh_from_db()
    assert third.attempt == 3 and third.retry_at is None  # the last attempt
    assert export.attempt == 0 and export.next_run_at == next_scheduled_time(export=export, after=third.finished_at)
    receiver.status = 200
    fourth = scheduled_export_run(export_id=export.pk, trigger="schedule")
    assert fourth.outcome == RunOutcome.SUCCEEDED and fourth.attempt == 1
    assert list(export.runs.values_list("outcome", flat=True)) == ["succeeded", "failed", "failed", "failed"]


def test_sftp_push_with_a_password_to_a_real_server(crowd, sftp_server, local_targets):
    export = sftp_export(sftp_server, bom=True)
    assert ScheduledExport.objects.values_list("sftp_password", flat=True).get() == "s3cret"  # decrypted in Python
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sftp_password FROM exports_scheduledexport")
        assert "s3cret" not in cursor.fetchone()[0]  # encrypted at rest
    run = scheduled_export_run(export_id=export.pk)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    name = run.started_at.astimezone(timezone.UTC).strftime("profiles-%Y%m%d.csv")
    written = (sftp_server.root / name).read_bytes()
    assert written.startswith(b"\xef\xbb\xbfclientId,") and written.count(b"@example.com") == 5
    assert not list(sftp_server.root.glob("*.part"))
    assert run.destination == f"sftp://exporter@127.0.0.1:{sftp_server.port}/{name}"
    export.refresh_from_db()
    assert export.sftp_host_key == sftp_server.host_key_line  # kept from the first connection


def test_sftp_push_with_a_key_and_a_pinned_host_key(crowd, tmp_path, local_targets):
    from tests.exports.sftp_server import SftpTestServer

    text, key = openssh_private_key()
    root = tmp_path / "keyed"
    root.mkdir()
    server = SftpTestServer(root, password="", client_key=key)
    try:
        export = sftp_export(server, sftp_password="", sftp_private_key=text, sftp_path="out-%H.csv")
        assert scheduled_export_run(export_id=export.pk).outcome == RunOutcome.SUCCEEDED
        assert len(list(root.glob("out-*.csv"))) == 1
        export.sftp_host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        export.save()
        run = scheduled_export_run(export_id=export.pk)
        assert run.outcome == RunOutcome.FAILED and "host key" in run.error
    finally:
        server.close()


def test_sftp_wrong_password_fails_the_run(crowd, sftp_server, local_targets):
    export = sftp_export(sftp_server, sftp_password="wrong")
    run = scheduled_export_run(export_id=export.pk)
    assert run.outcome == RunOutcome.FAILED and "refused" in run.error


def test_incremental_sends_only_what_changed_since_the_last_success(crowd, receiver, local_targets):
    # A change is stamped with its transaction's start (here the test's): the read-back margin
    # (EXPORT_INCREMENTAL_OVERLAP_SECONDS) covers that.
    export = http_export(receiver.url, incremental=True)
    assert scheduled_export_run(export_id=export.pk).rows == 5  # the first run sends everything
    Profile.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    tags_add(profiles=[crowd[4]], tags=[Tag.objects.get(name="vip")], source="tests")
    run = scheduled_export_run(export_id=export.pk)
    assert run.rows == 1 and run.changed_since is not None
    assert b"p4@example.com" in receiver.requests[-1][1] and b"p0@example.com" not in receiver.requests[-1][1]
    Profile.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    assert scheduled_export_run(export_id=export.pk).rows == 0  # nothing changed since


def test_schedule_hourly_and_daily(settings):
    settings.TIME_ZONE = "UTC"
    hourly = ScheduledExport(schedule="hourly")
    at = datetime(2026, 3, 1, 10, 15, tzinfo=timezone.UTC)
    assert next_scheduled_time(export=hourly, after=at) == datetime(2026, 3, 1, 11, 0, tzinfo=timezone.UTC)
    daily = ScheduledExport(schedule="daily", daily_at=time(3, 30))
    assert next_scheduled_time(export=daily, after=at) == datetime(2026, 3, 2, 3, 30, tzinfo=timezone.UTC)
    early = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.UTC)
    assert next_scheduled_time(export=daily, after=early) == datetime(2026, 3, 1, 3, 30, tzinfo=timezone.UTC)


def test_dispatch_runs_due_exports_once(crowd, receiver, local_targets, immediate_tasks):
    due = http_export(receiver.url)
    later = http_export(receiver.url, name="later")
    ScheduledExport.objects.filter(pk=due.pk).update(next_run_at=timezone.now() - timedelta(minutes=1))
    assert exports_dispatch() == [due.pk]
    assert exports_dispatch() == []  # claimed: its next time moved on
    due.refresh_from_db()
    assert due.next_run_at > timezone.now()
    assert ExportRun.objects.get().export_id == due.pk and not later.runs.exists()
    assert len(receiver.requests) == 1


def test_save_checks_filters_and_targets(crowd):
    with pytest.raises(ValidationFailed) as exc:
        http_export("https://example.com/x", filters="tags=no-such-tag")
    assert exc.value.field == "filters"
    with pytest.raises(ValidationFailed) as exc:
        http_export("https://example.com/x", name="b", http_secret="not a secret!")
    assert exc.value.field == "http_secret"
    with pytest.raises(ValidationFailed) as exc:
        scheduled_export_save(export=ScheduledExport(name="c", target="sftp", sftp_host="h", sftp_user="u",
                                                     sftp_path="p", schedule="hourly"))  # fmt: skip
    assert exc.value.field == "sftp_password"
    with pytest.raises(ValidationFailed) as exc:
        scheduled_export_save(
            export=ScheduledExport(
                name="d", target="sftp", sftp_host="h", sftp_user="u", sftp_path="p", schedule="hourly",
                sftp_private_key="x",
            )
        )  # fmt: skip
    assert exc.value.field == "sftp_private_key"


def test_two_runs_of_one_export_never_overlap(crowd, receiver, local_targets):
    from django.db import connections

    export = http_export(receiver.url)
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [0x6578, export.pk])
        run = scheduled_export_run(export_id=export.pk)
        assert run.outcome == RunOutcome.SKIPPED and receiver.requests == []
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_due_export_through_the_recurring_dispatcher(receiver, local_targets, make_profile):
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    from crm.recurring import recurring_tasks
    from exports.tasks import scheduled_exports_dispatch

    assert scheduled_exports_dispatch.module_path in {r.task.module_path for r in recurring_tasks()}
    make_profile(email="w@example.com")
    export = http_export(receiver.url)
    ScheduledExport.objects.filter(pk=export.pk).update(next_run_at=timezone.now() - timedelta(seconds=1))
    scheduled_exports_dispatch.enqueue()
    call_command("db_worker", "--batch", "--no-startup-delay", "--queue-name", "recurring,deliveries")
    run = ExportRun.objects.get()
    assert run.trigger == "schedule" and run.actor == "system" and run.outcome == RunOutcome.SUCCEEDED and run.rows == 1
    assert len(receiver.requests) == 1
    # The dispatcher planned its own next run.
    assert DBTaskResult.objects.filter(task_path=scheduled_exports_dispatch.module_path, status="READY").exists()


@pytest.mark.parametrize("secret", ["whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_c2VjcmV0LWtleQ"])
def test_signatures_match_the_reference_library_padded_or_not(secret):
    """Our streaming signature equals the one ``standardwebhooks`` makes, unpadded base64 included."""
    from exports.targets import signature

    body = b'{"a": 1}\n'
    sig = signature(secret, msg_id="msg_1", timestamp=1_700_000_000, body=io.BytesIO(body))
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(1_700_000_000, tz=timezone.UTC), body.decode())
    assert sig == expected


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", "plain-text"])
def test_a_secret_that_is_not_base64_is_refused_naming_the_field(secret):
    from exports.targets import signing_key

    with pytest.raises(ValidationFailed) as caught:
        signing_key(secret)
    assert caught.value.field == "http_secret"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "https://user:pw@example.com/x", "http:///nohost"])
def test_save_refuses_urls_that_are_not_plain_http(crowd, url):
    with pytest.raises(ValidationFailed) as exc:
        http_export(url)
    assert exc.value.field == "http_url"


def test_a_name_that_resolves_to_loopback_is_refused_at_the_run_and_nothing_is_sent(crowd, receiver):
    """localhost passes no address check by name: it resolves to 127.0.0.1, which is refused."""
    export = http_export(receiver.url.replace("127.0.0.1", "localhost"))
    run = scheduled_export_run(export_id=export.pk)
    assert run.outcome == RunOutcome.FAILED
    assert "127.0.0.1" in run.error or "::1" in run.error
    assert receiver.requests == []


def test_the_push_connects_to_the_address_it_checked(crowd, receiver, local_targets, monkeypatch):
    """DNS rebinding: the name is resolved once; a second resolution (to somewhere else) is never used."""
    import socket

    real = socket.getaddrinfo
    calls = []

    def rebinding(host, *args, **kwargs):
        calls.append(host)
        if host == "receiver.test":
            return real("127.0.0.1" if len(calls) == 1 else "192.0.2.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    export = http_export(receiver.url.replace("127.0.0.1", "receiver.test"))
    run = scheduled_export_run(export_id=export.pk)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    assert calls.count("receiver.test") == 1
    ((headers, _body),) = receiver.requests
    assert headers["Host"].startswith("receiver.test:")


def test_a_run_left_running_by_a_dead_worker_is_closed_by_the_dispatcher(crowd, receiver):
    from django.db import connections

    from exports.services import export_runs_abandoned_close

    export = http_export(receiver.url)
    started = timezone.now() - timedelta(minutes=5)
    run = ExportRun.objects.create(export=export, trigger="schedule", actor="system", started_at=started)
    assert run.outcome == RunOutcome.RUNNING
    worker = connections.create_connection("default")  # the live worker holds the export's lock
    with worker.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [0x6578, export.pk])
    try:
        assert export_runs_abandoned_close() == 0
        run.refresh_from_db()
        assert run.outcome == RunOutcome.RUNNING
    finally:
        worker.connection.close()  # the worker dies: PostgreSQL releases its lock with the connection
        worker.close()
    exports_dispatch()
    run.refresh_from_db()
    assert run.outcome == RunOutcome.FAILED and run.finished_at is not None
    assert "stopped before the run ended" in run.error
