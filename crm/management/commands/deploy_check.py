"""``manage.py deploy_check`` (``make deploy-check``): is this installation ready to serve?

Three checks, each reported, the command failing if any fails: Django's ``check --deploy`` (warnings count),
every migration applied on the database, and the static files collected (every file the apps ship is in
``STATIC_ROOT`` with the same content, and the manifest WhiteNoise serves from is there).
"""

import hashlib
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, SystemCheckError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unapplied_migrations() -> list[str]:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def static_problems() -> list[str]:
    root = Path(settings.STATIC_ROOT)
    if not root.is_dir():
        return [f"{root} does not exist: run manage.py collectstatic"]
    problems = []
    backend = settings.STORAGES["staticfiles"]["BACKEND"]
    if "Manifest" in backend and not (root / "staticfiles.json").exists():
        problems.append(f"{root}/staticfiles.json (the manifest) is missing: run manage.py collectstatic")
    seen = set()
    for finder in finders.get_finders():
        for relative, storage in finder.list(["CVS", ".*", "*~"]):
            if relative in seen:
                continue  # the first app's file wins, as collectstatic does
            seen.add(relative)
            collected = root / relative
            if not collected.exists():
                problems.append(f"{relative} is not collected")
            elif collected.stat().st_size != storage.size(relative) or _digest(collected) != _digest(
                Path(storage.path(relative))
            ):
                problems.append(f"{relative} changed since it was collected")
    return problems


class Command(BaseCommand):
    help = "Check that the installation is ready: check --deploy, migrations applied, static files collected."

    def handle(self, *args, **options):
        failures = []
        try:
            call_command("check", deploy=True, fail_level="WARNING", stdout=self.stdout, stderr=self.stderr)
            self.stdout.write("check --deploy: ok")
        except SystemCheckError as exc:
            self.stderr.write(str(exc))
            failures.append("check --deploy")
        if pending := unapplied_migrations():
            self.stderr.write(f"Migrations not applied ({len(pending)}): {', '.join(pending[:10])}")
            failures.append("migrations")
        else:
            self.stdout.write("migrations: all applied")
        if problems := static_problems():
            self.stderr.write(f"Static files ({len(problems)} problems): " + "; ".join(problems[:10]))
            failures.append("static files")
        else:
            self.stdout.write("static files: collected and current")
        if failures:
            raise CommandError(f"Not ready to deploy: {', '.join(failures)}.")
        self.stdout.write("Ready to deploy.")
