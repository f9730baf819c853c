"""Identity resolution under concurrency: 16 threads of overlapping single and batch writes against the real database.

Forty people, each with an e-mail, a phone, a customId and two uuids, are sent as random fragments
(subsets of their identifiers) in random order: a profile made from a customId alone and another
from an e-mail alone must merge when a later write names both, since nothing contradicts. Every
write adds an attribute no other write sets, so the correct end state does not depend on the order
the writes commit in: one profile per person holding every identifier sent for them, with the union
of the attributes. The concurrent
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

PEOPLE = 40
THREADS = 16
FRAGMENTS_PER_PERSON = 6


def person_identifiers(k: int) -> dict[str, str]:
    return {
        "email": f"c-{k}@example.com",
        "phone": f"+48 501 000 {k:03d}",
        "customId": f"cid-{k}",
        "uuid1": f"00000000-0000-4000-8000-{k:06d}000001",
        "uuid2": f"00000000-0000-4000-8000-{k:06d}000002",
    }


def _fragments(rng: random.Random, k: int) -> list[dict[str, str]]:
    """Random subsets of one person's identifiers, made to connect them all (so they are one person)."""
    ids = person_identifiers(k)
    names = list(ids)
    fragments = []
    for _ in range(FRAGMENTS_PER_PERSON):
        fragment = set(rng.sample(names, rng.randint(1, 3)))
        if {"uuid1", "uuid2"} <= fragment:  # a body holds one uuid
            fragment.discard(rng.choice(["uuid1", "uuid2"]))
        fragments.append(fragment)
    # Link the components the random subsets left apart with one more two-identifier fragment each.
    while True:
        components: list[set[str]] = []
        for fragment in fragments:
            touching = [c for c in components if c & fragment]
            merged = set(fragment).union(*touching)
            components = [c for c in components if not c & fragment] + [merged]
        left = [name for name in names if not any(name in c for c in components)]
        components += [{name} for name in left]
        if len(components) == 1:
            break
        a, b = rng.choice(sorted(components[0])), rng.choice(sorted(components[1]))
        if {a, b} == {"uuid1", "uuid2"}:
            fragments += [{a, "email"}, {b, "email"}]
        else:
            fragments.append({a, b})
    rng.shuffle(fragments)
    return [{("uuid" if n.startswith("uuid") else n): ids[n] for n in sorted(f)} for f in fragments]


def make_writes(seed: int) -> list[tuple[str, list[dict]]]:
    """A fixed list of writes: ("single", [body]) or ("batch", [body, …]), bodies in the API's shape.

    Every fragment carries an attribute no other write sets, so the correct end state does not
    depend on the order the writes commit in. A fragment never holds both uuids (one key per body).
    """
    rng = random.Random(seed)
    bodies = []
    for k in range(PEOPLE):
        for fragment in _fragments(rng, k):
            bodies.append(fragment)
    rng.shuffle(bodies)
    for counter, body in enumerate(bodies):
        body["attributes"] = {f"w{counter}": counter}
    writes: list[tuple[str, list[dict]]] = []
    i = 0
    while i < len(bodies):
        if rng.random() < 0.25:
            size = rng.randint(2, 8)
            writes.append(("batch", bodies[i : i + size]))
            i += size
        else:
            writes.append(("single", [bodies[i]]))
            i += 1
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
    for k in range(PEOPLE):
        mine = set(person_identifiers(k).values())
        owners = set(Identifier.objects.filter(value__in=mine).values_list("profile_id", flat=True))
        assert len(owners) == 1, f"person {k} is split over {sorted(owners)}"

    wipe()
    sequential_outcomes: list = []
    client = Client()
    for write in writes:
        apply(write, client, secret, sequential_outcomes)
    assert all(code in (200, 202) for code in sequential_outcomes)
    assert final_state() == concurrent
