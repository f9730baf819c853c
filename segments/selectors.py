"""Reads about segments themselves (which segments a tree names, which segments use one), below the services."""

from __future__ import annotations

from segments.models import Segment


def tree_refs(*, tree, key: str) -> set[int]:
    """The ids a stored tree names under ``key`` (``segment`` or ``tagId``) at any depth, read from the JSON."""
    found: set[int] = set()

    def visit(node):
        if isinstance(node, dict):
            if isinstance(node.get(key), int) and not isinstance(node.get(key), bool):
                found.add(node[key])
            for group in ("all", "any"):
                if isinstance(node.get(group), list):
                    for child in node[group]:
                        visit(child)
            if "not" in node:
                visit(node["not"])

    visit(tree)
    return found


def tree_segment_refs(*, tree) -> set[int]:
    """Segment ids a stored tree names directly, read from the JSON (no database)."""
    return tree_refs(tree=tree, key="segment")


def segment_dependents(*, segment_id: int) -> list[int]:
    """Segments that use this one, directly or through others (to refill after an edit)."""
    trees = dict(Segment.objects.values_list("pk", "tree"))
    found: list[int] = []
    frontier = {segment_id}
    while frontier:
        frontier = {pk for pk, tree in trees.items() if tree_segment_refs(tree=tree) & frontier and pk not in found}
        frontier.discard(segment_id)
        found.extend(sorted(frontier))
    return found


def segment_tree(*, segment_id: int):
    """A segment's stored tree, or None when there is no such segment."""
    return Segment.objects.filter(pk=segment_id).values_list("tree", flat=True).first()
