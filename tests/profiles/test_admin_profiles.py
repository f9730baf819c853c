import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from profiles import signals
from profiles.admin.forms import attribute_field_name
from profiles.admin.profile import EstimatedCountPaginator
from profiles.models import Identifier, Profile
from profiles.services import ProfileInput, profile_upsert
from tests.admin_forms import form_post_data

LIST_URL = reverse("admin:profiles_profile_changelist")
ADD_URL = reverse("admin:profiles_profile_add")
# session, user, table estimate, page count, page rows, recognized counts, page tags, tag, segment and agreement
# filter choices
MAX_LIST_QUERIES = 11  # a search reads its exact identifier matches first (one indexed query)


def change_url(profile):
    return reverse("admin:profiles_profile_change", args=[profile.pk])


def listed(response) -> set[int]:
    assert response.status_code == 200
    return {profile.pk for profile in response.context["cl"].result_list}


@pytest.fixture
def people(make_profile):
    """A few profiles to tell apart, plus filler so a search that matches everything would show."""
    anna = make_profile(email="anna.nowak@example.com", first_name="Anna", last_name="Nowak", city="Kraków")
    second_uuid = str(uuid.uuid4())
    # A second uuid for Anna: it lives only in the Identifier table, not in Profile.uuid.
    profile_upsert(
        data=ProfileInput(identifiers={"email": "anna.nowak@example.com", "uuid": second_uuid}), source="tests"
    )
    jan = make_profile(phone="+48 600 100 200", customId="CRM-7", first_name="Jan", last_name="Kowalski")
    anonymous = make_profile(uuid=str(uuid.uuid4()))
    for index in range(20):
        make_profile(email=f"filler{index}@example.com", first_name="Filler", last_name=f"Person{index}")
    return {"anna": anna, "anna_second_uuid": second_uuid, "jan": jan, "anonymous": anonymous}


@pytest.mark.parametrize(
    ("term", "who"),
    [
        ("ANNA.NOWAK@example.com", "anna"),  # e-mail, normalised like every lookup
        ("second-uuid", "anna"),  # a uuid that is not the profile's main one
        ("600-100-200", "jan"),  # phone in another spelling (default region PL)
        ("+48600100200", "jan"),
        ("CRM-7", "jan"),  # customId
        ("anna", "anna"),  # first name, any case
        ("kowalski", "jan"),  # last name
        ("Anna Nowak", "anna"),  # first and last
        ("Nowak Anna", "anna"),
        ("anonymous-uuid", "anonymous"),
        ("client-id", "jan"),
    ],
)
def test_list_search_finds_by_identifier_and_name(admin_client, people, django_assert_max_num_queries, term, who):
    term = {
        "second-uuid": people["anna_second_uuid"],
        "anonymous-uuid": people["anonymous"].uuid,
        "client-id": str(people["jan"].pk),
    }.get(term, term)

    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = admin_client.get(LIST_URL, {"q": term})

    assert listed(response) == {people[who].pk}


def test_list_search_matches_parts_of_emails_and_names(admin_client, people, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = admin_client.get(LIST_URL, {"q": "anna.nowak"})
    assert listed(response) == {people["anna"].pk}  # a prefix of the e-mail
    assert listed(admin_client.get(LIST_URL, {"q": "NOWAK@exam"})) == {people["anna"].pk}  # a middle part, any case
    assert listed(admin_client.get(LIST_URL, {"q": "owalsk"})) == {people["jan"].pk}  # part of a last name
    assert listed(admin_client.get(LIST_URL, {"q": "ann now"})) == {people["anna"].pk}  # parts of both names
    assert len(listed(admin_client.get(LIST_URL, {"q": "filler1"}))) == 11  # filler1, filler10–19
    assert listed(admin_client.get(LIST_URL, {"q": "nobody@example.com"})) == set()
    assert listed(admin_client.get(LIST_URL, {"q": "an"})) == set()  # short words match whole names only


def test_list_search_puts_exact_identifier_matches_first(admin_client, make_profile):
    exact = make_profile(email="anna@example.com", first_name="Anna")
    newer = make_profile(email="joanna@example.com", first_name="Joanna")  # the list's order (-id) puts it first
    prefix = make_profile(email="anna@example.community", first_name="Zoe")
    rows = admin_client.get(LIST_URL, {"q": "anna@example.com"}).context["cl"].result_list
    assert [p.pk for p in rows] == [exact.pk, prefix.pk, newer.pk]  # exact, then starts with, then the rest


def test_recognized_filter_filters_and_counts(admin_client, people, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        recognized = admin_client.get(LIST_URL, {"recognized": "yes"})
    anonymous = admin_client.get(LIST_URL, {"recognized": "no"})

    assert people["anonymous"].pk not in listed(recognized)
    assert people["anna"].pk in listed(recognized)
    assert listed(anonymous) == {people["anonymous"].pk, people["jan"].pk}
    # Jan has a customId but no e-mail: only the e-mail is a main identifier by default.
    assert "recognized (21)" in recognized.text
    assert "anonymous (2)" in recognized.text


def test_filter_counts_follow_the_search(admin_client, people):
    response = admin_client.get(LIST_URL, {"q": people["anonymous"].uuid})

    assert "recognized (0)" in response.text
    assert "anonymous (1)" in response.text


def test_list_query_count_does_not_grow_with_rows(admin_client, people, make_profile, django_assert_max_num_queries):
    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = admin_client.get(LIST_URL)
    assert len(listed(response)) == 23
    for index in range(27):
        make_profile(email=f"more{index}@example.com", first_name="More")

    with django_assert_max_num_queries(MAX_LIST_QUERIES):
        response = admin_client.get(LIST_URL)

    assert len(listed(response)) == 50  # a full page (list_per_page)
    assert "anna.nowak@example.com" in response.text


def test_a_large_table_is_counted_from_statistics_and_filter_counts_wait_to_be_asked(admin_client, people, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "large_table", 20)  # "large" from 20 rows on (23 here)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_profile")

    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(LIST_URL)
    unfiltered_sql = [query["sql"] for query in captured]  # read now: the next request resets the log
    with CaptureQueriesContext(connection) as captured:
        searched = admin_client.get(LIST_URL, {"q": "anna"})
    searched_sql = [query["sql"] for query in captured]
    asked = admin_client.get(LIST_URL, {"_facets": "True"})

    assert response.context["cl"].result_count == 23  # ANALYZE saw every row of this small table
    # session, user, the estimate, the page's rows and tags, tag, segment and agreement choices
    assert len(unfiltered_sql) == 8
    assert not any("COUNT(" in sql for sql in unfiltered_sql)
    assert "recognized (" not in response.text
    assert "Show counts" in response.text
    assert any("COUNT(*)" in sql for sql in searched_sql)
    assert "recognized (1)" in searched.text
    assert "recognized (21)" in asked.text


def test_a_large_filtered_list_is_counted_from_the_planners_estimate(admin_client, people, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "large_table", 1)  # every table is "large"
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 1)  # and every filtered result
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_profile")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(LIST_URL, {"recognized": "yes"})
    sql = [query["sql"] for query in captured]
    assert any(q.startswith("EXPLAIN (FORMAT JSON)") for q in sql)
    assert not any("COUNT(*)" in q and "profiles_profile" in q and "GROUP BY" not in q for q in sql)
    assert response.context["cl"].result_count >= 1

    # A result the planner puts under the limit is counted exactly.
    monkeypatch.setattr(EstimatedCountPaginator, "exact_count_limit", 1_000_000)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(LIST_URL, {"recognized": "yes"})
    assert any("COUNT(*)" in q["sql"] and "GROUP BY" not in q["sql"] for q in captured)
    assert response.context["cl"].result_count == 21


# --- change form ------------------------------------------------------------------------------


@pytest.fixture
def customer(make_profile, definitions):
    return make_profile(
        email="ewa@example.com",
        first_name="Ewa",
        city="Gdańsk",
        attributes={
            "loyaltyPoints": 10,
            "favouriteCategory": "garden",
            "lastOrderDate": "2024-12-30",
            "lastSeenAt": "2025-01-02T03:04:05.678Z",
            "badges": ["gold"],
            "vip": False,
        },
    )


@pytest.fixture
def changes():
    """The profile_changed signals sent during a test: a write through the service sends one."""
    sent = []

    def receiver(sender, changes, source, actor, **kwargs):
        sent.append({"changes": changes, "source": source, "actor": actor})

    signals.profile_changed.connect(receiver)
    yield sent
    signals.profile_changed.disconnect(receiver)


def post_change(admin_client, profile, definitions, attributes=None, **fields):
    form = admin_client.get(change_url(profile)).context["adminform"].form
    overrides = {attribute_field_name(definitions[name]): value for name, value in (attributes or {}).items()}
    return admin_client.post(change_url(profile), form_post_data(form, **fields, **overrides, _save="Save"))


def test_change_form_prefills_attributes_and_lists_identifiers(admin_client, customer, definitions):
    response = admin_client.get(change_url(customer))

    form = response.context["adminform"].form
    assert form[attribute_field_name(definitions["loyaltyPoints"])].value() == 10
    assert form[attribute_field_name(definitions["favouriteCategory"])].value() == "garden"
    assert form[attribute_field_name(definitions["vip"])].value() is False
    assert "ewa@example.com" in response.text
    assert customer.uuid in response.text  # the identifiers table
    assert "email" not in form.fields  # identifiers are read-only here


def test_change_form_saves_native_fields_and_attributes_through_the_service(
    admin_client, customer, definitions, changes
):
    response = post_change(
        admin_client,
        customer,
        definitions,
        first_name="Zofia",
        city="",
        birth_date="1990-05-06",
        country_code="pl",
        attributes={"loyaltyPoints": "120", "favouriteCategory": "", "badges": '["gold", 2]', "vip": "true"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert customer.first_name == "Zofia"
    assert customer.city is None
    assert customer.birth_date.isoformat() == "1990-05-06"
    assert customer.country_code == "PL"
    assert customer.attributes == {
        "loyaltyPoints": 120,
        "lastOrderDate": "2024-12-30",
        "lastSeenAt": "2025-01-02T03:04:05.678000Z",
        "badges": ["gold", 2],
        "vip": True,
    }
    assert len(changes) == 1
    assert changes[0]["source"] == "admin"
    assert changes[0]["actor"] == "user:admin"
    [(profile_id, changed)] = changes[0]["changes"]
    assert profile_id == customer.pk
    # Only what was edited is sent: untouched inputs (the date-time among them) are not rewritten.
    assert set(changed) == {
        "firstName",
        "city",
        "birthDate",
        "countryCode",
        "attributes.loyaltyPoints",
        "attributes.favouriteCategory",
        "attributes.badges",
        "attributes.vip",
    }
    assert changed["attributes.favouriteCategory"] == ("garden", None)


def test_change_form_sets_date_and_datetime_attributes(admin_client, customer, definitions):
    response = post_change(
        admin_client,
        customer,
        definitions,
        attributes={"lastOrderDate": "2025-02-03"},
        **{
            f"{attribute_field_name(definitions['lastSeenAt'])}_0": "2025-03-04",
            f"{attribute_field_name(definitions['lastSeenAt'])}_1": "05:06:07",
        },
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.attributes["lastOrderDate"] == "2025-02-03"
    assert customer.attributes["lastSeenAt"] == "2025-03-04T05:06:07Z"


def test_unchanged_form_writes_nothing(admin_client, customer, definitions, changes):
    before = Profile.objects.get(pk=customer.pk)

    response = post_change(admin_client, customer, definitions)

    assert response.status_code == 302
    assert changes == []
    assert Profile.objects.get(pk=customer.pk).updated_at == before.updated_at


def test_values_written_elsewhere_after_the_page_was_shown_are_kept(admin_client, customer, definitions):
    form = admin_client.get(change_url(customer)).context["adminform"].form
    data = form_post_data(form, first_name="Zofia", _save="Save")
    # Meanwhile the API changes the city and an attribute, and defines a new attribute on first use.
    profile_upsert(
        data=ProfileInput(
            identifiers={"email": "ewa@example.com"},
            fields={"city": "Sopot"},
            attributes={"loyaltyPoints": 99, "newsletterTopic": "garden"},
        ),
        source="tests",
    )

    response = admin_client.post(change_url(customer), data)

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.first_name == "Zofia"
    assert customer.city == "Sopot"
    assert customer.attributes["loyaltyPoints"] == 99
    assert customer.attributes["newsletterTopic"] == "garden"


def test_letters_in_a_number_attribute_are_a_form_error_and_change_nothing(
    admin_client, customer, definitions, changes
):
    response = post_change(
        admin_client, customer, definitions, first_name="Zofia", attributes={"loyaltyPoints": "12abc"}
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors[attribute_field_name(definitions["loyaltyPoints"])] == ["Enter a number."]
    customer.refresh_from_db()
    assert customer.first_name == "Ewa"
    assert customer.attributes["loyaltyPoints"] == 10
    assert changes == []


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        ({"birth_date": "2999-01-01"}, "birth_date", "birthDate must be between 1900-01-01 and today."),
        ({"country_code": "XX"}, "country_code", "countryCode must be an ISO 3166-1 alpha-2 code; got 'XX'."),
        ({"attributes": {"badges": "[[1]]"}}, "badges", "Attribute 'badges' is of type list"),
        ({"attributes": {"badges": '["gold", ""]'}}, "badges", "Attribute 'badges' is of type list"),
    ],
)
def test_service_errors_become_errors_on_the_field(admin_client, customer, definitions, changes, edit, field, message):
    field_name = attribute_field_name(definitions[field]) if field in definitions else field

    response = post_change(admin_client, customer, definitions, first_name="Zofia", **edit)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field_name]
    assert errors[field_name][0].startswith(message)
    customer.refresh_from_db()
    assert customer.first_name == "Ewa"
    assert customer.attributes["badges"] == ["gold"]
    assert changes == []


def attributes_panel(html: str) -> str:
    start = html.index('id="card-attributes"')
    return html[start : html.index("</section>", start)]


def test_the_card_shows_set_attributes_and_keeps_the_unset_ones_behind_add(admin_client, definitions, make_profile):
    profile = make_profile(email="ola@example.com", attributes={"loyaltyPoints": 7, "favouriteCategory": "shoes"})

    response = admin_client.get(change_url(profile))

    rows = response.context["adminform"].form.attribute_rows()
    assert [row["name"] for row in rows["set"]] == ["favouriteCategory", "loyaltyPoints"]
    assert [row["name"] for row in rows["unset"]] == ["badges", "lastOrderDate", "lastSeenAt", "vip"]
    panel = attributes_panel(response.text)
    shown, rest = panel.split("data-attribute-empty", 1)
    assert shown.count('data-attribute="') == 2 and 'value="shoes"' in shown and 'value="7"' in shown
    assert "Add an attribute" in rest
    for row in rows["unset"]:  # offered by name, its input waiting (hidden) inside the form
        assert f'data-attribute-choice="{row["field_name"]}"' in rest
        assert f'name="{row["field_name"]}' in rest.split("data-attribute-unset hidden", 1)[1]  # datetime: _0, _1
    assert "null" not in panel  # an unset list is an empty box, its hidden initial value empty too


def test_the_add_form_shows_no_null_for_a_list_attribute(admin_client, definitions):
    html = admin_client.get(ADD_URL).text
    badges = attribute_field_name(definitions["badges"])
    assert f'name="{badges}"' in html
    assert "null</textarea>" not in html and 'value="null"' not in html


def test_saving_an_added_attribute_leaves_the_other_unset_ones_alone(admin_client, definitions, make_profile):
    """The card posts the set inputs, the one added, and the untouched unset ones empty: only the added one is new."""
    profile = make_profile(email="ola@example.com", attributes={"loyaltyPoints": 7})
    form = admin_client.get(change_url(profile)).context["adminform"].form
    badges = attribute_field_name(definitions["badges"])

    response = admin_client.post(change_url(profile), form_post_data(form, **{badges: '["gold"]'}, _save="Save"))

    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.attributes == {"loyaltyPoints": 7, "badges": ["gold"]}


def test_an_added_attribute_with_a_bad_value_is_shown_again_with_its_error(admin_client, definitions, make_profile):
    profile = make_profile(email="ola@example.com", attributes={"loyaltyPoints": 7})
    form = admin_client.get(change_url(profile)).context["adminform"].form
    badges = attribute_field_name(definitions["badges"])

    response = admin_client.post(change_url(profile), form_post_data(form, **{badges: '{"a": 1}'}, _save="Save"))

    assert response.status_code == 200
    rows = response.context["adminform"].form.attribute_rows()
    assert [row["name"] for row in rows["set"]] == ["badges", "loyaltyPoints"]
    shown = attributes_panel(response.text).split("data-attribute-empty", 1)[0]
    assert "Enter a JSON array" in shown and "{&quot;a&quot;: 1}" in shown


# --- add and delete ---------------------------------------------------------------------------


def test_adding_a_profile_goes_through_upsert(admin_client, definitions):
    created = []
    receiver = lambda sender, profiles, **kwargs: created.extend(profiles)  # noqa: E731
    signals.profile_created.connect(receiver)
    try:
        form = admin_client.get(ADD_URL).context["adminform"].form
        data = form_post_data(
            form,
            email=" New.Person@Example.com ",
            phone="600 200 300",
            last_name="Person",
            **{attribute_field_name(definitions["loyaltyPoints"]): "7"},
            _save="Save",
        )
        response = admin_client.post(ADD_URL, data)
    finally:
        signals.profile_created.disconnect(receiver)

    assert response.status_code == 302, response.context["adminform"].form.errors
    profile = Profile.objects.get(email="new.person@example.com")
    assert [p.pk for p in created] == [profile.pk]
    assert profile.phone == "+48600200300"
    assert profile.first_name == "New"  # the service's placeholder from the e-mail
    assert profile.last_name == "Person"
    assert profile.attributes == {"loyaltyPoints": 7}
    kinds = set(Identifier.objects.filter(profile=profile).values_list("kind", flat=True))
    assert kinds == {"email", "phone", "uuid"}


def test_adding_a_profile_without_identifiers_is_a_form_error(admin_client, definitions):
    form = admin_client.get(ADD_URL).context["adminform"].form

    response = admin_client.post(ADD_URL, form_post_data(form, first_name="Nobody", _save="Save"))

    assert response.status_code == 200
    assert "A profile needs at least one identifier" in str(response.context["adminform"].form.non_field_errors())
    assert not Profile.objects.exists()


def test_adding_a_profile_with_a_bad_email_names_the_field(admin_client, definitions):
    form = admin_client.get(ADD_URL).context["adminform"].form

    response = admin_client.post(ADD_URL, form_post_data(form, email="not-an-email", _save="Save"))

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["email"]
    assert not Profile.objects.exists()


def test_adding_a_profile_with_someone_elses_email_changes_nobody(admin_client, customer, definitions):
    form = admin_client.get(ADD_URL).context["adminform"].form

    response = admin_client.post(
        ADD_URL, form_post_data(form, email="EWA@example.com", first_name="Impostor", _save="Save")
    )

    assert response.status_code == 200
    errors = str(response.context["adminform"].form.non_field_errors())
    assert f"already belong to profile {customer.pk}" in errors
    assert Profile.objects.count() == 1
    customer.refresh_from_db()
    assert customer.first_name == "Ewa"


def test_deleting_a_profile_goes_through_the_service(admin_client, customer):
    deleted = []
    receiver = lambda sender, snapshots, source, **kwargs: deleted.append((snapshots, source))  # noqa: E731
    signals.profile_deleted.connect(receiver)
    try:
        response = admin_client.post(reverse("admin:profiles_profile_delete", args=[customer.pk]), {"post": "yes"})
    finally:
        signals.profile_deleted.disconnect(receiver)

    assert response.status_code == 302
    assert not Profile.objects.filter(pk=customer.pk).exists()
    assert not Identifier.objects.filter(profile_id=customer.pk).exists()
    [(snapshots, source)] = deleted
    assert source == "admin"
    assert snapshots == [{"clientId": customer.pk, "mergedClientIds": [], "erasureId": snapshots[0]["erasureId"]}]
    assert "ewa" not in str(snapshots)  # the signal (and the webhooks it feeds) carries no personal data


def test_bulk_delete_goes_through_the_service(admin_client, people):
    deleted = []
    receiver = lambda sender, snapshots, **kwargs: deleted.extend(s["clientId"] for s in snapshots)  # noqa: E731
    signals.profile_deleted.connect(receiver)
    chosen = [people["anna"].pk, people["jan"].pk]
    try:
        response = admin_client.post(LIST_URL, {"action": "delete_selected", "_selected_action": chosen, "post": "yes"})
    finally:
        signals.profile_deleted.disconnect(receiver)

    assert response.status_code == 302
    assert sorted(deleted) == sorted(chosen)
    assert not Profile.objects.filter(pk__in=chosen).exists()
    assert Profile.objects.filter(pk=people["anonymous"].pk).exists()
