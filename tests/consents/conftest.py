import pytest
from django.test import Client

from consents.models import Agreement


@pytest.fixture
def alcohol(db):
    return Agreement.objects.create(key="alcohol", title="Offers featuring alcohol", channel="other")


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)
