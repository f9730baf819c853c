"""The exports' metrics: profiles written into exports (a counter: its rate is rows per second) and the export
spool's disk use (a directory the platform watches)."""

from __future__ import annotations

import tempfile

from django.conf import settings
from prometheus_client import Counter

from crm.system import directory_watch

EXPORT_ROWS = Counter(
    "crm_export_rows",
    "Profiles written into exports (API, admin and scheduled), by format; a CSV export counts its rows when "
    "PostgreSQL's COPY ends, JSON Lines a thousand at a time.",
    ["format"],
)
SPOOL_PREFIX = "export-"  # the spooled files' names (exports/services.py)


def spool_dir() -> str:
    return settings.EXPORT_SPOOL_DIR or tempfile.gettempdir()


def register() -> None:
    directory_watch(name="export_spool", path=spool_dir, prefix=SPOOL_PREFIX)
