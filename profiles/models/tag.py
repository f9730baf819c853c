from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

TAG_NAME_MAX_LENGTH = 20


class Tag(models.Model):
    """A label marketers put on profiles: a name unique case-insensitively, a colour, a description."""

    name = models.CharField(max_length=TAG_NAME_MAX_LENGTH)
    color = models.CharField(max_length=7, blank=True, default="", help_text="#RRGGBB, or empty.")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=256, blank=True, default="")
    profiles = models.ManyToManyField("profiles.Profile", through="profiles.ProfileTag", related_name="tags")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"), name="tag_name_ci_unique", violation_error_message="A tag with this name already exists."
            ),
            models.CheckConstraint(
                condition=Q(color="") | Q(color__regex=r"^#[0-9a-fA-F]{6}$"),
                name="tag_color_hex",
                violation_error_message="color must be #RRGGBB.",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProfileTag(models.Model):
    """One tag on one profile. The unique pair is what makes adding a tag twice a no-op."""

    profile = models.ForeignKey("profiles.Profile", on_delete=models.CASCADE, related_name="profile_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="profile_tags")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["profile", "tag"],
                name="profiletag_profile_tag_unique",
                violation_error_message="The profile already has this tag.",
            )
        ]
        # The unique (profile, tag) index serves "tags of these profiles"; this one serves "profiles with a tag".
        indexes = [models.Index(fields=["tag", "profile"], name="profiletag_tag_profile_idx")]

    def __str__(self) -> str:
        return f"{self.profile_id}:{self.tag_id}"
