"""Every write to profiles goes through these functions (ARCHITECTURE.md, "Layers")."""

from .attributes import attribute_definition_create
from .identity import (
    ProfileInput,
    UpsertResult,
    profile_delete,
    profile_lookup,
    profile_update,
    profile_upsert,
)
from .normalize import identifier_normalize

__all__ = [
    "ProfileInput",
    "UpsertResult",
    "attribute_definition_create",
    "identifier_normalize",
    "profile_delete",
    "profile_lookup",
    "profile_update",
    "profile_upsert",
]
