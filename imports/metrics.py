"""The imports' metric: records written by file imports (a counter: its rate is rows per second)."""

from __future__ import annotations

from prometheus_client import Counter

IMPORT_ROWS = Counter(
    "crm_import_rows",
    "Records of file imports written through the batch path (live runs; counted as each chunk commits).",
)
