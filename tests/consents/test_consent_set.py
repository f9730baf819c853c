import pytest

from consents.context import RequestMeta
from consents.models import ConsentRecord, ConsentState, ConsentStatus
from consents.services import consent_set
from consents.signals import consent_changed
from crm.errors import ValidationFailed

G, D, A = ConsentStatus.GRANTED, ConsentStatus.DENIED, ConsentStatus.AWAITING


@pytest.fixture
def signals():
    received = []

    def receiver(sender, changes, source, actor, **kwargs):
        received.extend((c, source, actor) for c in changes)

    consent_changed.connect(receiver)
    yield received
    consent_changed.disconnect(receiver)


def state_of(profile, agreement):
    return ConsentState.objects.filter(profile=profile, agreement=agreement).values_list("status", flat=True).first()


# Every transition between "no decision", granted, denied and awaiting confirmation.
TRANSITIONS = [
    ((), G),
    ((), D),
    ((), A),
    ((G,), D),
    ((G,), A),
    ((D,), G),
    ((D,), A),
    ((A,), G),
    ((A,), D),
]


@pytest.mark.parametrize(("before", "after"), TRANSITIONS)
def test_each_transition_writes_state_one_record_and_one_signal(
    make_profile, newsletter, signals, django_capture_on_commit_callbacks, before, after
):
    profile = make_profile(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=False):
        for state in before:
            consent_set(profile=profile, agreement=newsletter, state=state, source="api", actor="k")
        signals.clear()
        records_before = ConsentRecord.objects.filter(client_id=profile.pk).count()

        changed = consent_set(
            profile=profile,
            agreement=newsletter,
            state=after,
            source="admin",
            actor="admin:jo",
            request_meta=RequestMeta(ip_address="203.0.113.7", user_agent="Firefox"),
        )

    assert changed is True
    assert state_of(profile, newsletter) == after
    records = list(ConsentRecord.objects.filter(client_id=profile.pk).order_by("seq"))
    assert len(records) == records_before + 1
    last = records[-1]
    assert (last.old_status, last.new_status) == ((before[-1] if before else ""), after)
    assert (last.source, last.actor, last.ip_address, last.user_agent) == (
        "admin",
        "admin:jo",
        "203.0.113.7",
        "Firefox",
    )
    assert last.text.version == 1
    assert [(c.client_id, c.old_status, c.new_status, c.record_id) for c, _, _ in signals] == [
        (profile.pk, before[-1] if before else "", after, last.pk)
    ]
    assert signals[0][1:] == ("admin", "admin:jo")


@pytest.mark.parametrize("state", [G, D, A])
def test_writing_the_same_state_again_writes_nothing(make_profile, newsletter, signals, state):
    profile = make_profile(email="ann@example.com")
    consent_set(profile=profile, agreement=newsletter, state=state, source="api")
    signals.clear()

    assert consent_set(profile=profile, agreement=newsletter, state=state, source="api") is False
    assert ConsentRecord.objects.filter(client_id=profile.pk).count() == 1
    assert signals == []


def test_the_chain_links_each_record_to_the_previous_one(make_profile, email_agreement, alcohol):
    profile = make_profile()
    for agreement, state in [(email_agreement, G), (alcohol, G), (email_agreement, D)]:
        consent_set(profile=profile, agreement=agreement, state=state, source="api")
    records = list(ConsentRecord.objects.filter(client_id=profile.pk).order_by("seq"))
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == "0" * 64
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    assert len({r.hash for r in records}) == 3


def test_chains_are_per_profile(make_profile, email_agreement):
    ann, bob = make_profile(), make_profile()
    consent_set(profile=ann, agreement=email_agreement, state=G, source="api")
    consent_set(profile=bob, agreement=email_agreement, state=G, source="api")
    assert list(ConsentRecord.objects.filter(client_id=bob.pk).values_list("seq", "prev_hash")) == [(1, "0" * 64)]


def test_an_unknown_state_is_refused_naming_the_agreement(make_profile, email_agreement):
    profile = make_profile()
    with pytest.raises(ValidationFailed) as error:
        consent_set(profile=profile, agreement=email_agreement, state="yes", source="api")
    assert error.value.field == "agreements.email"
    assert not ConsentRecord.objects.filter(client_id=profile.pk).exists()


def test_awaiting_confirmation_on_an_agreement_without_double_opt_in_is_refused(make_profile, email_agreement):
    profile = make_profile()
    with pytest.raises(ValidationFailed) as error:
        consent_set(profile=profile, agreement=email_agreement, state=A, source="api")
    assert (error.value.code, error.value.field) == ("consent.confirmation_not_required", "agreements.email")
    assert state_of(profile, email_agreement) is None
    assert not ConsentRecord.objects.filter(client_id=profile.pk).exists()


def test_a_retired_agreement_takes_no_changes(make_profile, alcohol):
    profile = make_profile()
    alcohol.is_active = False
    alcohol.save()
    with pytest.raises(ValidationFailed) as error:
        consent_set(profile=profile, agreement=alcohol, state=G, source="api")
    assert error.value.code == "agreement.retired"
    assert not ConsentRecord.objects.filter(client_id=profile.pk).exists()


def test_the_record_keeps_the_text_version_in_force_at_the_time(make_profile, newsletter):
    from consents.services import agreement_text_add

    profile = make_profile()
    consent_set(profile=profile, agreement=newsletter, state=D, source="api")
    v2 = agreement_text_add(agreement=newsletter, text="Send me the newsletter, now with recipes.")
    consent_set(profile=profile, agreement=newsletter, state=G, source="api")

    versions = list(
        ConsentRecord.objects.filter(client_id=profile.pk).order_by("seq").values_list("text__version", flat=True)
    )
    assert versions == [1, 2]
    assert v2.version == 2
    assert newsletter.texts.get(version=1).text == "Send me the weekly newsletter."
