from collections.abc import Iterable

from django.db import connection

from consents.models import Agreement, ConsentStatus

DEFAULT_KEYS = ("email", "sms", "push", "webPush", "bluetooth", "rfid", "wifi")


# Hand-written because every profile read runs it: compiling the equivalent ORM queryset cost ~0.8 ms a
# call, more than the query itself (bench/b4_lookup.py, docs/benchmarks.md). Same rows as
# ConsentState.objects.filter(profile_id__in=…, agreement__key__in=DEFAULT_KEYS, status=GRANTED).
GRANTED_DEFAULTS_SQL = (
    "SELECT s.profile_id, a.key FROM consents_consentstate s JOIN consents_agreement a ON a.id = s.agreement_id "
    "WHERE s.profile_id = ANY(%s) AND a.key = ANY(%s) AND s.status = %s"
)


def agreements_for(profile_ids: Iterable[int]) -> dict[int, dict[str, bool]]:
    """Per profile, the seven channel agreements as Synerise shows them (granted → true), in one query."""
    profile_ids = list(profile_ids)
    result = {pid: dict.fromkeys(DEFAULT_KEYS, False) for pid in profile_ids}
    if not profile_ids:
        return result
    with connection.cursor() as cursor:
        cursor.execute(GRANTED_DEFAULTS_SQL, [profile_ids, list(DEFAULT_KEYS), ConsentStatus.GRANTED.value])
        rows = cursor.fetchall()
    for pid, key in rows:
        result[pid][key] = True
    return result


def agreements_by_key(keys: Iterable[str]) -> dict[str, Agreement]:
    return {a.key: a for a in Agreement.objects.filter(key__in=list(keys), is_active=True)}


# One query for a Synerise document's two consent views: the granted defaults (`agreements`) and
# every decision on an active custom agreement (shown as `attributes` keys, seed 002).
AGREEMENT_DOCUMENTS_SQL = (
    "SELECT s.profile_id, a.key, a.is_default, s.status FROM consents_consentstate s "
    "JOIN consents_agreement a ON a.id = s.agreement_id "
    "WHERE s.profile_id = ANY(%s) AND ((a.key = ANY(%s) AND s.status = %s) OR (NOT a.is_default AND a.is_active))"
)


def agreement_documents_for(profile_ids: Iterable[int]) -> dict[int, tuple[dict[str, bool], dict[str, bool]]]:
    """Per profile, (the seven channel agreements, its custom agreements) as Synerise shows them (granted → true)."""
    profile_ids = list(profile_ids)
    result = {pid: (dict.fromkeys(DEFAULT_KEYS, False), {}) for pid in profile_ids}
    if not profile_ids:
        return result
    with connection.cursor() as cursor:
        cursor.execute(AGREEMENT_DOCUMENTS_SQL, [profile_ids, list(DEFAULT_KEYS), ConsentStatus.GRANTED.value])
        rows = cursor.fetchall()
    for pid, key, is_default, status in rows:
        defaults, custom = result[pid]
        if is_default:
            defaults[key] = True
        else:
            custom[key] = status == ConsentStatus.GRANTED
    return result
