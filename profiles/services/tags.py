"""Tags: definitions, and adding or removing them on any number of profiles set-based.

Adding a tag a profile already has, or removing one it lacks, changes nothing and sends nothing:
``tags_changed`` carries only the pairs the database really inserted or deleted.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Lower

from crm.errors import Conflict, NotFound, ValidationFailed
from crm.usage import UsageRegistry
from profiles import signals
from profiles.models import Profile, Tag
from profiles.models.profile import profiles_mark_changed
from profiles.models.tag import TAG_NAME_MAX_LENGTH

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def tag_name_clean(*, name, field: str = "name") -> str:
    """A tag name as stored: trimmed, one printable line of at most ``TAG_NAME_MAX_LENGTH`` characters."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed("A tag needs a name.", field=field, code="field.required")
    name = name.strip()
    if len(name) > TAG_NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"A tag name is at most {TAG_NAME_MAX_LENGTH} characters; '{name}' has {len(name)}.",
            field=field,
            code="field.too_long",
        )
    if not name.isprintable():
        raise ValidationFailed("A tag name is one line of printable characters.", field=field)
    return name


def _clean_color(color) -> str:
    if color in (None, ""):
        return ""
    if not isinstance(color, str) or not COLOR_RE.match(color):
        raise ValidationFailed(f"color must be #RRGGBB; got {color!r}.", field="color", code="field.color")
    return color.lower()


def tag_create(*, name: str, color: str = "", description: str = "", actor: str = "") -> Tag:
    """A new tag; a name that exists in any case is a Conflict naming the existing tag."""
    name = tag_name_clean(name=name)
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
            profiles_mark_changed(cursor, added)
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
            profiles_mark_changed(cursor, removed)
        if removed:
            changes = [(pid, [], sorted(ts, key=lambda t: t.pk)) for pid, ts in sorted(removed.items())]
            signals.tags_changed.send(sender=Tag, changes=changes, source=source, actor=actor)
    return sum(len(v) for v in removed.values())


def tags_put(*, pairs: Iterable[tuple[int, str]], source: str, actor: str = "") -> dict[int, list[Tag]]:
    """Put tags named by (profile id, tag name) on profiles, set-based: missing tags are created (names match
    case-insensitively), every pair goes in one INSERT, and ``tags_changed`` carries only the pairs that were
    new. Returns them by profile id. The batch and the import write tags through this."""
    wanted: set[tuple[int, str]] = set()
    names: dict[str, str] = {}  # lower-cased → the first spelling (the name of a tag created here)
    for pid, name in pairs:
        wanted.add((pid, name.lower()))
        names.setdefault(name.lower(), name)
    if not wanted:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_tag (name, color, description, created_at, created_by)
            SELECT n, '', '', now(), %s FROM unnest(%s::text[]) AS t(n) ORDER BY n
            ON CONFLICT DO NOTHING
            """,
            [actor, sorted(names.values())],
        )
    tags = {t.name.lower(): t for t in Tag.objects.annotate(lowered=Lower("name")).filter(lowered__in=list(names))}
    rows = sorted({(pid, tags[lowered].pk) for pid, lowered in wanted})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_profiletag (profile_id, tag_id, created_at)
            SELECT p, t, now() FROM json_to_recordset(%s::json) AS r(p bigint, t bigint)
            ON CONFLICT (profile_id, tag_id) DO NOTHING
            RETURNING profile_id, tag_id
            """,
            [json.dumps([{"p": p, "t": t} for p, t in rows])],
        )
        added = _pairs_changed(cursor.fetchall(), {t.pk: t for t in tags.values()})
    if added:
        changes = [(pid, sorted(ts, key=lambda t: t.pk), []) for pid, ts in sorted(added.items())]
        signals.tags_changed.send(sender=Tag, changes=changes, source=source, actor=actor)
    return dict(added)


# Things that name a tag and would break without it (segments' conditions, exports' filters), registered by the
# apps that hold them (``register_tag_user`` in their ``AppConfig.ready``); ``tag_users(tag_id)`` names them.
_tag_usage = UsageRegistry()
register_tag_user = _tag_usage.register
tag_users = _tag_usage.users


def tag_delete(*, tag: Tag, source: str, actor: str = "") -> int:
    """Delete a tag: it is removed from every profile first (each removal a system event); returns that count.
    A tag something still names (a segment's condition) is not deleted: 409 naming the users."""
    with transaction.atomic():
        Tag.objects.select_for_update().filter(pk=tag.pk).first()
        _tag_usage.refuse_if_used(tag.pk, what=f"Tag '{tag.name}'", field="tag", code="tag.in_use")
        profile_ids = list(tag.profile_tags.values_list("profile_id", flat=True))
        removed = tags_remove(profiles=profile_ids, tags=[tag], source=source, actor=actor)
        tag.delete()
    return removed


# --- merge steps (profiles.merge_registry) --------------------------------------------------


def tags_merge_step(*, ctx) -> dict:
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


def tags_unmerge_step(*, ctx) -> list[str]:
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
