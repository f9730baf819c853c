"""File imports: create a job from a file and a mapping, and run it (stage, then write through the batch path).

A run has two phases, each committed chunk by chunk together with its checkpoint, so a run cut off (a worker
killed with SIGKILL) resumes where it stopped when run again, neither losing nor doubling a line:

1. **Staging**: the reader streams records, the mapping turns each into a ``ProfileInput``, and it is staged
   under its strongest identifier (``IDENTIFIER_PRIORITY``). A later line with the same identifier replaces the
   staged row (the last line wins for the whole file, whatever the chunking); the earlier line is reported as
   a superseded warning. Lines that cannot be mapped are reported as errors.
2. **Writing**: the staged rows, in the order of their lines, go through ``profiles_upsert_many`` (identity
   resolution, merges, set-based consents and tags, system events in bulk) ``IMPORT_CHUNK_ROWS`` at a time.
   A dry run does the same, but its whole writing pass is one transaction rolled back at the end: each chunk sees
   what the earlier ones would have written, so its outcomes are the run's; nothing stays (``_write_dry``).

The writes' actor is ``import:<job id>``; the job's own ``actor`` is who submitted it.
"""

from imports.services.common import COUNT_KEYS, SOURCE, ImportRefused
from imports.services.creating import DRAFTS, drafts_purge, import_create, import_get, import_submit
from imports.services.detecting import import_detect
from imports.services.mappings import saved_mapping_save
from imports.services.outcome import import_progress, import_report_csv, import_report_rows, report_write
from imports.services.running import import_run
from imports.services.writing import DryRunBusy

__all__ = [
    "COUNT_KEYS",
    "DRAFTS",
    "SOURCE",
    "DryRunBusy",
    "ImportRefused",
    "drafts_purge",
    "import_create",
    "import_detect",
    "import_get",
    "import_progress",
    "import_report_csv",
    "import_report_rows",
    "import_run",
    "import_submit",
    "report_write",
    "saved_mapping_save",
]
