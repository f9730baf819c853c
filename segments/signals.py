"""Custom signals of segment membership; receivers (connected in SegmentsConfig.ready) record them.

Sent inside the refresh's transaction, once per refresh, only for changes caused by a write or by time
(filling a segment that was just created or edited sends nothing):

- ``segment_entered(pairs: list[tuple[int, int]], segments: dict[int, str], cause: str)``: each pair is
  (profile_id, segment_id); ``segments`` names them; ``cause`` is ``write``, ``time`` or ``commerce``
- ``segment_left(pairs, segments, cause)``: the same for profiles that left

The timeline's ``segment.entered``/``segment.left`` events are written by ``segments.receivers``; a webhook
outbox connects its own receiver to the same signals.
"""

from django.dispatch import Signal

segment_entered = Signal()
segment_left = Signal()
