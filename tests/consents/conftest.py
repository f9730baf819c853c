import pytest
from django.test import Client

from consents.models import Agreement, AgreementText


@pytest.fixture
def email_agreement(db):
    return Agreement.objects.get(key="email")


@pytest.fixture
def newsletter(db):
    """A custom e-mail agreement that needs double opt-in, with a consent text."""
    agreement = Agreement.objects.create(
        key="newsletter", title="Weekly newsletter", channel="email", requires_double_opt_in=True
    )
    AgreementText.objects.create(agreement=agreement, version=1, text="Send me the weekly newsletter.")
    return agreement


@pytest.fixture
def alcohol(db):
    return Agreement.objects.create(key="alcohol", title="Offers featuring alcohol", channel="other")


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)
