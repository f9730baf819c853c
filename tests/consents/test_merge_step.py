from datetime import timedelta

from django.utils import timezone

from consents.ledger import verify_chains
from consents.merge import consents_merge, consents_unmerge
from consents.models import ConsentRecord, ConsentState, ConsentStatus
from consents.services import consent_set
from profiles.merge_registry import MergeContext, UnmergeContext, registry
from profiles.models import Profile

G, D = ConsentStatus.GRANTED, ConsentStatus.DENIED


def states(profile):
    return dict(ConsentState.objects.filter(profile=profile).values_list("agreement__key", "status"))


def age(profile, key, days):
    """Pretend a decision was made ``days`` ago (the merge compares decision times)."""
    ConsentState.objects.filter(profile=profile, agreement__key=key).update(
        changed_at=timezone.now() - timedelta(days=days)
    )


def test_the_step_is_registered():
    assert registry.steps["consents"].merge is consents_merge


def test_the_most_recent_decision_wins_and_both_histories_stay(make_profile, alcohol):
    survivor = make_profile(email="ann@example.com", agreements={"email": True, "sms": False})
    merged = make_profile(uuid="6a5c8e8e-5f7c-4a57-9d7c-1f8f3f1b2c3d", agreements={"email": False, "sms": True})
    consent_set(profile=merged, agreement=alcohol, state=G, source="api")
    age(survivor, "email", 1)  # survivor decided email later than merged → survivor keeps granted
    age(merged, "email", 5)
    age(survivor, "sms", 9)  # merged decided sms later → merged's granted wins
    age(merged, "sms", 2)
    survivor_records = ConsentRecord.objects.filter(client_id=survivor.pk).count()
    merged_records = ConsentRecord.objects.filter(client_id=merged.pk).count()

    data = consents_merge(ctx=MergeContext(survivor=survivor, merged=merged, source="api", actor="k"))

    assert states(survivor) == {"email": G, "sms": G, "alcohol": G}
    assert states(merged) == {}
    sms = ConsentState.objects.get(profile=survivor, agreement__key="sms")
    assert sms.changed_at < timezone.now() - timedelta(days=1)  # the decision's time, not the merge's
    new = list(ConsentRecord.objects.filter(client_id=survivor.pk, seq__gt=survivor_records).order_by("seq"))
    assert [(r.agreement.key, r.old_status, r.new_status, r.source) for r in new] == [
        ("sms", D, G, "merge"),
        ("alcohol", "", G, "merge"),
    ]
    assert new[0].details["mergedFrom"] == merged.pk
    ended = ConsentRecord.objects.filter(client_id=merged.pk, seq__gt=merged_records)
    assert sorted(ended.values_list("new_status", flat=True)) == ["", "", ""]
    assert len(data["moved"]) == 3 and len(data["changed"]) == 2

    Profile.objects.filter(pk=merged.pk).delete()  # what the merge does next
    assert ConsentRecord.objects.filter(client_id=merged.pk).count() == merged_records + 3
    assert list(verify_chains()) == []


def test_unmerge_restores_both_sides(make_profile, alcohol):
    survivor = make_profile(email="ann@example.com", agreements={"sms": False})
    merged = make_profile(uuid="6a5c8e8e-5f7c-4a57-9d7c-1f8f3f1b2c3d", agreements={"sms": True})
    consent_set(profile=merged, agreement=alcohol, state=G, source="api")
    age(survivor, "sms", 3)
    data = consents_merge(ctx=MergeContext(survivor=survivor, merged=merged, source="api", actor="k"))

    notes = consents_unmerge(ctx=UnmergeContext(survivor=survivor, restored=merged, data=data, source="api", actor="k"))

    assert notes == []
    assert states(merged) == {"sms": G, "alcohol": G}
    assert states(survivor) == {"sms": D}
    assert list(verify_chains()) == []


def test_unmerge_keeps_a_decision_changed_since_and_says_so(make_profile, alcohol):
    survivor = make_profile(email="ann@example.com")
    merged = make_profile(uuid="6a5c8e8e-5f7c-4a57-9d7c-1f8f3f1b2c3d")
    consent_set(profile=merged, agreement=alcohol, state=G, source="api")
    data = consents_merge(ctx=MergeContext(survivor=survivor, merged=merged, source="api", actor="k"))
    consent_set(profile=survivor, agreement=alcohol, state=D, source="resignation")

    notes = consents_unmerge(ctx=UnmergeContext(survivor=survivor, restored=merged, data=data, source="api", actor="k"))

    assert notes == ["The survivor's consent 'alcohol' changed since the merge; kept."]
    assert states(survivor) == {"alcohol": D}
    assert states(merged) == {"alcohol": G}
