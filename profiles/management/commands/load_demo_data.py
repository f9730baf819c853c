"""Demo data: a believable online shop, written through the same services as the APIs.

Profiles come in chunks through ``profiles_upsert_many`` (with their agreements: consent states and ledger
records); each chunk's browsing (page visits, product views, searches, carts, e-mail opens) goes in through
``events_insert`` over the last 26 weeks, its orders (some returned) through ``transactions_record`` (commerce
figures follow), its tags through ``tags_add``. A few profiles get more: a later consent change (a second
ledger record), a note, an anonymous visitor's profile merged into them. RFM scores are computed at the end.
Everything is set-based per chunk, so ``--profiles 1000000`` works too (the one-by-one extras are capped).
The first profile is the showcase (the README's screenshot): it gets every kind of content.

Beside the profiles, one example of each other part, each through its app's services: a tracker site for the
address the server is on (``--tracker-origin``, so ``/tracker/demo/`` works at once), a saved import mapping, a
scheduled export and a webhook subscription (both disabled: they point at example hosts).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from faker import Faker

from consents.models import Agreement
from consents.services import consent_set
from crm.actors import SYSTEM
from exports.models import Schedule, ScheduledExport, TargetKind
from exports.services import scheduled_export_save
from imports.services import saved_mapping_save
from profiles.models import Profile, Tag
from profiles.services import ProfileInput
from profiles.services.batch import profiles_upsert_many
from profiles.services.events import NewEvent, events_insert, note_add, profiles_activity_advance
from profiles.services.merge import profile_merge
from profiles.services.tags import tag_create, tags_add
from profiles.services.transactions import TransactionInput, rfm_recompute_all, transactions_record
from segments.membership import segment_fill
from segments.models import Expression, Segment
from segments.services import segment_create
from tracker.models import Site
from tracker.services import site_create
from webhooks.models import Subscription
from webhooks.services import subscription_create

SOURCE = "demo"
ACTOR = SYSTEM
CHUNK = 1000
WEEKS = 26
MOBILE_PREFIXES = [50, 51, 53, 57, 60, 66, 69, 72, 73, 78, 79, 88]  # Polish mobile ranges
SEXES = ["FEMALE", "MALE", "NOT_SPECIFIED", "OTHER"]
LOCALES = ["pl_PL", "en_GB", "de_DE", "fr_FR", "es_ES"]
COUNTRY = {"pl_PL": "PL", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "es_ES": "ES"}
CURRENCY = {"pl_PL": "PLN", "en_GB": "GBP", "de_DE": "EUR", "fr_FR": "EUR", "es_ES": "EUR"}
PRICE_FACTOR = {"PLN": Decimal("4.3"), "GBP": Decimal("0.85"), "EUR": Decimal("1")}
STORES = ["online", "Warszawa Mokotów", "Kraków Galeria", "Berlin Mitte", "London Soho", "Lyon Part-Dieu"]
INTERESTS = ["running", "yoga", "hiking", "cycling", "tennis", "swimming", "outdoor", "fitness"]
CATALOGUE = {  # category -> products (sku, name, price in EUR)
    "shoes": [("SH-101", "Trail runner GTX", 129), ("SH-204", "Road runner 3", 99), ("SH-310", "Court classic", 79)],
    "apparel": [("AP-011", "Merino base layer", 59), ("AP-120", "Rain shell", 149), ("AP-233", "Yoga leggings", 45)],
    "equipment": [("EQ-501", "Trekking poles", 69), ("EQ-612", "Yoga mat pro", 39), ("EQ-720", "Bike computer", 189)],
    "accessories": [("AC-030", "Sports socks", 15), ("AC-145", "Water bottle", 19), ("AC-260", "Running cap", 25)],
}  # fmt: skip
TAGS = [  # name, colour, description
    ("newsletter", "#2e7d32", "Signed up for the newsletter"),
    ("vip", "#c62828", "Top customers"),
    ("loyalty-gold", "#f9a825", "Loyalty programme: gold"),
    ("loyalty-silver", "#78909c", "Loyalty programme: silver"),
    ("app-user", "#1565c0", "Uses the mobile app"),
    ("returning", "#6a1b9a", "Ordered more than once"),
    ("cart-abandoner", "#ef6c00", "Left a cart in the last 30 days"),
    ("runner", "#00838f", "Buys running gear"),
    ("yoga", "#ad1457", "Buys yoga gear"),
    ("black-friday", "#5d4037", "Bought in the Black Friday sale"),
    ("b2b", "#607d8b", "Buys for a company"),
    ("survey-2026", "#558b2f", "Answered the 2026 survey"),
]
DEMO_SEGMENTS = [
    ("VIP customers", {"tag": "vip"}),
    ("Engaged this month", {"event": "page.visit", "op": "gte", "count": 5, "withinDays": 30}),
    ("Big spenders", {"commerce": "totalSpent", "op": "gte", "value": 500}),
    (
        "Mailable, never ordered",
        {"all": [{"agreement": "email", "state": "granted"}, {"commerce": "totalOrders", "op": "eq", "value": 0}]},
    ),
]
DEMO_EXPRESSIONS = [  # name, label, expression, type, format
    ("averageOrder", "Average order", "totalSpent / max(totalOrders, 1)", "number", "currency"),
    ("visits30", "Visits, 30 days", 'events("page.visit", 30)', "number", "integer"),
    ("browsesALot", "Browses a lot", 'events("page.visit", 30) > 5', "boolean", "yesno"),
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 "
    "Edg/142.0.0.0",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 "
    "Safari/604.1",
]
PAGES = ["/", "/sale", "/new-in", "/stores", "/help/delivery", "/blog/how-to-choose-running-shoes", "/account"]
SEARCHES = ["running shoes", "rain jacket", "yoga mat", "socks", "gift card", "trail", "bike"]
NOTES = [
    "Called about a late delivery; sent a 10% voucher.",
    "Asked for the size chart of the trail runners. Prefers e-mail over phone.",
    "Complained about the rain jacket's zip; exchanged in store.",
    "Interested in the B2B price list for a running club (12 pairs).",
    "VIP evening invitation accepted.",
]
DEMO_SITE = "Demo shop (this server)"
DEMO_MAPPING = (
    "Shop newsletter sign-ups (CSV)",
    "csv",
    {
        "columns": {
            "E-mail": {"to": "email", "transform": ["trim", "lower"]},
            "First name": {"to": "firstName", "transform": ["trim", "title"]},
            "Last name": {"to": "lastName", "transform": ["trim", "title"]},
            "Phone": {"to": "phone"},
            "Newsletter": {"to": "agreements.email", "map": {"Y": True, "N": False}},
            "Favourite sport": {"to": "attributes.interests", "split": "|"},
            "Groups": {"to": "tags", "split": "|"},
        },
        "constants": {"attributes.importSource": "shop-signups"},
    },
)
DEMO_EXPORT = "Newsletter list to the mailing tool (example)"
DEMO_WEBHOOK_URL = "https://hooks.example.com/crm/profiles"
# The share of extras that need one service call per profile, and their caps for very large loads.
CONSENT_CHANGES, CONSENT_CHANGES_MAX = 0.08, 2000
NOTE_SHARE, NOTES_MAX = 0.03, 500
MERGE_SHARE, MERGES_MAX = 0.01, 100


@dataclass
class Shopper:
    """What the generator decided about one profile, used again after it is written (its clientId is known)."""

    index: int
    locale: str
    recognized: bool
    category: str
    activity: float  # sessions per week
    agents: list[str]
    tags: set[str] = field(default_factory=set)
    client_id: int = 0


class Command(BaseCommand):
    help = "Create N demo profiles of an online sports shop (browsing, orders, tags, consents) through the services."

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=20261123)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when profiles already exist.")
        parser.add_argument(
            "--tracker-origin",
            default="http://127.0.0.1:8000",
            help="The address the server is on (scheme, host, port): the demo tracker site's allowed origin, so "
            "/tracker/demo/ sends from there (default http://127.0.0.1:8000; localhost and 127.0.0.1 both count).",
        )

    def handle(self, *args, profiles, seed, if_empty, tracker_origin, **options):
        if if_empty and Profile.objects.exists():
            self.stdout.write("Profiles exist already; demo data not loaded.")
            return
        started = time.perf_counter()
        fake = Faker(LOCALES)
        Faker.seed(seed)
        rng = random.Random(seed)
        now = timezone.now().replace(microsecond=0)
        tags = self._tags()
        agreements = {a.key: a for a in Agreement.objects.filter(is_active=True)}
        extras = {"consents": 0, "notes": 0, "merges": 0}
        counts = {"events": 0, "orders": 0}
        showcase = None
        for start in range(0, profiles, CHUNK):
            size = min(CHUNK, profiles - start)
            with transaction.atomic():
                shoppers, inputs = [], []
                for index in range(start, start + size):
                    shopper, data = self._profile(fake, rng, index)
                    shoppers.append(shopper)
                    inputs.append(data)
                results = profiles_upsert_many(items=inputs, source=SOURCE, actor=ACTOR)
                for shopper, result in zip(shoppers, results, strict=True):
                    if result.status == "failed":
                        raise RuntimeError(f"demo profile {shopper.index}: {result.error}")
                    shopper.client_id = result.client_id
                counts["events"] += self._browsing(shoppers, rng, now)
                counts["orders"] += self._orders(shoppers, rng, now)
                self._tag(shoppers, tags)
                self._extras(shoppers, rng, now, agreements, extras, profiles)
                if start == 0:
                    showcase = shoppers[0].client_id
            done = start + size
            if done % 10_000 == 0 or done == profiles:
                self.stdout.write(f"  {done:,}/{profiles:,} profiles ({time.perf_counter() - started:.0f} s)")
        scored = rfm_recompute_all() if profiles else 0
        self._segments_and_expressions()
        examples = self._examples(tracker_origin)
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {profiles:,} demo profiles in {time.perf_counter() - started:.1f} s: {counts['events']:,} "
                f"browsing events, {counts['orders']:,} orders ({scored:,} customers scored for RFM), "
                f"{extras['consents']} later consent changes, {extras['notes']} notes, {extras['merges']} merges."
                + (f" Showcase profile: clientId {showcase}." if showcase else "")
            )
        )
        for line in examples:
            self.stdout.write(f"  {line}")

    @staticmethod
    def _segments_and_expressions() -> None:
        """A few saved segments (filled now) and card expressions, once: the segments list and the card's right
        column show something from the start."""

        if not Segment.objects.exists():
            for name, tree in DEMO_SEGMENTS:
                segment_fill(segment=segment_create(name=name, tree=tree, actor=ACTOR))
        if not Expression.objects.exists():
            for position, (name, label, text, type_, fmt) in enumerate(DEMO_EXPRESSIONS):
                Expression.objects.create(
                    name=name, label=label, expression=text, type=type_, format=fmt, position=position
                )

    @staticmethod
    def _examples(tracker_origin: str) -> list[str]:
        """One of each other part, through its app's services, each made once: what was made, one line each."""
        made = []
        if not Site.objects.exists():
            site = site_create(name=DEMO_SITE, allowed_origins=_loopback_twins(tracker_origin))
            made.append(f"Tracker site {site.name!r} for {', '.join(site.allowed_origins)}: try /tracker/demo/")
        name, fmt, mapping = DEMO_MAPPING
        saved_mapping_save(name=name, mapping=mapping, fmt=fmt)
        made.append(f"Saved import mapping {name!r}")
        if not ScheduledExport.objects.filter(name=DEMO_EXPORT).exists():
            export = ScheduledExport(
                name=DEMO_EXPORT,
                is_active=False,
                filters="tags=newsletter",
                incremental=True,
                schedule=Schedule.DAILY,
                daily_at=time_of_day(6, 0),
                target=TargetKind.HTTP,
                http_url="https://mailer.example.com/imports/crm",
            )
            scheduled_export_save(export=export, actor=ACTOR)
            made.append(f"Scheduled export {DEMO_EXPORT!r} (disabled)")
        if not Subscription.objects.filter(url=DEMO_WEBHOOK_URL).exists():
            subscription_create(
                url=DEMO_WEBHOOK_URL,
                events=["profile.created", "profile.updated", "consent.changed", "tag.added"],
                enabled=False,
            )
            made.append(f"Webhook subscription to {DEMO_WEBHOOK_URL} (disabled)")
        return made

    # --- profiles ---------------------------------------------------------------------------------------

    @staticmethod
    def _tags() -> dict[str, Tag]:
        existing = {t.name.lower(): t for t in Tag.objects.all()}
        tags = {}
        for name, color, description in TAGS:
            tags[name] = existing.get(name) or tag_create(name=name, color=color, description=description, actor=ACTOR)
        return tags

    @staticmethod
    def _profile(fake, rng: random.Random, index: int) -> tuple[Shopper, ProfileInput]:
        locale = rng.choice(LOCALES)
        person = fake[locale]
        showcase = index == 0
        recognized = showcase or rng.random() < 0.8  # a fifth stay anonymous visitors
        shopper = Shopper(
            index=index,
            locale=locale,
            recognized=recognized,
            category=rng.choice(list(CATALOGUE)),
            activity=2.5 if showcase else rng.choice([0.2, 0.4, 0.7, 1.0, 1.5]) * (1 if recognized else 0.5),
            agents=rng.sample(USER_AGENTS, 2 if showcase or rng.random() < 0.4 else 1),
        )
        data = ProfileInput(identifiers={"uuid": person.uuid4()})
        if not recognized:
            return shopper, data
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
        if showcase or rng.random() < 0.5:
            data.identifiers["customId"] = f"CRM-{100000 + index}"
        if showcase or rng.random() < 0.5:
            prefix = f"{rng.choice(MOBILE_PREFIXES)}{rng.randint(0, 9)}"
            data.identifiers["phone"] = f"+48 {prefix} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        member = showcase or rng.random() < 0.35
        data.attributes = {
            "favouriteCategory": shopper.category,
            "preferredStore": rng.choice(STORES),
            "interests": sorted(rng.sample(INTERESTS, rng.randint(1, 3))),
            "clubMember": member,
            "newsletterFrequency": rng.choice(["weekly", "monthly", "never"]),
        }
        if member:
            data.attributes["loyaltyPoints"] = rng.randint(50, 6000)
            data.attributes["memberSince"] = person.date_between("-6y", "-30d").isoformat()
        if rng.random() < 0.3:
            data.attributes["shoeSizeEU"] = rng.choice([37, 38, 39, 40, 41, 42, 43, 44, 45, 46])
        # Decisions: most on e-mail, fewer on the other channels (the rest never decided). Each decision is a
        # consent_set call with its ledger record, the slowest part of the load: about 1.3 per known profile.
        data.agreements = {}
        if showcase or rng.random() < 0.85:
            data.agreements["email"] = showcase or rng.random() < 0.75
        for key, decided, granted in (("sms", 0.3, 0.5), ("push", 0.12, 0.7), ("webPush", 0.06, 0.4)):
            if showcase or rng.random() < decided:
                data.agreements[key] = rng.random() < granted
        if member:
            shopper.tags.add("loyalty-gold" if data.attributes["loyaltyPoints"] > 3000 else "loyalty-silver")
        if data.agreements.get("email"):
            shopper.tags.add("newsletter")
        if data.agreements.get("push") or rng.random() < 0.15:
            shopper.tags.add("app-user")
        if rng.random() < 0.05:
            shopper.tags.add("survey-2026")
        if rng.random() < 0.03:
            shopper.tags.add("b2b")
        return shopper, data

    # --- activity ---------------------------------------------------------------------------------------

    @staticmethod
    def _moment(rng: random.Random, now: datetime) -> datetime:
        """A time in the last 26 weeks, more of them recent (a growing shop), in waking hours."""
        days = WEEKS * 7 * (1 - rng.random() ** 0.7)
        moment = now - timedelta(days=days)
        return moment.replace(hour=rng.choice(range(7, 23)), minute=rng.randrange(60), second=rng.randrange(60))

    def _browsing(self, shoppers: list[Shopper], rng: random.Random, now: datetime) -> int:
        rows: list[NewEvent] = []
        activity: dict[int, datetime] = {}
        for shopper in shoppers:
            sessions = max(1, round(shopper.activity * WEEKS * rng.uniform(0.3, 1.0) / 4))
            for _ in range(sessions):
                at = min(self._moment(rng, now), now - timedelta(minutes=5))
                agent = rng.choice(shopper.agents)
                category = shopper.category if rng.random() < 0.7 else rng.choice(list(CATALOGUE))

                def add(action, label, params, at=at, agent=agent, shopper=shopper):
                    rows.append(
                        NewEvent(
                            profile_id=shopper.client_id,
                            action=action,
                            label=label,
                            time=at,
                            params={**params, "userAgent": agent},
                            source="web",
                            actor="",
                            is_system=False,
                        )
                    )
                    activity[shopper.client_id] = max(activity.get(shopper.client_id, at), at)

                add("page.visit", "Page visit", {"url": rng.choice(PAGES)})
                for _ in range(rng.randint(0, 3)):
                    at += timedelta(seconds=rng.randint(20, 240))
                    sku, name, price = rng.choice(CATALOGUE[category])
                    add("product.view", name, {"sku": sku, "category": category, "price": price})
                if rng.random() < 0.25:
                    at += timedelta(seconds=rng.randint(10, 120))
                    add("search", "Search", {"query": rng.choice(SEARCHES)})
                if rng.random() < 0.2:
                    at += timedelta(seconds=rng.randint(30, 300))
                    sku, name, price = rng.choice(CATALOGUE[category])
                    add("product.addToCart", name, {"sku": sku, "price": price, "quantity": 1})
                    if at > now - timedelta(days=30) and rng.random() < 0.5:
                        shopper.tags.add("cart-abandoner")
                if shopper.recognized and rng.random() < 0.15:
                    add("email.open", "Newsletter opened", {"campaign": f"weekly-{at:%Y-%W}"})
                    if rng.random() < 0.4:
                        add("email.click", "Newsletter link clicked", {"campaign": f"weekly-{at:%Y-%W}"})
        events_insert(rows=rows)
        profiles_activity_advance(activity=activity)
        return len(rows)

    def _orders(self, shoppers: list[Shopper], rng: random.Random, now: datetime) -> int:
        orders: list[TransactionInput] = []
        for shopper in shoppers:
            if not shopper.recognized or (shopper.index and rng.random() < 0.35):
                continue  # anonymous visitors and a third of the known profiles never ordered
            count = 4 if not shopper.index else rng.choices([1, 2, 3, 5, 8], weights=[45, 25, 15, 10, 5])[0]
            currency = CURRENCY[shopper.locale]
            for n in range(count):
                at = min(self._moment(rng, now), now - timedelta(hours=1))
                lines = []
                for _ in range(rng.randint(1, 3)):
                    category = shopper.category if rng.random() < 0.6 else rng.choice(list(CATALOGUE))
                    sku, name, price = rng.choice(CATALOGUE[category])
                    local = (Decimal(price) * PRICE_FACTOR[currency]).quantize(Decimal("1"))
                    lines.append({"sku": sku, "name": name, "price": str(local), "quantity": rng.choice([1, 1, 1, 2])})
                    if category in ("shoes",):
                        shopper.tags.add("runner")
                    if sku in ("AP-233", "EQ-612"):
                        shopper.tags.add("yoga")
                value = sum(Decimal(line["price"]) * line["quantity"] for line in lines)
                returned = (n == 1 and not shopper.index) or rng.random() < 0.08
                if at.month == 11 and at.day >= 20:
                    shopper.tags.add("black-friday")
                orders.append(
                    TransactionInput(
                        order_id=f"DEMO-{shopper.index:07d}-{n + 1}",
                        client={"clientId": shopper.client_id},
                        value=str(value),
                        currency=currency,
                        status="returned" if returned else "completed",
                        time=at,
                        items=lines,
                        metadata={"store": rng.choice(STORES), "payment": rng.choice(["card", "blik", "paypal"])},
                    )
                )
            if count > 1:
                shopper.tags.add("returning")
            if count >= 5:
                shopper.tags.add("vip")
        if orders:
            transactions_record(items=orders, source=SOURCE, actor=ACTOR)
        return len(orders)

    @staticmethod
    def _tag(shoppers: list[Shopper], tags: dict[str, Tag]) -> None:
        for name, tag in tags.items():
            ids = [s.client_id for s in shoppers if name in s.tags]
            if ids:
                tags_add(profiles=ids, tags=[tag], source=SOURCE, actor=ACTOR)

    def _extras(self, shoppers, rng: random.Random, now, agreements, done: dict[str, int], total: int) -> None:
        """The one-profile-at-a-time services: later consent changes, notes, merged anonymous visitors."""
        known = [s for s in shoppers if s.recognized]
        if not known:
            return
        profiles = {p.pk: p for p in Profile.objects.filter(pk__in=[s.client_id for s in known])}

        def pick(share: float, cap: int, key: str) -> list[Shopper]:
            wanted = max(0, min(max(1, round(len(shoppers) * share)), cap - done[key]))
            chosen = rng.sample(known, min(wanted, len(known)))
            showcase = [s for s in known if s.index == 0]
            return showcase + [s for s in chosen if s.index != 0]

        for shopper in pick(CONSENT_CHANGES, CONSENT_CHANGES_MAX, "consents"):
            # A later decision: a second ledger record (said yes to SMS after all, or unsubscribed from e-mail).
            key, state = ("sms", "granted") if shopper.index == 0 or rng.random() < 0.5 else ("email", "denied")
            if consent_set(profile=profiles[shopper.client_id], agreement=agreements[key], state=state, source="web"):
                done["consents"] += 1
        for shopper in pick(NOTE_SHARE, NOTES_MAX, "notes"):
            profile = profiles[shopper.client_id]
            note_add(profile=profile, text=rng.choice(NOTES), author="anna@shop.example", source="admin")
            done["notes"] += 1
        for shopper in pick(MERGE_SHARE, MERGES_MAX, "merges"):
            # An anonymous visitor (another browser) who later logged in: its profile is merged into the customer's.
            visitor_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            visitor = profiles_upsert_many(items=[ProfileInput(identifiers={"uuid": visitor_uuid})], source="web")[0]
            agent = rng.choice(USER_AGENTS)
            at = now - timedelta(days=rng.randint(2, 60), hours=rng.randint(0, 12))
            sku, name, price = CATALOGUE[shopper.category][0]
            events_insert(
                rows=[
                    NewEvent(
                        profile_id=visitor.client_id,
                        action=action,
                        label=label,
                        time=at + timedelta(minutes=minutes),
                        params={**params, "userAgent": agent},
                        source="web",
                        is_system=False,
                    )
                    for minutes, action, label, params in [
                        (0, "page.visit", "Page visit", {"url": "/"}),
                        (2, "product.view", name, {"sku": sku, "category": shopper.category, "price": price}),
                    ]
                ]
            )
            profile_merge(
                survivor=profiles[shopper.client_id], others=[Profile.objects.get(pk=visitor.client_id)], source="web"
            )
            done["merges"] += 1


def _loopback_twins(origin: str) -> list[str]:
    """``origin``, and for 127.0.0.1 or localhost the other name too: a browser sends whichever the address bar has."""
    parts = urlsplit(origin)
    twins = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    if parts.hostname not in twins:
        return [origin]
    port = f":{parts.port}" if parts.port else ""
    return [origin, f"{parts.scheme}://{twins[parts.hostname]}{port}"]
