import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from crm.errors import ValidationFailed
from profiles.services import identifier_normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  SampleClient@Synerise.COM ", "sampleclient@synerise.com"),
        ("a.b+tag@example.org", "a.b+tag@example.org"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw, expected):
    assert identifier_normalize("email", raw) == expected


@pytest.mark.parametrize("raw", ["not-an-email", "a@", "@example.com", "a b@example.com", "a@@example.com"])
def test_invalid_email_is_rejected(raw):
    with pytest.raises(ValidationFailed) as error:
        identifier_normalize("email", raw)
    assert error.value.field == "email"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+48 501 234 567", "+48501234567"),
        ("501-234-567", "+48501234567"),  # default region PL
        ("0048501234567", "+48501234567"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_is_e164(raw, expected):
    assert identifier_normalize("phone", raw) == expected


@override_settings(PHONE_DEFAULT_REGION="GB")
def test_phone_default_region_is_a_setting():
    assert identifier_normalize("phone", "020 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["12", "+48 123", "phone", "+999 123 456 789"])
def test_invalid_phone_is_rejected(raw):
    with pytest.raises(ValidationFailed) as error:
        identifier_normalize("phone", raw)
    assert error.value.field == "phone"
    assert error.value.code == "phone.invalid"


def test_uuid_is_canonical_lower_case():
    assert (
        identifier_normalize("uuid", " 24F539A0-D257-11EA-92F0-23C0F0AEC77F ") == "24f539a0-d257-11ea-92f0-23c0f0aec77f"
    )
    assert identifier_normalize("uuid", "24f539a0d25711ea92f023c0f0aec77f") == "24f539a0-d257-11ea-92f0-23c0f0aec77f"


def test_invalid_uuid_is_rejected():
    with pytest.raises(ValidationFailed):
        identifier_normalize("uuid", "24f539a0-d257-11ea-92f0")


def test_custom_id_is_trimmed_case_kept():
    assert identifier_normalize("customId", "  AbC-123 ") == "AbC-123"


@pytest.mark.parametrize("kind", ["email", "phone", "customId", "uuid"])
@pytest.mark.parametrize("junk", ["null", "NULL", "undefined", "anonymous", "0", "-1", "", "   ", " None "])
def test_junk_values_are_rejected(kind, junk):
    with pytest.raises(ValidationFailed) as error:
        identifier_normalize(kind, junk)
    assert error.value.field == kind
    assert error.value.code in {"identifier.junk", "identifier.empty"}


@override_settings(IDENTIFIER_JUNK_VALUES=["guest"])
def test_junk_list_is_a_setting():
    with pytest.raises(ValidationFailed):
        identifier_normalize("customId", "Guest")
    assert identifier_normalize("customId", "null") == "null"


@given(st.emails())
def test_normalising_an_email_is_idempotent(email):
    try:
        once = identifier_normalize("email", email)
    except ValidationFailed:
        return  # Hypothesis' e-mails include forms Django's validator refuses; refusal is fine
    assert identifier_normalize("email", once) == once
    assert once == once.strip().lower()


@given(st.uuids())
def test_every_uuid_spelling_normalises_to_one_value(value):
    canonical = str(value)
    assert identifier_normalize("uuid", canonical.upper()) == canonical
    assert identifier_normalize("uuid", value.hex) == canonical
