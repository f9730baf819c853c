"""Who uses a segment (``crm.usage``), so a segment in use cannot be deleted.

A user is a function ``finder(segment_id) -> list[str]`` returning a readable name per thing that uses the
segment ("segment 12 'Big spenders'", "webhook 3 'CRM sync'", "export 7"). Apps register theirs in
``AppConfig.ready()``::

    from segments.usage import register_segment_user
    register_segment_user("webhooks", lambda segment_id: [f"webhook {w.pk} '{w.name}'" for w in ...])

``segment_users(segment_id)`` asks every registered finder; ``segment_delete`` refuses (409) while any answers.
"""

from __future__ import annotations

from crm.usage import UsageRegistry

segment_usage = UsageRegistry()
_finders = segment_usage.finders
register_segment_user = segment_usage.register
segment_users = segment_usage.users


def segments_using(segment_id: int) -> list[str]:
    """Other segments whose tree names this one (``{"segment": id}`` at any depth)."""
    from segments.models import Segment
    from segments.selectors import tree_segment_refs

    return [
        f"segment {pk} '{name}'"
        for pk, name, tree in Segment.objects.exclude(pk=segment_id).values_list("pk", "name", "tree")
        if segment_id in tree_segment_refs(tree=tree)
    ]


def segments_naming_tag(tag_id: int) -> list[str]:
    """Segments whose tree names the tag (stored trees keep tags by id): a tag they name cannot be deleted."""
    from segments.models import Segment
    from segments.selectors import tree_refs

    return [
        f"segment {pk} '{name}'"
        for pk, name, tree in Segment.objects.values_list("pk", "name", "tree").order_by("pk")
        if tag_id in tree_refs(tree=tree, key="tagId")
    ]
