from collections.abc import Iterable

from django.db import connection

from consents.models import ConsentStatus

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
