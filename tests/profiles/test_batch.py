"""profiles_upsert_many: the single-write rules, set-based, with per-item outcomes."""

import pytest

from profiles.models import AttributeDefinition, Identifier, Profile
from profiles.services import ProfileInput, profile_upsert
from profiles.services.batch import profiles_upsert_many

pytestmark = pytest.mark.django_db

U1 = "00000000-0000-4000-8000-000000000001"


def item(fields=None, attributes=None, agreements=None, **identifiers):
    return ProfileInput(
        identifiers=identifiers, fields=fields or {}, attributes=attributes or {}, agreements=agreements or {}
    )


def run(*items):
    return profiles_upsert_many(items=list(items), source="tests", actor="tests")


def statuses(results):
    return [r.status for r in results]


def test_seed_batch_creates_two_and_updates_one():
    existing = profile_upsert(data=item(email="sampleclient@synerise.com"), source="tests").profile
    results = run(
        item(email="newclient@synerise.com"),
        item(customId="newClientCustomId"),
        item(email="sampleclient@synerise.com", fields={"first_name": "Michael"}),
    )
    assert statuses(results) == ["created", "created", "updated"]
    assert results[2].client_id == existing.pk
    assert Profile.objects.get(pk=existing.pk).first_name == "Michael"
    new = Profile.objects.get(email="newclient@synerise.com")
    assert new.first_name == "Newclient"
    assert Identifier.objects.filter(profile=new).count() == 2  # e-mail and a generated uuid
    assert Profile.objects.get(custom_id="newClientCustomId").anonymous is True  # only an e-mail recognizes


def test_bad_items_fail_alone():
    results = run(item(email="ok@example.com"), item(email="null"), item(fields={"city": "X"}), item(phone="12"))
    assert statuses(results) == ["created", "failed", "failed", "failed"]
    assert results[1].error["field"] == "email"
    assert results[2].error["code"] == "identifier.missing"
    assert Profile.objects.count() == 1


def test_items_of_one_batch_build_on_each_other_in_order():
    results = run(
        item(email="ann@example.com", attributes={"points": 1}),
        item(email="ann@example.com", customId="A-1", attributes={"points": 2, "tier": "gold"}),
        item(customId="A-1", fields={"city": "Warsaw"}, attributes={"tier": None}),
        item(customId="A-1", attributes={"points": 2}),
    )
    assert statuses(results) == ["created", "updated", "updated", "unchanged"]
    profile = Profile.objects.get()
    assert (profile.email, profile.custom_id, profile.city, profile.attributes) == (
        "ann@example.com",
        "A-1",
        "Warsaw",
        {"points": 2},
    )
    assert len({r.client_id for r in results}) == 1


def test_sending_the_same_batch_again_changes_nothing():
    batch = [item(email=f"p{i}@example.com", fields={"city": "Kraków"}, attributes={"n": i}) for i in range(20)]
    assert set(statuses(run(*batch))) == {"created"}
    before = list(Profile.objects.order_by("pk").values_list("pk", "updated_at"))
    assert set(statuses(run(*batch))) == {"unchanged"}
    assert list(Profile.objects.order_by("pk").values_list("pk", "updated_at")) == before


def test_email_change_releases_the_old_identifier():
    profile_upsert(data=item(email="old@example.com", customId="C-1"), source="tests")
    results = run(item(customId="C-1", email="new@example.com"), item(email="old@example.com"))
    assert statuses(results) == ["updated", "created"]
    assert Profile.objects.get(custom_id="C-1").email == "new@example.com"
    assert Identifier.objects.get(value="old@example.com").profile_id == results[1].client_id


def test_merges_and_conflicts_take_the_single_path_in_order():
    visitor = profile_upsert(data=item(uuid=U1, fields={"city": "Gdańsk"}), source="tests").profile
    ann = profile_upsert(data=item(email="ann@example.com"), source="tests").profile
    profile_upsert(data=item(customId="BOB", email="bob@example.com"), source="tests")
    results = run(
        item(email="ann@example.com", uuid=U1),  # merge
        item(uuid=U1, fields={"last_name": "Nowak"}),  # builds on the merge
        item(email="ann@example.com", customId="BOB"),  # two e-mails on one profile: conflict
        item(email="zed@example.com"),
    )
    assert statuses(results) == ["merged", "updated", "failed", "created"]
    assert results[2].error["code"] == "identity.conflict"
    survivor = Profile.objects.get(pk=ann.pk)
    assert (survivor.city, survivor.last_name) == ("Gdańsk", "Nowak")
    assert not Profile.objects.filter(pk=visitor.pk).exists()


def test_new_attribute_definitions_are_created_once():
    run(
        item(email="a@example.com", attributes={"shoeSize": 42}),
        item(email="b@example.com", attributes={"shoeSize": 40}),
    )
    assert list(AttributeDefinition.objects.values_list("name", "type")) == [("shoeSize", "number")]
    results = run(item(email="c@example.com", attributes={"shoeSize": "big"}))
    assert results[0].error["field"] == "attributes.shoeSize"


def test_a_thousand_profiles_cost_a_fixed_number_of_queries(django_assert_max_num_queries):
    batch = [item(email=f"p{i}@example.com", attributes={"n": i}, fields={"city": "Łódź"}) for i in range(1000)]
    with django_assert_max_num_queries(12):
        results = run(*batch)
    assert statuses(results).count("created") == 1000
    assert Identifier.objects.count() == 2000
    updates = [item(email=f"p{i}@example.com", attributes={"n": i + 1}) for i in range(1000)]
    with django_assert_max_num_queries(12):
        results = run(*updates)
    assert statuses(results).count("updated") == 1000
    assert Profile.objects.get(email="p7@example.com").attributes == {"n": 8}


def agreements_batch(n, *, granted=True, decided_at=None):
    return [
        ProfileInput(
            identifiers={"email": f"c{i}@example.com"},
            agreements={"email": granted, "sms": not granted, "push": True},
            agreements_decided_at=decided_at,
        )
        for i in range(n)
    ]


def test_agreements_of_a_thousand_profiles_cost_the_same_statements_as_of_ten():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from consents.ledger import verify_chains
    from consents.models import ConsentRecord, ConsentState
    from profiles.models import Event

    counts = {}
    for n in (10, 1000):
        before = ConsentRecord.objects.count()
        with CaptureQueriesContext(connection) as queries:
            results = profiles_upsert_many(items=agreements_batch(n)[-n:], source="tests")
        counts[n] = len(queries)
        assert set(statuses(results)) == {"created"}
        assert ConsentRecord.objects.count() - before == 3 * n
        Profile.objects.all().delete()
    assert counts[10] == counts[1000], counts

    results = run(*agreements_batch(1000))
    ids = [r.client_id for r in results]
    assert ConsentState.objects.filter(profile_id__in=ids).count() == 3000
    assert list(verify_chains(client_ids=ids)) == []
    records, events = ConsentRecord.objects.count(), Event.objects.count()
    assert set(statuses(run(*agreements_batch(1000)))) == {"unchanged"}
    assert (ConsentRecord.objects.count(), Event.objects.count()) == (
        records,
        events,
    )  # nothing changed: nothing written


def test_an_older_decision_in_a_batch_is_a_warning_and_a_newer_one_applies():
    from datetime import timedelta

    from django.utils import timezone

    from consents.models import ConsentState

    withdrawn_at = timezone.now() - timedelta(days=1)
    run(*agreements_batch(2, granted=False, decided_at=withdrawn_at))
    results = run(
        *agreements_batch(1, granted=True, decided_at=withdrawn_at - timedelta(days=5)),  # a late file
        ProfileInput(
            identifiers={"email": "c1@example.com"}, agreements={"email": True}, agreements_decided_at=timezone.now()
        ),
    )
    # email and sms would change and are older than the decisions in force; push is granted already: no warning
    assert [w["code"] for w in results[0].warnings] == ["consent.stale", "consent.stale"]
    assert {w["field"] for w in results[0].warnings} == {"agreements.email", "agreements.sms"}
    assert results[1].warnings == []
    states = dict(ConsentState.objects.filter(agreement__key="email").values_list("profile__email", "status"))
    assert states == {"c0@example.com": "denied", "c1@example.com": "granted"}


@pytest.mark.django_db(transaction=True)
def test_a_job_cut_off_by_a_killed_connection_says_what_was_applied_and_a_rerun_finishes(settings, monkeypatch):
    from django.db import OperationalError, connection

    from crm.models import Job
    from profiles.services import batch as batch_module
    from profiles.services.batch import profiles_batch_run, profiles_batch_submit

    settings.BATCH_JOB_CHUNK_ITEMS = 40
    items = [ProfileInput(identifiers={"email": f"kill{i}@example.com"}) for i in range(100)]
    job = profiles_batch_submit(items=items, source="tests", actor="system")
    real = batch_module.profiles_upsert_many
    calls = []

    def killed_on_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # the server drops us
        return real(**kwargs)

    monkeypatch.setattr(batch_module, "profiles_upsert_many", killed_on_second_chunk)
    with pytest.raises(OperationalError):
        profiles_batch_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.processed == 40
    assert job.counts["created"] == 40 and "Items 40–99 were not applied" in job.message
    assert Profile.objects.count() == 40
    assert set(Profile.objects.values_list("email", flat=True)) == {f"kill{i}@example.com" for i in range(40)}

    monkeypatch.setattr(batch_module, "profiles_upsert_many", real)
    job = profiles_batch_run(job_id=job.pk)
    assert job.status == Job.Status.DONE and job.processed == 100 and job.attempts == 2
    assert job.counts == {"created": 100, "updated": 0, "merged": 0, "unchanged": 0, "failed": 0}
    assert Profile.objects.count() == 100
