from .attribute import AttributeDefinition, AttributeType
from .identifier import Identifier, IdentifierKind
from .profile import Profile, ProfileQuerySet, Sex

__all__ = ["AttributeDefinition", "AttributeType", "Identifier", "IdentifierKind", "Profile", "ProfileQuerySet", "Sex"]
