import pytest

from consents.mail import marketing_email_send
from consents.selectors import can_contact
from consents.services import consent_set


def test_can_contact_needs_the_channel_granted(make_profile, email_agreement):
    profile = make_profile(email="ann@example.com")
    assert can_contact(profile=profile, channel="email") is False
    consent_set(profile=profile, agreement=email_agreement, state="granted", source="api")
    assert can_contact(profile=profile, channel="email") is True
    assert can_contact(profile=profile, channel="sms") is False
    consent_set(profile=profile, agreement=email_agreement, state="denied", source="api")
    assert can_contact(profile=profile, channel="email") is False


def test_can_contact_needs_an_address(make_profile):
    profile = make_profile(customId="C-1", agreements={"email": True, "sms": True})
    assert can_contact(profile=profile, channel="email") is False
    assert can_contact(profile=profile, channel="sms") is False


def test_a_custom_agreement_must_be_granted_too(make_profile, alcohol):
    profile = make_profile(email="ann@example.com", agreements={"email": True})
    assert can_contact(profile=profile, channel="email", agreement=alcohol) is False
    consent_set(profile=profile, agreement=alcohol, state="granted", source="api")
    assert can_contact(profile=profile, channel="email", agreement=alcohol) is True
    alcohol.is_active = False
    alcohol.save()
    assert can_contact(profile=profile, channel="email", agreement=alcohol) is False


def test_an_unknown_channel_is_a_programming_error(make_profile):
    with pytest.raises(ValueError):
        can_contact(profile=make_profile(), channel="pigeon")


def test_marketing_mail_goes_only_to_those_who_agreed(make_profile, mailoutbox):
    yes = make_profile(email="yes@example.com", agreements={"email": True})
    no = make_profile(email="no@example.com", agreements={"email": False})
    assert marketing_email_send(profile=yes, subject="Sale", text="50% off") is True
    assert marketing_email_send(profile=no, subject="Sale", text="50% off") is False
    assert [m.to for m in mailoutbox] == [["yes@example.com"]]
    assert mailoutbox[0].extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
