"""Schemathesis over the whole OpenAPI schema: every operation, a bounded number of generated requests each
(valid and invalid), fixed seed, authenticated with a read+write+admin key. No answer may be a 5xx, and every
answer's content type must be one the schema declares for that status."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance

from crm.services import api_key_create

EXAMPLES_PER_OPERATION = 20

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def fuzz_secret(db):
    # The WSGI app is called in the test's own transaction: as Django's test client does, keep the request
    # signals from closing the connection under it.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    _, secret = api_key_create(name="schemathesis", scopes=["read", "write", "admin"], rate_limit="1000000/min")
    yield secret
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,  # the same examples on every run
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_errors_and_declared_content_types(case, fuzz_secret):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_secret}"},
        checks=[not_a_server_error, content_type_conformance],
    )
