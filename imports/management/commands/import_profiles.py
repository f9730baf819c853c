"""``manage.py import_profiles FILE --mapping MAPPING.json``: import a file in this process, with a progress bar.

Exits 0 when the file was processed (failed lines are in the report), 2 when the file or the mapping cannot be
used; the last line printed is the counts.
"""

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.actors import SYSTEM
from crm.errors import DomainError
from imports.models import Format
from imports.readers import FileUnusable
from imports.services import DryRunBusy, import_create, import_get, import_progress, import_run, report_write


class Command(BaseCommand):
    help = "Import profiles from a CSV, JSON array, JSONL, XML or XLSX file through a mapping (see docs/imports.md)."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="The file to import.")
        parser.add_argument("--mapping", help="The mapping, a JSON file.")
        parser.add_argument("--format", choices=Format.values, default="", help="Default: from the name or content.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and resolve; write nothing.")
        parser.add_argument("--report", help="Write the report (errors, then warnings) to this CSV file.")
        parser.add_argument("--encoding", default="", help="CSV: the file's encoding (default: detected).")
        parser.add_argument("--delimiter", default="", help="CSV: the delimiter (default: detected).")
        parser.add_argument("--resume", metavar="JOB_ID", help="Run an import job again (resumes a cut-off run).")

    def handle(self, *args, **options):
        try:
            job_id = import_get(job_id=options["resume"]).pk if options["resume"] else self._create(options)
        except (DomainError, FileUnusable) as exc:
            field = getattr(exc, "field", None)
            raise CommandError(f"{exc}{f' ({field})' if field else ''}", returncode=2) from None
        bar = self._bar()
        try:
            imp = import_run(job_id=job_id, progress=bar.update if bar else None)
        except (FileUnusable, DomainError) as exc:
            raise CommandError(f"The file cannot be imported: {exc}", returncode=2) from None
        except DryRunBusy as exc:
            raise CommandError(str(exc), returncode=2) from None
        finally:
            if bar:
                bar.close()
        if options["report"]:
            with open(options["report"], "w", encoding="utf-8", newline="") as target:
                lines = report_write(imp=imp, target=target)
            self.stderr.write(f"Report: {options['report']} ({lines} lines)")
        counts = imp.job.counts
        rate = import_progress(imp=imp)["rowsPerSecond"]
        prefix = "dry run, nothing written: " if imp.dry_run else ""
        self.stdout.write(
            f"job {imp.pk}: {prefix}{imp.records_read} lines, "
            + ", ".join(f"{key} {counts.get(key, 0)}" for key in counts)
            + f" ({rate} lines/s)"
        )

    def _create(self, options) -> str:
        if not options["file"] or not options["mapping"]:
            raise CommandError("Give the FILE and --mapping MAPPING.json (or --resume JOB_ID).", returncode=2)
        path, mapping_path = Path(options["file"]), Path(options["mapping"])
        if not path.is_file():
            raise CommandError(f"No file {path}.", returncode=2)
        try:
            mapping = json.loads(mapping_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"The mapping {mapping_path} cannot be read as JSON: {exc}", returncode=2) from None
        with path.open("rb") as handle:
            imp = import_create(
                file=handle,
                name=path.name,
                mapping=mapping,
                fmt=options["format"],
                encoding=options["encoding"],
                delimiter=options["delimiter"],
                dry_run=options["dry_run"],
                source="import",
                actor=SYSTEM,
            )
        self.stderr.write(f"Import job {imp.pk} ({imp.format}{', ' + imp.encoding if imp.encoding else ''})")
        return imp.pk

    def _bar(self):
        if not sys.stderr.isatty():
            return None
        return _Progress()


class _Progress:
    """A tqdm bar over the import's percentage (rows/s and ETA from tqdm)."""

    def __init__(self):
        from tqdm import tqdm

        self.bar = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| [{elapsed}<{remaining}{postfix}]")

    def update(self, imp) -> None:
        progress = import_progress(imp=imp)
        self.bar.n = progress["percent"]
        self.bar.set_postfix_str(f"{progress['rowsPerSecond']} lines/s, {progress['phase']}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
