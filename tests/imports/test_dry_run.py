"""A dry run says exactly what the run would do, across chunks, and leaves nothing behind."""

import io

import pytest
from django.apps import apps
from django.db import connection

from consents.models import Agreement
from crm.models import Job
from imports import services
from imports.models import ImportJob, Issue
from imports.services import writing as writing_phase
from profiles.models import Profile
from segments.membership import live_cache_clear
from segments.services import segment_create
from webhooks.models import EventType
from webhooks.services import subscription_create

MAPPING = {
    "columns": {
        "id": {"to": "customId"},
        "email": {"to": "email"},
        "phone": {"to": "phone"},
        "name": {"to": "firstName"},
        "nl": {"to": "agreements.email", "map": {"Y": True}},
        "tags": {"to": "tags", "split": "|"},
    }
}

# Two lines a chunk: every line below names, by another identifier, a profile an earlier chunk would create.
CONTENT = (
    "id,email,phone,name,nl,tags\n"
    "C1,ann@example.com,,Ann,Y,\n"  # 2 created (A)
    ",bob@example.com,+48500100300,Bob,,\n"  # 3 created (B)
    ",ann@example.com,+48500100400,Ann,,\n"  # 4 A by its e-mail, a new phone: updated
    "C2,,+48500100300,Bob,,\n"  # 5 B by its phone, a new customId: updated
    ",,+48500100400,Ann,,\n"  # 6 A by the phone line 4 gave it: unchanged
    "C4,eve@example.com,,Eve,,vip\n"  # 7 created (E)
    ",eve@example.com,+48500100900,,,\n"  # 8 E and the existing profile X: merged
    "C6,fay@example.com,,Fay,Y,\n"  # 9 created (F)
    ",,+48500100600,Gus,,vip\n"  # 10 created (G)
    ",fay@example.com,+48500100600,,,\n"  # 11 F (an earlier chunk) and G (this one): merged
    ",not-an-email,,Nobody,,\n"  # 12 failed
    "C7,,,Hal,,\n"  # 13 superseded by 14
    "C7,,,Hal,,gold\n"  # 14 created
)
EXPECTED = [
    "created",
    "created",
    "updated",
    "updated",
    "unchanged",
    "created",
    "merged",
    "created",
    "created",
    "merged",
    "failed",
    "created",
]


def table_counts() -> dict[str, int]:
    """Rows of every table outside the imports' own bookkeeping (profiles, identifiers, events, consents and
    their ledger, tags, the webhook outbox, segment memberships and touched profiles, …)."""
    return {
        model._meta.label: model._base_manager.count()
        for model in apps.get_models()
        if model._meta.managed and model._meta.app_label != "imports" and model is not Job
    }


@pytest.fixture(autouse=True)
def segments_forgotten():
    """The tests here make a segment; the process forgets it afterwards (its answer is cached)."""
    yield
    live_cache_clear()


@pytest.fixture
def outcomes(monkeypatch):
    """The batch's outcome of every line it is given, in order (the winners of the file, line by line)."""
    seen: list[str] = []
    real = writing_phase.profiles_upsert_many

    def spy(**kwargs):
        results = real(**kwargs)
        seen.extend(result.status for result in results)
        return results

    monkeypatch.setattr(writing_phase, "profiles_upsert_many", spy)
    return seen


def issues(imp) -> list[tuple]:
    return list(Issue.objects.filter(job=imp).order_by("line", "kind", "code").values_list("line", "kind", "code"))


@pytest.mark.parametrize("chunk", [1, 2, 3, 1000])
def test_a_dry_run_reports_what_the_run_then_does(run_import, make_profile, settings, outcomes, chunk):
    settings.IMPORT_CHUNK_ROWS = chunk
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    subscription_create(url="http://127.0.0.1:9/hook", events=list(EventType.values))  # the outbox fills
    segment_create(name="City", tree={"field": "city", "op": "eq", "value": "warsaw"})  # writes record whom they touch
    make_profile(phone="+48500100900", first_name="Xavier")
    before = table_counts()

    dry = run_import(CONTENT, mapping=MAPPING, dry_run=True)
    dry_outcomes = list(outcomes)
    assert table_counts() == before  # nothing written: no profile, event, consent, tag, outbox row, membership
    assert Profile.objects.count() == 1
    outcomes.clear()

    real = run_import(CONTENT, mapping=MAPPING)
    assert real.job.status == dry.job.status == Job.Status.DONE
    assert outcomes == EXPECTED
    assert dry_outcomes == EXPECTED
    assert dry.job.counts == real.job.counts
    assert real.job.counts == {
        "created": 6,
        "updated": 2,
        "merged": 2,
        "unchanged": 1,
        "failed": 1,
        "superseded": 1,
        "warnings": 1,
    }
    assert issues(dry) == issues(real) == [(12, "error", "email.invalid"), (13, "warning", "import.superseded")]
    assert dry.job.processed == real.job.processed == 13
    # the run did write, so the comparison above compares something
    after = table_counts()
    written = (
        "profiles.Profile",
        "profiles.Identifier",
        "profiles.Event",
        "profiles.MergeRecord",
        "profiles.ProfileTag",
        "consents.ConsentState",
        "consents.ConsentRecord",
        "segments.TouchedProfile",
        "webhooks.Event",
    )
    for label in written:
        assert after[label] > before[label], label


def other_connection():
    from django.db import DEFAULT_DB_ALIAS, connections

    return connections.create_connection(DEFAULT_DB_ALIAS)


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_shows_its_progress_and_a_cut_off_one_starts_its_writing_pass_over(settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_CHUNK_ROWS = 2
    # A transactional test may follow another one's flush, which takes the built-in agreements away.
    Agreement.objects.get_or_create(key="email", defaults={"title": "E-mail", "channel": "email"})
    imp = services.import_create(
        file=io.BytesIO(CONTENT.encode()), name="f.csv", mapping=MAPPING, dry_run=True, source="tests"
    )
    segment_create(name="City", tree={"field": "city", "op": "eq", "value": "warsaw"})  # writes register hooks
    seen = []
    pending = []
    observer = other_connection()

    def progress(current):
        pending.append(len(connection.run_on_commit))
        with observer.cursor() as cursor:  # what the job page reads, from outside the dry run's transaction
            cursor.execute(
                "SELECT i.records_written, j.processed, j.counts->>'created' FROM imports_importjob i "
                "JOIN crm_job j ON j.id = i.job_id WHERE i.job_id = %s",
                [imp.pk],
            )
            seen.append(cursor.fetchone())
            cursor.execute("SELECT count(*) FROM profiles_profile")
            assert cursor.fetchone()[0] == 0  # the would-be profiles are never visible outside

    try:
        services.import_run(job_id=imp.pk, progress=progress)
    finally:
        observer.close()
    writing = [row for row in seen if row[0]]
    assert writing[:3] == [(2, 2, "2"), (4, 4, "2"), (6, 6, "3")]
    assert writing[-1][:2] == (13, 13)
    assert set(pending) == {0}  # the commit hooks of a transaction that never commits do not pile up
    done = ImportJob.objects.select_related("job").get(pk=imp.pk)
    assert done.job.status == Job.Status.DONE and done.job.counts["created"] == 6
    assert issues(done) == [(12, "error", "email.invalid"), (13, "warning", "import.superseded")]
    assert not Profile.objects.exists()

    # Cut off in the middle of its writing pass: run again, it starts that pass over (its writes were undone).
    real = writing_phase.profiles_upsert_many
    calls = []

    def failing(**kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("worker lost")
        return real(**kwargs)

    monkeypatch.setattr(writing_phase, "profiles_upsert_many", failing)
    with pytest.raises(RuntimeError):
        services.import_run(job_id=imp.pk)
    cut = ImportJob.objects.select_related("job").get(pk=imp.pk)
    assert cut.job.status == Job.Status.FAILED and "Nothing was written" in cut.job.message
    assert not Profile.objects.exists()
    monkeypatch.setattr(writing_phase, "profiles_upsert_many", real)
    cut.job.status = Job.Status.RUNNING  # as a killed worker leaves it
    cut.job.save(update_fields=["status"])
    again = services.import_run(job_id=imp.pk)
    assert again.job.counts == done.job.counts
    assert issues(again) == issues(done)
    assert not Profile.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_never_waits_long_for_a_live_write(settings, tmp_path, make_profile):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_DRY_RUN_LOCK_TIMEOUT_SECONDS = 1
    profile = make_profile(email="ann@example.com", first_name="Ann")
    imp = services.import_create(
        file=io.BytesIO(b"email,name\nann@example.com,Annie\n"),
        name="f.csv",
        mapping={"columns": {"email": {"to": "email"}, "name": {"to": "firstName"}}},
        dry_run=True,
        source="tests",
    )
    live = other_connection()
    try:
        live.set_autocommit(False)
        with live.cursor() as cursor:  # a live write in progress on the profile the dry run would update
            cursor.execute("SELECT 1 FROM profiles_profile WHERE id = %s FOR UPDATE", [profile.pk])
        with pytest.raises(services.DryRunBusy):
            services.import_run(job_id=imp.pk)
    finally:
        live.rollback()
        live.close()
    job = Job.objects.get(pk=imp.pk)
    assert job.status == Job.Status.FAILED and "live write" in job.message
    Profile.objects.get(pk=profile.pk, first_name="Ann")
