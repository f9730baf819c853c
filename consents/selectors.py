from collections.abc import Iterable

from consents.models import Agreement, ConsentState, ConsentStatus

DEFAULT_KEYS = ("email", "sms", "push", "webPush", "bluetooth", "rfid", "wifi")


def agreements_for(profile_ids: Iterable[int]) -> dict[int, dict[str, bool]]:
    """Per profile, the seven channel agreements as Synerise shows them (granted → true), in one query."""
    profile_ids = list(profile_ids)
    result = {pid: dict.fromkeys(DEFAULT_KEYS, False) for pid in profile_ids}
    if not profile_ids:
        return result
    rows = ConsentState.objects.filter(
        profile_id__in=profile_ids, agreement__key__in=DEFAULT_KEYS, status=ConsentStatus.GRANTED
    ).values_list("profile_id", "agreement__key")
    for pid, key in rows:
        result[pid][key] = True
    return result


def agreements_by_key(keys: Iterable[str]) -> dict[str, Agreement]:
    return {a.key: a for a in Agreement.objects.filter(key__in=list(keys), is_active=True)}
