"""Every write to profiles goes through these functions."""

from profiles.normalize import identifier_normalize
from profiles.selectors import profile_lookup

from .attributes import attribute_definition_create
from .identity.input import ProfileInput
from .identity.write import UpsertResult, profile_update, profile_upsert

__all__ = [
    "ProfileInput",
    "UpsertResult",
    "attribute_definition_create",
    "identifier_normalize",
    "profile_lookup",
    "profile_update",
    "profile_upsert",
]
