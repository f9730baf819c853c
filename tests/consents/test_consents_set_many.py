"""consents_set_many: consent_set's rules for many decisions at once, in a fixed number of statements."""

import re
from datetime import timedelta
from io import StringIO
from itertools import pairwise

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from consents.ledger import verify_chains
from consents.models import Agreement, ConsentRecord, ConsentState, ConsentStatus
from consents.services import ConsentItem, consent_set, consents_set_many
from consents.tasks import confirmation_emails_send
from profiles.models import Event, EventAction
from profiles.services import ProfileInput
from profiles.services.batch import profiles_upsert_many

G, D, A = ConsentStatus.GRANTED, ConsentStatus.DENIED, ConsentStatus.AWAITING

pytestmark = pytest.mark.django_db


def many_profiles(n: int) -> list[int]:
    results = profiles_upsert_many(
        items=[ProfileInput(identifiers={"email": f"p{i}@example.com"}) for i in range(n)], source="tests"
    )
    return [r.client_id for r in results]


def state(client_id, agreement):
    return (
        ConsentState.objects.filter(profile_id=client_id, agreement=agreement).values_list("status", flat=True).first()
    )


def consent_events(client_ids) -> int:
    return Event.objects.filter(profile_id__in=client_ids, action=EventAction.CONSENT_CHANGED).count()


def assert_ledger_intact():
    out = StringIO()
    call_command("consent_ledger_verify", stdout=out, stderr=StringIO())  # raises CommandError on any problem
    assert "all intact" in out.getvalue()
    assert list(verify_chains()) == []


def write(items, **kwargs):
    with CaptureQueriesContext(connection) as queries:
        results = consents_set_many(items=items, source="import", actor="import:1", **kwargs)
    return results, len(queries)


def test_ten_and_a_thousand_items_cost_the_same_statements(email_agreement):
    sms, push = Agreement.objects.get(key="sms"), Agreement.objects.get(key="push")
    ids = many_profiles(1010)
    small, large = ids[:10], ids[10:]

    # First decisions (empty chains), then a second round on chains that have a head.
    first_small, q_small = write([ConsentItem(pid, email_agreement, G) for pid in small])
    first_large, q_large = write(
        [ConsentItem(pid, a, G) for pid in large[:334] for a in (email_agreement, sms, push)][:1000]
    )
    # States read, the changing profiles locked and read again, texts in force, chain heads, records INSERT,
    # states upsert, the profiles' change time, system events INSERT, the webhook subscriptions read.
    assert q_small == q_large == 9, (q_small, q_large)
    assert all(r.changed and r.record_id for r in first_small + first_large)

    second_small, q_small = write([ConsentItem(pid, email_agreement, D) for pid in small])
    second_large, q_large = write([ConsentItem(pid, email_agreement, D) for pid in large])
    assert q_small == q_large == 9, (q_small, q_large)
    assert len(second_large) == 1000 and all(r.changed for r in second_small + second_large)

    assert ConsentRecord.objects.count() == 10 + 1000 + 10 + 1000
    assert consent_events(ids) == 2020  # one system event per change, from the one signal of each call
    assert state(large[0], email_agreement) == D and state(large[0], sms) == G
    assert list(
        ConsentRecord.objects.filter(client_id=large[0]).order_by("seq").values_list("seq", "old_status", "new_status")
    ) == [(1, "", G), (2, "", G), (3, "", G), (4, G, D)]
    assert_ledger_intact()


def test_nothing_changes_one_statement_no_record_no_event(email_agreement):
    ids = many_profiles(50)
    write([ConsentItem(pid, email_agreement, G) for pid in ids])
    records, events = ConsentRecord.objects.count(), consent_events(ids)

    results, queries = write([ConsentItem(pid, email_agreement, G) for pid in ids])

    assert queries == 1  # the states read, without locks
    assert not any(r.changed or r.warning or r.error for r in results)
    assert (ConsentRecord.objects.count(), consent_events(ids)) == (records, events)


def test_items_on_the_same_decision_build_on_each_other_in_order(email_agreement):
    (pid,) = many_profiles(1)
    results, _ = write(
        [
            ConsentItem(pid, email_agreement, G),
            ConsentItem(pid, email_agreement, G),
            ConsentItem(pid, email_agreement, D),
        ]
    )
    assert [r.changed for r in results] == [True, False, True]
    assert list(
        ConsentRecord.objects.filter(client_id=pid).order_by("seq").values_list("seq", "old_status", "new_status")
    ) == [(1, "", G), (2, G, D)]
    assert state(pid, email_agreement) == D
    assert_ledger_intact()


def test_many_and_single_writes_share_one_chain(make_profile, email_agreement, alcohol):
    profile = make_profile()
    consent_set(profile=profile, agreement=email_agreement, state=G, source="api")
    write([ConsentItem(profile.pk, alcohol, G), ConsentItem(profile.pk, email_agreement, D)])
    consent_set(profile=profile, agreement=alcohol, state=D, source="api")
    records = list(ConsentRecord.objects.filter(client_id=profile.pk).order_by("seq"))
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert all(r.prev_hash == p.hash for p, r in pairwise(records))
    assert_ledger_intact()


def test_records_keep_the_text_in_force_source_actor_and_request(make_profile, newsletter):
    from consents.context import RequestMeta
    from consents.services import agreement_text_add

    ann, bob = make_profile(), make_profile()
    write([ConsentItem(ann.pk, newsletter, G)])
    agreement_text_add(agreement=newsletter, text="Version two.")
    write(
        [ConsentItem(bob.pk, newsletter, D), ConsentItem(ann.pk, newsletter, D)],
        request_meta=RequestMeta(ip_address="203.0.113.7", user_agent="Importer"),
    )
    last = ConsentRecord.objects.filter(client_id=ann.pk).order_by("seq").last()
    assert (last.text.version, last.source, last.actor, last.ip_address, last.user_agent) == (
        2,
        "import",
        "import:1",
        "203.0.113.7",
        "Importer",
    )
    assert ConsentRecord.objects.get(client_id=bob.pk).text.version == 2
    assert_ledger_intact()


def test_each_broken_rule_fails_its_item_alone(make_profile, email_agreement, newsletter, alcohol):
    ann = make_profile(email="ann@example.com")
    no_email = make_profile(phone="+48600100200")
    alcohol.is_active = False
    alcohol.save()
    results, _ = write(
        [
            ConsentItem(ann.pk, email_agreement, "yes"),
            ConsentItem(ann.pk, alcohol, G),
            ConsentItem(ann.pk, email_agreement, A),
            ConsentItem(no_email.pk, newsletter, A),
            ConsentItem(999_999_999, email_agreement, G),
            ConsentItem(ann.pk, email_agreement, G, decided_at=timezone.now() + timedelta(days=1)),
            ConsentItem(ann.pk, email_agreement, G),
        ]
    )
    assert [r.error.code if r.error else None for r in results] == [
        "consent.state",
        "agreement.retired",
        "consent.confirmation_not_required",
        "consent.no_email",
        "profile.not_found",
        "consent.decided_at",
        None,
    ]
    assert results[0].error.field == "agreements.email"
    assert results[-1].changed
    assert ConsentRecord.objects.filter(client_id__in=[ann.pk, no_email.pk]).count() == 1


def test_an_older_decision_is_not_applied_and_is_a_warning(make_profile, email_agreement):
    profile = make_profile()
    t1 = timezone.now() - timedelta(days=3)
    t2, t3 = t1 + timedelta(days=1), t1 + timedelta(days=2)
    write([ConsentItem(profile.pk, email_agreement, D, decided_at=t2)])  # withdrawn at t2

    late, _ = write([ConsentItem(profile.pk, email_agreement, G, decided_at=t1)])  # a file from before

    assert not late[0].changed and late[0].error is None
    assert late[0].warning["code"] == "consent.stale"
    assert late[0].warning["field"] == "agreements.email"
    current = ConsentState.objects.get(profile=profile, agreement=email_agreement)
    assert (current.status, current.changed_at) == (D, t2)
    assert ConsentRecord.objects.filter(client_id=profile.pk).count() == 1

    newer, _ = write([ConsentItem(profile.pk, email_agreement, G, decided_at=t3)])
    assert newer[0].changed and newer[0].warning is None
    current.refresh_from_db()
    assert (current.status, current.changed_at) == (G, t3)
    record = ConsentRecord.objects.get(pk=newer[0].record_id)
    assert record.details == {"decidedAt": t3.isoformat(timespec="microseconds")}

    untimed, _ = write([ConsentItem(profile.pk, email_agreement, D)])  # no time sent: applied as before
    assert untimed[0].changed
    assert_ledger_intact()


def test_double_opt_in_emails_are_queued_as_one_task_not_sent(
    make_profile, newsletter, mailoutbox, django_capture_on_commit_callbacks
):
    people = [make_profile(email=f"p{i}@example.com") for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        results, _ = write([ConsentItem(p.pk, newsletter, A) for p in people])
    assert all(r.changed for r in results)
    assert mailoutbox == []  # nothing sent inline
    (queued,) = DBTaskResult.objects.filter(task_path="consents.tasks.confirmation_emails_send")
    requests = queued.args_kwargs["args"][0]
    assert requests == [[p.pk, newsletter.pk, r.record_id] for p, r in zip(people, results, strict=True)]

    assert confirmation_emails_send.call(requests) == 3  # what the worker does
    assert sorted(m.to[0] for m in mailoutbox) == ["p0@example.com", "p1@example.com", "p2@example.com"]


def test_force_queues_the_request_again_naming_the_last_record(
    make_profile, newsletter, django_capture_on_commit_callbacks
):
    profile = make_profile(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        (first,), _ = write([ConsentItem(profile.pk, newsletter, A)])
        (again,), _ = write([ConsentItem(profile.pk, newsletter, A)])
        (forced,), _ = write([ConsentItem(profile.pk, newsletter, A, force=True)])
    assert (first.changed, again.changed, forced.changed) == (True, False, False)
    args = [t.args_kwargs["args"][0] for t in DBTaskResult.objects.order_by("enqueued_at")]
    assert args == [[[profile.pk, newsletter.pk, first.record_id]]] * 2  # the first write and the forced one


def test_only_the_profiles_that_change_are_locked(email_agreement):
    ids = many_profiles(3)
    write([ConsentItem(pid, email_agreement, G) for pid in ids])
    with CaptureQueriesContext(connection) as unchanged:
        consents_set_many(items=[ConsentItem(pid, email_agreement, G) for pid in ids], source="import")
    assert not any("FOR NO KEY UPDATE" in q["sql"] for q in unchanged.captured_queries)

    with CaptureQueriesContext(connection) as changed:
        consents_set_many(
            items=[ConsentItem(ids[0], email_agreement, G), ConsentItem(ids[1], email_agreement, D)], source="import"
        )
    (lock,) = [q["sql"] for q in changed.captured_queries if "FOR NO KEY UPDATE" in q["sql"]]
    assert re.search(r"p\.id = ANY\('\{([0-9,]*)\}'", lock).group(1) == str(ids[1])  # only the changing one


def test_a_decision_written_by_another_writer_before_the_lock_is_seen(monkeypatch, email_agreement):
    from consents import services

    (pid,) = many_profiles(1)
    write([ConsentItem(pid, email_agreement, G)])
    read = services._read_states

    def another_writer_first(changes, client_ids, *, lock):
        if lock:  # between the unlocked read and the lock, someone withdraws the consent
            ConsentState.objects.filter(profile_id=pid, agreement=email_agreement).update(status=D)
        return read(changes, client_ids, lock=lock)

    monkeypatch.setattr(services, "_read_states", another_writer_first)
    (result,), _ = write([ConsentItem(pid, email_agreement, D)])
    assert not result.changed  # planned again on what the lock guards: already denied, nothing to write
    assert ConsentRecord.objects.filter(client_id=pid).count() == 1
