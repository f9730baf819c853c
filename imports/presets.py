"""Presets: the contacts exports people already have, recognised by their header row, each with a complete mapping
proposed in the language of ``imports/mapping.py`` (identifiers, names, address, consents with their times, tags,
and every other column as a custom attribute of the right type).

Each preset lists its product's documented export columns (as the product writes them in the header; matched
without regard to case and spacing). A file is taken for a product's export when every column of the preset's
``signature`` is in its header; when several presets match, the one that knows most of the header's columns wins.
Dates are read in the product's format: where a product writes them differently by account or locale, the preset
gives the candidates in order and the first that reads every sampled value wins (the first one when none does:
the run then reports the lines it cannot read). Columns a preset does not know become attributes: the name from
the header in camelCase (``Favorite Topics`` → ``favoriteTopics``), the type from the sampled values (numbers,
booleans, dates, date-times, JSON arrays, text), never a number where the column holds identifiers (a name with
id, phone, zip, postal or code in it, a value with a leading zero or a ``+``).

``platform-export`` is this platform's own CSV export (``GET /v4/clients/export.csv``, the admin's "Export as
CSV", scheduled exports): its columns map back to the same fields, identifiers, attributes (typed by this install's
attribute definitions, else by the values), agreements and tags, so an export imported into an empty install gives
the same profiles.

One line carries one decision time for all its agreements (``consentTime``): where an export keeps a separate time
per channel (Klaviyo's SMS consent), the preset maps the e-mail decision with its time and keeps the other channel
as attributes; import it again mapped to its agreement with its own time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from imports.mapping import IDENTIFIERS, TRANSFORMS, record_value
from profiles.attribute_names import RESERVED_KEYS, attribute_key
from profiles.fields import API_NAMES, EDITABLE_BY_API_NAME, IDENTIFIER_COLUMNS, api_name

ISO = "iso"  # a date candidate: ISO 8601 (``2024-05-01``, ``2024-05-01 10:00``, ``2024-05-01T10:00:00Z``)
SAMPLE_ROWS = 100  # records read to infer types and date formats


def fold(name: str) -> str:
    """A header name compared without regard to case and spacing."""
    return " ".join(str(name).split()).casefold()


def _attr(name: str, type_: str | None = None, **more) -> dict:
    spec: dict = {"to": f"attributes.{name}", **more}
    if type_:
        spec["type"] = type_
    return spec


def _when(name: str, *formats: str) -> dict:
    """A date or date-time attribute in one of ``formats`` (the type follows the format that reads the values)."""
    return {"to": f"attributes.{name}", "dates": list(formats)}


def _consent(target: str, values: dict[str, bool | None]) -> dict:
    """An agreement column: its values (folded to lower case) → granted, denied, or no change (None)."""
    return {"to": target, "transform": ["trim", "lower"], "map": values}


YES_NO = {"yes": True, "true": True, "1": True, "no": None, "false": None, "0": None}
OPTED_OUT = {"1": False, "true": False, "yes": False, "0": None, "false": None, "no": None}


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    signature: tuple[str, ...]
    columns: dict[str, dict]
    prefix: str  # of attribute names that would collide with native or other names
    finish: Callable[[dict, dict[str, str], dict[str, list]], None] | None = None
    transform: tuple[str, ...] = ("trim",)  # for the columns the preset does not know
    known: dict[str, dict] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "known", {fold(name): spec for name, spec in self.columns.items()})


# --- Mailchimp: the audience export (a ZIP of subscribed, unsubscribed and cleaned members, one CSV each) -------

MAILCHIMP_TIME = "%Y-%m-%d %H:%M:%S"


def _mailchimp_finish(mapping: dict, present: dict[str, str], samples: dict[str, list]) -> None:
    """The file's kind from its columns: unsubscribed members (UNSUB_TIME) withdrew, cleaned ones (CLEAN_TIME)
    bounced (no decision), the others are subscribed (confirmed at CONFIRM_TIME, else opted in at OPTIN_TIME)."""
    if "unsub_time" in present:
        decision, column = False, present["unsub_time"]
    elif "clean_time" in present:
        return
    else:
        decision, column = True, present.get("confirm_time") or present.get("optin_time")
    mapping.setdefault("constants", {})["agreements.email"] = decision
    if column:
        mapping["consentTime"] = _time_spec(column, samples.get(column, []), [MAILCHIMP_TIME, ISO])


MAILCHIMP = Preset(
    name="mailchimp",
    label="Mailchimp audience export",
    signature=("Email Address", "MEMBER_RATING", "LEID", "EUID"),
    prefix="mailchimp",
    finish=_mailchimp_finish,
    columns={
        "Email Address": {"to": "email", "transform": ["trim"]},
        "First Name": {"to": "firstName", "transform": ["trim"]},
        "Last Name": {"to": "lastName", "transform": ["trim"]},
        "Address": {"to": "address", "transform": ["trim"]},
        "Phone Number": {"to": "phone", "transform": ["trim"]},
        "Birthday": _attr("birthday", "string"),  # MM/DD, no year
        "Company": {"to": "company", "transform": ["trim"]},
        "MEMBER_RATING": _attr("mailchimpMemberRating", "number"),
        "OPTIN_TIME": _when("mailchimpOptinTime", MAILCHIMP_TIME, ISO),
        "OPTIN_IP": _attr("mailchimpOptinIp", "string"),
        "CONFIRM_TIME": _when("mailchimpConfirmTime", MAILCHIMP_TIME, ISO),
        "CONFIRM_IP": _attr("mailchimpConfirmIp", "string"),
        "LATITUDE": _attr("latitude", "number"),
        "LONGITUDE": _attr("longitude", "number"),
        "GMTOFF": _attr("mailchimpGmtOffset", "number"),
        "DSTOFF": _attr("mailchimpDstOffset", "number"),
        "TIMEZONE": _attr("timezone", "string"),
        "CC": {"to": "countryCode", "transform": ["trim", "upper"]},
        "REGION": {"to": "province", "transform": ["trim"]},
        "LAST_CHANGED": _when("mailchimpLastChanged", MAILCHIMP_TIME, ISO),
        "LEID": _attr("mailchimpLeid", "string"),
        "EUID": _attr("mailchimpEuid", "string"),
        "NOTES": _attr("mailchimpNotes", "string"),
        "TAGS": {"to": "tags", "split": ","},  # "Customer","VIP Club"
        "UNSUB_TIME": _when("mailchimpUnsubscribedAt", MAILCHIMP_TIME, ISO),
        "UNSUB_CAMPAIGN_TITLE": _attr("mailchimpUnsubscribeCampaignTitle", "string"),
        "UNSUB_CAMPAIGN_ID": _attr("mailchimpUnsubscribeCampaignId", "string"),
        "UNSUB_REASON": _attr("mailchimpUnsubscribeReason", "string"),
        "UNSUB_REASON_OTHER": _attr("mailchimpUnsubscribeReasonOther", "string"),
        "CLEAN_TIME": _when("mailchimpCleanedAt", MAILCHIMP_TIME, ISO),
        "CLEAN_CAMPAIGN_TITLE": _attr("mailchimpCleanCampaignTitle", "string"),
        "CLEAN_CAMPAIGN_ID": _attr("mailchimpCleanCampaignId", "string"),
    },
)

# --- HubSpot: a contacts export (property labels as column names) ----------------------------------------------

HUBSPOT_TIMES = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", ISO, "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M")

HUBSPOT = Preset(
    name="hubspot",
    label="HubSpot contacts export",
    signature=("Record ID", "First Name", "Last Name", "Email"),
    prefix="hubspot",
    columns={
        "Record ID": _attr("hubspotRecordId", "string"),
        "First Name": {"to": "firstName", "transform": ["trim"]},
        "Last Name": {"to": "lastName", "transform": ["trim"]},
        "Email": {"to": "email", "transform": ["trim"]},
        "Phone Number": {"to": "phone", "transform": ["trim"]},
        "Mobile Phone Number": _attr("mobilePhone", "string"),
        "Street Address": {"to": "address", "transform": ["trim"]},
        "City": {"to": "city", "transform": ["trim"]},
        "State/Region": {"to": "province", "transform": ["trim"]},
        "Postal Code": {"to": "zipCode", "transform": ["trim"]},
        "Country/Region": _attr("country", "string"),
        "Company Name": {"to": "company", "transform": ["trim"]},
        "Associated Company": _attr("associatedCompany", "string"),
        "Primary Associated Company ID": _attr("hubspotPrimaryCompanyId", "string"),
        "Job Title": _attr("jobTitle", "string"),
        "Website URL": _attr("website", "string"),
        "Contact owner": _attr("hubspotContactOwner", "string"),
        "Lead Status": _attr("leadStatus", "string"),
        "Lifecycle Stage": _attr("lifecycleStage", "string"),
        "Marketing contact status": _attr("hubspotMarketingContactStatus", "string"),
        "Create Date": _when("hubspotCreateDate", *HUBSPOT_TIMES),
        "Last Activity Date": _when("hubspotLastActivityDate", *HUBSPOT_TIMES),
        "Unsubscribed from all email": _consent("agreements.email", OPTED_OUT),
    },
)

# --- Klaviyo: a list or segment exported to CSV ---------------------------------------------------------------

KLAVIYO_TIMES = (ISO, "%m/%d/%Y %H:%M", "%m/%d/%Y")


def _klaviyo_finish(mapping: dict, present: dict[str, str], samples: dict[str, list]) -> None:
    if (column := present.get("email marketing consent timestamp")) and "email marketing consent" in present:
        mapping["consentTime"] = _time_spec(column, samples.get(column, []), list(KLAVIYO_TIMES))


KLAVIYO = Preset(
    name="klaviyo",
    label="Klaviyo list or segment export",
    signature=("Email", "Email Marketing Consent"),
    prefix="klaviyo",
    finish=_klaviyo_finish,
    columns={
        "Email": {"to": "email", "transform": ["trim"]},
        "Klaviyo ID": _attr("klaviyoId", "string"),
        "First Name": {"to": "firstName", "transform": ["trim"]},
        "Last Name": {"to": "lastName", "transform": ["trim"]},
        "Organization": {"to": "company", "transform": ["trim"]},
        "Title": _attr("jobTitle", "string"),
        "Phone Number": {"to": "phone", "transform": ["trim"]},
        "Address": {"to": "address", "transform": ["trim"]},
        "Address 2": _attr("address2", "string"),
        "City": {"to": "city", "transform": ["trim"]},
        "State / Region": {"to": "province", "transform": ["trim"]},
        "Country": _attr("country", "string"),
        "Zip Code": {"to": "zipCode", "transform": ["trim"]},
        "Latitude": _attr("latitude", "number"),
        "Longitude": _attr("longitude", "number"),
        "Source": _attr("klaviyoSource", "string"),
        "IP Address": _attr("ipAddress", "string"),
        "Email Marketing Consent": {
            "to": "agreements.email",
            "transform": ["trim", "upper"],
            "map": {"SUBSCRIBED": True, "UNSUBSCRIBED": False, "NEVER_SUBSCRIBED": None},
        },
        "Email Marketing Consent Timestamp": _when("klaviyoEmailConsentAt", *KLAVIYO_TIMES),
        "Historic Customer Lifetime Value": _attr("historicCustomerLifetimeValue", "number"),
        "Total Customer Lifetime Value": _attr("totalCustomerLifetimeValue", "number"),
        "Predicted Customer Lifetime Value": _attr("predictedCustomerLifetimeValue", "number"),
        "Average Order Value": _attr("averageOrderValue", "number"),
        "Historic Number Of Orders": _attr("historicNumberOfOrders", "number"),
        "Average Days Between Orders": _attr("averageDaysBetweenOrders", "number"),
        "First Active": _when("klaviyoFirstActive", *KLAVIYO_TIMES),
        "Last Active": _when("klaviyoLastActive", *KLAVIYO_TIMES),
        "Profile Created On": _when("klaviyoProfileCreatedOn", *KLAVIYO_TIMES),
        "Date Added": _when("klaviyoDateAdded", *KLAVIYO_TIMES),
        "Last Open": _when("klaviyoLastOpen", *KLAVIYO_TIMES),
        "Last Click": _when("klaviyoLastClick", *KLAVIYO_TIMES),
    },
)

# --- Brevo: a contacts export (attribute names as column names, semicolons) ------------------------------------

BREVO_TIMES = ("%d-%m-%Y", "%d-%m-%Y %H:%M", "%d-%m-%Y %H:%M:%S", ISO, "%m-%d-%Y", "%d/%m/%Y")

BREVO = Preset(
    name="brevo",
    label="Brevo contacts export",
    signature=("EMAIL", "ADDED_TIME", "MODIFIED_TIME"),
    prefix="brevo",
    columns={
        "CONTACT ID": _attr("brevoContactId", "string"),
        "EMAIL": {"to": "email", "transform": ["trim"]},
        "FIRSTNAME": {"to": "firstName", "transform": ["trim"]},
        "LASTNAME": {"to": "lastName", "transform": ["trim"]},
        "PRENOM": {"to": "firstName", "transform": ["trim"]},  # the default attributes of a French account
        "NOM": {"to": "lastName", "transform": ["trim"]},
        "SMS": {"to": "phone", "transform": ["trim"]},
        "WHATSAPP": _attr("whatsapp", "string"),
        "LANDLINE_NUMBER": _attr("landlineNumber", "string"),
        "EXT_ID": {"to": "customId", "transform": ["trim"]},
        "JOB_TITLE": _attr("jobTitle", "string"),
        "LINKEDIN": _attr("linkedin", "string"),
        "CONTACT_TIMEZONE": _attr("timezone", "string"),
        "OPT_IN": _consent("agreements.email", YES_NO),
        "DOUBLE_OPT-IN": _attr("doubleOptIn", "boolean"),
        "ADDED_TIME": _when("brevoAddedTime", *BREVO_TIMES),
        "MODIFIED_TIME": _when("brevoModifiedTime", *BREVO_TIMES),
    },
)

# --- Shopify: the customers export (old and current column names) --------------------------------------------
# Shopify writes an apostrophe before ids, postcodes and phone numbers so spreadsheets keep them as text.

_TEXT_KEPT = ["trim", "apostrophe"]

SHOPIFY = Preset(
    name="shopify",
    label="Shopify customers export",
    signature=("Email", "Total Spent", "Total Orders", "Tax Exempt"),
    prefix="shopify",
    transform=("trim", "apostrophe"),
    columns={
        "Customer ID": _attr("shopifyCustomerId", "string", transform=_TEXT_KEPT),
        "First Name": {"to": "firstName", "transform": ["trim"]},
        "Last Name": {"to": "lastName", "transform": ["trim"]},
        "Email": {"to": "email", "transform": ["trim"]},
        "Accepts Email Marketing": _consent("agreements.email", YES_NO),
        "Accepts Marketing": _consent("agreements.email", YES_NO),
        "Default Address Company": {"to": "company", "transform": ["trim"]},
        "Company": {"to": "company", "transform": ["trim"]},
        "Default Address Address1": {"to": "address", "transform": ["trim"]},
        "Address1": {"to": "address", "transform": ["trim"]},
        "Default Address Address2": _attr("address2", "string"),
        "Address2": _attr("address2", "string"),
        "Default Address City": {"to": "city", "transform": ["trim"]},
        "City": {"to": "city", "transform": ["trim"]},
        "Default Address Province Code": {"to": "province", "transform": ["trim"]},
        "Province": {"to": "province", "transform": ["trim"]},
        "Province Code": _attr("provinceCode", "string"),
        "Default Address Country Code": {"to": "countryCode", "transform": ["trim", "upper"]},
        "Country Code": {"to": "countryCode", "transform": ["trim", "upper"]},
        "Country": _attr("country", "string"),
        "Default Address Zip": {"to": "zipCode", "transform": _TEXT_KEPT},
        "Zip": {"to": "zipCode", "transform": _TEXT_KEPT},
        "Default Address Phone": _attr("addressPhone", "string", transform=_TEXT_KEPT),
        "Phone": {"to": "phone", "transform": _TEXT_KEPT},
        "Accepts SMS Marketing": _consent("agreements.sms", YES_NO),
        "Total Spent": _attr("totalSpent", "number"),
        "Total Orders": _attr("totalOrders", "number"),
        "Note": _attr("shopifyNote", "string"),
        "Tax Exempt": _attr("taxExempt", "boolean"),
        "Tags": {"to": "tags", "split": ","},  # retail, ag-exempt
    },
)

# --- Salesforce: a contacts report exported as CSV ("Details only"; field labels as column names) -------------

SALESFORCE_DATES = ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", ISO)
SALESFORCE_TIMES = (
    "%m/%d/%Y",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y, %I:%M %p",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    ISO,
)

SALESFORCE = Preset(
    name="salesforce",
    label="Salesforce contacts report",
    signature=("First Name", "Last Name", "Email", "Account Name"),
    prefix="salesforce",
    columns={
        "Contact ID": _attr("salesforceContactId", "string"),
        "Salutation": _attr("salutation", "string"),
        "First Name": {"to": "firstName", "transform": ["trim"]},
        "Last Name": {"to": "lastName", "transform": ["trim"]},
        "Title": _attr("jobTitle", "string"),
        "Account Name": {"to": "company", "transform": ["trim"]},
        "Email": {"to": "email", "transform": ["trim"]},
        # The contact's own number; Phone is often the account's switchboard, shared by its contacts.
        "Mobile": {"to": "phone", "transform": ["trim"]},
        "Phone": _attr("workPhone", "string"),
        "Home Phone": _attr("homePhone", "string"),
        "Other Phone": _attr("otherPhone", "string"),
        "Fax": _attr("fax", "string"),
        "Mailing Street": {"to": "address", "transform": ["trim"]},
        "Mailing City": {"to": "city", "transform": ["trim"]},
        "Mailing State/Province": {"to": "province", "transform": ["trim"]},
        "Mailing Zip/Postal Code": {"to": "zipCode", "transform": ["trim"]},
        "Mailing Country": _attr("country", "string"),
        "Birthdate": {"to": "birthDate", "dates": list(SALESFORCE_DATES)},
        "Lead Source": _attr("leadSource", "string"),
        "Department": _attr("department", "string"),
        "Description": _attr("salesforceDescription", "string"),
        "Contact Owner": _attr("salesforceContactOwner", "string"),
        "Email Opt Out": _consent("agreements.email", OPTED_OUT),
        "Do Not Call": _attr("doNotCall", "boolean"),
        "Created Date": _when("salesforceCreatedDate", *SALESFORCE_TIMES),
        "Last Modified Date": _when("salesforceLastModifiedDate", *SALESFORCE_TIMES),
        "Last Activity": _when("salesforceLastActivity", *SALESFORCE_TIMES),
    },
)

PRESETS: tuple[Preset, ...] = (MAILCHIMP, HUBSPOT, KLAVIYO, BREVO, SHOPIFY, SALESFORCE)

# --- this platform's own CSV export ---------------------------------------------------------------------------

PLATFORM_EXPORT = "platform-export"
PLATFORM_LABEL = "This platform's CSV export"
PLATFORM_SIGNATURE = ("clientId", "uuid", "anonymous", "tags")
# The export's columns no write can set (clientId, anonymous, correlationId, the times the platform keeps): every
# native field but the editable ones, the identifiers and the attributes (written as columns of their own).
PLATFORM_SKIPPED = frozenset(API_NAMES) - set(EDITABLE_BY_API_NAME) - {api_name(c) for c in IDENTIFIER_COLUMNS.values()}
PLATFORM_SKIPPED -= {"attributes"}
# Our export writes an apostrophe before a cell that starts like a formula (a phone's +, a negative number).
PLATFORM_TRANSFORM = ["apostrophe"]
AGREEMENT_STATES = {"granted": True, "denied": False, "awaiting_confirmation": None}
PRESET_NAMES = (*(preset.name for preset in PRESETS), PLATFORM_EXPORT)


# --- proposing a mapping ----------------------------------------------------------------------------------------


@dataclass
class Proposal:
    preset: str | None  # the preset's name, None when the header is no known export
    label: str
    mapping: dict


def preset_find(header: Iterable[str]) -> Preset | None:
    """The preset whose signature the header holds; of several, the one that knows most of its columns."""
    folded = {fold(name) for name in header}
    best, score = None, 0
    for preset in PRESETS:
        if all(fold(name) in folded for name in preset.signature):
            known = sum(1 for name in folded if name in preset.known)
            if known > score:
                best, score = preset, known
    return best


def mapping_propose(
    *,
    header: list[str],
    records: list[dict],
    agreements: set[str],
    attribute_types: dict[str, str] | None = None,
) -> Proposal:
    """The mapping proposed for a file with this header and these first records: a preset's when the header is
    a known export, else the targets guessed from the column names (the other columns left out).

    ``agreements`` are the active agreements' keys (an agreement column of another key is left out);
    ``attribute_types`` the attribute definitions of this install (name → type), which type our own export's
    attribute columns before the values do.
    """
    samples = {name: _values(records, name) for name in header}
    if all(name in header for name in PLATFORM_SIGNATURE):
        return Proposal(PLATFORM_EXPORT, PLATFORM_LABEL, _platform(header, samples, agreements, attribute_types or {}))
    preset = preset_find(header)
    if preset is None:
        columns = {name: {"to": target} for name in header if (target := target_guess(name))}
        return Proposal(None, "", {"columns": columns})
    return Proposal(preset.name, preset.label, _preset(preset, header, samples, agreements))


def _values(records: list[dict], name: str) -> list:
    values = []
    for record in records:
        value = record_value(record, name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        values.append(value)
    return values


def _transformed(values: list, transforms: Iterable[str]) -> list:
    out = []
    for value in values:
        if isinstance(value, str):
            for name in transforms:
                value = TRANSFORMS[name](value)
            if not value.strip():
                continue
        out.append(value)
    return out


def _preset(preset: Preset, header: list[str], samples: dict[str, list], agreements: set[str]) -> dict:
    columns: dict[str, dict] = {}
    taken: set[str] = set()
    present: dict[str, str] = {}  # folded → the header's own spelling
    for name in header:
        present.setdefault(fold(name), name)
    for name in header:
        spec = preset.known.get(fold(name))
        if spec is None:
            continue
        spec = json.loads(json.dumps(spec))  # a copy
        target = spec.get("to", "")
        if target.startswith("agreements.") and target.removeprefix("agreements.") not in agreements:
            continue  # that agreement is not active here
        if target != "tags" and any(other.get("to") == target for other in columns.values()):
            continue  # two columns of the export name one target (old and new names): the first one wins
        if "dates" in spec:
            spec = _dated(spec, samples.get(name, []))
        columns[name] = spec
        if target.startswith("attributes."):
            taken.add(attribute_key(target.removeprefix("attributes.")))
    for name in header:
        if name in columns or fold(name) in preset.known or not name.strip():
            continue
        if (spec := _inferred(name, samples.get(name, []), preset.prefix, taken, preset.transform)) is not None:
            columns[name] = spec
    mapping: dict = {"columns": columns}
    if preset.finish is not None:
        preset.finish(mapping, present, samples)
    return mapping


def _platform(
    header: list[str], samples: dict[str, list], agreements: set[str], attribute_types: dict[str, str]
) -> dict:
    columns: dict[str, dict] = {}
    for name in header:
        if name in PLATFORM_SKIPPED:
            continue
        if name in IDENTIFIERS or name in EDITABLE_BY_API_NAME:
            columns[name] = {"to": name, "transform": list(PLATFORM_TRANSFORM)}
        elif name == "tags":
            columns[name] = {"to": "tags", "type": "list"}
        elif name.startswith("agreements."):
            if name.removeprefix("agreements.") in agreements:
                columns[name] = {"to": name, "map": dict(AGREEMENT_STATES)}
        elif name.startswith("attributes.") and len(name) > len("attributes."):
            attribute = name.removeprefix("attributes.")
            kind = attribute_types.get(attribute) or _type_of(_transformed(samples.get(name, []), PLATFORM_TRANSFORM))
            columns[name] = {"to": name, "transform": list(PLATFORM_TRANSFORM), "type": kind}
    return {"columns": columns}


# --- dates and types from the values ---------------------------------------------------------------------------

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$")
_NUMBER = re.compile(r"^-?(0|[1-9]\d{0,14})([.,]\d+)?$")  # no leading zero, no +, at most 15 digits before the point
# Words of a column name that say its values identify something (kept as text, never numbers).
IDENTIFIER_WORDS = {"id", "ids", "code", "zip", "postcode", "postal", "phone", "mobile", "fax", "sku", "ean", "iban"}
_TIME_DIRECTIVE = re.compile(r"%[HIMSp]")
BOOLEANS = {"true", "false", "yes", "no"}
# Date formats tried on a column the preset does not know (ISO first).
GUESSED_DATES = (ISO, "%d.%m.%Y", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y")


def _reads(value: Any, fmt: str) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if fmt == ISO:
            if not (_ISO_DATE.match(text) or _ISO_DATETIME.match(text)):
                return None
            return datetime.fromisoformat(text)
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


def _date_format(values: list, candidates: list[str]) -> str:
    """The first candidate that reads every value (the first candidate when none does, or nothing to read)."""
    for fmt in candidates:
        if values and all(_reads(value, fmt) is not None for value in values):
            return fmt
    return candidates[0]


def _has_time(values: list, fmt: str) -> bool:
    if fmt != ISO:
        return bool(_TIME_DIRECTIVE.search(fmt))
    return any(isinstance(v, datetime) or (isinstance(v, str) and _ISO_DATETIME.match(v.strip())) for v in values)


def _dated(spec: dict, values: list) -> dict:
    """A column spec with date candidates made concrete: ``dateFormat`` (none for ISO or a spreadsheet's own date
    cells) and, for an attribute, the type the format gives (date or datetime)."""
    candidates = spec.pop("dates")
    if values and all(isinstance(value, date) for value in values):  # a spreadsheet's date cells
        has_time = any(isinstance(value, datetime) for value in values)
    else:
        fmt = _date_format(values, candidates)
        if fmt != ISO:
            spec["dateFormat"] = fmt
        has_time = _has_time(values, fmt)
    if spec["to"].startswith("attributes."):
        spec["type"] = "datetime" if has_time else "date"
    return spec


def _time_spec(column: str, values: list, candidates: list[str]) -> str | dict:
    """``consentTime`` for a column of decision times."""
    fmt = _date_format(values, candidates)
    if fmt == ISO or (values and all(isinstance(value, date) for value in values)):
        return column
    return {"column": column, "dateFormat": fmt}


def _type_of(values: list) -> str:
    """An attribute type for these values: boolean, number, date, datetime, list or string."""
    if not values:
        return "string"
    if all(isinstance(v, bool) or (isinstance(v, str) and v.strip().lower() in BOOLEANS) for v in values):
        return "boolean"
    if all(
        (isinstance(v, int | float) and not isinstance(v, bool)) or (isinstance(v, str) and _NUMBER.match(v.strip()))
        for v in values
    ):
        return "number"
    if all((isinstance(v, date) and not isinstance(v, datetime)) or _is_iso_date(v) for v in values):
        return "date"
    if all(isinstance(v, date) or _is_iso_date(v) or _is_iso_datetime(v) for v in values):
        return "datetime"
    if all(isinstance(v, list) or _is_json_list(v) for v in values):
        return "list"
    return "string"


def _is_iso_date(value: Any) -> bool:
    return isinstance(value, str) and bool(_ISO_DATE.match(value.strip())) and _reads(value, ISO) is not None


def _is_iso_datetime(value: Any) -> bool:
    return isinstance(value, str) and bool(_ISO_DATETIME.match(value.strip())) and _reads(value, ISO) is not None


def _is_json_list(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip().startswith("["):
        return False
    try:
        parsed = json.loads(value)
    except ValueError:
        return False
    return isinstance(parsed, list) and not any(isinstance(item, dict | list) for item in parsed)


def _inferred(name: str, values: list, prefix: str, taken: set[str], transforms: Iterable[str]) -> dict | None:
    """An attribute for a column no preset knows: its name from the header, its type from the values."""
    attribute = attribute_name(name, prefix=prefix, taken=taken)
    if attribute is None:
        return None
    taken.add(attribute_key(attribute))
    transforms = list(transforms)
    values = _transformed(values, transforms)
    spec: dict = {"to": f"attributes.{attribute}", "transform": transforms}
    if _names_identifiers(name):
        spec["type"] = "string"
        return spec
    kind = _type_of(values)
    if kind in ("date", "datetime") or (kind == "string" and values and _guessed_dates(values)):
        fmt = _date_format(values, list(GUESSED_DATES))
        return _dated({**spec, "dates": [fmt]}, values)
    spec["type"] = kind
    if kind == "list":
        spec.pop("transform")
    return spec


def _words(header: str) -> list[str]:
    """The words of a column name, camelCase split too: ``Customer ID``, ``customerId`` → customer, id."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", header)
    return [word.lower() for word in re.findall(r"[^\W_]+", spaced)]


def _names_identifiers(header: str) -> bool:
    return any(word in IDENTIFIER_WORDS or word.endswith("phone") for word in _words(header))


def _guessed_dates(values: list) -> bool:
    return any(all(_reads(value, fmt) is not None for value in values) for fmt in GUESSED_DATES)


def attribute_name(header: str, *, prefix: str, taken: set[str]) -> str | None:
    """A custom attribute's name for a column: its words in camelCase (``Favorite Topics`` → ``favoriteTopics``,
    ``MEMBER_RATING`` → ``memberRating``), with the product's prefix when the plain name is a native or system
    field's or already taken; None when the header has no letters or digits."""
    words = re.findall(r"[^\W_]+", header)
    if not words:
        return None
    parts = [w if not w.isupper() or len(w) == 1 else w.lower() for w in words]
    name = parts[0][:1].lower() + parts[0][1:] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    name = name[:200]
    if attribute_key(name) in RESERVED_KEYS or attribute_key(name) in taken:
        name = prefix + name[:1].upper() + name[1:]
    return name


# --- the column names of files that are no known export ---------------------------------------------------------

_GUESSES = {
    "email": "email", "emailaddress": "email", "mail": "email", "email1": "email",
    "phone": "phone", "phonenumber": "phone", "mobile": "phone", "telephone": "phone",
    "customid": "customId", "customerid": "customId", "crmid": "customId",
    "uuid": "uuid", "tags": "tags", "groups": "tags",
}  # fmt: skip


def target_guess(column: str) -> str:
    """A likely target for a column name (empty: none)."""
    folded = re.sub(r"[^a-z0-9]", "", column.lower())
    if folded in _GUESSES:
        return _GUESSES[folded]
    for api in EDITABLE_BY_API_NAME:
        if folded == api.lower():
            return api
    return ""
