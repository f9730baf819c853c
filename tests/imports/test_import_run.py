"""Running imports: every format, the report, dry run, re-run, in-file duplicates, older consent decisions."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from consents.models import ConsentRecord, ConsentState
from crm.models import Job
from imports.models import Issue, StagedRow
from imports.readers import FileUnusable
from imports.services import import_report_csv
from imports.signals import import_finished
from profiles.models import Event, Profile

from .conftest import MAPPING, jsonl

CSV = (
    "E-mail;First name;Born;Newsletter;Groups;Points;Old column\n"
    "ann@example.com; ann smith ;01.02.1990;Y;vip|newsletter;12;x\n"
    "bob@example.com;bob;31.12.1985;N;;3,5;y\n"
    "not-an-email;bad;01.01.1990;Y;;1;z\n"
)


def report(imp) -> list[dict]:
    return list(csv.DictReader(io.StringIO("".join(import_report_csv(imp=imp)))))


def test_csv_import_writes_fields_attributes_agreements_and_tags(run_import):
    imp = run_import(CSV)
    assert imp.job.status == Job.Status.DONE
    assert imp.job.counts == {
        "created": 2,
        "updated": 0,
        "merged": 0,
        "unchanged": 0,
        "failed": 1,
        "superseded": 0,
        "warnings": 0,
    }
    ann = Profile.objects.get(email="ann@example.com")
    assert ann.first_name == "Ann Smith"
    assert str(ann.birth_date) == "1990-02-01"
    assert ann.attributes == {"loyaltyPoints": 12, "importSource": "crm-2026"}
    assert sorted(t.name for t in ann.tags.all()) == ["newsletter", "vip"]
    assert ConsentState.objects.get(profile=ann, agreement__key="email").status == "granted"
    bob = Profile.objects.get(email="bob@example.com")
    assert bob.attributes["loyaltyPoints"] == 3.5
    assert ConsentState.objects.get(profile=bob, agreement__key="email").status == "denied"
    assert Event.objects.filter(profile=ann, action="profile.created", actor=f"import:{imp.pk}").exists()
    (row,) = report(imp)
    assert row["line"] == "4" and row["kind"] == "error" and row["code"] == "email.invalid"
    assert row["field"] == "email" and row["original"] == "not-an-email;bad;01.01.1990;Y;;1;z"
    assert not StagedRow.objects.filter(job=imp).exists()  # the work table is emptied


@pytest.mark.parametrize("fmt", ["jsonl", "json", "xml"])
def test_other_formats_import_the_same_profile(run_import, fmt):
    records = [{"contact": {"email": "ann@example.com", "first": "ann"}, "nl": "Y", "groups": "a|b"}]
    mapping = {
        "columns": {
            "contact.email": {"to": "email"},
            "contact.first": {"to": "firstName", "transform": ["title"]},
            "nl": {"to": "agreements.email", "map": {"Y": True}},
            "groups": {"to": "tags", "split": "|"},
        }
    }
    if fmt == "jsonl":
        content = jsonl(*records)
    elif fmt == "json":
        content = json.dumps(records)
    else:
        mapping["record"] = "customer"
        content = (
            "<customers><customer><contact><email>ann@example.com</email><first>ann</first></contact>"
            "<nl>Y</nl><groups>a|b</groups></customer></customers>"
        )
    imp = run_import(content, mapping=mapping, name=f"people.{fmt}")
    assert imp.format == fmt
    assert imp.job.counts["created"] == 1
    ann = Profile.objects.get(email="ann@example.com")
    assert ann.first_name == "Ann"
    assert sorted(t.name for t in ann.tags.all()) == ["a", "b"]


def test_json_array_report_has_the_position_and_the_record_text(run_import):
    content = json.dumps([{"email": "a@example.com"}, {"email": "null"}])
    imp = run_import(content, mapping={"columns": {"email": {"to": "email"}}}, name="x.json")
    (row,) = report(imp)
    assert row["line"] == "2"
    assert json.loads(row["original"]) == {"email": "null"}


def test_billion_laughs_fails_the_job_with_the_reason(run_import):
    from .test_readers import BILLION_LAUGHS

    with pytest.raises(FileUnusable):
        run_import(BILLION_LAUGHS, mapping={"columns": {"email": {"to": "email"}}, "record": "customer"}, name="x.xml")
    job = Job.objects.get(kind="imports.file")
    assert job.status == Job.Status.FAILED
    assert "entit" in job.message
    assert not Profile.objects.exists()


def test_dry_run_reports_and_writes_nothing(run_import, make_profile):
    make_profile(email="bob@example.com", first_name="Robert")
    events = Event.objects.count()
    imp = run_import(CSV, dry_run=True)
    assert imp.job.counts["created"] == 1
    assert imp.job.counts["updated"] == 1
    assert imp.job.counts["failed"] == 1
    assert not Profile.objects.filter(email="ann@example.com").exists()
    assert Profile.objects.get(email="bob@example.com").first_name == "Robert"
    assert Event.objects.count() == events
    assert len(report(imp)) == 1


def test_re_running_the_same_file_changes_nothing_and_writes_no_event(run_import):
    run_import(CSV)
    events, records = Event.objects.count(), ConsentRecord.objects.count()
    again = run_import(CSV)
    assert again.job.counts["unchanged"] == 2
    assert again.job.counts["created"] == again.job.counts["updated"] == 0
    assert Event.objects.count() == events
    assert ConsentRecord.objects.count() == records


@pytest.mark.parametrize("chunk", [1, 2, 1000])
def test_in_file_duplicates_last_line_wins_whatever_the_chunking(run_import, settings, chunk):
    settings.IMPORT_CHUNK_ROWS = chunk
    content = (
        "email,name,points\n"
        "ann@example.com,First,1\n"
        "bob@example.com,Bob,2\n"
        " ANN@example.com ,Second,3\n"
        "carl@example.com,Carl,4\n"
        "ann@example.com,Third,5\n"
    )
    mapping = {"columns": {"email": {"to": "email"}, "name": {"to": "firstName"}, "points": {"to": "attributes.p"}}}
    imp = run_import(content, mapping=mapping)
    ann = Profile.objects.get(email="ann@example.com")
    assert ann.first_name == "Third" and ann.attributes == {"p": "5"}
    assert imp.job.counts["created"] == 3 and imp.job.counts["superseded"] == 2
    assert imp.job.counts["updated"] == 0  # the earlier lines were never written
    superseded = [(r["line"], r["code"]) for r in report(imp)]
    assert sorted(superseded) == [("2", "import.superseded"), ("4", "import.superseded")]
    # one creation event, no update events from the superseded lines
    assert Event.objects.filter(profile=ann, action="profile.updated").count() == 0
    again = run_import(content, mapping=mapping)
    assert again.job.counts["unchanged"] == 3


def test_an_older_consent_decision_is_not_applied_and_is_a_warning(run_import, make_profile, email_agreement):
    from consents.services import consent_set

    profile = make_profile(email="ann@example.com")
    consent_set(
        profile=profile,
        agreement=email_agreement,
        state="denied",
        source="tests",
        decided_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    content = "email,nl,when\nann@example.com,Y,2026-01-15T10:00:00Z\nbob@example.com,Y,2026-01-15T10:00:00Z\n"
    mapping = {
        "columns": {"email": {"to": "email"}, "nl": {"to": "agreements.email", "map": {"Y": True}}},
        "consentTime": "when",
    }
    imp = run_import(content, mapping=mapping)
    assert ConsentState.objects.get(profile=profile, agreement=email_agreement).status == "denied"
    bob = Profile.objects.get(email="bob@example.com")
    state = ConsentState.objects.get(profile=bob, agreement=email_agreement)
    assert state.status == "granted" and state.changed_at == datetime(2026, 1, 15, 10, tzinfo=UTC)
    (warning,) = [r for r in report(imp) if r["kind"] == "warning"]
    assert warning["line"] == "2" and warning["field"] == "agreements.email"
    assert imp.job.counts["warnings"] == 1


def test_failed_lines_never_sink_their_chunk_and_the_report_has_no_cap(run_import, settings):
    settings.IMPORT_CHUNK_ROWS = 100
    lines = ["email,name"]
    for i in range(450):
        lines.append(f"person{i}@example.com,P{i}" if i % 2 else f"broken-{i},P{i}")
    imp = run_import(
        "\n".join(lines) + "\n", mapping={"columns": {"email": {"to": "email"}, "name": {"to": "firstName"}}}
    )
    assert imp.job.counts["created"] == 225 and imp.job.counts["failed"] == 225
    rows = report(imp)
    assert len(rows) == 225
    assert rows[0]["line"] == "2" and rows[-1]["line"] == "450"
    assert Issue.objects.filter(job=imp, kind="error").count() == 225


def test_resolution_errors_are_reported_by_line(run_import, make_profile):
    make_profile(email="ann@example.com", customId="A1")
    make_profile(email="bob@example.com", customId="B1")
    content = "email,id\nann@example.com,B1\ncarl@example.com,C1\n"
    imp = run_import(content, mapping={"columns": {"email": {"to": "email"}, "id": {"to": "customId"}}})
    assert imp.job.counts["failed"] == 1 and imp.job.counts["created"] == 1
    (row,) = report(imp)
    assert row["line"] == "2" and row["code"] == "identity.conflict"


def test_import_finished_is_sent_with_the_counts(run_import):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    import_finished.connect(receiver)
    try:
        imp = run_import(CSV)
    finally:
        import_finished.disconnect(receiver)
    (event,) = received
    assert event["import_job"].pk == imp.pk
    assert event["status"] == "done"
    assert event["counts"]["created"] == 2 and event["counts"]["failed"] == 1
    assert event["actor"] == f"import:{imp.pk}"


def test_duplicates_by_a_numeric_custom_id_in_json(run_import):
    content = json.dumps([{"id": 7, "name": "First"}, {"id": 7.0, "name": "Second"}])
    imp = run_import(
        content, mapping={"columns": {"id": {"to": "customId"}, "name": {"to": "firstName"}}}, name="x.json"
    )
    assert imp.job.counts["created"] == 1 and imp.job.counts["superseded"] == 1
    assert Profile.objects.get(custom_id="7").first_name == "Second"


def test_erasing_a_profile_scrubs_its_lines_in_import_reports(run_import):
    from privacy.services import profile_erase

    imp = run_import(
        "email,born\nann@example.com,notadate\nbob@example.com,1990-01-01\n",
        mapping={"columns": {"email": {"to": "email"}, "born": {"to": "birthDate"}}},
    )
    assert Issue.objects.get(job=imp).original == "ann@example.com,notadate"
    import_again = run_import("email\nann@example.com\n", mapping={"columns": {"email": {"to": "email"}}})
    assert import_again.job.counts["created"] == 1
    profile_erase(profile=Profile.objects.get(email="ann@example.com"), source="tests", actor="tests")
    issue = Issue.objects.get(job=imp)
    assert "ann@example.com" not in issue.original + issue.message


def test_the_upload_leaves_the_storage_once_the_run_finished_and_stays_after_a_dry_run(
    run_import, django_capture_on_commit_callbacks
):
    from django.core.files.storage import default_storage

    from crm.errors import Conflict
    from imports.services import import_create, import_run

    def create(**kwargs):
        return import_create(
            file=io.BytesIO(CSV.encode()), name="people.csv", mapping=MAPPING, source="tests", **kwargs
        )

    dry = create(dry_run=True)
    with django_capture_on_commit_callbacks(execute=True):
        import_run(job_id=dry.pk)
    dry.refresh_from_db()
    assert dry.file and default_storage.exists(dry.file.name)  # kept for the run that may follow
    with django_capture_on_commit_callbacks(execute=True):
        assert import_run(job_id=dry.pk).job.status == Job.Status.DONE  # a dry run can be run again

    real = create()
    stored = real.file.name
    assert default_storage.exists(stored)
    with django_capture_on_commit_callbacks(execute=True):
        done = import_run(job_id=real.pk)
    assert done.job.status == Job.Status.DONE and done.job.counts["created"] == 2
    assert not default_storage.exists(stored)
    real.refresh_from_db()
    assert not real.file and real.original_name == "people.csv" and real.size == len(CSV.encode())
    assert len(report(real)) == 1  # the report keeps the failed line
    with pytest.raises(Conflict) as refused:
        import_run(job_id=real.pk)
    assert refused.value.code == "import.file_deleted"


def test_a_failed_run_keeps_its_upload_to_be_resumed(run_import, monkeypatch, django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    from imports import services
    from imports.services import writing as writing_phase

    imp = services.import_create(file=io.BytesIO(CSV.encode()), name="people.csv", mapping=MAPPING, source="tests")
    real = writing_phase.profiles_upsert_many

    def lost(**kwargs):
        raise RuntimeError("database lost")

    monkeypatch.setattr(writing_phase, "profiles_upsert_many", lost)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        services.import_run(job_id=imp.pk)
    imp.refresh_from_db()
    assert imp.job.status == Job.Status.FAILED and default_storage.exists(imp.file.name)
    monkeypatch.setattr(writing_phase, "profiles_upsert_many", real)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.import_run(job_id=imp.pk).job.counts["created"] == 2
