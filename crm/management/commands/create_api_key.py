from django.core.management.base import BaseCommand, CommandError

from crm.errors import ValidationFailed
from crm.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print its secret (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", default="read", help="Comma-separated: read, write, export, admin (default: read)"
        )
        parser.add_argument(
            "--rate-limit", default="", help="The key's own limit as N/unit, e.g. 600/min (default: API_RATE_LIMIT)"
        )

    def handle(self, *args, name, scopes, rate_limit, **options):
        try:
            key, secret = api_key_create(
                name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()], rate_limit=rate_limit
            )
        except ValidationFailed as exc:
            raise CommandError(exc.message) from exc
        limit = key.rate_limit or "the default rate limit"
        self.stderr.write(
            f"Created API key '{key.name}' (prefix {key.prefix}, scopes {','.join(key.scopes)}, {limit})."
        )
        self.stderr.write("Store the secret now; it cannot be shown again:")
        self.stdout.write(secret)
