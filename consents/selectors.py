from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q

from consents.models import Agreement, Channel, ConsentState, ConsentStatus
from crm.replica import read_connection

DEFAULT_KEYS = ("email", "sms", "push", "webPush", "bluetooth", "rfid", "wifi")


# Hand-written because every profile read runs it: compiling the equivalent ORM queryset cost ~0.8 ms a
# call, more than the query itself (bench/b4_lookup.py, docs/benchmarks.md). Same rows as
# ConsentState.objects.filter(profile_id__in=…, agreement__key__in=DEFAULT_KEYS, status=GRANTED).
GRANTED_DEFAULTS_SQL = (
    "SELECT s.profile_id, a.key FROM consents_consentstate s JOIN consents_agreement a ON a.id = s.agreement_id "
    "WHERE s.profile_id = ANY(%s) AND a.key = ANY(%s) AND s.status = %s"
)


def agreements_for(*, profile_ids: Iterable[int]) -> dict[int, dict[str, bool]]:
    """Per profile, the seven channel agreements as Synerise shows them (granted → true), in one query."""
    profile_ids = list(profile_ids)
    result = {pid: dict.fromkeys(DEFAULT_KEYS, False) for pid in profile_ids}
    if not profile_ids:
        return result
    with read_connection().cursor() as cursor:
        cursor.execute(GRANTED_DEFAULTS_SQL, [profile_ids, list(DEFAULT_KEYS), ConsentStatus.GRANTED.value])
        rows = cursor.fetchall()
    for pid, key in rows:
        result[pid][key] = True
    return result


def can_contact(*, profile, channel: str, agreement: Agreement | None = None) -> bool:
    """Whether a message may go to ``profile`` through ``channel``. Every message-sending path asks first.

    The channel's own agreement must be granted (and, for a message sent under a custom agreement
    such as "alcohol", that one too), and the profile needs an address for the channel.
    """
    if channel not in Channel.values or channel == Channel.OTHER:
        raise ValueError(f"Unknown channel {channel!r}; use one of {', '.join(Channel.values[:-1])}.")
    if channel == Channel.EMAIL and not profile.email:
        return False
    if channel == Channel.SMS and not profile.phone:
        return False
    wanted = {channel} | ({agreement.key} if agreement is not None else set())
    granted = set(
        ConsentState.objects.filter(
            profile_id=profile.pk,
            agreement__key__in=wanted,
            agreement__is_active=True,
            status=ConsentStatus.GRANTED,
        ).values_list("agreement__key", flat=True)
    )
    return granted == wanted


def agreement_ids() -> dict[str, int]:
    """Every agreement's id by its key (what a condition's ``{"agreement": key}`` may name)."""
    return dict(Agreement.objects.values_list("key", "pk"))


def agreement_state_q(*, agreement_id: int, status: str | None) -> Q:
    """The ``Q`` over Profile: profiles whose decision on the agreement has ``status`` (None: no decision yet)."""
    decided = ConsentState.objects.filter(profile=OuterRef("pk"), agreement_id=agreement_id)
    if status is None:
        return ~Q(Exists(decided))
    return Q(Exists(decided.filter(status=status)))
