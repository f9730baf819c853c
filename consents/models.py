from django.db import models


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


class Agreement(models.Model):
    """A marketing consent a profile can give: the seven channel defaults, or a custom one ("alcohol").

    ``key`` is the name the APIs use and never changes once created.
    """

    key = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=256)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.OTHER)
    is_default = models.BooleanField(default=False, help_text="One of the seven built-in channel agreements.")
    requires_double_opt_in = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "id"]

    def __str__(self) -> str:
        return self.title


class ConsentState(models.Model):
    """The current decision of one profile on one agreement."""

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
