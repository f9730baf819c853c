"""Test settings: the production settings with plain HTTP and a fast password hasher."""

import os

from crm.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True

# Parallel runs on one server (several developers' checkouts, or helpers) each take their own test database.
if test_db_name := os.environ.get("TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": test_db_name}  # noqa: F405

# Each test checks keys against the database; tests of the key cache turn it on themselves.
API_KEY_CACHE_SECONDS = 0

# Uploaded import files of the tests stay apart from the development server's.
MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or DATA_DIR / "test-media"  # noqa: F405
# Tests create segments in this process (saving one clears the answer at once): a fixed answer keeps the query
# counts of writes the same however slow the machine is.
SEGMENT_LIVE_CACHE_SECONDS = 3600
