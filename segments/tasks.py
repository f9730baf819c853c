"""Background tasks of live membership (``segments.membership``), run by the configured django.tasks backend."""

from datetime import timedelta

from django.conf import settings
from django.tasks import task

from crm.queues import BATCHES, DEFAULT, RECURRING
from crm.recurring import recurring


@task(queue_name=DEFAULT)
def segments_refresh_touched() -> int:
    """Refresh the profiles writes touched since the last run."""
    from segments.membership import segments_refresh_touched as refresh

    return refresh()


@task(queue_name=BATCHES)
def segment_fill_task(segment_id: int) -> int:
    """Fill a segment just created or edited (no events), and the segments that use it."""
    from segments.models import Segment
    from segments.services import segment_dependents

    done = 0
    from segments.membership import segment_fill

    for segment in Segment.objects.filter(pk__in=[segment_id, *segment_dependents(segment_id)]):
        segment_fill(segment=segment)
        done += 1
    return done


@task(queue_name=BATCHES)
def segments_refresh_commerce() -> int:
    """After RFM scoring: segments with commerce conditions, with events."""
    from segments.membership import segments_refresh_commerce as refresh

    return refresh()


@recurring(every=lambda: timedelta(seconds=settings.SEGMENT_TIME_REFRESH_SECONDS))
@task(queue_name=RECURRING)
def segments_refresh_time_relative() -> int:
    """Time-relative segments (inLastDays, withinDays), with events, on a schedule."""
    from segments.membership import segments_refresh_time_relative as refresh

    # A run of the touched profiles too: a worker started after writes whose own plan was lost catches up.
    from segments.membership import segments_refresh_touched as touched

    touched()
    return refresh()
