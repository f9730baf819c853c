"""Consent writes. Every change of a profile's decision on an agreement goes through ``consent_set``.

Each change, in one transaction: the profile's row is locked (its ledger chain is appended in
order), a ``ConsentRecord`` is appended, the ``ConsentState`` is written, and ``consent_changed``
is sent. Writing the state a profile already has is a no-op: no record, no signal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from consents.context import RequestMeta, current_request_meta
from consents.ledger import record_append
from consents.models import (
    Agreement,
    AgreementText,
    Channel,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
)
from consents.signals import ConsentChange, consent_changed
from consents.tokens import confirmation_token_read
from crm.errors import NotFound, ValidationFailed

logger = logging.getLogger(__name__)

# Words that name a state in the surfaces (ExpertSender's True/False/AwaitingConfirmation included).
STATE_ALIASES = {
    True: ConsentStatus.GRANTED,
    False: ConsentStatus.DENIED,
    **{s.value: s for s in ConsentStatus},
}


# --- reading the API's words ------------------------------------------------------------------


def _check_writable(agreement: Agreement | None, name: str, where: str) -> Agreement:
    if agreement is None:
        raise ValidationFailed(f"Unknown agreement '{name}'.", field=where, code="agreement.unknown")
    if not agreement.is_active:
        raise ValidationFailed(
            f"Agreement '{name}' is retired and takes no changes.", field=where, code="agreement.retired"
        )
    return agreement


def agreements_parse(
    *, agreements: dict[str, Any], attributes: dict[str, Any], known: dict[str, Agreement] | None = None
) -> tuple[list[tuple[Agreement, bool]], dict[str, Any]]:
    """Split a Synerise write into (agreement, granted) pairs and the remaining custom attributes.

    ``agreements`` names any agreement by key; custom agreements may also come as ``attributes``
    keys (seed 002), matched by key as attribute names are (case and separators ignored). Values
    must be true or false; an unknown or retired agreement or a non-boolean is a ValidationFailed
    naming the field. ``known`` (key → agreement) spares the query when a batch preloads them.
    """
    if not agreements and not attributes:
        return [], attributes
    from profiles.attribute_names import attribute_key

    every = list(known.values()) if known is not None else list(Agreement.objects.all())
    by_key = {a.key: a for a in every}
    custom = {attribute_key(a.key): a for a in every if not a.is_default}
    pairs: list[tuple[Agreement, bool]] = []
    for key, value in agreements.items():
        agreement = _check_writable(by_key.get(key), key, f"agreements.{key}")
        pairs.append((agreement, _boolean(value, f"agreements.{key}")))
    if not custom:
        return pairs, attributes
    remaining: dict[str, Any] = {}
    for name, value in attributes.items():
        agreement = custom.get(attribute_key(name)) if isinstance(name, str) else None
        if agreement is None:
            remaining[name] = value
            continue
        _check_writable(agreement, name, f"attributes.{name}")
        pairs.append((agreement, _boolean(value, f"attributes.{name}")))
    return pairs, remaining


def _boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed(
            f"{where} is an agreement: send true or false, not {value!r}.", field=where, code="consent.not_boolean"
        )
    return value


def consent_state_parse(value, *, field: str) -> str:
    """A state as the surfaces spell it (true/false, "True"/"False"/"AwaitingConfirmation", or ours)."""
    if isinstance(value, str):
        value = {"true": True, "false": False, "awaitingconfirmation": ConsentStatus.AWAITING}.get(
            value.lower().replace("_", ""), value
        )
    state = STATE_ALIASES.get(value) if isinstance(value, bool | str) else None
    if state is None:
        raise ValidationFailed(
            f"{field} must be granted, denied or awaiting_confirmation; got {value!r}.",
            field=field,
            code="consent.state",
        )
    return state


# --- the one write path ---------------------------------------------------------------------


def consent_set(
    *,
    profile,
    agreement: Agreement,
    state: str,
    source: str,
    actor: str = "",
    request_meta: RequestMeta | None = None,
    force: bool = False,
) -> bool:
    """Record a profile's decision on an agreement; returns whether the state changed.

    Moving to ``awaiting_confirmation`` (only for agreements that require double opt-in) e-mails a
    confirmation link after the transaction commits; ``force`` sends it again when the state was
    already awaiting confirmation.
    """
    where = f"agreements.{agreement.key}"
    if state not in ConsentStatus.values:
        raise ValidationFailed(
            f"Unknown consent state {state!r}; use one of {', '.join(ConsentStatus.values)}.",
            field=where,
            code="consent.state",
        )
    _check_writable(agreement, agreement.key, where)
    if state == ConsentStatus.AWAITING:
        if not agreement.requires_double_opt_in:
            raise ValidationFailed(
                f"Agreement '{agreement.key}' needs no confirmation; grant or deny it.",
                field=where,
                code="consent.confirmation_not_required",
            )
        if not profile.email:
            raise ValidationFailed(
                f"Agreement '{agreement.key}' is confirmed by e-mail, and the profile has no e-mail address.",
                field=where,
                code="consent.no_email",
            )
    with transaction.atomic():
        record = _write(
            client_id=profile.pk,
            agreement=agreement,
            new_status=state,
            source=source,
            actor=actor,
            request_meta=request_meta,
        )
        if state == ConsentStatus.AWAITING and (record is not None or force):
            asking = record or _last_record(profile.pk, agreement)
            _send_confirmation_on_commit(client_id=profile.pk, agreement_id=agreement.pk, record_id=asking.pk)
    return record is not None


def _last_record(client_id: int, agreement: Agreement) -> ConsentRecord:
    return ConsentRecord.objects.filter(client_id=client_id, agreement=agreement).order_by("-seq").first()


def _write(
    *,
    client_id: int,
    agreement: Agreement,
    new_status: str,
    source: str,
    actor: str,
    request_meta: RequestMeta | None,
    details: dict | None = None,
    decided_at: datetime | None = None,
) -> ConsentRecord | None:
    """Change one state ("" removes it), append its ledger record and send the signal; None when nothing changed."""
    from profiles.models import Profile

    # The profile's row lock orders its ledger chain (FOR NO KEY UPDATE: rows referencing it can still be inserted).
    if not Profile.objects.select_for_update(no_key=True).filter(pk=client_id).exists():
        raise NotFound(f"Profile {client_id} does not exist.", field="clientId", code="profile.not_found")
    current = ConsentState.objects.select_for_update().filter(profile_id=client_id, agreement=agreement).first()
    old_status = current.status if current else ""
    if old_status == new_status:
        return None
    meta = request_meta or current_request_meta() or RequestMeta()
    now = timezone.now()
    text_id = agreement.texts.order_by("-version").values_list("pk", flat=True).first()
    record = record_append(
        client_id=client_id,
        agreement_id=agreement.pk,
        text_id=text_id,
        old_status=old_status,
        new_status=new_status,
        source=source,
        actor=actor,
        ip_address=meta.ip_address,
        user_agent=meta.user_agent,
        details=details or {},
        created_at=now,
    )
    if not new_status:
        current.delete()
    elif current is None:
        ConsentState.objects.create(
            profile_id=client_id, agreement=agreement, status=new_status, changed_at=decided_at or now, source=source
        )
    else:
        current.status, current.changed_at, current.source = new_status, decided_at or now, source
        current.save(update_fields=["status", "changed_at", "source"])
    consent_changed.send(
        sender=ConsentState,
        changes=[
            ConsentChange(
                client_id=client_id,
                agreement_id=agreement.pk,
                agreement_key=agreement.key,
                old_status=old_status,
                new_status=new_status,
                record_id=record.pk,
                changed_at=now,
            )
        ],
        source=source,
        actor=actor,
    )
    return record


def _send_confirmation_on_commit(*, client_id: int, agreement_id: int, record_id: int) -> None:
    from consents.mail import confirmation_email_send

    def send():
        try:
            confirmation_email_send(client_id=client_id, agreement_id=agreement_id, record_id=record_id)
        except Exception:
            # The state is committed; the request can be sent again with force.
            logger.exception("consents: confirmation e-mail to clientId %s failed", client_id)

    transaction.on_commit(send)


# --- double opt-in confirmation ---------------------------------------------------------------


@dataclass
class ConfirmResult:
    outcome: str  # "confirmed", "already_granted" or "not_pending"
    agreement: Agreement
    profile: Any


def consent_confirm(*, token: str, request_meta: RequestMeta | None = None) -> ConfirmResult:
    """Grant the consent a confirmation link asks for; raises LinkInvalid / LinkExpired for bad links.

    The link names the ledger record that asked for confirmation: once the consent was withdrawn
    or asked for again, an older link no longer grants anything.
    """
    from profiles.selectors import profile_lookup

    data = confirmation_token_read(token)
    agreement = Agreement.objects.filter(pk=data["a"]).first()
    try:
        profile = profile_lookup(kind="clientId", value=data["c"])
    except NotFound:
        profile = None
    if agreement is None or profile is None:
        raise NotFound("The profile or agreement of this link no longer exists.", field="token", code="link.gone")
    if not agreement.requires_double_opt_in:
        raise ValidationFailed(
            f"Agreement '{agreement.key}' needs no confirmation.",
            field="token",
            code="consent.confirmation_not_required",
        )
    _check_writable(agreement, agreement.key, "token")
    with transaction.atomic():
        type(profile).objects.select_for_update(no_key=True).filter(pk=profile.pk).exists()  # orders the chain
        state = ConsentState.objects.filter(profile=profile, agreement=agreement).first()
        if state is not None and state.status == ConsentStatus.GRANTED:
            return ConfirmResult("already_granted", agreement, profile)
        last = _last_record(profile.pk, agreement)
        if state is None or state.status != ConsentStatus.AWAITING or last is None or last.pk != data["r"]:
            return ConfirmResult("not_pending", agreement, profile)
        _write(
            client_id=profile.pk,
            agreement=agreement,
            new_status=ConsentStatus.GRANTED,
            source=ConsentSource.CONFIRMATION,
            actor=f"profile:{profile.pk}",
            request_meta=request_meta,
            details={"confirms": last.seq},
        )
    return ConfirmResult("confirmed", agreement, profile)


# --- resignation ------------------------------------------------------------------------------


def consents_withdraw(
    *, profile, agreements: list[Agreement], source: str, actor: str = "", request_meta: RequestMeta | None = None
) -> list[Agreement]:
    """Deny each agreement that is granted or awaiting confirmation; returns those that changed."""
    changed = []
    with transaction.atomic():
        for agreement in agreements:
            if consent_set(
                profile=profile,
                agreement=agreement,
                state=ConsentStatus.DENIED,
                source=source,
                actor=actor,
                request_meta=request_meta,
            ):
                changed.append(agreement)
    return changed


def withdrawable_states(profile) -> list[ConsentState]:
    """What a person may withdraw on the resignation page: granted, or awaiting their confirmation."""
    return list(
        ConsentState.objects.filter(
            profile=profile,
            status__in=[ConsentStatus.GRANTED, ConsentStatus.AWAITING],
            agreement__is_active=True,
        )
        .select_related("agreement")
        .order_by("-agreement__is_default", "agreement_id")
    )


# --- the guard ----------------------------------------------------------------------------------


def can_contact(profile, channel: str, *, agreement: Agreement | None = None) -> bool:
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


# --- agreement definitions ------------------------------------------------------------------------


def agreement_text_add(*, agreement: Agreement, text: str) -> AgreementText:
    """Add the next version of an agreement's consent text; earlier versions stay as they were."""
    text = text.strip()
    if not text:
        raise ValidationFailed("A consent text must not be empty.", field="text")
    with transaction.atomic():
        Agreement.objects.select_for_update().filter(pk=agreement.pk).exists()
        latest = agreement.texts.aggregate(v=Max("version"))["v"] or 0
        return AgreementText.objects.create(agreement=agreement, version=latest + 1, text=text)
