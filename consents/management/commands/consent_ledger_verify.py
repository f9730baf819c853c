"""Verify the consent ledger's hash chains; report every tampered, missing or mismatched record."""

from django.core.management.base import BaseCommand, CommandError

from consents.ledger import VerifyResult, verify_chains


class Command(BaseCommand):
    help = "Verify every profile's consent ledger chain (or those of --client-id); exit 1 when tampering is found."

    def add_arguments(self, parser):
        parser.add_argument("--client-id", type=int, action="append", dest="client_ids", help="repeatable")

    def handle(self, *args, client_ids=None, **options):
        result = VerifyResult()
        problems = 0
        for problem in verify_chains(client_ids=client_ids, result=result):
            problems += 1
            self.stderr.write(f"TAMPERED {problem}")
        summary = f"{result.records} records in {result.profiles} chains checked"
        if problems:
            raise CommandError(f"{summary}: {problems} problem(s) found.")
        self.stdout.write(self.style.SUCCESS(f"{summary}: all intact."))
