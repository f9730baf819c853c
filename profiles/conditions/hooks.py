"""What the condition language reads from the apps above the domain, which it may not import: a segment's stored
tree (``{"segment": id}``) and the consent ledger (``{"agreement": key}``). Each app fills its part in its
``AppConfig.ready()``; while a part is unfilled, its conditions name nothing that exists and are refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Q


@dataclass
class _Hooks:
    segment_tree: Callable[..., Any] | None = None
    agreement_ids: Callable[[], dict[str, int]] | None = None
    agreement_q: Callable[..., Q] | None = None


hooks = _Hooks()


def register_segment_trees(loader: Callable[..., Any]) -> None:
    """``loader(segment_id=…)``: that segment's stored tree, or None when there is no such segment."""
    hooks.segment_tree = loader


def register_agreements(*, ids: Callable[[], dict[str, int]], q: Callable[..., Q]) -> None:
    """``ids()``: every agreement's id by its key; ``q(agreement_id=…, status=…)``: the ``Q`` over Profile selecting
    the profiles whose decision on that agreement has that status (``None``: no decision recorded)."""
    hooks.agreement_ids = ids
    hooks.agreement_q = q
