import pytest

from consents.mail import message_build, resignation_url
from consents.models import ConsentRecord, ConsentState, ConsentStatus
from consents.services import consent_set

G, D = ConsentStatus.GRANTED, ConsentStatus.DENIED


@pytest.fixture
def ann(make_profile, email_agreement, alcohol):
    profile = make_profile(email="ann@example.com", agreements={"email": True, "sms": True})
    consent_set(profile=profile, agreement=alcohol, state=G, source="api")
    return profile


def path_of(url):
    return url.removeprefix("http://localhost:8000")


def status(profile, key):
    return ConsentState.objects.get(profile=profile, agreement__key=key).status


def test_the_page_lists_what_was_granted(ann, client):
    response = client.get(path_of(resignation_url(client_id=ann.pk)))
    assert response.status_code == 200
    text = response.content.decode()
    for title in ("E-mail marketing", "SMS marketing", "Offers featuring alcohol"):
        assert title in text
    assert "Bluetooth" not in text
    assert text.count('type="submit"') == 4  # one per consent, and "withdraw all"


def test_a_button_withdraws_one_consent(ann, csrf_client, alcohol):
    url = path_of(resignation_url(client_id=ann.pk))
    page = csrf_client.get(url)
    token = page.cookies["csrftoken"].value

    response = csrf_client.post(
        url, {"agreement": str(alcohol.pk), "csrfmiddlewaretoken": token}, HTTP_USER_AGENT="Firefox"
    )

    assert response.status_code == 302
    assert status(ann, "alcohol") == D
    assert status(ann, "email") == G
    record = ConsentRecord.objects.filter(client_id=ann.pk).order_by("-seq").first()
    assert (record.source, record.new_status, record.user_agent) == ("resignation", D, "Firefox")
    assert "Withdrawn: <strong>Offers featuring alcohol</strong>" in csrf_client.get(response.url).content.decode()


def test_withdraw_all(ann, csrf_client):
    url = path_of(resignation_url(client_id=ann.pk))
    token = csrf_client.get(url).cookies["csrftoken"].value
    csrf_client.post(url, {"agreement": "all", "csrfmiddlewaretoken": token})
    assert set(ConsentState.objects.filter(profile=ann).values_list("status", flat=True)) == {D}


def test_a_form_post_without_a_csrf_token_is_refused(ann, csrf_client, alcohol):
    response = csrf_client.post(path_of(resignation_url(client_id=ann.pk)), {"agreement": str(alcohol.pk)})
    assert response.status_code == 403
    assert status(ann, "alcohol") == G


def test_one_click_post_withdraws_email_without_a_csrf_token(ann, csrf_client):
    response = csrf_client.post(
        path_of(resignation_url(client_id=ann.pk)), {"List-Unsubscribe": "One-Click"}, HTTP_USER_AGENT="Gmail"
    )
    assert response.status_code == 200
    assert status(ann, "email") == D
    assert status(ann, "sms") == G
    assert status(ann, "alcohol") == G


def test_one_click_from_a_message_withdraws_that_messages_agreement(ann, csrf_client, alcohol):
    message = message_build(profile=ann, subject="Beer week", text="…", agreement=alcohol)
    url = message.extra_headers["List-Unsubscribe"].strip("<>")
    csrf_client.post(path_of(url), {"List-Unsubscribe": "One-Click"})
    assert status(ann, "alcohol") == D
    assert status(ann, "email") == G


def test_one_click_twice_records_one_change(ann, csrf_client):
    url = path_of(resignation_url(client_id=ann.pk))
    csrf_client.post(url, {"List-Unsubscribe": "One-Click"})
    csrf_client.post(url, {"List-Unsubscribe": "One-Click"})
    assert ConsentRecord.objects.filter(client_id=ann.pk, source="resignation").count() == 1


def test_a_tampered_resignation_link_changes_nothing(ann, csrf_client):
    url = path_of(resignation_url(client_id=ann.pk))
    bad = url.rstrip("/")[:-2] + "xx/"
    assert csrf_client.get(bad).status_code == 400
    assert csrf_client.post(bad, {"List-Unsubscribe": "One-Click"}).status_code == 400
    assert status(ann, "email") == G


def test_an_unknown_choice_is_a_400(ann, csrf_client):
    url = path_of(resignation_url(client_id=ann.pk))
    token = csrf_client.get(url).cookies["csrftoken"].value
    response = csrf_client.post(url, {"agreement": "999999", "csrfmiddlewaretoken": token})
    assert response.status_code == 400
    assert ConsentRecord.objects.filter(client_id=ann.pk, source="resignation").count() == 0
