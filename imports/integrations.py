"""Incoming integrations: a third party posts its own JSON, signed with a JWT under the integration's secret.

The token (``Authorization: Bearer``) is HS256 under the integration's secret, with ``exp`` required and at
most ``INTEGRATION_JWT_MAX_AGE_SECONDS`` ahead, ``iat`` (if sent) not in the future, and a ``jti`` that was not
seen before (seen ids are kept until their token's ``exp``). The body (one object or a list) is mapped by the
integration's mapping, every record or none: a record that fails is a 400 naming it and the field, and nothing
is written. The records then go through the same batch path as ``POST /v4/clients/batch`` (a queued job).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from consents.models import Agreement
from crm.errors import DomainError, NotFound, Unauthorized, ValidationFailed
from crm.models import Job
from imports.mapping import RowInvalid, mapping_compile
from imports.models import Integration, SeenToken
from profiles.services.attributes import AttributeCatalog
from profiles.services.batch import profiles_batch_submit
from profiles.services.identity.input import input_clean

SOURCE = "integration"
ALGORITHM = "HS256"


def integration_create(*, slug: str, name: str = "", mapping: dict, enabled: bool = True) -> tuple[Integration, str]:
    """A new integration and its secret (returned once; stored encrypted)."""
    mapping_compile(mapping)
    secret = secrets.token_urlsafe(32)
    integration = Integration(slug=slug, name=name, mapping=mapping, enabled=enabled, secret=secret)
    try:
        integration.full_clean()
    except DjangoValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        raise ValidationFailed(" ".join(problems), field=field) from None
    integration.save()
    return integration, secret


def integration_secret_rotate(*, integration: Integration) -> str:
    integration.secret = secrets.token_urlsafe(32)
    integration.save(update_fields=["secret"])
    return integration.secret


def _unauthorized(message: str) -> Unauthorized:
    return Unauthorized(message, field="Authorization", code="integration.token")


def token_check(*, integration: Integration, token: str) -> dict:
    """The token's claims, once: a wrong signature, a missing or far ``exp``, a future ``iat`` or a seen ``jti``
    is ``Unauthorized``. Records the ``jti`` (in the caller's transaction)."""
    try:
        claims = jwt.decode(
            token,
            integration.secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "jti"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The token has expired.") from None
    except jwt.ImmatureSignatureError:
        raise _unauthorized("The token's iat or nbf lies in the future.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise _unauthorized(f"The token has no '{exc.claim}' claim.") from None
    except jwt.PyJWTError as exc:
        raise _unauthorized(f"The token is not valid for this integration: {exc}.") from None
    now = timezone.now()
    try:
        expires = datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise _unauthorized("exp must be a number of seconds.") from None
    if expires > now + timedelta(seconds=settings.INTEGRATION_JWT_MAX_AGE_SECONDS):
        raise _unauthorized(
            f"exp lies more than {settings.INTEGRATION_JWT_MAX_AGE_SECONDS} seconds ahead; use short-lived tokens."
        )
    if "iat" in claims:
        try:
            issued = datetime.fromtimestamp(int(claims["iat"]), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise _unauthorized("iat must be a number of seconds.") from None
        if issued > now:
            raise _unauthorized("The token's iat lies in the future.")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > 255:
        raise _unauthorized("jti must be a non-empty string of at most 255 characters.")
    _, created = SeenToken.objects.get_or_create(integration=integration, jti=jti, defaults={"expires_at": expires})
    if not created:
        raise _unauthorized("This token was used already (its jti was seen).")
    return claims


def integration_receive(*, slug: str, token: str | None, body) -> Job:
    """Check the token, map the body, queue the records as a batch job; all or nothing."""
    integration = Integration.objects.filter(slug=slug).first()
    if integration is None or not integration.enabled:
        raise NotFound(f"No enabled incoming integration '{slug}'.", field="slug", code="integration.not_found")
    if not token:
        raise _unauthorized("Send a JWT signed with the integration's secret as 'Authorization: Bearer <token>'.")
    with transaction.atomic():
        token_check(integration=integration, token=token)
        records = body if isinstance(body, list) else [body]
        if not records:
            raise ValidationFailed("The body holds no record.", field="body")
        if len(records) > settings.INTEGRATION_MAX_ITEMS:
            raise ValidationFailed(
                f"At most {settings.INTEGRATION_MAX_ITEMS} records per request; got {len(records)}.", field="body"
            )
        mapping = mapping_compile(integration.mapping)
        items = []
        for index, record in enumerate(records):
            where = f"[{index}]" if isinstance(body, list) else ""
            if not isinstance(record, dict):
                raise ValidationFailed("Each record must be a JSON object.", field=where or "body")
            try:
                items.append(mapping.apply(record))
            except RowInvalid as exc:
                raise ValidationFailed(exc.message, field=f"{where}.{exc.field}".lstrip("."), code=exc.code) from None
            except DomainError as exc:
                raise ValidationFailed(exc.message, field=f"{where}.{exc.field}".lstrip("."), code=exc.code) from None
        _precheck(items, body)
        Integration.objects.filter(pk=integration.pk).update(last_used_at=timezone.now())
        return profiles_batch_submit(items=items, source=SOURCE, actor=f"import:{integration.slug}")


def _precheck(items, body) -> None:
    """The values' rules (identifiers, fields, attributes, agreements, tags) before anything is queued, so a
    payload that fails is refused whole."""

    catalog = AttributeCatalog.load()
    agreements = {a.key: a for a in Agreement.objects.filter(is_active=True)}
    for index, item in enumerate(items):
        where = f"[{index}]." if isinstance(body, list) else ""
        try:
            input_clean(data=item, catalog=catalog, agreements=agreements, require_identifiers=True)
        except DomainError as exc:
            raise ValidationFailed(exc.message, field=f"{where}{exc.field or ''}".rstrip("."), code=exc.code) from None


def seen_tokens_purge() -> int:
    deleted, _ = SeenToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
