"""Tags: definitions, and adding or removing them on any number of profiles set-based.

Adding a tag a profile already has, or removing one it lacks, changes nothing and sends nothing:
``tags_changed`` carries only the pairs the database really inserted or deleted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction

from crm.errors import Conflict, NotFound, ValidationFailed
from profiles import signals
from profiles.models import Profile, Tag
from profiles.models.profile import profiles_touch
from profiles.models.tag import TAG_NAME_MAX_LENGTH

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("A tag needs a name.", field="name", code="field.required")
    name = name.strip()
    if len(name) > TAG_NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"A tag name is at most {TAG_NAME_MAX_LENGTH} characters; '{name}' has {len(name)}.",
            field="name",
            code="field.too_long",
        )
    if not name.isprintable():
        raise ValidationFailed("A tag name is one line of printable characters.", field="name")
    return name


def _clean_color(color) -> str:
    if color in (None, ""):
        return ""
    if not isinstance(color, str) or not COLOR_RE.match(color):
        raise ValidationFailed(f"color must be #RRGGBB; got {color!r}.", field="color", code="field.color")
    return color.lower()


def tag_create(*, name: str, color: str = "", description: str = "", actor: str = "") -> Tag:
    """A new tag; a name that exists in any case is a Conflict naming the existing tag."""
    name = _clean_name(name)
    color = _clean_color(color)
    if description is None:
        description = ""
    if not isinstance(description, str):
        raise ValidationFailed("description must be a string.", field="description", code="field.type")
    try:
        with transaction.atomic():
            return Tag.objects.create(name=name, color=color, description=description, created_by=actor)
    except IntegrityError as exc:
        if "tag_name_ci_unique" not in str(exc):
            raise
        existing = Tag.objects.filter(name__iexact=name).first()
        raise Conflict(
            f"A tag named '{existing.name if existing else name}' already exists.",
            field="name",
            code="tag.exists",
            tagId=existing.pk if existing else None,
        ) from None


def tag_get(*, tag_id) -> Tag:
    try:
        return Tag.objects.get(pk=int(tag_id))
    except (Tag.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"No tag with id {tag_id}.", field="tagId", code="tag.not_found") from None


def _pairs_changed(rows: Iterable[tuple[int, int]], tags: dict[int, Tag]) -> dict[int, list[Tag]]:
    by_profile: dict[int, list[Tag]] = defaultdict(list)
    for profile_id, tag_id in rows:
        by_profile[profile_id].append(tags[tag_id])
    return by_profile


def _ids(profiles: Iterable[Profile | int]) -> list[int]:
    return sorted({p if isinstance(p, int) else p.pk for p in profiles})


def tags_add(*, profiles: Iterable[Profile | int], tags: Iterable[Tag], source: str, actor: str = "") -> int:
    """Put every tag on every profile (one INSERT); returns how many pairs were new. Unknown profiles are skipped."""
    tag_map = {t.pk: t for t in tags}
    profile_ids = _ids(profiles)
    if not tag_map or not profile_ids:
        return 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO profiles_profiletag (profile_id, tag_id, created_at)
                SELECT p.id, t.id, now()
                FROM profiles_profile AS p CROSS JOIN unnest(%s::bigint[]) AS t(id)
                WHERE p.id = ANY(%s::bigint[])
                ORDER BY p.id, t.id
                ON CONFLICT (profile_id, tag_id) DO NOTHING
                RETURNING profile_id, tag_id
                """,
                [sorted(tag_map), profile_ids],
            )
            added = _pairs_changed(cursor.fetchall(), tag_map)
            profiles_touch(cursor, added)
        if added:
            changes = [(pid, sorted(ts, key=lambda t: t.pk), []) for pid, ts in sorted(added.items())]
            signals.tags_changed.send(sender=Tag, changes=changes, source=source, actor=actor)
    return sum(len(v) for v in added.values())


def tags_remove(*, profiles: Iterable[Profile | int], tags: Iterable[Tag], source: str, actor: str = "") -> int:
    """Take every tag off every profile (one DELETE); returns how many pairs were removed."""
    tag_map = {t.pk: t for t in tags}
    profile_ids = _ids(profiles)
    if not tag_map or not profile_ids:
        return 0
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                DELETE FROM profiles_profiletag
                WHERE profile_id = ANY(%s::bigint[]) AND tag_id = ANY(%s::bigint[])
                RETURNING profile_id, tag_id
                """,
                [profile_ids, sorted(tag_map)],
            )
            removed = _pairs_changed(cursor.fetchall(), tag_map)
            profiles_touch(cursor, removed)
        if removed:
            changes = [(pid, [], sorted(ts, key=lambda t: t.pk)) for pid, ts in sorted(removed.items())]
            signals.tags_changed.send(sender=Tag, changes=changes, source=source, actor=actor)
    return sum(len(v) for v in removed.values())


def tag_delete(*, tag: Tag, source: str, actor: str = "") -> int:
    """Delete a tag: it is removed from every profile first (each removal a system event); returns that count."""
    with transaction.atomic():
        profile_ids = list(tag.profile_tags.values_list("profile_id", flat=True))
        removed = tags_remove(profiles=profile_ids, tags=[tag], source=source, actor=actor)
        tag.delete()
    return removed


# --- merge steps (profiles.merge_registry) --------------------------------------------------


def tags_merge_step(ctx) -> dict:
    """Union: the survivor gets every tag of the merged-in profile. Returns what to undo."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tag_id FROM profiles_profiletag WHERE profile_id = %s ORDER BY tag_id", [ctx.merged.pk])
        had = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            INSERT INTO profiles_profiletag (profile_id, tag_id, created_at)
            SELECT %s, tag_id, created_at FROM profiles_profiletag WHERE profile_id = %s
            ON CONFLICT (profile_id, tag_id) DO NOTHING
            RETURNING tag_id
            """,
            [ctx.survivor.pk, ctx.merged.pk],
        )
        added = sorted(row[0] for row in cursor.fetchall())
        cursor.execute("DELETE FROM profiles_profiletag WHERE profile_id = %s", [ctx.merged.pk])
    return {"tags": had, "addedToSurvivor": added}


def tags_unmerge_step(ctx) -> list[str]:
    """Give the restored profile its tags back and take off the survivor those only the merge gave it."""
    data = ctx.data or {}
    had, added = data.get("tags", []), data.get("addedToSurvivor", [])
    notes = []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_profiletag (profile_id, tag_id, created_at)
            SELECT %s, t.id, now() FROM profiles_tag AS t WHERE t.id = ANY(%s::bigint[])
            ON CONFLICT (profile_id, tag_id) DO NOTHING
            """,
            [ctx.restored.pk, had],
        )
        if cursor.rowcount < len(had):
            notes.append(f"{len(had) - cursor.rowcount} tag(s) no longer exist and were not restored.")
        cursor.execute(
            "DELETE FROM profiles_profiletag WHERE profile_id = %s AND tag_id = ANY(%s::bigint[])",
            [ctx.survivor.pk, added],
        )
    return notes
