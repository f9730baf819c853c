"""The presets: a file per product made from its documented export columns (quoted lists, dates in the product's
format, a bad line), recognised from its header, imported with the proposed mapping as it is."""

import csv
import io
from datetime import UTC, datetime

import pytest

from consents.models import ConsentState
from imports.mapping import mapping_compile
from imports.presets import attribute_name, mapping_propose, preset_find
from imports.services import import_create, import_detect, import_report_csv, import_run
from profiles.models import AttributeDefinition, Profile


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def detect_and_run(content: str | bytes, name: str, **kwargs):
    """What the wizard and the API do: detect, then import with the proposed mapping as it is."""
    data = content.encode() if isinstance(content, str) else content
    detected = import_detect(file=io.BytesIO(data), name=name, **kwargs)
    imp = import_create(file=io.BytesIO(data), name=name, mapping=detected["mapping"], source="tests", actor="system")
    return detected, import_run(job_id=imp.pk)


def report(imp) -> list[dict]:
    return list(csv.DictReader(io.StringIO("".join(import_report_csv(imp=imp)))))


def consent(profile, key="email") -> ConsentState | None:
    return ConsentState.objects.filter(profile=profile, agreement__key=key).first()


def types() -> dict[str, str]:
    return dict(AttributeDefinition.objects.values_list("name", "type"))


def csv_text(*rows, delimiter=","):
    """A CSV file as the product writes it (every cell quoted where it must be, quotes inside doubled)."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


MAILCHIMP_COLUMNS = [
    "Email Address", "First Name", "Last Name", "Address", "Phone Number", "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP",
    "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION",
    "LAST_CHANGED", "LEID", "EUID", "NOTES", "TAGS",
]  # fmt: skip
MAILCHIMP_SUBSCRIBED = csv_text(
    [*MAILCHIMP_COLUMNS, "Favorite Sport"],
    # TAGS holds a quoted list per cell: "Customer","VIP Club"
    ["ann@example.com", "Ann", "Lee", "12 Main St  Springfield  IL  62701  US", "+48 601 234 567", "4",
     "2024-03-01 09:15:00", "203.0.113.9", "2024-03-01 09:16:30", "203.0.113.9", "39.7817000", "-89.6501000", "-6",
     "-5", "America/Chicago", "us", "IL", "2024-05-02 10:00:00", "123456789", "2cbd66e9c4", "",
     '"Customer","VIP Club"', "Running"],
    # an escaped quote inside an item: "Say ""hi"""
    ["bob@example.com", "Bob", "O'Neil", "", "", "2", "", "", "2024-04-10 18:00:00", "", "", "", "", "", "", "", "",
     "2024-04-10 18:00:00", "222555609", "9a8b7c6d5e", 'likes "quotes"', '"Say ""hi""","Customer"', ""],
    ["not-an-address", "Bad", "Line", "", "", "1", "", "", "2024-04-11 08:00:00", "", "", "", "", "", "", "", "",
     "2024-04-11 08:00:00", "3", "x", "", "", ""],
)  # fmt: skip
MAILCHIMP_UNSUBSCRIBED = csv_text(
    ["Email Address", "First Name", "Last Name", "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME",
     "CONFIRM_IP", "LATITUDE", "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION", "UNSUB_TIME",
     "UNSUB_CAMPAIGN_TITLE", "UNSUB_CAMPAIGN_ID", "UNSUB_REASON", "UNSUB_REASON_OTHER", "LAST_CHANGED", "LEID", "EUID",
     "NOTES", "TAGS"],
    ["cy@example.com", "Cy", "Ng", "2", "", "", "2023-01-01 10:00:00", "", "", "", "", "", "", "", "",
     "2024-06-01 12:30:00", "June news", "8f1e2d", "I no longer want to receive these emails", "",
     "2024-06-01 12:30:00", "55", "ab12cd34ef", "", '"Customer"'],
    ["dee@example.com", "Dee", "", "2", "", "", "", "", "", "", "", "", "", "", "", "not a time", "", "", "", "",
     "2024-06-02 12:30:00", "56", "ab12cd34eg", "", ""],
)  # fmt: skip


def test_mailchimp_subscribed_members(db):
    detected, imp = detect_and_run(MAILCHIMP_SUBSCRIBED, "subscribed_members_export_1a2b3c.csv")
    assert detected["preset"] == "mailchimp" and detected["presetLabel"] == "Mailchimp audience export"
    mapping = detected["mapping"]
    assert mapping["constants"] == {"agreements.email": True}
    assert mapping["consentTime"] == {"column": "CONFIRM_TIME", "dateFormat": "%Y-%m-%d %H:%M:%S"}
    assert mapping["columns"]["TAGS"] == {"to": "tags", "split": ","}
    assert mapping["columns"]["Favorite Sport"] == {
        "to": "attributes.favoriteSport",
        "transform": ["trim"],
        "type": "string",
    }
    assert imp.job.counts["created"] == 2 and imp.job.counts["failed"] == 1
    ann = Profile.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.last_name, ann.phone) == ("Ann", "Lee", "+48601234567")
    assert ann.address == "12 Main St  Springfield  IL  62701  US"
    assert (ann.country_code, ann.province) == ("US", "IL")
    assert sorted(t.name for t in ann.tags.all()) == ["Customer", "VIP Club"]  # no quote marks in the names
    assert ann.attributes["mailchimpMemberRating"] == 4
    assert ann.attributes["latitude"] == 39.7817 and ann.attributes["mailchimpGmtOffset"] == -6
    assert ann.attributes["mailchimpOptinTime"] == "2024-03-01T09:15:00Z"
    assert ann.attributes["mailchimpLeid"] == "123456789"  # an id stays text
    assert ann.attributes["favoriteSport"] == "Running"
    state = consent(ann)
    assert state.status == "granted" and state.changed_at == datetime(2024, 3, 1, 9, 16, 30, tzinfo=UTC)
    bob = Profile.objects.get(email="bob@example.com")
    assert bob.last_name == "O'Neil" and bob.attributes["mailchimpNotes"] == 'likes "quotes"'
    assert sorted(t.name for t in bob.tags.all()) == ["Customer", 'Say "hi"']  # an escaped quote inside an item
    assert types()["mailchimpMemberRating"] == "number" and types()["mailchimpLastChanged"] == "datetime"
    (row,) = report(imp)
    assert (row["line"], row["kind"], row["code"]) == ("4", "error", "email.invalid")


def test_mailchimp_unsubscribed_members_withdraw_at_their_time(db):
    detected, imp = detect_and_run(MAILCHIMP_UNSUBSCRIBED, "unsubscribed_members_export_1a2b3c.csv")
    assert detected["preset"] == "mailchimp"
    assert detected["mapping"]["constants"] == {"agreements.email": False}
    assert detected["mapping"]["consentTime"] == {"column": "UNSUB_TIME", "dateFormat": "%Y-%m-%d %H:%M:%S"}
    cy = Profile.objects.get(email="cy@example.com")
    state = consent(cy)
    assert state.status == "denied" and state.changed_at == datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
    assert cy.attributes["mailchimpUnsubscribeReason"] == "I no longer want to receive these emails"
    assert [t.name for t in cy.tags.all()] == ["Customer"]
    (row,) = report(imp)  # a time that is no time: the line fails, saying so
    assert (row["line"], row["code"], row["field"]) == ("3", "import.date", "attributes.mailchimpUnsubscribedAt")
    assert not Profile.objects.filter(email="dee@example.com").exists()


HUBSPOT = (
    '"Record ID","First Name","Last Name","Email","Phone Number","Contact owner","Associated Company",'
    '"Last Activity Date","Lead Status","Marketing contact status","Create Date","Lifecycle Stage","City",'
    '"State/Region","Country/Region","Postal Code","Street Address","Job Title","Unsubscribed from all email",'
    '"Favorite Content Topics"\n'
    '"100000000001","Casey","Example","casey@company-a.example","+48 22 123 45 67","Sam Sales","Company A",'
    '"2024-02-01 10:30","OPEN","Marketing contact","2020-01-10 10:00","customer","Warszawa","mazowieckie",'
    '"Poland","00-950","ul. Marszałkowska 1","Buyer","false","Blog;Webinars"\n'
    '"100000000002","Robin","Example","robin@company-b.example","","","","","","Non-marketing contact",'
    '"2020-01-11 10:00","lead","","","","","","","true",""\n'
    '"100000000003","No","Address","","","","","","","","2020-01-12 10:00","lead","","","","","","","",""\n'
)


def test_hubspot_contacts(db):
    detected, imp = detect_and_run(HUBSPOT, "hubspot-crm-exports-all-contacts-2024-06-01.csv")
    assert detected["preset"] == "hubspot"
    columns = detected["mapping"]["columns"]
    assert columns["Create Date"] == {
        "to": "attributes.hubspotCreateDate",
        "dateFormat": "%Y-%m-%d %H:%M",
        "type": "datetime",
    }
    assert columns["Postal Code"]["to"] == "zipCode"
    assert imp.job.counts["created"] == 2 and imp.job.counts["failed"] == 1
    casey = Profile.objects.get(email="casey@company-a.example")
    assert (casey.zip_code, casey.city, casey.province, casey.address) == (
        "00-950",
        "Warszawa",
        "mazowieckie",
        "ul. Marszałkowska 1",
    )
    assert casey.phone == "+48221234567"
    assert casey.attributes["hubspotRecordId"] == "100000000001"
    assert casey.attributes["hubspotCreateDate"] == "2020-01-10T10:00:00Z"
    assert casey.attributes["country"] == "Poland" and casey.attributes["lifecycleStage"] == "customer"
    assert casey.attributes["favoriteContentTopics"] == "Blog;Webinars"
    assert consent(casey) is None  # "not unsubscribed" is no decision
    robin = Profile.objects.get(email="robin@company-b.example")
    assert consent(robin).status == "denied"
    (row,) = report(imp)
    assert (row["line"], row["code"]) == ("4", "identifier.missing")


KLAVIYO = (
    "Email,Klaviyo ID,First Name,Last Name,Organization,Title,Phone Number,Address,Address 2,City,State / Region,"
    "Country,Zip Code,Latitude,Longitude,Source,IP Address,Email Marketing Consent,Email Marketing Consent Timestamp,"
    "Total Customer Lifetime Value,Historic Number Of Orders,First Active,Last Active,Profile Created On,Date Added,"
    "Shoe Size,Interests\n"
    "lea@example.com,01HZX3,Léa,Martin,Martin SARL,Owner,+33 6 12 34 56 78,1 rue de Rivoli,Bât. B,Paris,"
    "Île-de-France,France,75001,48.8606,2.3376,Signup form,198.51.100.7,SUBSCRIBED,2024-01-05 08:00:00,"
    "154.30,3,2023-12-01 10:00:00,2024-05-01 18:20:00,2023-12-01 10:00:00,2024-01-05 08:00:00,38,"
    '"[""running"", ""yoga""]"\n'
    "max@example.com,01HZX4,Max,Muster,,,,,,,,,,,,API,,UNSUBSCRIBED,2024-02-10 09:30:00,0,0,,,"
    '2023-11-01 10:00:00,2023-11-01 10:00:00,44,"[""cycling""]"\n'
    "nick@example.com,01HZX5,Nick,,,,,,,,,,,,,,,NEVER_SUBSCRIBED,,,,,,2023-10-01 10:00:00,2023-10-01 10:00:00,"
    "forty,[]\n"
)


def test_klaviyo_list_export(db):
    detected, imp = detect_and_run(KLAVIYO, "Newsletter_list.csv")
    assert detected["preset"] == "klaviyo"
    mapping = detected["mapping"]
    assert mapping["consentTime"] == "Email Marketing Consent Timestamp"  # ISO 8601 times
    assert mapping["columns"]["Interests"] == {"to": "attributes.interests", "type": "list"}
    # "forty" on the last line: the sampled values are not all numbers, so the column stays text
    assert mapping["columns"]["Shoe Size"]["type"] == "string"
    assert imp.job.counts["created"] == 3 and imp.job.counts["failed"] == 0
    lea = Profile.objects.get(email="lea@example.com")
    assert (lea.first_name, lea.company, lea.zip_code, lea.city) == ("Léa", "Martin SARL", "75001", "Paris")
    assert lea.attributes["interests"] == ["running", "yoga"]
    assert lea.attributes["totalCustomerLifetimeValue"] == 154.3
    assert lea.attributes["klaviyoProfileCreatedOn"] == "2023-12-01T10:00:00Z"
    state = consent(lea)
    assert state.status == "granted" and state.changed_at == datetime(2024, 1, 5, 8, tzinfo=UTC)
    max_ = Profile.objects.get(email="max@example.com")
    assert consent(max_).status == "denied"
    assert consent(Profile.objects.get(email="nick@example.com")) is None  # never subscribed: no decision
    assert types()["interests"] == "list" and types()["klaviyoLastActive"] == "datetime"


BREVO = (
    "CONTACT ID;EMAIL;LASTNAME;FIRSTNAME;WHATSAPP;SMS;DOUBLE_OPT-IN;OPT_IN;LANDLINE_NUMBER;EXT_ID;CONTACT_TIMEZONE;"
    "JOB_TITLE;LINKEDIN;ADDED_TIME;MODIFIED_TIME\n"
    "12;zofia@example.pl;Kowalska;Zofia;;48601234567;Yes;Yes;;CRM-0042;Europe/Warsaw;Księgowa;;18-06-2024;"
    "28-01-2025\n"
    "13;jan@example.pl;Nowak;Jan;;;No;No;;CRM-0043;;;;19-06-2024;19-06-2024\n"
    "14;;Brak;Adresu;;;No;No;;;;;;20-06-2024;20-06-2024\n"
)


def test_brevo_contacts_export(db):
    detected, imp = detect_and_run(BREVO, "contacts-export.csv")
    assert detected["preset"] == "brevo" and detected["delimiter"] == ";"
    columns = detected["mapping"]["columns"]
    assert columns["ADDED_TIME"] == {"to": "attributes.brevoAddedTime", "dateFormat": "%d-%m-%Y", "type": "date"}
    assert imp.job.counts["created"] == 2 and imp.job.counts["failed"] == 1
    zofia = Profile.objects.get(email="zofia@example.pl")
    assert (zofia.first_name, zofia.last_name, zofia.custom_id) == ("Zofia", "Kowalska", "CRM-0042")
    assert zofia.phone == "+48601234567"
    assert zofia.attributes["jobTitle"] == "Księgowa" and zofia.attributes["doubleOptIn"] is True
    assert zofia.attributes["brevoAddedTime"] == "2024-06-18"
    assert consent(zofia).status == "granted"
    jan = Profile.objects.get(email="jan@example.pl")
    assert consent(jan) is None and jan.attributes["doubleOptIn"] is False
    (row,) = report(imp)
    assert (row["line"], row["code"]) == ("4", "identifier.missing")


SHOPIFY = (
    "Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,Default Address Address1,"
    "Default Address Address2,Default Address City,Default Address Province Code,Default Address Country Code,"
    "Default Address Zip,Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,Tax Exempt,"
    "Tags,Birth date (customer.metafields.facts.birth_date)\n"
    "'7210448301122,Teodoro,Villaseñor,teo@example.com,yes,Villaseñor Ranch,HC 31 Box 4500,,Elko,NV,US,'02134,"
    "'+17755550154,'+17755550154,no,7790.44,6,Cattle ranch.,yes,\"retail, ag-exempt\",1980-05-17\n"
    "'7210448301123,Hollis,Pettibone,hollis@example.com,no,,3910 Harrison Blvd,,Ogden,UT,US,'84403,,,yes,154.29,2,,"
    "no,retail,\n"
    "'7210448301124,Bad,Email,bad@@example.com,yes,,,,,,,,,,no,0.00,0,,no,,\n"
)


def test_shopify_customers_export(db):
    detected, imp = detect_and_run(SHOPIFY, "customers_export.csv")
    assert detected["preset"] == "shopify"
    columns = detected["mapping"]["columns"]
    assert columns["Default Address Zip"] == {"to": "zipCode", "transform": ["trim", "apostrophe"]}
    assert columns["Birth date (customer.metafields.facts.birth_date)"] == {
        "to": "attributes.birthDateCustomerMetafieldsFactsBirthDate",
        "transform": ["trim", "apostrophe"],
        "type": "date",
    }
    assert imp.job.counts["created"] == 2 and imp.job.counts["failed"] == 1
    teo = Profile.objects.get(email="teo@example.com")
    assert teo.zip_code == "02134"  # the leading zero kept, the apostrophe gone
    assert teo.phone == "+17755550154" and teo.country_code == "US" and teo.province == "NV"
    assert teo.attributes["shopifyCustomerId"] == "7210448301122"
    assert teo.attributes["totalSpent"] == 7790.44 and teo.attributes["totalOrders"] == 6
    assert teo.attributes["taxExempt"] is True
    assert teo.attributes["birthDateCustomerMetafieldsFactsBirthDate"] == "1980-05-17"
    assert sorted(t.name for t in teo.tags.all()) == ["ag-exempt", "retail"]
    assert consent(teo).status == "granted" and consent(teo, "sms") is None  # "no" is no decision
    hollis = Profile.objects.get(email="hollis@example.com")
    assert consent(hollis) is None and consent(hollis, "sms").status == "granted"
    (row,) = report(imp)
    assert (row["line"], row["code"]) == ("4", "email.invalid")


SALESFORCE = (
    '"Contact ID","Salutation","First Name","Last Name","Title","Account Name","Email","Phone","Mobile",'
    '"Mailing Street","Mailing City","Mailing State/Province","Mailing Zip/Postal Code","Mailing Country",'
    '"Birthdate","Lead Source","Email Opt Out","Do Not Call","Created Date","Contact Owner"\n'
    '"0035g00000AbCdE","Ms.","Rose","Gonzalez","SVP, Procurement","Edge Communications","rose@edge.example",'
    '"(512) 757-6000","(512) 757-9340","313 Constitution Place\nAustin, TX 78767","Austin","TX","78767","USA",'
    '"5/31/1980","Web","0","0","3/15/2024","Sam Sales"\n'
    '"0035g00000AbCdF","Mr.","Sean","Forbes","CFO","Edge Communications","sean@edge.example","(512) 757-6000","",'
    '"","","","","","12/4/1975","Phone Inquiry","1","1","3/16/2024","Sam Sales"\n'
    '"0035g00000AbCdG","Mr.","Bad","Birthday","","Edge Communications","bad@edge.example","","","","","","","",'
    '"31/31/1980","","0","0","3/17/2024","Sam Sales"\n'
)


def test_salesforce_contacts_report(db, settings):
    settings.PHONE_DEFAULT_REGION = "US"
    detected, imp = detect_and_run(SALESFORCE, "report1717171717171.csv")
    assert detected["preset"] == "salesforce"
    columns = detected["mapping"]["columns"]
    # 31/31/1980 reads in no candidate: the documented M/D/YYYY stays, and that line fails
    assert columns["Birthdate"] == {"to": "birthDate", "dateFormat": "%m/%d/%Y"}
    assert columns["Created Date"]["type"] == "date"
    assert imp.job.counts["created"] == 2 and imp.job.counts["failed"] == 1
    rose = Profile.objects.get(email="rose@edge.example")
    assert str(rose.birth_date) == "1980-05-31" and rose.company == "Edge Communications"
    assert rose.address == "313 Constitution Place\nAustin, TX 78767"  # a quoted newline inside a cell
    assert (rose.zip_code, rose.phone) == ("78767", "+15127579340")  # the mobile: the account's number is shared
    assert rose.attributes["workPhone"] == "(512) 757-6000"
    assert rose.attributes["jobTitle"] == "SVP, Procurement" and rose.attributes["doNotCall"] is False
    assert rose.attributes["salesforceCreatedDate"] == "2024-03-15"
    assert consent(rose) is None
    sean = Profile.objects.get(email="sean@edge.example")
    assert consent(sean).status == "denied" and str(sean.birth_date) == "1975-12-04"
    assert sean.phone is None and sean.attributes["workPhone"] == "(512) 757-6000"
    (row,) = report(imp)
    assert (row["line"], row["code"], row["field"]) == ("5", "import.date", "birthDate")


def test_detection_needs_every_column_of_a_signature():
    assert preset_find(["Email Address", "MEMBER_RATING", "LEID", "EUID"]).name == "mailchimp"
    assert preset_find(["email address", "member_rating", "leid", " euid "]).name == "mailchimp"  # case, spaces
    assert preset_find(["Email Address", "MEMBER_RATING", "LEID"]) is None
    assert preset_find(["E-mail", "Name"]) is None


def test_a_header_that_is_no_export_gets_the_guessed_targets_only():
    proposal = mapping_propose(
        header=["E-mail", "Phone", "City", "Note"], records=[{"E-mail": "a@example.com"}], agreements={"email"}
    )
    assert proposal.preset is None
    assert proposal.mapping == {
        "columns": {"E-mail": {"to": "email"}, "Phone": {"to": "phone"}, "City": {"to": "city"}}
    }


def test_an_agreement_that_is_not_active_here_is_left_out(db):
    proposal = mapping_propose(header=SHOPIFY.splitlines()[0].split(","), records=[], agreements={"email"})
    columns = proposal.mapping["columns"]
    assert columns["Accepts Email Marketing"]["to"] == "agreements.email"
    assert "Accepts SMS Marketing" not in columns
    mapping_compile(proposal.mapping, agreements={"email"})  # what is proposed can be used as it is


def test_attribute_names_from_headers():
    assert attribute_name("Favorite Topics", prefix="x", taken=set()) == "favoriteTopics"
    assert attribute_name("MEMBER_RATING", prefix="x", taken=set()) == "memberRating"
    assert attribute_name("Created At", prefix="shopify", taken=set()) == "shopifyCreatedAt"  # a system field's name
    assert attribute_name("City", prefix="hubspot", taken=set()) == "hubspotCity"  # a native field's name
    assert attribute_name("Points", prefix="x", taken={"points"}) == "xPoints"
    assert attribute_name("—", prefix="x", taken=set()) is None
