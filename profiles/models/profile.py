import hashlib

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Sex(models.TextChoices):
    FEMALE = "FEMALE"
    MALE = "MALE"
    NOT_SPECIFIED = "NOT_SPECIFIED"
    OTHER = "OTHER"


def recognized_q(prefix: str = "") -> Q:
    """A profile is recognized once it has an e-mail (or a customId, where that is a main identifier)."""
    q = Q(**{f"{prefix}email__isnull": False})
    if settings.CUSTOM_ID_IS_MAIN_IDENTIFIER:
        q |= Q(**{f"{prefix}custom_id__isnull": False})
    return q


class ProfileQuerySet(models.QuerySet):
    def recognized(self):
        return self.filter(recognized_q())

    def anonymous(self):
        return self.exclude(recognized_q())


class Profile(models.Model):
    """One customer: native fields, custom attributes (JSONB) and the main value of each identifier.

    The ``Identifier`` table is the arbiter of who owns which e-mail, phone, customId and uuid; the
    ``email``/``phone``/``custom_id``/``uuid`` columns mirror the profile's main one of each kind so
    lists can filter and sort on them. The primary key is the public, never reused ``clientId``.
    """

    email = models.CharField(max_length=320, null=True, blank=True)
    phone = models.CharField(max_length=20, null=True, blank=True)
    custom_id = models.CharField("customId", max_length=255, null=True, blank=True)
    uuid = models.CharField(max_length=36)

    first_name = models.CharField(max_length=256, null=True, blank=True)
    last_name = models.CharField(max_length=256, null=True, blank=True)
    display_name = models.CharField(max_length=256, null=True, blank=True)
    company = models.CharField(max_length=256, null=True, blank=True)
    address = models.CharField(max_length=512, null=True, blank=True)
    city = models.CharField(max_length=256, null=True, blank=True)
    province = models.CharField(max_length=256, null=True, blank=True)
    zip_code = models.CharField(max_length=32, null=True, blank=True)
    country_code = models.CharField(max_length=2, null=True, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=16, choices=Sex.choices, default=Sex.NOT_SPECIFIED)
    avatar_url = models.URLField(max_length=1024, null=True, blank=True)

    attributes = models.JSONField(default=dict, blank=True, help_text="Custom attributes, keyed by definition name.")
    correlation_id = models.CharField(max_length=64, editable=False)
    last_activity_date = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = ProfileQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["email"], name="profile_email_idx"),
            models.Index(fields=["phone"], name="profile_phone_idx"),
            models.Index(fields=["custom_id"], name="profile_custom_id_idx"),
            models.Index(Lower("last_name"), name="profile_last_name_lower_idx"),
            models.Index(Lower("city"), name="profile_city_lower_idx"),
            GinIndex(fields=["attributes"], opclasses=["jsonb_path_ops"], name="profile_attributes_gin"),
            # The admin's search by part of an e-mail or a name (LIKE '%…%'); created concurrently (migration 0005).
            GinIndex(OpClass("email", name="gin_trgm_ops"), name="profile_email_trgm"),
            GinIndex(OpClass(Lower("first_name"), name="gin_trgm_ops"), name="profile_first_name_trgm"),
            GinIndex(OpClass(Lower("last_name"), name="gin_trgm_ops"), name="profile_last_name_trgm"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(country_code__isnull=True) | Q(country_code__regex=r"^[A-Z]{2}$"),
                name="profile_country_code_alpha2",
                violation_error_message="countryCode must be an ISO 3166-1 alpha-2 code.",
            ),
            models.CheckConstraint(
                condition=Q(sex__in=Sex.values), name="profile_sex_valid", violation_error_message="Unknown sex."
            ),
        ]

    def __str__(self) -> str:
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        label = self.email or self.custom_id or self.phone or self.uuid
        return f"{name} <{label}>" if name else f"#{self.pk} {label}"

    @property
    def client_id(self) -> int:
        return self.pk

    @property
    def anonymous(self) -> bool:
        if self.email:
            return False
        return not (settings.CUSTOM_ID_IS_MAIN_IDENTIFIER and self.custom_id)

    @property
    def gravatar_url(self) -> str | None:
        if self.avatar_url:
            return self.avatar_url
        if not self.email:
            return None
        digest = hashlib.md5(self.email.encode(), usedforsecurity=False).hexdigest()
        return f"https://www.gravatar.com/avatar/{digest}?s=100&r=g&d=blank"


# Rows already stamped in this transaction (or later) keep their time: a batch that has just written a profile and
# then its consents writes its row once. Unlocked rows are locked in id order first, as every batch locks them, so
# this never deadlocks with one.
_TOUCH_SQL = "UPDATE profiles_profile SET updated_at = now() WHERE id {rows} AND updated_at < now()"
_TOUCH_LOCKED = "= ANY(%s::bigint[])"
_TOUCH_UNLOCKED = "IN (SELECT id FROM profiles_profile WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE)"


def profiles_mark_changed(cursor, ids, *, locked: bool = False) -> None:
    """Mark profiles as changed (``updated_at`` = the transaction's time) when a change lives in another table
    (tags, consents), so ``updated_at`` is the one column "changed since" reads, served by its index. ``locked``:
    the caller holds the profiles' row locks already."""
    ids = sorted(set(ids))
    if ids:
        cursor.execute(_TOUCH_SQL.format(rows=_TOUCH_LOCKED if locked else _TOUCH_UNLOCKED), [ids])
