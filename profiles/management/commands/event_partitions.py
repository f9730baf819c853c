"""``manage.py event_partitions``: list the events table's monthly partitions, create them ahead, detach old ones."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from profiles.partitions import event_partitions, event_partitions_detach, event_partitions_ensure


def _month(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m")
    except ValueError:
        raise CommandError(f"--before takes a month as YYYY-MM, not {value!r}.") from None


class Command(BaseCommand):
    help = (
        "The events table's monthly partitions: 'list'; 'ensure [--ahead N]' creates this month's and N more; "
        "'detach --before YYYY-MM [--drop]' detaches (and drops) the months before that one."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "ensure", "detach"])
        parser.add_argument("--ahead", type=int, default=None, help="months beyond the current one (ensure)")
        parser.add_argument("--before", type=_month, help="YYYY-MM: detach the months that end by its start")
        parser.add_argument("--drop", action="store_true", help="drop the detached tables too (detach)")

    def handle(self, *args, action, ahead, before, drop, **options):
        if action == "list":
            for p in event_partitions():
                span = "default" if p.start is None else f"{p.start:%Y-%m-%d} .. {p.end:%Y-%m-%d}"
                self.stdout.write(f"{p.name}\t{span}\t~{p.rows} rows")
        elif action == "ensure":
            created = event_partitions_ensure(months_ahead=ahead)
            self.stdout.write(f"Created {', '.join(created)}" if created else "Every partition was there already.")
        else:
            if before is None:
                raise CommandError("detach needs --before YYYY-MM.")
            names = event_partitions_detach(before=before, drop=drop)
            verb = "Detached and dropped" if drop else "Detached (now ordinary tables)"
            self.stdout.write(f"{verb}: {', '.join(names)}" if names else "No partition ends before that month.")
