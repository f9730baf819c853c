import random

from django.core.management.base import BaseCommand
from faker import Faker

from crm.actors import SYSTEM
from profiles.models import Profile
from profiles.services import ProfileInput, profile_upsert

MOBILE_PREFIXES = [50, 51, 53, 57, 60, 66, 69, 72, 73, 78, 79, 88]  # Polish mobile ranges
SEXES = ["FEMALE", "MALE", "NOT_SPECIFIED", "OTHER"]
LOCALES = ["pl_PL", "en_GB", "de_DE", "fr_FR", "es_ES"]
COUNTRY = {"pl_PL": "PL", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "es_ES": "ES"}


class Command(BaseCommand):
    help = "Create N realistic demo profiles with Faker, through the same services as the API."

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=20261123)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when profiles already exist.")

    def handle(self, *args, profiles, seed, if_empty, **options):
        if if_empty and Profile.objects.exists():
            self.stdout.write("Profiles exist already; demo data not loaded.")
            return
        fake = Faker(LOCALES)
        Faker.seed(seed)
        rng = random.Random(seed)
        created = 0
        for index in range(profiles):
            locale = rng.choice(LOCALES)
            person = fake[locale]
            profile_upsert(data=self._profile(person, locale, rng, index), source="demo", actor=SYSTEM)
            created += 1
            if created % 250 == 0:
                self.stdout.write(f"  {created}/{profiles} profiles")
        self.stdout.write(self.style.SUCCESS(f"Loaded {created} demo profiles."))

    @staticmethod
    def _profile(person, locale: str, rng: random.Random, index: int) -> ProfileInput:
        data = ProfileInput(identifiers={"uuid": person.uuid4()})
        if rng.random() < 0.8:  # a fifth stay anonymous visitors
            first, last = person.first_name(), person.last_name()
            local, domain = person.ascii_free_email().split("@")
            data.identifiers["email"] = f"{local}.{index}@{domain}"
            data.fields = {
                "first_name": first,
                "last_name": last,
                "city": person.city(),
                "country_code": COUNTRY[locale],
                "sex": rng.choice(SEXES),
                "birth_date": person.date_of_birth(minimum_age=18, maximum_age=80),
            }
            if rng.random() < 0.5:
                data.identifiers["customId"] = f"CRM-{100000 + index}"
            data.attributes = {
                "loyaltyPoints": rng.randint(0, 5000),
                "clubMember": rng.random() < 0.3,
                "favouriteCategory": rng.choice(["shoes", "books", "garden", "electronics", "toys"]),
                "lastOrderDate": person.date_between("-2y", "today").isoformat(),
            }
            if rng.random() < 0.5:
                prefix = f"{rng.choice(MOBILE_PREFIXES)}{rng.randint(0, 9)}"
                data.identifiers["phone"] = f"+48 {prefix} {rng.randint(100, 999)} {rng.randint(100, 999)}"
            data.agreements = {"email": rng.random() < 0.6, "sms": rng.random() < 0.3}
        return data
