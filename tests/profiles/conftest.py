import pytest

from profiles.services import attribute_definition_create


@pytest.fixture
def definitions(db):
    """One attribute definition of each type, created as the admin would (through the service)."""
    types = {
        "loyaltyPoints": "number",
        "vip": "boolean",
        "favouriteCategory": "string",
        "lastOrderDate": "date",
        "lastSeenAt": "datetime",
        "badges": "list",
    }
    return {name: attribute_definition_create(name=name, type=type_) for name, type_ in types.items()}
