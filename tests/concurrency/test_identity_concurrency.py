"""F5 under concurrency: 16 threads of overlapping single and batch writes against the real database.

Every write names one person by a subset of their identifiers and adds attributes no other write
sets, so the correct end state does not depend on the order the writes commit in: one profile per
person holding every identifier sent for them, with the union of the attributes. The concurrent
run is compared with the same writes run one after another (the sequential oracle).
"""

import random
import threading

import pytest
from django.db import connection
from django.test import Client

from crm.services import api_key_create
from profiles.models import ClientIdAlias, Identifier, MergeRecord, Profile
from profiles.services import ProfileInput
from profiles.services.batch import profiles_upsert_many

PEOPLE = 12
THREADS = 16
WRITES_PER_THREAD = 12


def person_identifiers(k: int) -> dict[str, list[str]]:
    return {
        "email": [f"person{k}@example.com"],
        "phone": [f"+48 501 000 {k:03d}"],
        "customId": [f"P-{k}"],
        "uuid": [f"00000000-0000-4000-8000-{k:06d}{j:06d}" for j in range(3)],
    }


def make_writes(seed: int) -> list[tuple[str, list[dict]]]:
    """A fixed list of writes: ("single", [body]) or ("batch", [body, …]), bodies in the API's shape."""
    rng = random.Random(seed)
    writes = []
    counter = 0

    def body(k: int) -> dict:
        nonlocal counter
        counter += 1
        ids = person_identifiers(k)
        choice = rng.random()
        if choice < 0.35:  # weak identifiers only: an anonymous profile, merged later
            sent = {"uuid": rng.choice(ids["uuid"])} if rng.random() < 0.5 else {"phone": ids["phone"][0]}
            if rng.random() < 0.3:
                sent["phone"] = ids["phone"][0]
        else:  # the e-mail, with some of the others (customId only next to the e-mail: no two recognized)
            sent = {"email": ids["email"][0]}
            for kind in ("phone", "customId"):
                if rng.random() < 0.5:
                    sent[kind] = ids[kind][0]
            for uuid in ids["uuid"]:
                if rng.random() < 0.3:
                    sent["uuid"] = uuid
        sent["attributes"] = {f"w{counter}": counter}
        return sent

    for _ in range(THREADS * WRITES_PER_THREAD):
        if rng.random() < 0.25:
            writes.append(("batch", [body(rng.randrange(PEOPLE)) for _ in range(rng.randint(2, 8))]))
        else:
            writes.append(("single", [body(rng.randrange(PEOPLE))]))
    # Make sure every identifier is sent next to the e-mail at least once, so each person ends as one profile.
    for k in range(PEOPLE):
        ids = person_identifiers(k)
        for uuid in ids["uuid"]:
            counter += 1
            writes.append(
                (
                    "single",
                    [
                        {
                            "email": ids["email"][0],
                            "phone": ids["phone"][0],
                            "uuid": uuid,
                            "attributes": {f"w{counter}": 0},
                        }
                    ],
                )
            )
    return writes


def to_input(body: dict) -> ProfileInput:
    body = dict(body)
    return ProfileInput(attributes=body.pop("attributes", {}), identifiers=body)


def apply(write, client: Client, secret: str, outcomes: list):
    kind, bodies = write
    if kind == "single":
        response = client.post(
            "/v4/clients", bodies[0], content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
        )
        outcomes.append(response.status_code)
    else:
        results = profiles_upsert_many(items=[to_input(b) for b in bodies], source="tests", actor="tests")
        outcomes.extend(200 if r.status != "failed" else f"failed:{r.error}" for r in results)


def final_state() -> dict[frozenset, frozenset]:
    """Each profile as (its identifiers of the test universe) → (its attribute names)."""
    state = {}
    for profile in Profile.objects.all():
        identifiers = frozenset(
            (kind, value)
            for kind, value in Identifier.objects.filter(profile=profile).values_list("kind", "value")
            if kind != "uuid" or value.startswith("00000000-0000-4000-8000-")
        )
        state[identifiers] = frozenset(profile.attributes)
    return state


def wipe():
    MergeRecord.objects.all().delete()
    ClientIdAlias.objects.all().delete()
    Profile.objects.all().delete()


@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_writes_match_the_sequential_oracle():
    _, secret = api_key_create(name="concurrency", scopes=["read", "write"])
    writes = make_writes(seed=7)
    rng = random.Random(11)
    shuffled = writes[:]
    rng.shuffle(shuffled)
    chunks = [shuffled[i::THREADS] for i in range(THREADS)]
    outcomes: list = []
    errors: list = []
    barrier = threading.Barrier(THREADS)

    def worker(chunk):
        client = Client()
        try:
            barrier.wait()
            for write in chunk:
                apply(write, client, secret, outcomes)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert all(code in (200, 202) for code in outcomes), sorted({str(c) for c in outcomes})
    concurrent = final_state()

    # No identifier on two profiles (the constraint), and each person is exactly one profile.
    assert Identifier.objects.values("kind", "value").distinct().count() == Identifier.objects.count()
    assert Profile.objects.count() == PEOPLE

    wipe()
    sequential_outcomes: list = []
    client = Client()
    for write in writes:
        apply(write, client, secret, sequential_outcomes)
    assert all(code in (200, 202) for code in sequential_outcomes)
    assert final_state() == concurrent
