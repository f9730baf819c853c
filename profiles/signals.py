"""Custom signals the profile services send; receivers (connected in AppConfig.ready) record them.

Services send one signal per change set, so a batch write and a single write take one path:

- ``profile_created(profiles: list[Profile], source, actor)``
- ``profile_changed(changes: list[tuple[int, dict[str, tuple[old, new]]]], source, actor)``
- ``profile_identified(profiles: list[Profile], source, actor)``: anonymous → recognized
- ``profile_deleted(snapshots: list[dict], source, actor)``
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.dispatch import Signal

_held: ContextVar[list | None] = ContextVar("profiles_signals_held", default=None)


class HoldableSignal(Signal):
    """A signal whose sends inside ``signals_held()`` wait until the caller releases them (``signals_release``).

    A write that also sets consents and tags writes them before it sends its profile signals, so the receivers of
    those (the webhooks' outbox, which captures the profile's document then) see the whole write; the consent and
    tag signals still follow the profile signals, in the order they were sent."""

    def send(self, sender, **named):
        queue = _held.get()
        if queue is not None:
            queue.append((self, sender, named))
            return []
        return super().send(sender, **named)


@contextmanager
def signals_held() -> Iterator[list]:
    """Hold the sends of holdable signals made inside the block; they are the yielded list's."""
    queue: list = []
    token = _held.set(queue)
    try:
        yield queue
    finally:
        _held.reset(token)


def signals_release(queue: list) -> None:
    """Send held signals in their order (held again by an enclosing ``signals_held()``, if any)."""
    while queue:
        signal, sender, named = queue.pop(0)
        signal.send(sender, **named)


profile_created = Signal()
profile_changed = Signal()
profile_identified = Signal()
profile_deleted = Signal()

# Identity resolution:
# - ``profiles_merged(survivor: Profile, merged: list[dict], source, actor)``: each dict is a merge
#   snapshot ({"clientId", "profile": {...}, "identifiers": [...], ...}) of a profile merged in
# - ``profile_unmerged(survivor: Profile, restored: Profile, notes: list[str], source, actor)``
profiles_merged = Signal()
profile_unmerged = Signal()

# Tags and notes:
# - ``tags_changed(changes: list[tuple[int, list[Tag], list[Tag]]], source, actor)``: per profile the
#   tags really added and really removed (adding a tag a profile has already sends nothing)
# - ``note_added(events: list[Event], source, actor)``: notes are timeline events themselves
tags_changed = HoldableSignal()
note_added = Signal()

# Activity and commerce (what segments' live membership listens to):
# - ``activity_recorded(profile_ids: list[int])``: custom events or orders moved these profiles' last activity
# - ``rfm_recomputed(scored: int)``: the RFM scores and segments of the whole base were recomputed
activity_recorded = Signal()
rfm_recomputed = Signal()
