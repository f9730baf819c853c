"""The profile card: panels, side actions through the services, permissions, and a fixed number of queries."""

import importlib

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core import mail
from django.db import connection
from django.urls import reverse

from consents.models import Agreement, ConsentRecord, ConsentStatus
from consents.services import consent_set
from profiles.admin.card import activity_chart, timeline_entry, user_agent_parse
from profiles.models import Event, MergeRecord, Profile, Tag
from profiles.selectors import profile_weekly_activity
from profiles.services import ProfileInput, profile_upsert
from profiles.services.tags import tag_create, tags_add

roles = importlib.import_module("crm.migrations.0003_roles")
export_roles = importlib.import_module("exports.migrations.0002_roles")

CARD_MAX_QUERIES = 28  # the segments the profile is in, and the expressions to show


def card_url(profile, **params):
    url = reverse("admin:profiles_profile_change", args=[profile.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def action_url(profile, name):
    return reverse(f"admin:profiles_profile_card_{name}", args=[profile.pk])


@pytest.fixture
def ewa(make_profile):
    return make_profile(email="ewa@example.com", first_name="Ewa", last_name="Lis", city="Warszawa")


@pytest.fixture
def role_groups(db):
    from django.apps import apps

    roles.create_roles(apps, None)
    export_roles.grant(apps, None)
    return {g.name: g for g in Group.objects.filter(name__in=["Marketers", "Admin staff"])}


@pytest.fixture
def marketer(role_groups):
    user = User.objects.create_user("mia@example.com", password="pw", is_staff=True)
    user.groups.add(role_groups["Marketers"])
    return user


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


def insert_events(profile, count, *, action="page.visit", system=False):
    """``count`` events over the last 200 days in one INSERT … SELECT (generate_series)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_event (profile_id, action, label, time, params, source, actor, is_system, created_at)
            SELECT %s, %s, 'page ' || i, now() - (i * interval '1 day' * 200 / %s),
                   jsonb_build_object('url', '/p/' || i, 'userAgent',
                       CASE WHEN i %% 3 = 0
                            THEN 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 '
                                 '(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'
                            ELSE 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
                                 'Chrome/124.0.0.0 Safari/537.36' END),
                   'tests', '', %s, now()
            FROM generate_series(1, %s) AS i
            """,
            [profile.pk, action, count, system, count],
        )


# --- rendering -------------------------------------------------------------------------------------------


def test_card_shows_three_columns_with_every_panel(admin_client, ewa):
    insert_events(ewa, 30)
    tags_add(profiles=[ewa], tags=[tag_create(name="VIP")], source="tests", actor="anna@example.com")
    response = admin_client.get(card_url(ewa))
    assert response.status_code == 200
    html = response.text
    for column in ("left", "middle", "right"):
        assert f'data-column="{column}"' in html
    for panel in (
        "card-identifiers",
        "card-devices",
        "card-consents",
        "card-attributes",
        "card-tags",
        "card-timeline",
        "card-activity",
        "card-commerce",
        "card-segments",
        "card-merges",
    ):
        assert f'id="{panel}"' in html, panel
    assert "Tag VIP added" in html and "by anna@example.com" in html
    assert "Chrome 124" in html and "Safari 17" in html  # devices from the events' user agents
    assert "<svg" in html and html.count('class="card-chart-bar"') == 26
    # Side-action forms sit after the admin's form, not inside it (forms cannot nest).
    main_form_end = html.index("</form></div>")
    assert html.index('id="card-note"') > main_form_end


def test_the_card_form_still_saves(admin_client, ewa):
    from tests.admin_forms import form_post_data

    form = admin_client.get(card_url(ewa)).context["adminform"].form
    response = admin_client.post(card_url(ewa), form_post_data(form, city="Kraków", _save="Save"))
    assert response.status_code == 302
    ewa.refresh_from_db()
    assert ewa.city == "Kraków"
    change = Event.objects.get(profile=ewa, action="profile.updated")
    assert timeline_entry(change).lines == ["city: Warszawa → Kraków"]


def test_card_query_count_is_fixed_with_10000_events(admin_client, ewa, django_assert_max_num_queries):
    insert_events(ewa, 10_000)
    insert_events(ewa, 50, action="product.buy")
    for name in ("VIP", "newsletter"):
        tags_add(profiles=[ewa], tags=[tag_create(name=name)], source="tests")
    with django_assert_max_num_queries(CARD_MAX_QUERIES):
        response = admin_client.get(card_url(ewa))
    assert response.status_code == 200
    timeline = response.context["card"]["timeline"]
    assert len(timeline.entries) == 25 and timeline.next_cursor
    # The next page, filtered by action: the same bound.
    with django_assert_max_num_queries(CARD_MAX_QUERIES):
        response = admin_client.get(card_url(ewa, tl_action="product.buy", tl_cursor=timeline.next_cursor))
    assert response.status_code == 200


def test_timeline_filters_by_action_and_kind_and_pages_newest_first(admin_client, ewa):
    insert_events(ewa, 40)
    first = admin_client.get(card_url(ewa, tl_kind="custom")).context["card"]["timeline"]
    times = [e.event.time for e in first.entries]
    assert times == sorted(times, reverse=True) and len(times) == 25
    assert all(not e.event.is_system for e in first.entries)
    second = admin_client.get(card_url(ewa, tl_kind="custom", tl_cursor=first.next_cursor)).context["card"]["timeline"]
    assert len(second.entries) == 15 and second.entries[0].event.time <= times[-1]
    system = admin_client.get(card_url(ewa, tl_kind="system")).context["card"]["timeline"]
    assert {e.event.action for e in system.entries} == {"profile.created"}
    only = admin_client.get(card_url(ewa, tl_action="profile.created")).context["card"]["timeline"]
    assert [e.event.action for e in only.entries] == ["profile.created"]
    bad = admin_client.get(card_url(ewa, tl_cursor="nonsense"))
    assert bad.status_code == 200 and bad.context["card"]["timeline"].error


# --- side actions ----------------------------------------------------------------------------------------


def test_tag_add_and_remove_through_the_service(admin_client, ewa):
    response = admin_client.post(action_url(ewa, "tag_add"), {"name": "VIP"})
    assert response.status_code == 302 and response["Location"].startswith(card_url(ewa))
    assert list(ewa.tags.values_list("name", flat=True)) == ["VIP"]
    admin_client.post(action_url(ewa, "tag_remove"), {"name": "vip"})
    assert not ewa.tags.exists()
    actions = list(Event.objects.filter(profile=ewa, action__startswith="tag.").values_list("action", "actor"))
    assert sorted(actions) == [("tag.added", "user:admin"), ("tag.removed", "user:admin")]


def test_note_event_and_consent_from_the_card(admin_client, ewa):
    admin_client.post(action_url(ewa, "note"), {"text": "Called about the order.\nWill call back."})
    admin_client.post(action_url(ewa, "event"), {"action": "call.completed", "label": "Support", "params": '{"m": 4}'})
    email = Agreement.objects.get(key="email")
    admin_client.post(action_url(ewa, "consent"), {"agreement": email.pk, "state": "granted"}, REMOTE_ADDR="192.0.2.1")
    record = ConsentRecord.objects.filter(client_id=ewa.pk, agreement=email).latest("seq")
    assert (record.new_status, record.source, record.actor, record.ip_address) == (
        "granted",
        "admin",
        "user:admin",
        "192.0.2.1",
    )
    entries = admin_client.get(card_url(ewa)).context["card"]["timeline"].entries
    titles = [e.title for e in entries]
    assert "Note" in titles and "call.completed · Support" in titles and "Consent email: granted" in titles
    note = next(e for e in entries if e.title == "Note")
    assert note.body.startswith("Called about the order.") and note.by == "admin"


def test_bad_input_is_reported_not_raised(admin_client, ewa):
    response = admin_client.post(action_url(ewa, "event"), {"action": "profile.created"}, follow=True)
    assert response.status_code == 200
    assert any("Event" in str(m) for m in response.context["messages"])
    response = admin_client.post(action_url(ewa, "event"), {"action": "x.y", "params": "[1]"}, follow=True)
    assert any("JSON object" in str(m) for m in response.context["messages"])
    assert not Event.objects.filter(profile=ewa, is_system=False).exists()
    assert admin_client.get(action_url(ewa, "note")).status_code == 405


def test_email_is_blocked_without_the_email_consent_and_recorded_when_sent(admin_client, ewa):
    response = admin_client.get(card_url(ewa))
    assert "has not granted the e-mail agreement" in response.text
    response = admin_client.post(action_url(ewa, "mail"), {"subject": "Hello", "text": "Hi Ewa"}, follow=True)
    assert any("not granted the e-mail agreement" in str(m) for m in response.context["messages"])
    assert not mail.outbox and not Event.objects.filter(profile=ewa, action="email.send").exists()

    consent_set(profile=ewa, agreement=Agreement.objects.get(key="email"), state="granted", source="tests")
    admin_client.post(action_url(ewa, "mail"), {"subject": "Hello", "text": "Hi Ewa"})
    assert [m.subject for m in mail.outbox] == ["Hello"] and mail.outbox[0].to == ["ewa@example.com"]
    sent = Event.objects.get(profile=ewa, action="email.send")
    assert (sent.actor, sent.params["subject"]) == ("user:admin", "Hello")
    assert timeline_entry(sent).title == "E-mail sent: Hello"


def merged_pair(make_profile, email, uuid):
    """A recognized profile that an anonymous one was merged into; returns the survivor."""
    make_profile(email=email)
    anon = make_profile(uuid=uuid)
    return profile_upsert(data=ProfileInput(identifiers={"email": email, "uuid": anon.uuid}), source="tests").profile


def test_undo_merge_from_the_card(admin_client, make_profile):
    survivor = merged_pair(make_profile, "kim@example.com", "00000000-0000-4000-8000-000000000001")
    record = MergeRecord.objects.get(survivor_client_id=survivor.pk)
    html = admin_client.get(card_url(survivor)).text
    assert f'value="{record.merged_client_id}"' in html and "Undo merge" in html
    # The merge history says why, in a sentence: which identifier named which profile, and the write.
    assert (
        f"One write named both profiles: email kim@example.com named #{survivor.pk}; "
        f"uuid 00000000-0000-4000-8000-000000000001 named #{record.merged_client_id} (tests)."
    ) in html
    admin_client.post(action_url(survivor, "unmerge"), {"merged_client_id": record.merged_client_id})
    assert Profile.objects.filter(pk=record.merged_client_id).exists()
    record.refresh_from_db()
    assert record.undone_at is not None


# --- roles -----------------------------------------------------------------------------------------------


def test_roles_migration_made_both_groups(role_groups):
    staff = role_groups["Admin staff"].permissions
    marketers = role_groups["Marketers"].permissions
    assert staff.filter(codename="export_profile").exists() and staff.filter(codename="add_apikey").exists()
    assert marketers.filter(codename="change_profile").exists()
    assert marketers.filter(codename__in=["export_profile", "add_scheduledexport", "view_exportrun"]).count() == 3
    assert staff.filter(codename="add_scheduledexport").exists()
    assert not marketers.filter(codename__in=["view_apikey", "change_agreement"]).exists()


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:crm_apikey_changelist"),
        reverse("admin:crm_apikey_add"),
        reverse("admin:consents_agreement_changelist"),
        reverse("admin:consents_agreement_add"),
    ],
)
def test_a_marketer_gets_403_on_keys_and_agreement_definitions(marketer_client, url):
    assert marketer_client.get(url).status_code == 403


def test_a_marketer_works_on_the_card_but_sees_no_controls_they_may_not_use(marketer_client, make_profile):
    survivor = merged_pair(make_profile, "lea@example.com", "00000000-0000-4000-8000-000000000002")
    response = marketer_client.get(card_url(survivor))
    assert response.status_code == 200
    perms = response.context["card"]["perms"]
    assert perms["tag"] and perms["note"] and perms["consent"] and not perms["unmerge"]
    assert perms["export"] and "Export as CSV" in response.text  # marketers export
    assert "Undo merge" not in response.text and 'id="card-unmerge"' not in response.text
    assert marketer_client.post(action_url(survivor, "note"), {"text": "hello"}).status_code == 302
    record = MergeRecord.objects.get(survivor_client_id=survivor.pk)
    response = marketer_client.post(action_url(survivor, "unmerge"), {"merged_client_id": record.merged_client_id})
    assert response.status_code == 403


def test_without_consent_permission_the_control_is_hidden_and_the_url_refuses(marketer, client, ewa):
    marketer.groups.clear()
    marketer.user_permissions.set(Permission.objects.filter(codename__in=["view_profile", "change_profile"]))
    client.force_login(marketer)
    html = client.get(card_url(ewa)).text
    assert 'form="card-consent-form-' not in html and 'id="card-note"' not in html
    email = Agreement.objects.get(key="email")
    assert client.post(action_url(ewa, "consent"), {"agreement": email.pk, "state": "granted"}).status_code == 403
    assert not ConsentRecord.objects.filter(client_id=ewa.pk, source="admin").exists()


# --- pieces ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0 Safari/537.36",
            ("desktop", "Windows", "Chrome 124"),
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.4 Mobile/15E148 Safari/604.1",
            ("mobile", "iOS", "Safari 17"),
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            ("tablet", "Android", "Chrome 120"),
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
            ("desktop", "macOS", "Firefox 125"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/124.0 Safari/537.36 Edg/124.0",
            ("desktop", "Windows", "Edge 124"),
        ),
        ("Googlebot/2.1 (+http://www.google.com/bot.html)", ("bot", "", "Googlebot/2.1 (+http://www.google.com/b…")),
    ],
)
def test_user_agent_parse(ua, expected):
    assert user_agent_parse(ua) == expected


def test_weekly_activity_has_26_weeks_with_zeros(ewa):
    insert_events(ewa, 10)
    weeks = profile_weekly_activity(profile_id=ewa.pk)
    in_window = Event.objects.filter(profile=ewa, is_system=False, time__gte=weeks[0][0]).count()
    assert len(weeks) == 26 and sum(n for _, n in weeks) == in_window > 0
    assert weeks == sorted(weeks) and activity_chart(weeks).startswith("<svg")


def test_readable_entries():
    event = Event(action="consent.changed", params={"agreement": "sms", "old": None, "new": "denied"}, actor="a@b")
    assert timeline_entry(event).title == "Consent sms: denied" and timeline_entry(event).lines == ["none → denied"]
    tag = Event(action="tag.added", params={"name": "VIP"}, label="VIP", is_system=True, actor="anna@example.com")
    assert (timeline_entry(tag).title, timeline_entry(tag).by) == ("Tag VIP added", "anna@example.com")
    custom = Event(action="page.visit", label="Home", params={"url": "/"})
    assert (timeline_entry(custom).title, timeline_entry(custom).lines) == ("page.visit · Home", ["url: /"])


def test_tag_admin_lists_profile_counts(admin_client, make_profile, django_assert_max_num_queries):
    vip = tag_create(name="VIP")
    tag_create(name="unused")
    tags_add(profiles=[make_profile(), make_profile()], tags=[vip], source="tests")
    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse("admin:profiles_tag_changelist"))
    counts = {t.name: t._profile_count for t in response.context["cl"].result_list}
    assert counts == {"VIP": 2, "unused": 0}
    admin_client.post(reverse("admin:profiles_tag_delete", args=[vip.pk]), {"post": "yes"})
    assert not Tag.objects.filter(pk=vip.pk).exists()
    assert Event.objects.filter(action="tag.removed").count() == 2


def test_job_admin_is_read_only_and_shows_item_errors(admin_client):
    from crm.models import Job

    job = Job.objects.create(
        kind="profiles.batch",
        status="done",
        source="api",
        counts={"ok": 1, "failed": 1},
        errors=[{"index": 1, "code": "field.email", "message": "Bad e-mail <x>", "field": "email"}],
    )
    listing = admin_client.get(reverse("admin:crm_job_changelist"))
    assert listing.status_code == 200 and "profiles.batch" in listing.text
    detail = admin_client.get(reverse("admin:crm_job_change", args=[job.pk]))
    assert "Bad e-mail &lt;x&gt;" in detail.text and "field.email" in detail.text
    assert admin_client.get(reverse("admin:crm_job_add")).status_code == 403


def test_consent_states_are_listed_for_every_active_agreement(admin_client, ewa):
    consent_set(profile=ewa, agreement=Agreement.objects.get(key="sms"), state=ConsentStatus.DENIED, source="tests")
    rows = admin_client.get(card_url(ewa)).context["card"]["consents"]
    states = {row["agreement"].key: row["status"] for row in rows}
    assert states["sms"] == "denied" and states["email"] == ""
    assert len(rows) == Agreement.objects.filter(is_active=True).count()


def test_a_consent_control_without_a_chosen_state_changes_nothing(admin_client, ewa):
    email = Agreement.objects.get(key="email")
    response = admin_client.get(card_url(ewa))
    # No decision yet: the selector offers an empty "choose" entry, selected, instead of a preset state.
    html = response.text
    select = html[html.index(f'form="card-consent-form-{email.pk}"') :]
    select = select[: select.index("</select>")]
    assert '<option value="" selected>' in select and "selected" not in select.split('<option value="" selected>')[1]
    records = ConsentRecord.objects.count()
    response = admin_client.post(action_url(ewa, "consent"), {"agreement": email.pk, "state": ""}, follow=True)
    assert response.status_code == 200
    assert ConsentRecord.objects.count() == records
    assert not ewa.consents.exists()
    assert "nothing changed" in response.text


def test_hidden_initial_inputs_render_as_django_renders_them(admin_client, definitions, make_profile):
    from django.forms import BoundField

    from profiles.admin.forms import ProfileForm

    attributes = {
        "loyaltyPoints": 12.5,
        "vip": True,
        "favouriteCategory": "<shoes> & 'socks'",
        "lastOrderDate": "2026-11-02",
        "lastSeenAt": "2026-11-02T10:20:30+00:00",
        "badges": ["gold", 2],
    }
    profile = make_profile(
        email="tom@example.com", first_name='Tom "the <b>"', city="Łódź", birth_date="1990-02-03", attributes=attributes
    )
    form = admin_client.get(card_url(profile)).context["adminform"].form
    assert type(form["first_name"]).__name__ == "TemplatelessHiddenBoundField"
    fast = "".join(form[name].as_hidden(only_initial=True) for name in form.fields)
    ProfileForm.bound_field_class = None
    try:
        plain_form = type(form)(instance=profile)
        assert type(plain_form["first_name"]) is BoundField
        plain = "".join(plain_form[name].as_hidden(only_initial=True) for name in plain_form.fields)
    finally:
        from profiles.admin.forms import TemplatelessHiddenBoundField

        ProfileForm.bound_field_class = TemplatelessHiddenBoundField
    assert fast == plain
    assert 'value="Tom &quot;the &lt;b&gt;&quot;"' in fast


def test_the_avatar_shows_initials_without_a_missing_last_name(admin_client, make_profile):
    only_first = make_profile(email="cee@example.com", first_name="Cee")
    both = make_profile(email="ann@example.com", first_name="Ann", last_name="Nowak")
    assert '<div class="card-avatar" aria-hidden="true">C</div>' in admin_client.get(card_url(only_first)).text
    assert '<div class="card-avatar" aria-hidden="true">AN</div>' in admin_client.get(card_url(both)).text
