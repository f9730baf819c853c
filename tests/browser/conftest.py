"""Browser tests: Playwright driving the system Chromium (Debian's ``chromium`` package) against a live server.

They run in the normal suite. Without the browser they fail and say what to install; Playwright's own browser
downloads are never used (``executable_path`` points at the system binary, ``CHROMIUM_PATH`` overrides it).
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            f"Chromium not found at {path}: install the Debian package (apt-get install -y chromium) "
            "or set CHROMIUM_PATH. Do not run 'playwright install'.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The browser tests need the Python package 'playwright' (pip install playwright).", pytrace=False)
    executable = chromium_path()
    # Playwright's sync API keeps an event loop running in this thread while the browser lives; the ORM calls the
    # tests make to set up and check data are still plain synchronous code. Allowed for this module's life only.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Pages run under the production Content-Security-Policy: anything it blocks fails the test.
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page
    context.close()
    assert not violations, violations


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


PASSWORD = "correct horse battery"

# The data migrations that make an install's groups, grants and default agreements, in migration order.
_INSTALL_DATA = [
    ("consents.migrations.0002_default_agreements", "create_defaults"),
    ("crm.migrations.0003_roles", "create_roles"),
    ("exports.migrations.0002_roles", "grant"),
    ("imports.migrations.0002_roles", "grant"),
    ("segments.migrations.0002_roles", "grant"),
    ("tracker.migrations.0001_sites", "admin_staff_manage_sites"),
    ("privacy.migrations.0001_initial", "staff_may_view_erasures"),
    ("webhooks.migrations.0001_initial", "admin_staff_permissions"),
    ("crm.migrations.0012_system_samples", "admin_staff_see_system"),
]


def install_data_restore() -> None:
    """Make the data migrations' rows again: transactional tests empty the database between tests, and
    ``create_roles`` alone would leave the Marketers without the grants later apps add."""
    import importlib

    from django.apps import apps

    for module, function in _INSTALL_DATA:
        getattr(importlib.import_module(module), function)(apps, None)


def _user(username: str, group: str):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def marketer(db):
    """A member of Marketers, with the install's groups and grants as a fresh install has them."""
    install_data_restore()
    return _user("mia@example.com", "Marketers")


@pytest.fixture
def staff(db):
    """A member of Admin staff, with the install's groups and grants as a fresh install has them."""
    install_data_restore()
    return _user("ada@example.com", "Admin staff")
