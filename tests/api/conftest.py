"""The webhooks' test receiver, for the tests of ``/v4/webhooks`` (api/webhooks.py)."""

from tests.webhooks.conftest import allow_private, receiver

__all__ = ["allow_private", "receiver"]
