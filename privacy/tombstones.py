"""The tombstones' two look-ups, which the domain's ``profiles.tombstones`` asks through (registered in
``PrivacyConfig.ready()``): is this clientId or uuid one of an erased profile? Asked only after a lookup missed."""

from __future__ import annotations

from privacy.digests import identifier_digest
from privacy.models import Tombstone, TombstoneKind


def erased_client_ids(ids: set[int]) -> set[int]:
    values = Tombstone.objects.filter(kind=TombstoneKind.CLIENT_ID, value__in=[str(i) for i in ids])
    return {int(v) for v in values.values_list("value", flat=True)}


def erased_uuids(values: set[str]) -> set[str]:
    by_digest = {identifier_digest(TombstoneKind.UUID, v): v for v in values}
    found = Tombstone.objects.filter(kind=TombstoneKind.UUID, value__in=list(by_digest))
    return {by_digest[d] for d in found.values_list("value", flat=True)}
