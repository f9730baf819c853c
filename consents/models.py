"""Agreements, their versioned texts, each profile's current decision, and the append-only consent ledger."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from profiles.attribute_names import RESERVED_KEYS, attribute_key
from profiles.models import AttributeDefinition

AGREEMENT_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


class Channel(models.TextChoices):
    EMAIL = "email", "e-mail"
    SMS = "sms", "SMS"
    PUSH = "push", "mobile push"
    WEB_PUSH = "webPush", "web push"
    BLUETOOTH = "bluetooth", "Bluetooth"
    RFID = "rfid", "RFID"
    WIFI = "wifi", "Wi-Fi"
    OTHER = "other", "other"


class ConsentStatus(models.TextChoices):
    GRANTED = "granted"
    DENIED = "denied"
    AWAITING = "awaiting_confirmation", "awaiting confirmation"


class ConsentSource(models.TextChoices):
    """Where a change came from. Services accept other short source names too (e.g. a surface's own)."""

    API = "api", "API"
    ADMIN = "admin"
    IMPORT = "import"
    FORM = "form"
    CONFIRMATION = "confirmation", "confirmation link"
    RESIGNATION = "resignation", "resignation page"
    MERGE = "merge"


class Agreement(models.Model):
    """A marketing consent a profile can give: the seven channel defaults, or a custom one ("alcohol").

    ``key`` is the name the APIs use and never changes once created; custom agreements appear as
    ``attributes`` keys in the Synerise surface, so a key may not shadow a field or an attribute.
    """

    key = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=256)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.OTHER)
    is_default = models.BooleanField(default=False, help_text="One of the seven built-in channel agreements.")
    requires_double_opt_in = models.BooleanField(
        default=False, help_text="Asking for it e-mails a confirmation link; opening the link grants it."
    )
    is_active = models.BooleanField(default=True, help_text="Retired agreements keep their history but take no writes.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "id"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        if self.pk is not None:
            stored = Agreement.objects.filter(pk=self.pk).values_list("key", flat=True).first()
            if stored is not None and stored != self.key:
                raise ValueError(f"An agreement's key never changes ('{stored}' → '{self.key}').")
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if not AGREEMENT_KEY_RE.match(self.key or ""):
            raise ValidationError(
                {"key": "Start with a letter; use letters, digits and underscores only (at most 64 characters)."}
            )
        if self.pk is None and not self.is_default:
            # Imported here: profiles imports this app (services, selectors).

            normalized = attribute_key(self.key)
            if normalized in RESERVED_KEYS:
                raise ValidationError({"key": f"'{self.key}' is a reserved profile field name."})
            if Agreement.objects.filter(key__iexact=self.key).exists():
                raise ValidationError({"key": f"An agreement named '{self.key}' already exists."})
            names = AttributeDefinition.objects.values_list("name", flat=True)
            if any(attribute_key(name) == normalized for name in names):
                raise ValidationError({"key": f"A custom attribute named '{self.key}' already exists."})

    @property
    def current_text(self) -> AgreementText | None:
        return self.texts.order_by("-version").first()


class AgreementText(models.Model):
    """One version of an agreement's consent text. A new wording is a new version; old ones stay readable."""

    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="texts")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["agreement", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["agreement", "version"],
                name="agreementtext_agreement_version_unique",
                violation_error_message="This agreement already has a text with that version.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.agreement.key} v{self.version}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A consent text never changes once saved; add a new version instead.")
        super().save(*args, **kwargs)


class ConsentState(models.Model):
    """The decision in force of one profile on one agreement (``changed_at``: when it was decided)."""

    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="consents")
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="states")
    status = models.CharField(max_length=32, choices=ConsentStatus.choices)
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "agreement"],
                name="consentstate_profile_agreement_unique",
                violation_error_message="A profile has one state per agreement.",
            )
        ]
        indexes = [models.Index(fields=["agreement", "status"], name="consentstate_agreement_status")]

    def __str__(self) -> str:
        return f"{self.profile_id}:{self.agreement_id}={self.status}"


# Columns erasure may blank (personal data, kept out of the hash); every other column is frozen.
ANONYMISABLE_FIELDS = frozenset({"ip_address", "user_agent"})


class AppendOnly(Exception):
    """Someone tried to edit or delete a ledger record."""


class ConsentRecordQuerySet(models.QuerySet):
    def update(self, **kwargs):
        frozen = set(kwargs) - ANONYMISABLE_FIELDS
        if frozen:
            raise AppendOnly(f"Consent records are append-only; cannot update {', '.join(sorted(frozen))}.")
        return super().update(**kwargs)

    def delete(self):
        raise AppendOnly("Consent records are append-only; they are never deleted.")

    def bulk_update(self, objs, fields, batch_size=None):
        frozen = set(fields) - ANONYMISABLE_FIELDS
        if frozen:
            raise AppendOnly(f"Consent records are append-only; cannot update {', '.join(sorted(frozen))}.")
        return super().bulk_update(objs, fields, batch_size=batch_size)


class ConsentRecord(models.Model):
    """One change of a profile's decision on an agreement, in the profile's hash chain (append-only).

    ``client_id`` is a plain number, not a foreign key: records outlive merges and deletions. The
    hash covers ids, states, source, actor, details and time, never the IP address or user agent,
    so erasure can blank those without breaking the chain. A database trigger refuses any other
    update and every delete.
    """

    client_id = models.BigIntegerField("clientId")
    seq = models.PositiveIntegerField(help_text="Position in the profile's chain, from 1.")
    agreement = models.ForeignKey(Agreement, on_delete=models.PROTECT, related_name="records")
    text = models.ForeignKey(
        AgreementText, on_delete=models.PROTECT, null=True, blank=True, related_name="records", verbose_name="text"
    )
    old_status = models.CharField(max_length=32, blank=True, help_text="Empty: no decision before.")
    new_status = models.CharField(max_length=32, blank=True, help_text="Empty: no decision any more (merged away).")
    source = models.CharField(max_length=32)
    actor = models.CharField(max_length=256, blank=True, help_text="The user or API key that made the change.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = ConsentRecordQuerySet.as_manager()

    class Meta:
        ordering = ["client_id", "seq"]
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "seq"],
                name="consentrecord_chain_position_unique",
                violation_error_message="Two records cannot take the same place in a profile's chain.",
            ),
            models.CheckConstraint(
                condition=Q(seq__gte=1),
                name="consentrecord_seq_positive",
                violation_error_message="Chain positions start at 1.",
            ),
        ]
        indexes = [models.Index(fields=["agreement", "created_at"], name="consentrecord_agreement_time")]

    def __str__(self) -> str:
        return f"{self.client_id}#{self.seq} {self.agreement_id}: {self.old_status or '–'} → {self.new_status or '–'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("Consent records are append-only; they are never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("Consent records are append-only; they are never deleted.")
