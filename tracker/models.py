"""Websites that send page visits and form submissions through the tracker script."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from crm.actors import actor_of

SITE_KEY_LENGTH = 24


def site_key_new() -> str:
    """A public site key: it travels in the page's script tag, so it only names the site (no secret)."""
    return secrets.token_urlsafe(18)  # 24 characters


def origin_normalize(value: str) -> str:
    """``https://Shop.example:443/`` → ``https://shop.example``: the form browsers send in ``Origin``.

    Raises ValueError for anything that is not an http(s) origin (a path, a query, a wildcard, ``null``)."""
    text = (value or "").strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{text}' is not an origin: write scheme and host, e.g. https://shop.example.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"'{text}' is not an origin: no path, query or user, only e.g. https://shop.example.")
    if "*" in parts.netloc:
        raise ValueError(f"'{text}': wildcards are not allowed; list each origin.")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"'{text}' has an invalid port.") from None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def validate_origin(value: str) -> None:
    try:
        if origin_normalize(value) != value:
            raise ValueError(f"'{value}' should be written {origin_normalize(value)}.")
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class Site(models.Model):
    """A website that includes the tracker script: its public key, the origins it may send from, and whether
    tracking waits for the visitor's consent."""

    name = models.CharField(max_length=200)
    key = models.CharField(
        "site key",
        max_length=SITE_KEY_LENGTH,
        unique=True,
        default=site_key_new,
        editable=False,
        help_text="Public: it goes in the page's script tag.",
    )
    allowed_origins = ArrayField(
        models.CharField(max_length=255, validators=[validate_origin]),
        default=list,
        blank=True,
        help_text="Scheme and host (and port) of each page that may send, one per line, e.g. https://shop.example.",
    )
    consent_required = models.BooleanField(
        "tracking waits for consent",
        default=False,
        help_text="Nothing is sent, and no cookie set, until the page calls crm('consent', true).",
    )
    active = models.BooleanField(default=True, help_text="An inactive site's requests are refused.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def actor(self) -> str:
        """Who writes what the site's visitors send (``crm.actors``)."""

        return actor_of(site_key=self.key)
