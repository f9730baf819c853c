"""A person with data in every table that holds profile data, written through the API as integrations would."""

from dataclasses import dataclass

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from profiles.models import Profile
from profiles.services.batch import profiles_batch_run

EMAIL = "zebulon.quarrington@example.com"
PHONE = "+48601987654"
CUSTOM_ID = "ZQ-778899"
UUID = "5b1f7c2e-9d3a-4e8b-a1c4-7e2f9d0b6a31"
VISITOR_UUID = "0c9e8d7f-6a5b-4c3d-9e1f-2a3b4c5d6e7f"
FIRST, LAST = "Zebulon", "Quarrington"


@dataclass
class Person:
    profile: Profile
    visitor_id: int  # the anonymous visitor merged into it
    tag_id: int
    job_id: str

    @property
    def client_ids(self) -> list[int]:
        return [self.profile.pk, self.visitor_id]


@pytest.fixture
def person(api, db):
    headers = {"HTTP_USER_AGENT": f"Mozilla/5.0 ({FIRST}'s laptop)"}
    # An anonymous visitor first, by its uuid, then the sign-up that merges it in.
    response = api.post(
        "/v4/events/custom",
        {"action": "page.visit", "label": "Home", "client": {"uuid": VISITOR_UUID}, "params": {"url": "/"}},
        format="json",
        **headers,
    )
    assert response.status_code == 202, response.content
    visitor_id = Profile.objects.get(uuid=VISITOR_UUID).pk
    response = api.post(
        "/v4/clients",
        {
            "email": EMAIL,
            "phone": PHONE,
            "customId": CUSTOM_ID,
            "uuid": UUID,
            "firstName": FIRST,
            "lastName": LAST,
            "city": "Łódź",
            "attributes": {"nickname": f"{FIRST} Q.", "favouriteSport": "curling"},
            "agreements": {"email": True, "sms": True},
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="signup-1",
        **headers,
    )
    assert response.status_code == 202, response.content
    response = api.post(
        "/v4/events/custom",
        {"action": "form.submit", "client": {"email": EMAIL, "uuid": VISITOR_UUID}, "params": {"name": FIRST}},
        format="json",
        **headers,
    )
    assert response.status_code == 202, response.content
    profile = Profile.objects.get(email=EMAIL)
    assert not Profile.objects.filter(pk=visitor_id).exists()  # merged in
    response = api.post(
        "/v4/events/custom",
        {"action": "product.view", "client": {"uuid": UUID}, "params": {"userAgent": headers["HTTP_USER_AGENT"]}},
        format="json",
    )
    assert response.status_code == 202
    tag = api.post("/v4/clients/tags", {"name": "vip"}, format="json").json()
    assert api.post(f"/v4/clients/{profile.pk}/tags/{tag['id']}").status_code == 202
    response = api.post(
        f"/v4/clients/{profile.pk}/notes",
        {"text": f"{FIRST} {LAST} called about his order"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="note-1",
    )
    assert response.status_code == 201, response.content
    response = api.post(
        "/v4/transactions",
        {
            "orderId": "ORD-ZQ-1",
            "client": {"email": EMAIL},
            "value": {"amount": 129.99, "currency": "PLN"},
            "metadata": {"giftMessage": f"For {FIRST}"},
        },
        format="json",
    )
    assert response.status_code in (200, 201, 202), response.content
    response = api.post(
        "/v4/clients/batch",
        [{"email": EMAIL.upper(), "firstName": FIRST}, {"email": "someone.else@example.com", "firstName": "Other"}],
        format="json",
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["jobId"]
    profiles_batch_run(job_id=job_id)
    user = get_user_model().objects.create_user("staff", password="x")
    profile.refresh_from_db()
    LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(Profile),
        object_id=str(profile.pk),
        object_repr=str(profile)[:200],
        action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["First name"]}}]',
    )
    return Person(profile=profile, visitor_id=visitor_id, tag_id=tag["id"], job_id=job_id)


def columns_holding(needles: list[str]) -> list[str]:
    """Every text, JSON, array and binary column of every table, searched for each needle (case-insensitively)."""
    found = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY', 'inet')
            """
        )
        for table, column, data_type in cursor.fetchall():
            expr = f"encode(\"{column}\", 'escape')" if data_type == "bytea" else f'"{column}"::text'
            for needle in needles:
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE {expr} ILIKE %s', [f"%{needle}%"])
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column} holds {needle!r}")
    return found


NEEDLES = [EMAIL, PHONE.lstrip("+"), "601987654", CUSTOM_ID, UUID, VISITOR_UUID, FIRST, LAST]
