from .attribute import AttributeDefinition, AttributeType
from .event import Event, EventAction, EventSalt
from .identifier import Identifier, IdentifierKind
from .merge import ClientIdAlias, MergeRecord
from .profile import Profile, ProfileQuerySet, Sex
from .tag import ProfileTag, Tag
from .transaction import ProfileCommerce, Transaction, TransactionStatus

__all__ = [
    "AttributeDefinition",
    "AttributeType",
    "ClientIdAlias",
    "Event",
    "EventAction",
    "EventSalt",
    "Identifier",
    "IdentifierKind",
    "MergeRecord",
    "Profile",
    "ProfileCommerce",
    "ProfileQuerySet",
    "ProfileTag",
    "Sex",
    "Tag",
    "Transaction",
    "TransactionStatus",
]
