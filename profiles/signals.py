"""Custom signals the profile services send; receivers (connected in AppConfig.ready) record them.

Services send one signal per change set, so a batch write and a single write take one path:

- ``profile_created(profiles: list[Profile], source, actor)``
- ``profile_changed(changes: list[tuple[int, dict[str, tuple[old, new]]]], source, actor)``
- ``profile_identified(profiles: list[Profile], source, actor)``: anonymous → recognized
- ``profile_deleted(snapshots: list[dict], source, actor)``
"""

from django.dispatch import Signal

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

# Tags and notes (events issue):
# - ``tags_changed(changes: list[tuple[int, list[Tag], list[Tag]]], source, actor)``: per profile the
#   tags really added and really removed (adding a tag a profile has already sends nothing)
# - ``note_added(events: list[Event], source, actor)``: notes are timeline events themselves
tags_changed = Signal()
note_added = Signal()

# Activity and commerce (what segments' live membership listens to):
# - ``activity_recorded(profile_ids: list[int])``: custom events or orders moved these profiles' last activity
# - ``rfm_recomputed(scored: int)``: the RFM scores and segments of the whole base were recomputed
activity_recorded = Signal()
rfm_recomputed = Signal()
