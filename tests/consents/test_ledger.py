import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from consents.ledger import verify_chains
from consents.models import AppendOnly, ConsentRecord, ConsentState, ConsentStatus
from consents.services import consent_set

G, D = ConsentStatus.GRANTED, ConsentStatus.DENIED


@pytest.fixture
def history(make_profile, email_agreement, alcohol):
    ann, bob = make_profile(email="ann@example.com"), make_profile(email="bob@example.com")
    for profile in (ann, bob):
        consent_set(profile=profile, agreement=email_agreement, state=G, source="api", actor="api-key:shop")
        consent_set(profile=profile, agreement=alcohol, state=G, source="form")
        consent_set(profile=profile, agreement=email_agreement, state=D, source="resignation")
    return ann, bob


def run_verify():
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("consent_ledger_verify", stdout=out, stderr=err)
    except CommandError as exc:
        return False, out.getvalue(), err.getvalue() + str(exc)
    return True, out.getvalue(), err.getvalue()


def raw(sql, params):
    """What someone with database access could do: bypass the append-only trigger and edit a row."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses to run with deferred checks pending
        cursor.execute("ALTER TABLE consents_consentrecord DISABLE TRIGGER consents_record_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE consents_consentrecord ENABLE TRIGGER consents_record_append_only")


def test_intact_chains_verify(history):
    ok, out, _ = run_verify()
    assert ok
    assert "6 records in 2 chains checked: all intact." in out


def test_an_edited_record_is_reported(history):
    ann, _ = history
    record = ConsentRecord.objects.get(client_id=ann.pk, seq=2)
    raw("UPDATE consents_consentrecord SET source = 'admin' WHERE id = %s", [record.pk])

    ok, _, err = run_verify()

    assert not ok
    assert f"clientId {ann.pk}, record #2 (id {record.pk}): content does not match its hash (edited)" in err
    assert "1 problem(s) found" in err


def test_a_record_edited_with_a_recomputed_hash_breaks_the_next_link(history):
    from consents.ledger import hash_of

    ann, _ = history
    record = ConsentRecord.objects.get(client_id=ann.pk, seq=1)
    record.new_status = "denied"
    forged = hash_of(record)
    raw("UPDATE consents_consentrecord SET new_status = 'denied', hash = %s WHERE id = %s", [forged, record.pk])

    problems = [str(p) for p in verify_chains()]

    assert problems == [
        f"clientId {ann.pk}, record #2 (id {ann_record(ann, 2)}): does not link to the previous record's hash"
    ]


def ann_record(profile, seq):
    return ConsentRecord.objects.get(client_id=profile.pk, seq=seq).pk


def test_a_deleted_record_in_the_middle_is_reported(history):
    ann, _ = history
    raw("DELETE FROM consents_consentrecord WHERE client_id = %s AND seq = 2", [ann.pk])
    problems = [str(p) for p in verify_chains()]
    assert any("expected record #2 here" in p for p in problems)
    assert any("does not link to the previous record's hash" in p for p in problems)


def test_a_deleted_last_record_is_caught_by_the_state_check(history, email_agreement):
    ann, _ = history
    raw("DELETE FROM consents_consentrecord WHERE client_id = %s AND seq = 3", [ann.pk])
    problems = [str(p) for p in verify_chains()]
    assert problems == [
        f"clientId {ann.pk}: the state 'denied' of agreement {email_agreement.pk} does not match its last ledger "
        "record ('granted')"
    ]


def test_a_state_edited_behind_the_ledger_is_reported(history, alcohol):
    _, bob = history
    ConsentState.objects.filter(profile=bob, agreement=alcohol).update(status=D)
    problems = [str(p) for p in verify_chains(client_ids=[bob.pk])]
    assert len(problems) == 1
    assert f"the state 'denied' of agreement {alcohol.pk}" in problems[0]


def test_the_application_cannot_edit_or_delete_records(history):
    ann, _ = history
    record = ConsentRecord.objects.filter(client_id=ann.pk).first()
    record.source = "admin"
    with pytest.raises(AppendOnly):
        record.save()
    with pytest.raises(AppendOnly):
        record.delete()
    with pytest.raises(AppendOnly):
        ConsentRecord.objects.filter(pk=record.pk).update(source="admin")
    with pytest.raises(AppendOnly):
        ConsentRecord.objects.filter(pk=record.pk).delete()
    assert ConsentRecord.objects.get(pk=record.pk).source == "api"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE consents_consentrecord SET new_status = 'denied' WHERE id = %s",
        "DELETE FROM consents_consentrecord WHERE id = %s",
    ],
)
def test_the_database_refuses_edits_and_deletes(history, sql):
    ann, _ = history
    record = ConsentRecord.objects.filter(client_id=ann.pk).first()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [record.pk])
    assert ConsentRecord.objects.filter(pk=record.pk, new_status="granted").exists()


def test_erasure_can_blank_personal_data_and_the_chain_still_verifies(make_profile, email_agreement):
    from consents.context import RequestMeta

    profile = make_profile()
    consent_set(
        profile=profile,
        agreement=email_agreement,
        state=G,
        source="form",
        request_meta=RequestMeta(ip_address="198.51.100.4", user_agent="Safari"),
    )
    ConsentRecord.objects.filter(client_id=profile.pk).update(ip_address=None, user_agent="")
    assert ConsentRecord.objects.get(client_id=profile.pk).ip_address is None
    assert list(verify_chains()) == []


def test_records_outlive_the_profile(history):
    from privacy.services import profile_erase

    ann, _ = history
    states = ConsentState.objects.filter(profile=ann).count()
    profile_erase(profile=ann, source="api")
    records = list(ConsentRecord.objects.filter(client_id=ann.pk).order_by("seq"))
    # Erasure ends each decision in force with a record of its own: the chain says where it went.
    assert len(records) == 3 + states
    assert [(r.source, r.new_status) for r in records[3:]] == [("erasure", "")] * states
    assert list(verify_chains()) == []
