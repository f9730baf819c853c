from django.db import models


class AttributeType(models.TextChoices):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    LIST = "list"


class AttributeDefinition(models.Model):
    """A custom attribute's name and type (the "params manager").

    Created on first use with the inferred type, or ahead of time in the admin. ``key`` is the
    name folded to lower case without separators: ``ClubMember``, ``club_member`` and
    ``clubmember`` share one key, so only the first spelling can exist.
    """

    name = models.CharField(max_length=256, unique=True)
    key = models.CharField(max_length=256, unique=True, editable=False)
    type = models.CharField(max_length=16, choices=AttributeType.choices)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"
