"""Consent writes. Every change of a profile's decision on an agreement goes through ``consent_set``."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from consents.models import Agreement, ConsentState, ConsentStatus
from consents.selectors import agreements_by_key
from crm.errors import ValidationFailed


def agreements_resolve(keys: Iterable[str]) -> dict[str, Agreement]:
    """The active agreements named by these keys; an unknown key is a ValidationFailed naming it."""
    keys = list(keys)
    found = agreements_by_key(keys)
    for key in keys:
        if key not in found:
            raise ValidationFailed(f"Unknown agreement '{key}'.", field=f"agreements.{key}", code="agreement.unknown")
    return found


def consent_set(*, profile, agreement: Agreement, status: str, source: str, actor: str = "") -> bool:
    """Record a profile's decision on an agreement; returns whether anything changed."""
    if status not in ConsentStatus.values:
        raise ValidationFailed(f"Unknown consent state '{status}'.", field=f"agreements.{agreement.key}")
    with transaction.atomic():
        state = ConsentState.objects.select_for_update().filter(profile=profile, agreement=agreement).first()
        if state is not None and state.status == status:
            return False
        now = timezone.now()
        if state is None:
            ConsentState.objects.create(
                profile=profile, agreement=agreement, status=status, changed_at=now, source=source
            )
        else:
            state.status, state.changed_at, state.source = status, now, source
            state.save(update_fields=["status", "changed_at", "source"])
    return True
