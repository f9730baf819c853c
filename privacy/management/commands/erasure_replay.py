"""Re-apply the tombstone log to a database restored from a backup, and report what was erased again."""

from pathlib import Path

from django.core.management.base import BaseCommand

from privacy.services import erasure_log_path, erasure_replay


class Command(BaseCommand):
    help = (
        "After restoring the database from a backup, erase again every profile the tombstone log says was erased "
        "(ERASURE_LOG_PATH), record the tombstones the backup lacks, and move the clientId sequence past them. "
        "Run it before the restored database takes traffic; running it twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--log", type=Path, help="the tombstone log (default: the ERASURE_LOG_PATH setting)")

    def handle(self, *args, log=None, **options):
        path = log or erasure_log_path()
        if not path.exists():
            self.stdout.write(f"No tombstone log at {path}: nothing to replay.")
            return
        report = erasure_replay(path=path)
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(
            self.style.SUCCESS(
                f"Replayed {path}: {len(report.erased_again)} erased again, {len(report.recorded)} tombstoned, "
                f"{len(report.already)} already erased."
            )
        )
