from django.db import models


class IdentifierKind(models.TextChoices):
    EMAIL = "email", "e-mail"
    PHONE = "phone", "phone"
    CUSTOM_ID = "customId", "customId"
    UUID = "uuid", "uuid"


class Identifier(models.Model):
    """A normalised identifier value and the one profile that owns it.

    The unique constraint on (kind, value) is the only arbiter of "who is this": two concurrent
    requests can never give one e-mail to two profiles.
    """

    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="identifiers")
    kind = models.CharField(max_length=16, choices=IdentifierKind.choices)
    value = models.CharField(max_length=320)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "value"],
                name="identifier_kind_value_unique",
                violation_error_message="This identifier already belongs to another profile.",
            )
        ]
        indexes = [models.Index(fields=["profile", "kind"], name="identifier_profile_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"
