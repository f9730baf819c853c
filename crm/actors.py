"""Who did something, in one format everywhere (events, the consent ledger, jobs, attribute definitions, tags).

- ``api-key:<prefix>``: an API call (key names are not unique; the prefix is)
- ``user:<username>``: a person in the admin
- ``import:<id>``: an import job
- ``system``: the platform itself (commands, recurring tasks)
- ``profile:<clientId>``: the person the data is about, on the consent pages (confirmation, resignation)
- ``site:<site key>``: a website's visitor, through the tracker script (the key is public: it names the site)
"""

from __future__ import annotations

SYSTEM = "system"


def actor_of(subject=None, *, import_id=None, profile_id=None, site_key=None) -> str:
    """The actor string of an API key, a principal or user, a request (its API key or user), an import, a
    profile or a tracked website; ``system`` for nothing, an anonymous user or a request without a caller."""
    if site_key is not None:
        return f"site:{site_key}"
    if import_id is not None:
        return f"import:{import_id}"
    if profile_id is not None:
        return f"profile:{profile_id}"
    if subject is None:
        return SYSTEM
    from crm.models import ApiKey

    if isinstance(subject, ApiKey):
        return f"api-key:{subject.prefix}"
    if (key := getattr(subject, "key", None)) is not None and isinstance(key, ApiKey):  # crm.auth.ApiKeyPrincipal
        return f"api-key:{key.prefix}"
    if hasattr(subject, "META"):  # a Django or DRF request
        auth = getattr(subject, "auth", None)
        if isinstance(auth, ApiKey):
            return f"api-key:{auth.prefix}"
        return actor_of(getattr(subject, "user", None))
    if getattr(subject, "is_authenticated", False) and hasattr(subject, "get_username"):
        return f"user:{subject.get_username()}"
    return SYSTEM


def actor_display(actor: str) -> str:
    """An actor for people to read: the user name alone for ``user:…``, ``API key <prefix>`` for a key."""
    kind, _, rest = (actor or "").partition(":")
    if kind == "user" and rest:
        return rest
    if kind == "api-key" and rest:
        return f"API key {rest}"
    return actor
