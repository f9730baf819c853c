"""What the tracker script sends, recorded through the profile services: page visits and form submissions.

A browser is known by the uuid in its cookie. A page visit is a ``page.visit`` event for that uuid (an unknown
uuid makes an anonymous profile, as ``event_record`` does for any event). A tagged form's ``form.submit``
carries the form's e-mail (and names, phone, custom attributes, tags): ``event_record`` identifies the
browser's profile by it, the way Synerise's form integration does.

Two people on one browser stay two profiles: when the form's e-mail differs from the one the browser's profile
already holds (the identity rules' "UUID reset", ``profiles.services.identity.uuid_reset``), the browser
gets a new uuid and the submission goes with it, so the first person's profile keeps its uuid, its e-mail and
its history, untouched. The caller sets the returned uuid as the browser's new cookie.
"""

from __future__ import annotations

import operator
import re
import uuid as uuidlib
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from django.db import transaction
from django.db.models import Q

from crm.errors import DomainError, Forbidden, Gone, ValidationFailed
from profiles.attribute_names import attribute_key
from profiles.models import AttributeDefinition, AttributeType, IdentifierKind, Profile, Tag
from profiles.normalize import identifier_normalize
from profiles.selectors import identifier_owners, identifiers_held
from profiles.services import ProfileInput, profile_update
from profiles.services.events import FORM_SUBMIT, EventInput, event_record
from profiles.services.identity.input import CleanInput
from profiles.services.identity.uuid_reset import uuid_resets
from profiles.services.tags import tags_add
from tracker.models import Site, origin_normalize

SOURCE = "tracker"
PAGE_VISIT = "page.visit"
FIELD_MAX_LENGTH = 1000
MAX_TAGS = 20


@dataclass
class Page:
    """Where the visitor is: the page's address, title and referrer, and the browser's user agent."""

    url: str
    title: str = ""
    referrer: str = ""
    user_agent: str = ""

    def params(self) -> dict[str, str]:
        params = {"url": self.url, "title": self.title, "referrer": self.referrer}
        if self.user_agent:
            params["userAgent"] = self.user_agent  # the card's devices panel reads it
        return params


@dataclass
class FormFields:
    """The fields of a tagged form (``data-crm-field``), as sent; empty ones are left out."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


@dataclass
class Tracked:
    """What a collect call did: the browser's uuid (a new one after a reset) and the profile it names."""

    uuid: str
    profile: Profile


# --- sites ----------------------------------------------------------------------------------------


def site_create(*, name: str, allowed_origins: list[str], consent_required: bool = False) -> Site:
    """A new active site; each origin is written the way browsers send it (``origin_normalize``), once."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("name is required.", field="name")
    origins = []
    for i, origin in enumerate(allowed_origins):
        try:
            normalized = origin_normalize(origin)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field=f"allowedOrigins[{i}]") from None
        if normalized not in origins:
            origins.append(normalized)
    return Site.objects.create(name=name.strip(), allowed_origins=origins, consent_required=bool(consent_required))


def site_for_request(*, key: str, origin: str | None) -> Site:
    """The active site of this key, when ``origin`` (the request's ``Origin`` header) is one of its origins."""
    site = Site.objects.filter(key=key, active=True).first() if isinstance(key, str) else None
    if site is None:
        raise Forbidden("Unknown or inactive site key.", field="siteKey", code="site.unknown")
    if not origin_allowed(site=site, origin=origin):
        raise Forbidden(
            f"Origin {origin or '(none)'} may not send for this site; add it to the site's allowed origins.",
            field="Origin",
            code="site.origin_forbidden",
        )
    return site


def origin_allowed(*, site: Site, origin: str | None) -> bool:
    try:
        return origin_normalize(origin or "") in site.allowed_origins
    except ValueError:
        return False


def origin_known(*, origin: str | None) -> bool:
    """Whether any active site lists this origin (a CORS preflight does not say which site it is for)."""
    try:
        normalized = origin_normalize(origin or "")
    except ValueError:
        return False
    return Site.objects.filter(active=True, allowed_origins__contains=[normalized]).exists()


# --- the browser's uuid -----------------------------------------------------------------------------


def browser_uuid(*, cookie: str | None) -> str | None:
    """The uuid in a browser's cookie, canonical; None when there is none or it is not a uuid."""
    if not cookie:
        return None
    try:
        return identifier_normalize(IdentifierKind.UUID, cookie)
    except ValidationFailed:
        return None


def _uuid_for_identity(current: str, identifiers: dict[str, str]) -> str:
    """``current``, or a new uuid when the identity rules say ``current`` belongs to someone else: its profile
    holds another e-mail (or customId) than the form sends."""
    clean = CleanInput(
        identifiers={IdentifierKind.UUID: current, **identifiers}, fields={}, attributes={}, agreements=[]
    )
    owners = identifier_owners(pairs=clean.pairs)
    resets = uuid_resets(clean=clean, owners=owners, held=identifiers_held(profile_ids=set(owners.values())))
    return str(uuidlib.uuid4()) if (IdentifierKind.UUID, current) in resets else current


# --- recording ----------------------------------------------------------------------------------------


def page_visit_record(*, site: Site, uuid: str | None, page: Page) -> Tracked:
    """A ``page.visit`` for the browser's uuid (a new uuid when it has none, or when its profile was erased)."""
    try:
        return _page_visit_record(site=site, uuid=uuid, page=page)
    except Gone:
        if uuid is None:
            raise
        # The cookie's uuid named a profile that was erased: it names nobody again, so the browser starts afresh.
        return _page_visit_record(site=site, uuid=None, page=page)


def _page_visit_record(*, site: Site, uuid: str | None, page: Page) -> Tracked:
    uuid = uuid or str(uuidlib.uuid4())
    result = event_record(
        data=EventInput(
            action=PAGE_VISIT,
            client={IdentifierKind.UUID: uuid},
            label=(page.title or page.url)[:200],
            params=page.params(),
        ),
        source=SOURCE,
        actor=site.actor,
    )
    return Tracked(uuid=uuid, profile=result.profile)


def _text(value, name: str, *, max_length: int = FIELD_MAX_LENGTH) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string.", field=name, code="field.type")
    value = value.strip()
    if len(value) > max_length:
        raise ValidationFailed(f"{name} is longer than {max_length} characters.", field=name, code="field.too_long")
    return value or None


def _known_attributes(attributes: dict[str, str]) -> dict[str, Any]:
    """Only attributes already defined: a public form may fill them, not invent new ones. A form's values are
    text: a number, a yes/no or a comma-separated list is read as the definition's type asks (the attribute rules
    then check it as they check any write)."""
    if not attributes:
        return {}
    defined = {d.key: d for d in AttributeDefinition.objects.filter(key__in=[attribute_key(n) for n in attributes])}
    typed: dict[str, Any] = {}
    for name, value in attributes.items():
        definition = defined.get(attribute_key(name))
        if definition is None:
            raise ValidationFailed(
                f"Attribute '{name}' is not defined; define it in the admin before a form may send it.",
                field=f"fields.attributes.{name}",
                code="attribute.unknown",
            )
        typed[name] = _typed(value, definition.type)
    return typed


def _typed(value: str, type_: str):
    """A form's text as the attribute's type, when it reads as one; else the text, for the rules to refuse."""
    if type_ == AttributeType.NUMBER:
        if re.fullmatch(r"[+-]?\d+", value):
            return int(value)
        if re.fullmatch(r"[+-]?\d+[.,]\d+", value):
            return float(value.replace(",", "."))
    elif type_ == AttributeType.BOOLEAN:
        lowered = value.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
    elif type_ == AttributeType.LIST:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _known_tags(names: list[str]) -> list[Tag]:
    """Only existing tags (matched case-insensitively): a public form may put them on, not create them."""
    if not names:
        return []
    if len(names) > MAX_TAGS:
        raise ValidationFailed(f"A form sends at most {MAX_TAGS} tags.", field="fields.tags", code="field.too_long")
    found = {t.name.lower(): t for t in Tag.objects.filter(reduce(operator.or_, (Q(name__iexact=n) for n in names)))}
    for name in names:
        if name.lower() not in found:
            raise ValidationFailed(
                f"Tag '{name}' does not exist; create it in the admin before a form may send it.",
                field="fields.tags",
                code="tag.not_found",
            )
    return list(found.values())


def form_submit_record(*, site: Site, uuid: str | None, page: Page, form: str, fields: FormFields) -> Tracked:
    """A ``form.submit`` for the browser: identified by its e-mail, with the form's names, phone, attributes and
    tags written to the profile; all of it or nothing. A browser whose uuid was erased signs up with a new one."""
    try:
        return _form_submit_record(site=site, uuid=uuid, page=page, form=form, fields=fields)
    except Gone:
        if uuid is None:
            raise
        return _form_submit_record(site=site, uuid=None, page=page, form=form, fields=fields)


def _form_submit_record(*, site: Site, uuid: str | None, page: Page, form: str, fields: FormFields) -> Tracked:
    email = _text(fields.email, "fields.email")
    phone = _text(fields.phone, "fields.phone")
    names = {
        column: value
        for column, value in (
            ("first_name", _text(fields.first_name, "fields.firstName")),
            ("last_name", _text(fields.last_name, "fields.lastName")),
        )
        if value is not None
    }
    attributes = {
        name: value
        for name, raw in fields.attributes.items()
        if (value := _text(raw, f"fields.attributes.{name}")) is not None
    }
    tag_names = [t for raw in fields.tags if (t := _text(raw, "fields.tags", max_length=100)) is not None]
    # The e-mail identifies (as in Synerise's form integration); the phone is only attached to the profile the
    # e-mail and the browser name: a public form must not reach, or rewrite, a profile by a phone number it knows.
    identifiers: dict[str, str] = {}
    if email is not None:
        identifiers[IdentifierKind.EMAIL] = _normalized(IdentifierKind.EMAIL, email, "fields.email")
    extra: dict[str, str] = {}
    if phone is not None:
        extra[IdentifierKind.PHONE] = _normalized(IdentifierKind.PHONE, phone, "fields.phone")
    params: dict[str, Any] = {**page.params(), "form": form}
    if email is not None:
        params["email"] = email
    for key, value in (("firstName", names.get("first_name")), ("lastName", names.get("last_name")), ("phone", phone)):
        if value is not None:
            params[key] = value
    if attributes:
        params["attributes"] = attributes
    if tag_names:
        params["tags"] = tag_names

    try:
        with transaction.atomic():
            attributes = _known_attributes(attributes)
            tags = _known_tags(tag_names)
            uuid = uuid or str(uuidlib.uuid4())
            if identifiers:
                uuid = _uuid_for_identity(uuid, identifiers)
            result = event_record(
                data=EventInput(
                    action=FORM_SUBMIT,
                    client={IdentifierKind.UUID: uuid, **identifiers},
                    label=form[:200],
                    params=params,
                ),
                source=SOURCE,
                actor=site.actor,
            )
            profile = result.profile
            if names or attributes or extra:
                # A phone another profile owns is a Conflict here, and the whole submission is undone.
                data = ProfileInput(identifiers=extra, fields=names, attributes=attributes)
                profile = profile_update(profile=profile, data=data, source=SOURCE, actor=site.actor).profile
            if tags:
                tags_add(profiles=[profile], tags=tags, source=SOURCE, actor=site.actor)
    except DomainError as exc:
        exc.field = _form_field(exc.field)
        raise
    return Tracked(uuid=uuid, profile=profile)


# What the services name → the collect body's field, so an error points at the form's input.
_FORM_FIELDS = {
    "email": "fields.email",
    "client.email": "fields.email",
    "params.email": "fields.email",
    "phone": "fields.phone",
    "firstName": "fields.firstName",
    "lastName": "fields.lastName",
}


def _form_field(name: str | None) -> str | None:
    if name and name.startswith("attributes."):
        return f"fields.{name}"
    return _FORM_FIELDS.get(name, name) if name else name


def _normalized(kind: str, value: str, name: str) -> str:
    try:
        return identifier_normalize(kind, value)
    except ValidationFailed as exc:
        exc.field = name
        raise
