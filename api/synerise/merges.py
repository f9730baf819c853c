"""Forced merge (with its dry run) and undo: the merge and unmerge paths under /v4/clients."""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from api.synerise.views import SOURCE, ProfileJson
from api.v4 import API_VERSION, ERRORS, PlatformView
from crm.errors import ValidationFailed
from profiles.documents import profile_documents
from profiles.services import profile_lookup
from profiles.services.merge import profile_merge, profile_merge_preview, profile_unmerge


def _client_ids(raw: str) -> list[int]:
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise ValidationFailed("Name at least one clientId to merge.", field="fromClientIds")
    if len(parts) > settings.MERGE_MAX_PROFILES:
        raise ValidationFailed(
            f"At most {settings.MERGE_MAX_PROFILES} profiles can be merged at once; got {len(parts)}.",
            field="fromClientIds",
        )
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise ValidationFailed(f"clientIds must be numbers; got '{raw}'.", field="fromClientIds") from None


MergePreview = inline_serializer(
    "MergePreview",
    {
        "survivor": serializers.IntegerField(),
        "merged": serializers.ListField(child=serializers.IntegerField()),
        "identifiersMoved": serializers.ListField(
            child=inline_serializer(
                "MergePreviewIdentifier",
                {
                    "kind": serializers.CharField(),
                    "value": serializers.CharField(),
                    "fromClientId": serializers.IntegerField(),
                },
            )
        ),
        "filled": serializers.DictField(child=serializers.DictField(), help_text="field → {value, fromClientId}"),
        "conflicts": serializers.ListField(
            child=inline_serializer(
                "MergePreviewConflict",
                {
                    "field": serializers.CharField(),
                    "kept": serializers.JSONField(),
                    "dropped": serializers.JSONField(),
                    "fromClientId": serializers.IntegerField(),
                },
            )
        ),
        "rows": serializers.DictField(child=serializers.IntegerField(), help_text="table → rows that would move"),
        "overLimits": serializers.DictField(child=serializers.DictField(), help_text="kind → {limit, values}"),
    },
)


class ForcedMergeView(PlatformView):
    @extend_schema(
        operation_id="clients_merge",
        tags=["Identity"],
        summary="Merge profiles into one (forced: over the identifier limits too), at most MERGE_MAX_PROFILES at once",
        description="With `dryRun=true` nothing is written: the answer says what the merge would do (the "
        "survivor, the identifiers that move, fields filled, conflicting values and which one wins, rows per "
        "table, limited identifier kinds the merge would put over their limit).",
        parameters=[
            API_VERSION,
            OpenApiParameter("dryRun", bool, description="Answer what the merge would do and write nothing."),
        ],
        request=None,
        responses={
            200: PolymorphicProxySerializer(
                component_name="MergeOutcome",
                serializers=[ProfileJson, MergePreview],
                resource_type_field_name=None,
            ),
            **ERRORS,
        },
    )
    def post(self, request, from_ids: str, to_id: int):
        target = profile_lookup(kind="clientId", value=to_id)
        sources = {profile_lookup(kind="clientId", value=cid).pk: cid for cid in _client_ids(from_ids)}
        if target.pk in sources:
            raise ValidationFailed(
                f"clientId {sources[target.pk]} is the target (or already merged into it).", field="fromClientIds"
            )
        others = [profile_lookup(kind="clientId", value=pid) for pid in sources]
        dry_run = request.query_params.get("dryRun", "false").lower()
        if dry_run not in ("true", "false"):
            raise ValidationFailed("dryRun must be true or false.", field="dryRun")
        if dry_run == "true":
            return Response(profile_merge_preview(survivor=target, others=others))
        survivor = profile_merge(survivor=target, others=others, source=SOURCE, actor=self.actor, forced=True)
        return Response(profile_documents([survivor])[0])


class UnmergeView(PlatformView):
    @extend_schema(
        operation_id="clients_unmerge",
        tags=["Identity"],
        summary="Undo a merge: restore the merged-in profile from the merge's snapshot",
        parameters=[API_VERSION],
        request=None,
        responses={
            200: inline_serializer(
                "UnmergeResult",
                {
                    "clientId": serializers.IntegerField(),
                    "restoredClientId": serializers.IntegerField(),
                    "notes": serializers.ListField(child=serializers.CharField()),
                },
            ),
            **ERRORS,
        },
    )
    def post(self, request, client_id: int, previous_client_id: int):
        profile = profile_lookup(kind="clientId", value=client_id)
        result = profile_unmerge(
            profile=profile, previous_client_id=previous_client_id, source=SOURCE, actor=self.actor
        )
        return Response({"clientId": result.survivor.pk, "restoredClientId": result.restored.pk, "notes": result.notes})
