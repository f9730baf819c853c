"""Who uses a thing: a small registry other features plug into, so a thing in use cannot be deleted.

A registry holds, per kind of user, a function ``finder(pk) -> list[str]`` returning a readable name per thing
that uses the object ("segment 12 'Big spenders'", "export 7"). Apps register theirs in ``AppConfig.ready()``;
the service that deletes asks ``users(pk)`` and refuses (409) while any answers. Segments and tags each have one.
"""

from __future__ import annotations

from collections.abc import Callable

from crm.errors import Conflict

UserFinder = Callable[[int], list[str]]


class UsageRegistry:
    def __init__(self):
        self.finders: dict[str, UserFinder] = {}

    def register(self, name: str, finder: UserFinder) -> None:
        """Register (or replace) the finder of one kind of user."""
        self.finders[name] = finder

    def users(self, pk: int) -> list[str]:
        """Everything that uses the object, in registration order: empty when it can be deleted."""
        return [user for finder in self.finders.values() for user in finder(pk)]

    def refuse_if_used(self, pk: int, *, what: str, field: str, code: str) -> None:
        """409 (``Conflict``, ``usedBy`` listing them) while anything uses the object; ``what`` names it."""
        if users := self.users(pk):
            raise Conflict(
                f"{what} is in use by {', '.join(users)}; change or delete those first.",
                field=field,
                code=code,
                usedBy=users,
            )
