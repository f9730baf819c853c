"""Translation between ExpertSender's customer JSON (seed 004) and the services' terms."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from consents.models import ConsentState, ConsentStatus
from crm.errors import ValidationFailed
from profiles.attribute_names import attribute_key
from profiles.models import AttributeType, Profile, Sex
from profiles.services import ProfileInput
from profiles.services.surfaces import ConsentInput, WriteItem, WriteMode

MODES = {"add": WriteMode.ADD, "update": WriteMode.UPDATE, "addorupdate": WriteMode.UPSERT}
# matchBy → our identifier kind. GUID and VisitorId both name the visitor's uuid (``visitorId``).
MATCH_BY = {"email": "email", "phonenumber": "phone", "crmid": "customId", "guid": "uuid", "visitorid": "uuid"}
# ExpertSender field → our identifier kind, and back.
IDENTIFIERS = {"email": "email", "phone": "phone", "crmId": "customId", "visitorId": "uuid"}
KIND_FIELDS = {kind: name for name, kind in IDENTIFIERS.items()}
NAMES = {"firstName": "first_name", "lastName": "last_name"}
MAX_LENGTHS = {"email": 320, "phone": 20, "crmId": 128, "visitorId": 38, "firstName": 256, "lastName": 256}
ATTRIBUTE_NAME_MAX = 256
GENDERS = {"male": Sex.MALE, "female": Sex.FEMALE, "notspecified": Sex.NOT_SPECIFIED}
GENDER_NAMES = {Sex.MALE: "Male", Sex.FEMALE: "Female", Sex.NOT_SPECIFIED: "NotSpecified", Sex.OTHER: "NotSpecified"}
CONSENT_VALUES = {
    "true": ConsentStatus.GRANTED,
    "false": ConsentStatus.DENIED,
    "awaitingconfirmation": ConsentStatus.AWAITING,
}
CONSENT_NAMES = {
    ConsentStatus.GRANTED: "True",
    ConsentStatus.DENIED: "False",
    ConsentStatus.AWAITING: "AwaitingConfirmation",
}
# Fields of the GET document: accepted in a POST (a client may send back what it read) and ignored.
READ_ONLY = {
    "id", "status", "rfmSegment", "totalSpent", "totalOrders", "totalOrderReturns", "avgOrder", "avgPricePoint",
    "lastOrder", "avgTimeBetweenOrdersInDays", "currencySymbol",
}  # fmt: skip
# Service field names → ExpertSender's, for errors.
SERVICE_FIELDS = {**KIND_FIELDS, "firstName": "firstName", "lastName": "lastName", "birthDate": "dateOfBirth",
                  "sex": "gender"}  # fmt: skip


def parse_enum(value, choices: dict, *, field: str, shown: str):
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValidationFailed(f"{field} must be one of {shown}; got {value!r}.", field=field, code="field.choice")
    return choices[value.lower()]


class _Errors:
    """Every shape error of one item, so one 400 lists them all."""

    def __init__(self, where: str):
        self.where = where
        self.items: list[tuple[str, str, str]] = []  # (field, message, code)

    def add(self, name: str, message: str, code: str = "validation_failed") -> None:
        self.items.append((f"{self.where}.{name}" if name else self.where, message, code))

    def raise_any(self) -> None:
        if self.items:
            field, message, code = self.items[0]
            raise ValidationFailed(message, field=field, code=code, errors=[f"{f}: {m}" for f, m, _ in self.items])


def _datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _attribute_value(name: str, value, types: dict[str, str]):
    """A customAttributes value (ExpertSender sends strings) in the type of the attribute's definition."""
    type_ = types.get(attribute_key(name))
    if not isinstance(value, str):
        return value
    text = value.strip()
    if type_ == AttributeType.NUMBER and re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text) if "." in text else int(text)
    if type_ == AttributeType.BOOLEAN and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if type_ == AttributeType.LIST and text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def parse_item(raw, index: int, *, types: dict[str, str]) -> WriteItem:
    """One ``data[]`` entry → WriteItem; every shape error of the entry is named ``data[i].field``."""
    where = f"data[{index}]"
    if not isinstance(raw, dict):
        raise ValidationFailed(f"{where} must be an object.", field=where, code="field.type")
    errors = _Errors(where)
    data = ProfileInput()
    consents: list[ConsentInput] = []
    force = False
    for key, value in raw.items():
        if value is None or (value == "" and key in MAX_LENGTHS):
            continue  # null and "" mean "not sent": nothing is cleared through this API
        if key in IDENTIFIERS or key in NAMES:
            if key == "crmId" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                errors.add(key, f"{key} must be a string.", "field.type")
            elif len(value) > MAX_LENGTHS[key]:
                errors.add(key, f"{key} is longer than {MAX_LENGTHS[key]} characters.", "field.too_long")
            elif key in IDENTIFIERS:
                data.identifiers[IDENTIFIERS[key]] = value
            else:
                data.fields[NAMES[key]] = value
        elif key == "dateOfBirth":
            parsed = _datetime(value) if isinstance(value, str) else None
            if parsed is None:
                errors.add(key, "dateOfBirth must be a date-time such as 2023-07-25T12:35:54.712Z.", "field.date")
            else:
                data.fields["birth_date"] = parsed.astimezone(UTC).date()
        elif key == "gender":
            if not isinstance(value, str) or value.lower() not in GENDERS:
                errors.add(key, f"gender must be Male, Female or NotSpecified; got {value!r}.", "field.choice")
            else:
                data.fields["sex"] = GENDERS[value.lower()]
        elif key == "customAttributes":
            _parse_attributes(value, data, errors, types)
        elif key == "consentsData":
            consents, force = _parse_consents(value, errors)
        elif key not in READ_ONLY:
            errors.add(key, f"Unknown field '{key}'.", "field.unknown")
    errors.raise_any()
    return WriteItem(data=data, consents=consents, force=force)


def _parse_attributes(value, data: ProfileInput, errors: _Errors, types: dict[str, str]) -> None:
    if not isinstance(value, list):
        errors.add("customAttributes", "customAttributes must be a list of {name, value}.", "field.type")
        return
    for j, entry in enumerate(value):
        here = f"customAttributes[{j}]"
        if not isinstance(entry, dict):
            errors.add(here, f"{here} must be an object with name and value.", "field.type")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.add(f"{here}.name", "name is required and must be a non-empty string.", "attribute.name")
            continue
        if len(name) > ATTRIBUTE_NAME_MAX:
            errors.add(f"{here}.name", f"name is longer than {ATTRIBUTE_NAME_MAX} characters.", "field.too_long")
            continue
        attribute = entry.get("value")
        if isinstance(attribute, dict | list):
            errors.add(f"{here}.value", "value must be a string, a number, a boolean or null.", "field.type")
            continue
        if unknown := set(entry) - {"name", "value"}:
            errors.add(here, f"Unknown field '{sorted(unknown)[0]}'.", "field.unknown")
            continue
        data.attributes[name] = _attribute_value(name, attribute, types)


def _parse_consents(value, errors: _Errors) -> tuple[list[ConsentInput], bool]:
    if not isinstance(value, dict):
        errors.add("consentsData", "consentsData must be an object.", "field.type")
        return [], False
    force = value.get("force", False)
    if force is None:
        force = False
    if not isinstance(force, bool):
        errors.add("consentsData.force", "force must be true or false.", "field.type")
    message_id = value.get("confirmationMessageId")
    if message_id is not None and (not isinstance(message_id, int) or isinstance(message_id, bool)):
        errors.add("consentsData.confirmationMessageId", "confirmationMessageId must be an integer.", "field.type")
    if unknown := set(value) - {"consents", "force", "confirmationMessageId"}:
        errors.add("consentsData", f"Unknown field '{sorted(unknown)[0]}'.", "field.unknown")
    consents = value.get("consents") or []
    if not isinstance(consents, list):
        errors.add("consentsData.consents", "consents must be a list of {id, value}.", "field.type")
        return [], False
    parsed = []
    for j, entry in enumerate(consents):
        here = f"consentsData.consents[{j}]"
        if not isinstance(entry, dict):
            errors.add(here, f"{here} must be an object with id and value.", "field.type")
            continue
        consent_id, state = entry.get("id"), entry.get("value")
        if not isinstance(consent_id, int) or isinstance(consent_id, bool):
            errors.add(f"{here}.id", "id is required and must be an integer.", "field.type")
            continue
        if not isinstance(state, str) or state.lower() not in CONSENT_VALUES:
            errors.add(
                f"{here}.value", f"value must be True, False or AwaitingConfirmation; got {state!r}.", "consent.state"
            )
            continue
        parsed.append(ConsentInput(agreement_id=consent_id, state=CONSENT_VALUES[state.lower()], label=here))
    return parsed, bool(force)


def error_lines(index: int, error: dict, raw) -> list[str]:
    """A failed item's error as ExpertSender ``errors`` strings, naming the field as the request did."""
    if "errors" in error:
        return list(error["errors"])
    return [f"{item_field(index, error.get('field'), raw)}: {error['message']}"]


def item_field(index: int, field: str | None, raw) -> str:
    where = f"data[{index}]"
    if not field or field == "identifiers":
        return where
    if field.startswith(("data[", "consentsData.")):
        return field if field.startswith("data[") else f"{where}.{field}"
    if field.startswith("attributes."):
        name = field.removeprefix("attributes.")
        entries = raw.get("customAttributes") if isinstance(raw, dict) else None
        for j, entry in enumerate(entries or []):
            if isinstance(entry, dict) and entry.get("name") == name:
                return f"{where}.customAttributes[{j}]"
        return f"{where}.customAttributes"
    if field.startswith("agreements."):
        return f"{where}.consentsData.consents"
    return f"{where}.{SERVICE_FIELDS.get(field, field)}"


# --- documents --------------------------------------------------------------------------------------


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00.000Z"
    return str(value)


def _attribute_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def consents_of(profile_id: int) -> list[dict]:
    rows = (
        ConsentState.objects.filter(profile_id=profile_id, agreement__is_active=True)
        .order_by("agreement_id")
        .values_list("agreement_id", "status")
    )
    return [{"id": agreement_id, "value": CONSENT_NAMES[status]} for agreement_id, status in rows]


def customer_document(profile: Profile, *, commerce: dict, consents: list[dict]) -> dict:
    """Seed 004's GET body: ``{status, data}`` with the commerce figures; ``id`` and ``visitorId`` added."""
    return {
        "status": 0,
        "data": {
            "id": profile.pk,
            "email": profile.email,
            "phone": profile.phone,
            "crmId": profile.custom_id,
            "visitorId": profile.uuid,
            "firstName": profile.first_name,
            "lastName": profile.last_name,
            "dateOfBirth": _iso(profile.birth_date),
            "gender": GENDER_NAMES.get(profile.sex, "NotSpecified"),
            "rfmSegment": commerce["rfmSegment"],
            "totalSpent": commerce["totalSpent"],
            "totalOrders": commerce["totalOrders"],
            "totalOrderReturns": commerce["totalOrderReturns"],
            "avgOrder": commerce["avgOrder"],
            "avgPricePoint": commerce["avgPricePoint"],
            "lastOrder": _iso(commerce["lastOrder"]),
            "avgTimeBetweenOrdersInDays": commerce["avgTimeBetweenOrdersInDays"],
            "currencySymbol": commerce["currencySymbol"],
            "customAttributes": [
                {"name": name, "value": _attribute_text(value)} for name, value in sorted(profile.attributes.items())
            ],
            "consentsData": {"consents": consents},
        },
    }
