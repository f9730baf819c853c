"""Translation between ExpertSender's customer JSON and the services' terms: a validated item
(``requests.CustomerWriteSerializer``) → WriteItem, a profile → the GET document, errors → ``errors`` lines."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

from consents.models import ConsentState, ConsentStatus
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


def write_item(validated: dict, *, types: dict[str, str]) -> WriteItem:
    """One validated ``data[]`` entry → WriteItem (consent labels name the entry's own fields, for errors)."""
    data = ProfileInput()
    consents: list[ConsentInput] = []
    force = False
    for key, value in validated.items():
        if key in IDENTIFIERS:
            data.identifiers[IDENTIFIERS[key]] = value
        elif key in NAMES:
            data.fields[NAMES[key]] = value
        elif key == "dateOfBirth":
            data.fields["birth_date"] = value
        elif key == "gender":
            data.fields["sex"] = value
        elif key == "customAttributes":
            for entry in value:
                data.attributes[entry["name"]] = _attribute_value(entry["name"], entry.get("value"), types)
        elif key == "consentsData":
            force = bool(value.get("force"))
            consents = [
                ConsentInput(agreement_id=entry["id"], state=entry["value"], label=f"consentsData.consents[{j}]")
                for j, entry in enumerate(value.get("consents") or [])
            ]
    return WriteItem(data=data, consents=consents, force=force)


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
    """ExpertSender's GET body: ``{status, data}`` with the commerce figures; ``id`` and ``visitorId`` added."""
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
