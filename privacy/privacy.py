"""The privacy app's own tables in erasure and portability (``profiles.privacy_registry``): what erasure leaves
behind holds ids only."""

from __future__ import annotations

from profiles.privacy_registry import register_erasure_exempt, register_export_exempt


def register() -> None:
    register_erasure_exempt("privacy.Erasure", "the erasure's own record: ids, who asked and when, no personal data")
    register_erasure_exempt("privacy.Tombstone", "ids only (uuids as keyed digests)")
    register_export_exempt("privacy.Erasure", "exists only for erased profiles, which have nothing left to export")
    register_export_exempt("privacy.Tombstone", "exists only for erased profiles")
