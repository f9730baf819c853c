"""Signed links: the double opt-in confirmation (expiring) and the per-profile resignation page."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from crm.errors import ValidationFailed

CONFIRM_SALT = "consents.confirm"
RESIGN_SALT = "consents.resign"


class LinkInvalid(ValidationFailed):
    """The link was altered, truncated or signed with another key."""

    code = "link.invalid"


class LinkExpired(ValidationFailed):
    """The link was genuine but is older than its lifetime."""

    status = 410
    code = "link.expired"


def confirmation_token(*, client_id: int, agreement_id: int, record_id: int) -> str:
    return signing.dumps({"c": client_id, "a": agreement_id, "r": record_id}, salt=CONFIRM_SALT, compress=True)


def confirmation_token_read(token: str) -> dict:
    return _read(token, salt=CONFIRM_SALT, max_age=settings.CONSENT_CONFIRMATION_MAX_AGE, keys=("c", "a", "r"))


def resignation_token(*, client_id: int, agreement_id: int | None = None) -> str:
    payload = {"c": client_id} if agreement_id is None else {"c": client_id, "a": agreement_id}
    return signing.dumps(payload, salt=RESIGN_SALT, compress=True)


def resignation_token_read(token: str) -> dict:
    return _read(token, salt=RESIGN_SALT, max_age=settings.CONSENT_RESIGNATION_MAX_AGE, keys=("c",))


def _read(token: str, *, salt: str, max_age: int | None, keys: tuple[str, ...]) -> dict:
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkExpired("This link has expired.", field="token") from None
    except signing.BadSignature:
        raise LinkInvalid("This link is not valid.", field="token") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in keys):
        raise LinkInvalid("This link is not valid.", field="token")
    return data
