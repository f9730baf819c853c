"""The background tasks of live membership (``segments.membership``), run by the configured ``django.tasks``
backend; the time-relative refresh is recurring (see ``crm/recurring.py``)."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.queues import BATCHES, DEFAULT, RECURRING
from crm.recurring import recurring
from segments.membership import (
    segment_fill,
    segments_refresh_commerce,
    segments_refresh_time_relative,
    segments_refresh_touched,
)
from segments.models import Segment
from segments.selectors import segment_dependents


@task(queue_name=DEFAULT)
def segments_refresh_touched_task() -> int:
    """Refresh the profiles writes touched since the last run."""
    return segments_refresh_touched()


@task(queue_name=BATCHES)
def segment_fill_task(segment_id: int) -> int:
    """Fill a segment just created or edited (no events), and the segments that use it."""
    done = 0
    for segment in Segment.objects.filter(pk__in=[segment_id, *segment_dependents(segment_id=segment_id)]):
        segment_fill(segment=segment)
        done += 1
    return done


@task(queue_name=BATCHES)
def segments_refresh_commerce_task() -> int:
    """After RFM scoring: segments with commerce conditions, with events."""
    return segments_refresh_commerce()


@recurring(every=lambda: timedelta(seconds=settings.SEGMENT_TIME_REFRESH_SECONDS))
@task(queue_name=RECURRING)
def segments_refresh_time_relative_task() -> int:
    """Time-relative segments (inLastDays, withinDays), with events, on a schedule; and the touched profiles
    too, so a worker started after writes whose own plan was lost catches up."""
    segments_refresh_touched()
    return segments_refresh_time_relative()
