from django.core.management.base import BaseCommand, CommandError

from crm.errors import ValidationFailed
from crm.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print its secret (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", default="read", help="Comma-separated: read, write, admin (default: read)")

    def handle(self, *args, name, scopes, **options):
        try:
            key, secret = api_key_create(name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()])
        except ValidationFailed as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(f"Created API key '{key.name}' (prefix {key.prefix}, scopes {','.join(key.scopes)}).")
        self.stderr.write("Store the secret now; it cannot be shown again:")
        self.stdout.write(secret)
