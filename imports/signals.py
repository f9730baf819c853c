"""Custom signals of the imports app.

- ``import_finished(import_job: ImportJob, status: str, counts: dict, dry_run: bool, source, actor)``: an import
  job ended (status ``done`` or ``failed``), with its counts (created, updated, merged, unchanged, failed,
  superseded, warnings). Sent after the job's final state is committed; webhooks' ``import.finished`` hangs here.
"""

from django.dispatch import Signal

import_finished = Signal()
