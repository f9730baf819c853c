import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from crm.crypto import InvalidToken, secret_decrypt, secret_encrypt


def test_round_trip_and_salted():
    first, second = secret_encrypt("whsec_abc"), secret_encrypt("whsec_abc")
    assert first != second  # each encryption is salted: the token does not reveal equal secrets
    assert "whsec_abc" not in first
    assert secret_decrypt(first) == secret_decrypt(second) == "whsec_abc"


def test_rotation_keeps_old_tokens_readable():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[old]):
        token = secret_encrypt("s3cret")
    with override_settings(FIELD_ENCRYPTION_KEYS=[new, old]):
        assert secret_decrypt(token) == "s3cret"
    with override_settings(FIELD_ENCRYPTION_KEYS=[new]), pytest.raises(InvalidToken):
        secret_decrypt(token)
