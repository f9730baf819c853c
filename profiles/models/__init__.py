from .attribute import AttributeDefinition, AttributeType
from .identifier import Identifier, IdentifierKind
from .merge import ClientIdAlias, MergeRecord
from .profile import Profile, ProfileQuerySet, Sex

__all__ = [
    "AttributeDefinition",
    "AttributeType",
    "ClientIdAlias",
    "Identifier",
    "IdentifierKind",
    "MergeRecord",
    "Profile",
    "ProfileQuerySet",
    "Sex",
]
