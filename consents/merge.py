"""The "consents" merge step: the most recent decision per agreement wins; both histories stay in the ledger.

Merge: for each agreement the merged-in profile decided, the survivor takes that decision when it
is newer than its own (a ledger record on the survivor's chain, source ``merge``). The merged-in
profile's states are then removed through the ledger too, so its chain ends by saying where its
decisions went. Unmerge gives the restored profile its states back and reverts the survivor's
agreements the merge changed, unless they changed again since (then a note says so).
"""

from __future__ import annotations

from datetime import datetime

from consents.models import Agreement, ConsentSource, ConsentState
from consents.services import consent_state_write
from profiles.merge_registry import MergeContext, UnmergeContext

STEP_NAME = "consents"


def _state_data(state: ConsentState) -> dict:
    return {"status": state.status, "changedAt": state.changed_at.isoformat(), "source": state.source}


def consents_merge(*, ctx: MergeContext) -> dict:
    survivor_states = {s.agreement_id: s for s in ConsentState.objects.filter(profile=ctx.survivor)}
    # In agreement order, so the ledger records of one merge always come in the same order.
    merged_states = list(
        ConsentState.objects.filter(profile=ctx.merged).select_related("agreement").order_by("agreement_id")
    )
    moved, changed = [], []
    for theirs in merged_states:
        moved.append({"agreement": theirs.agreement_id, **_state_data(theirs)})
        ours = survivor_states.get(theirs.agreement_id)
        if ours is not None and (ours.changed_at >= theirs.changed_at or ours.status == theirs.status):
            continue
        record = consent_state_write(
            client_id=ctx.survivor.pk,
            agreement=theirs.agreement,
            new_status=theirs.status,
            source=ConsentSource.MERGE,
            actor=ctx.actor,
            request_meta=None,
            details={"mergedFrom": ctx.merged.pk, "via": ctx.source},
            decided_at=theirs.changed_at,
        )
        changed.append(
            {
                "agreement": theirs.agreement_id,
                "before": _state_data(ours) if ours is not None else None,
                "after": {"status": theirs.status, "changedAt": theirs.changed_at.isoformat(), "record": record.pk},
            }
        )
    for theirs in merged_states:
        consent_state_write(
            client_id=ctx.merged.pk,
            agreement=theirs.agreement,
            new_status="",
            source=ConsentSource.MERGE,
            actor=ctx.actor,
            request_meta=None,
            details={"mergedInto": ctx.survivor.pk, "via": ctx.source},
        )
    return {"moved": moved, "changed": changed}


def consents_unmerge(*, ctx: UnmergeContext) -> list[str]:
    data = ctx.data or {}
    agreements = Agreement.objects.in_bulk(
        [item["agreement"] for item in data.get("moved", [])] + [item["agreement"] for item in data.get("changed", [])]
    )
    notes: list[str] = []
    for item in data.get("moved", []):
        agreement = agreements.get(item["agreement"])
        if agreement is None:
            notes.append(f"Agreement {item['agreement']} no longer exists; its state was not restored.")
            continue
        consent_state_write(
            client_id=ctx.restored.pk,
            agreement=agreement,
            new_status=item["status"],
            source=ConsentSource.MERGE,
            actor=ctx.actor,
            request_meta=None,
            details={"unmergedFrom": ctx.survivor.pk, "via": ctx.source},
            decided_at=datetime.fromisoformat(item["changedAt"]),
        )
    for item in data.get("changed", []):
        agreement = agreements.get(item["agreement"])
        if agreement is None:
            continue
        now = ConsentState.objects.filter(profile=ctx.survivor, agreement=agreement).first()
        after = item["after"]
        if now is None or now.status != after["status"] or now.changed_at != datetime.fromisoformat(after["changedAt"]):
            notes.append(f"The survivor's consent '{agreement.key}' changed since the merge; kept.")
            continue
        before = item["before"]
        consent_state_write(
            client_id=ctx.survivor.pk,
            agreement=agreement,
            new_status=before["status"] if before else "",
            source=ConsentSource.MERGE,
            actor=ctx.actor,
            request_meta=None,
            details={"unmerged": ctx.restored.pk, "via": ctx.source},
            decided_at=datetime.fromisoformat(before["changedAt"]) if before else None,
        )
    return notes
