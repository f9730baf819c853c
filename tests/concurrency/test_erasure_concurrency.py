"""Erasure racing writes: while a profile is erased, threads keep sending events and profile writes with its uuid
and its clientId. However the race goes, the uuid never ends up on a profile afterwards (no identifier reappears,
unlike deletes done asynchronously), and every write either landed before the erasure or was refused as Gone."""

import threading

import pytest
from django.db import connection
from django.test import Client

from crm.services import api_key_create
from privacy.services import profile_erase
from profiles.models import Identifier, Profile
from profiles.services import ProfileInput, profile_upsert

pytestmark = pytest.mark.django_db(transaction=True)

UUID = "77777777-7777-4777-8777-777777777777"
THREADS = 6
WRITES_PER_THREAD = 25


def test_writes_racing_an_erasure_never_bring_the_uuid_back():
    profile = profile_upsert(
        data=ProfileInput(identifiers={"email": "racer@example.com", "uuid": UUID}), source="tests", actor="tests"
    ).profile
    _, secret = api_key_create(name="race", scopes=["read", "write"], rate_limit="1000000/min")
    statuses: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS + 1)

    def writer(n: int):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        try:
            start.wait()
            for i in range(WRITES_PER_THREAD):
                if i % 3 == 0:
                    response = client.post(
                        f"/v4/clients/{profile.pk}", {"city": f"City {n}"}, content_type="application/json"
                    )
                else:
                    response = client.post(
                        "/v4/events/custom",
                        {"action": "page.visit", "client": {"uuid": UUID}, "params": {"n": n, "i": i}},
                        content_type="application/json",
                    )
                statuses.append(response.status_code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    profile_erase(profile=profile, source="tests", actor="tests")
    for thread in threads:
        thread.join()

    assert not errors, errors
    assert set(statuses) <= {202, 410}, sorted(set(statuses))
    assert 410 in statuses  # the writes after the erasure were refused, not turned into a new profile
    assert not Identifier.objects.filter(value=UUID).exists()
    assert not Profile.objects.filter(uuid=UUID).exists()
    assert not Profile.objects.filter(pk=profile.pk).exists()
