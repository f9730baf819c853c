"""The segments' metric: how far live membership trails the writes (read when the metrics are asked, through the
platform's gauge registry)."""

from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone

from crm.metrics import gauge_register, read_once
from segments.models import TouchedProfile


@read_once
def refresh_backlog() -> tuple[int, float]:
    """Profiles written and not yet re-evaluated against the segments, and how long the first of them has waited
    (0 when none waits). The table holds only the waiting ones: the refresh deletes what it takes."""
    row = TouchedProfile.objects.aggregate(n=Count("pk"), oldest=Min("touched_at"))
    lag = (timezone.now() - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    return row["n"], max(lag, 0.0)


def register() -> None:
    gauge_register(
        name="crm_segment_refresh_lag_seconds",
        documentation="How long the oldest profile a write touched has waited for its segment membership refresh.",
        read=lambda: [((), refresh_backlog()[1])],
        unit="seconds",
    )
    gauge_register(
        name="crm_segment_refresh_pending_profiles",
        documentation="Profiles written and waiting for their segment membership refresh.",
        read=lambda: [((), refresh_backlog()[0])],
    )
