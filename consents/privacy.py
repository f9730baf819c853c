"""The consents' part in erasure and portability (``profiles.privacy_registry``)."""

from __future__ import annotations

from django.db.models import Q

from consents.models import ConsentRecord, ConsentState
from consents.services import consent_state_write
from profiles.privacy_registry import (
    ErasureContext,
    ExportContext,
    register_erasure_exempt,
    register_erasure_step,
    register_export_exempt,
    register_export_step,
)


def _iso(value):
    return value.isoformat() if value is not None else None


def consents_erase(ctx: ErasureContext) -> int:
    """Each decision in force ends in the ledger (source ``erasure``: the chain says where it went), then the
    ledger's personal columns (IP, user agent; outside the hash) are blanked on every chain of the person."""

    touched = 0
    for state in ConsentState.objects.filter(profile_id=ctx.profile.pk).select_related("agreement"):
        consent_state_write(
            client_id=ctx.profile.pk,
            agreement=state.agreement,
            new_status="",
            source="erasure",
            actor=ctx.actor,
            request_meta=None,
            details={"erased": True},
        )
        touched += 1
    touched += (
        ConsentRecord.objects.filter(client_id__in=ctx.client_ids)
        .filter(Q(ip_address__isnull=False) | ~Q(user_agent=""))
        .update(ip_address=None, user_agent="")
    )
    return touched


def consents_export(ctx: ExportContext) -> dict:

    states = [
        {"agreement": s.agreement.key, "status": s.status, "changedAt": _iso(s.changed_at), "source": s.source}
        for s in ConsentState.objects.filter(profile_id=ctx.profile.pk).select_related("agreement").order_by("id")
    ]
    ledger = [
        {
            "clientId": r.client_id,
            "seq": r.seq,
            "agreement": r.agreement.key,
            "textVersion": r.text.version if r.text_id else None,
            "text": r.text.text if r.text_id else None,
            "oldStatus": r.old_status or None,
            "newStatus": r.new_status or None,
            "source": r.source,
            "actor": r.actor,
            "ipAddress": r.ip_address,
            "userAgent": r.user_agent or None,
            "details": r.details,
            "createdAt": _iso(r.created_at),
            "hash": r.hash,
        }
        for r in ConsentRecord.objects.filter(client_id__in=ctx.client_ids)
        .select_related("agreement", "text")
        .order_by("client_id", "seq")
    ]
    return {"states": states, "ledger": ledger}


def register() -> None:
    register_erasure_step("consents", erase=consents_erase, models=["consents.ConsentState", "consents.ConsentRecord"])
    register_erasure_exempt("consents.Agreement", "agreement definitions")
    register_export_step(
        "consents", export=consents_export, models=["consents.ConsentState", "consents.ConsentRecord"], order=40
    )
    register_export_exempt(
        "consents.Agreement", "agreement definitions; decisions are exported with the agreement's key"
    )
