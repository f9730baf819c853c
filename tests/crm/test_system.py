"""The System page's data: the recorder of every registered gauge (with its retention), the gauge registry's
isolation of a failing source, the watched directories, the server-side charts, and who may open the page."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from crm import metrics
from crm.charts import sparkline, value_text
from crm.models import Job, SystemSample, WorkerHeartbeat
from crm.recurring import recurring_tasks
from crm.system import directory_bytes, system_sample_record
from crm.tasks import system_sample_record as system_sample_task
from tests.browser.conftest import install_data_restore
from webhooks.models import EventType
from webhooks.services import subscription_create


def test_the_recorder_is_a_registered_recurring_task():
    assert system_sample_task.module_path in {r.task.module_path for r in recurring_tasks()}


@pytest.mark.django_db
def test_a_sample_holds_every_registered_gauge_and_old_samples_are_deleted(settings, make_profile):
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    settings.SYSTEM_SAMPLE_RETENTION_HOURS = 48
    subscription, _ = subscription_create(url="http://127.0.0.1:9/hook", events=[EventType.PROFILE_CREATED])
    make_profile(email="ada@example.com")
    now = timezone.now()
    old = SystemSample.objects.create(taken_at=now - timedelta(hours=49), values={})
    kept = SystemSample.objects.create(taken_at=now - timedelta(hours=47), values={})

    result = system_sample_record(now=now)

    assert result["deleted"] == 1
    assert not SystemSample.objects.filter(pk=old.pk).exists()
    assert SystemSample.objects.filter(pk=kept.pk).exists() and SystemSample.objects.count() == 2
    values = SystemSample.objects.get(taken_at=now).values
    assert values[f'crm_webhook_outbox_pending{{subscription="{subscription.pk}"}}'] == 1
    assert values['crm_task_queue_depth{queue="batches"}'] == 0
    assert values['crm_workers_alive{kind="db"}'] == 0
    assert values["crm_segment_refresh_lag_seconds"] == 0
    assert values['crm_disk_used_bytes{dir="data"}'] > 0
    assert 'crm_disk_free_bytes{dir="export_spool"}' in values
    assert result["series"] == len(values)


@pytest.mark.django_db
def test_a_failing_source_is_left_out_and_the_others_still_read():
    def broken():
        raise RuntimeError("the table is gone")

    metrics.gauge_register(name="crm_test_broken", documentation="x", read=broken)
    metrics.gauge_register(name="crm_test_fine", documentation="x", read=lambda: [((), 7)])
    try:
        names = {source.name: rows for source, rows in metrics.gauges_read()}
        assert "crm_test_broken" not in names and names["crm_test_fine"] == [((), 7.0)]
        assert "crm_task_queue_depth" in names
    finally:
        metrics._sources.pop("crm_test_broken")
        metrics._sources.pop("crm_test_fine")


def test_directory_bytes_counts_files_under_the_prefix_only(tmp_path):
    (tmp_path / "export-1-a.csv").write_bytes(b"x" * 1000)
    (tmp_path / "export-2").mkdir()
    (tmp_path / "export-2" / "part").write_bytes(b"y" * 24)
    (tmp_path / "other.txt").write_bytes(b"z" * 500)
    assert directory_bytes(str(tmp_path), "export-") == 1024
    assert directory_bytes(str(tmp_path / "missing")) == 0


T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_chart_scales_to_its_highest_value_and_breaks_where_samples_are_missing():
    points = [(T0 + timedelta(minutes=m), float(m % 10)) for m in range(0, 60)]
    points += [(T0 + timedelta(hours=5, minutes=m), 20.0) for m in range(0, 30)]  # after a gap of four hours
    svg = str(sparkline(points, start=T0, end=T0 + timedelta(hours=24), gap=timedelta(minutes=3), label="Depth"))
    assert svg.count("<polyline") == 2
    ys = [float(y) for y in re.findall(r"[\d.]+,([\d.]+)", svg)]
    assert min(ys) == pytest.approx(4.0)  # the highest value touches the top margin
    assert "highest 20 in the last 24 hours" in svg and "now 20" in svg
    assert "<script" not in svg


def test_an_empty_chart_says_so_and_escapes_its_label():
    svg = str(sparkline([], start=T0, end=T0 + timedelta(hours=24), gap=timedelta(minutes=3), label="<b>x</b>"))
    assert "no samples yet" in svg and "<b>" not in svg and "&lt;b&gt;" in svg


def test_values_read_as_people_read_them():
    assert value_text(1536, "bytes") == "1.5 KiB"
    assert value_text(125, "seconds") == "2 min 5 s"
    assert value_text(12345) == "12,345"
    assert value_text(None) == "–"


@pytest.fixture
def roles(db):
    install_data_restore()


def _member(username: str, group: str) -> User:
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.mark.django_db
def test_admin_staff_open_the_system_page_and_marketers_are_refused(client, roles):
    WorkerHeartbeat.objects.create(
        worker_id="host:1", kind="db", hostname="host", pid=1, queues=["*"], started_at=timezone.now(),
        seen_at=timezone.now(),
    )  # fmt: skip
    Job.objects.create(
        kind="batch", source="tests", status=Job.Status.FAILED, message="The database went away.",
        finished_at=timezone.now(),
    )  # fmt: skip
    system_sample_record(now=timezone.now() - timedelta(minutes=2))
    system_sample_record()

    client.force_login(_member("mia", "Marketers"))
    assert client.get("/admin/crm/systemsample/").status_code == 403
    assert "/admin/crm/systemsample/" not in client.get("/admin/").content.decode()

    client.force_login(_member("ada", "Admin staff"))
    assert "/admin/crm/systemsample/" in client.get("/admin/").content.decode()
    response = client.get("/admin/crm/systemsample/")
    assert response.status_code == 200
    html = response.content.decode()
    for section in ("system-workers", "system-queues", "system-webhooks", "system-failures", "system-replica",
                    "system-disk"):  # fmt: skip
        assert f'id="{section}"' in html
    assert "host:1" in html and "The database went away." in html
    assert html.count('<svg class="spark"') >= 10 and "<polyline" in html
    assert "No read replica is configured" in html
