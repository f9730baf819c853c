"""The profile card's data: one function per panel, each a fixed number of queries whatever the profile's history.

``card_context`` gathers them for ``ProfileAdmin.change_view(extra_context=…)``; the panels are small templates
under ``templates/admin/profiles/profile/card/``. Nothing here writes: side actions are in ``card_actions``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.timesince import timesince

from consents.models import ConsentStatus
from crm.actors import actor_display
from crm.errors import DomainError
from profiles import selectors
from profiles.models import Event, EventAction, IdentifierKind, Profile, Tag
from segments.expressions import profile_expressions
from segments.services import profile_segments

TIMELINE_PAGE = 25
TAG_SUGGESTIONS = 200
EMAIL_SENT = "email.send"  # the custom event a message sent from the card records


# --- permissions: what the card shows controls for ------------------------------------------------------


def card_permissions(user) -> dict[str, bool]:
    """Which side actions this user may use; the handlers check the same names (``card_actions``)."""
    perms = user.get_all_permissions()  # one query for user and group permissions, cached on the user

    def has(name: str) -> bool:
        return user.is_active and (user.is_superuser or name in perms)

    change = has("profiles.change_profile")
    return {
        "delete": has("profiles.delete_profile"),
        "edit": change,
        "tag": change,
        "create_tag": change and has("profiles.add_tag"),
        "note": has("profiles.add_event"),
        "event": has("profiles.add_event"),
        "mail": change and has("profiles.add_event"),
        "consent": has("consents.change_consentstate"),
        "ledger": has("consents.view_consentrecord"),
        "unmerge": has("profiles.change_mergerecord"),
        "export": has("profiles.export_profile"),
    }


# --- devices and browsers from user agents --------------------------------------------------------------

_BROWSERS = [
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
    ("Internet Explorer", re.compile(r"(?:MSIE |Trident/.*rv:)(\d+)")),
]
_SYSTEMS = [
    ("iPadOS", re.compile(r"iPad")),
    ("iOS", re.compile(r"iPhone|iPod")),
    ("Android", re.compile(r"Android")),
    ("Windows", re.compile(r"Windows")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux")),
]
_BOT = re.compile(r"bot|crawl|spider|slurp|curl|wget|python-requests", re.IGNORECASE)


@dataclass
class Device:
    kind: str  # desktop, mobile, tablet, bot, other
    system: str
    browser: str
    events: int = 0
    last: datetime | None = None
    samples: list[str] = field(default_factory=list)


def user_agent_parse(ua: str) -> tuple[str, str, str]:
    """(device kind, operating system, browser) of a user agent string; a small table, not a full parser."""
    if _BOT.search(ua):
        return "bot", "", Truncator(ua).chars(40)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(ua)), "")
    browser = next((f"{name} {m.group(1)}" for name, pattern in _BROWSERS if (m := pattern.search(ua))), "")
    if system in ("iPadOS",) or (system == "Android" and "Mobile" not in ua):
        kind = "tablet"
    elif system in ("iOS", "Android") or "Mobi" in ua:
        kind = "mobile"
    elif system:
        kind = "desktop"
    else:
        kind = "other"
    return kind, system or "unknown system", browser or Truncator(ua).chars(40)


def profile_devices(profile_id: int) -> list[Device]:
    """The profile's devices and browsers, grouped from the user agents its events carry."""
    grouped: dict[tuple[str, str, str], Device] = {}
    for row in selectors.profile_user_agents(profile_id=profile_id):
        key = user_agent_parse(row["ua"])
        device = grouped.setdefault(key, Device(*key))
        device.events += row["events"]
        device.last = max(filter(None, [device.last, row["last"]]))
        device.samples.append(row["ua"])
    return sorted(grouped.values(), key=lambda d: d.last or timezone.now(), reverse=True)


# --- the timeline: readable entries -------------------------------------------------------------------


def _value(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    return Truncator(str(value)).chars(60)


@dataclass
class Entry:
    event: Event
    kind: str  # css modifier: system, custom, note, tag, consent, change, mail
    title: str
    lines: list[str]
    body: str = ""

    @property
    def by(self) -> str:
        return actor_display(self.event.actor)


def timeline_entry(event: Event) -> Entry:
    """A sentence for one timeline event ("Tag VIP added", "city: Warsaw → Kraków"), and its details."""
    params = event.params if isinstance(event.params, dict) else {}
    action = event.action
    if action == EventAction.PROFILE_UPDATED:
        changes = params.get("changes") or {}
        lines = [f"{name}: {_value(c.get('old'))} → {_value(c.get('new'))}" for name, c in sorted(changes.items())]
        return Entry(event, "change", "Profile changed", lines)
    if action in (EventAction.TAG_ADDED, EventAction.TAG_REMOVED):
        verb = "added" if action == EventAction.TAG_ADDED else "removed"
        return Entry(event, "tag", f"Tag {params.get('name') or event.label} {verb}", [])
    if action == EventAction.CONSENT_CHANGED:
        old, new = params.get("old") or "none", params.get("new") or "none"
        label = new.replace("_", " ")
        return Entry(event, "consent", f"Consent {params.get('agreement', '')}: {label}", [f"{old} → {new}"])
    if action == EventAction.NOTE_ADDED:
        return Entry(event, "note", "Note", [], body=params.get("text") or event.label)
    if action == EMAIL_SENT:
        subject = params.get("subject", event.label)
        return Entry(event, "mail", f"E-mail sent: {subject}", [], body=params.get("text", ""))
    if action == EventAction.PROFILE_IDENTIFIED:
        who = ", ".join(f"{k} {v}" for k, v in params.items())
        return Entry(event, "system", "Profile recognized", [who] if who else [])
    if action in EventAction.SYSTEM:
        return Entry(event, "system", event.label or action, [])
    # User agents are summed up in the devices panel; here they would only be noise.
    shown = [(k, v) for k, v in params.items() if k not in selectors.USER_AGENT_KEYS]
    lines = [f"{k}: {_value(v)}" for k, v in shown[:6]]
    if len(shown) > 6:
        lines.append(f"… {len(shown) - 6} more")
    title = f"{action} · {event.label}" if event.label else action
    return Entry(event, "system" if event.is_system else "custom", title, lines)


@dataclass
class Timeline:
    entries: list[Entry]
    next_cursor: str | None
    actions: list[str]
    action: str
    kind: str  # "", "system" or "custom"
    cursor: str
    error: str = ""


def profile_timeline_page(profile_id: int, params) -> Timeline:
    """One page of the card's timeline from the request's ``tl_*`` parameters (filters and cursor)."""
    action = params.get("tl_action", "").strip()
    kind = params.get("tl_kind", "")
    cursor = params.get("tl_cursor", "")
    system = {"system": True, "custom": False}.get(kind)
    error = ""
    try:
        page = selectors.profile_timeline(
            profile_id=profile_id,
            actions=[action] if action else None,
            system=system,
            cursor=cursor or None,
            limit=TIMELINE_PAGE,
        )
    except DomainError as exc:
        error, cursor = exc.message, ""
        page = selectors.profile_timeline(profile_id=profile_id, actions=[action] if action else None, system=system)
    return Timeline(
        entries=[timeline_entry(e) for e in page.events],
        next_cursor=page.next_cursor,
        actions=selectors.profile_actions(profile_id=profile_id),
        action=action,
        kind=kind if system is not None else "",
        cursor=cursor,
        error=error,
    )


# --- the activity chart: an inline SVG --------------------------------------------------------------


def activity_chart(weeks: list[tuple[datetime, int]]) -> str:
    """Events per week as bars in an inline SVG (coloured by the admin's CSS variables, so dark mode follows)."""
    width, height, top, bottom = 312, 96, 14, 16
    slot = width / max(len(weeks), 1)
    peak = max((n for _, n in weeks), default=0)
    bars = []
    for index, (start, count) in enumerate(weeks):
        h = 0 if not peak else max(2.0, (height - top - bottom) * count / peak) if count else 0
        x = index * slot + 1.5
        y = height - bottom - h
        tip = f"Week of {date_format(start, 'j M Y')}: {count} event{'s' if count != 1 else ''}"
        bars.append((f"{x:.1f}", f"{y:.1f}", f"{slot - 3:.1f}", f"{h:.1f}", tip))
    baseline = height - bottom
    first = date_format(weeks[0][0], "j M") if weeks else ""
    return format_html(
        '<svg class="card-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{label}" preserveAspectRatio="none">'
        '<line class="card-chart-axis" x1="0" y1="{b}" x2="{w}" y2="{b}"></line>'
        '<text class="card-chart-peak" x="0" y="9">{peak}</text>'
        '<text class="card-chart-date" x="0" y="{h}">{first}</text>'
        '<text class="card-chart-date" x="{w}" y="{h}" text-anchor="end">this week</text>'
        "{bars}</svg>",
        w=width,
        h=height,
        b=baseline,
        label=f"Events per week over the last {len(weeks)} weeks, at most {peak} in a week",
        peak=f"max {peak}/week" if peak else "no events",
        first=first,
        bars=format_html_join(
            "",
            '<rect class="card-chart-bar" x="{}" y="{}" width="{}" height="{}" rx="1.5"><title>{}</title></rect>',
            bars,
        ),
    )


# --- everything the card shows ---------------------------------------------------------------------------


def identifier_rows(profile: Profile) -> list[dict[str, Any]]:
    main = {
        (IdentifierKind.EMAIL, profile.email),
        (IdentifierKind.PHONE, profile.phone),
        (IdentifierKind.CUSTOM_ID, profile.custom_id),
        (IdentifierKind.UUID, profile.uuid),
    }
    order = {kind: i for i, kind in enumerate(IdentifierKind.values)}
    rows = sorted(profile.identifiers.all(), key=lambda i: (order.get(i.kind, 9), i.first_seen, i.pk))
    return [
        {"kind": i.get_kind_display(), "value": i.value, "main": (i.kind, i.value) in main, "identifier": i}
        for i in rows
    ]


def consent_rows(profile: Profile) -> list[dict[str, Any]]:
    rows = []
    for agreement, state in selectors.profile_consent_states(profile_id=profile.pk):
        choices = [ConsentStatus.GRANTED, ConsentStatus.DENIED]
        if agreement.requires_double_opt_in or (state and state.status == ConsentStatus.AWAITING):
            choices.append(ConsentStatus.AWAITING)
        rows.append(
            {
                "agreement": agreement,
                "status": state.status if state else "",
                "status_label": state.get_status_display() if state else "not given",
                "changed_at": state.changed_at if state else None,
                "source": state.source if state else "",
                "choices": [(c.value, c.label) for c in choices],
            }
        )
    return rows


def merge_rows(profile: Profile) -> list[dict[str, Any]]:
    rows = []
    for record in selectors.profile_merge_history(profile_id=profile.pk):
        snap = (record.snapshot or {}).get("profile", {})
        rows.append(
            {
                "record": record,
                "label": snap.get("email") or snap.get("custom_id") or snap.get("uuid") or "",
                "undone": record.undone_at is not None,
                "reason": merge_sentence(record),
            }
        )
    return rows


def merge_sentence(record) -> str:
    """Why a merge happened, in one sentence: the identifiers that linked the profiles and the write."""
    reason = record.reason or {}
    links = reason.get("links") or []
    write = reason.get("write") or {}
    by = {}
    for link in links:
        by.setdefault(link["clientId"], []).append(f"{link['kind']} {link['value']}")
    if record.forced or write.get("forced"):
        sentence = f"Merged by hand (forced) into #{record.survivor_client_id}"
    elif by:
        named = "; ".join(f"{', '.join(values)} named #{pid}" for pid, values in sorted(by.items()))
        sentence = f"One write named both profiles: {named}"
    else:
        sentence = f"Merged into #{record.survivor_client_id}"
    origin = ", ".join(
        part
        for part in (
            write.get("source") or record.source,
            write.get("actor") or record.actor,
            f"request {write['requestId']}" if write.get("requestId") else "",
        )
        if part
    )
    return f"{sentence} ({origin})." if origin else f"{sentence}."


def aggregate_rows(aggregates: dict[str, Any]) -> list[dict[str, Any]]:
    """Per action and window, plus a total row first."""
    counts = aggregates["counts"]
    windows = [f"{d}d" for d in selectors.AGGREGATE_WINDOWS]
    totals: dict[str, int] = defaultdict(int)
    for per_window in counts.values():
        for window in windows:
            totals[window] += per_window.get(window, 0)
    rows = [{"action": "all events", "total": True, "counts": [totals[w] for w in windows]}]
    busiest = sorted(counts.items(), key=lambda item: (-item[1].get(windows[-1], 0), item[0]))
    rows += [{"action": a, "total": False, "counts": [c.get(w, 0) for w in windows]} for a, c in busiest[:8]]
    return rows


def card_context(request, profile: Profile) -> dict[str, Any]:
    """Everything the three columns show, for ``change_view(extra_context=…)``."""
    perms = card_permissions(request.user)
    tags = list(profile.tags.order_by("name"))
    aggregates = selectors.profile_aggregates(profile_id=profile.pk)
    suggestions = (
        list(Tag.objects.exclude(pk__in=[t.pk for t in tags]).values_list("name", flat=True)[:TAG_SUGGESTIONS])
        if perms["tag"]
        else []
    )
    consents = consent_rows(profile)
    rows = aggregate_rows(aggregates)
    windows = [f"{d} days" for d in selectors.AGGREGATE_WINDOWS]
    email_granted = any(row["agreement"].key == "email" and row["status"] == ConsentStatus.GRANTED for row in consents)
    if not profile.email:
        mail_blocked = "The profile has no e-mail address."
    elif not email_granted:
        mail_blocked = "The profile has not granted the e-mail agreement: marketing e-mail cannot be sent."
    else:
        mail_blocked = ""
    base = f"admin:{Profile._meta.app_label}_{Profile._meta.model_name}"
    urls = {
        name: reverse(f"{base}_card_{name}", args=[profile.pk])
        for name in ("tag_add", "tag_remove", "note", "event", "consent", "mail")
    }
    return {
        "card": {
            "perms": perms,
            "urls": urls,
            "unmerge_url": reverse(f"{base}_card_unmerge", args=[profile.pk]),
            "download_url": reverse(f"{base}_card_download", args=[profile.pk]),
            "delete_url": reverse(f"{base}_delete", args=[profile.pk]) if perms.get("delete") else "",
            "ledger_url": reverse("admin:consents_consentrecord_changelist") + f"?client_id={profile.pk}",
            "identifiers": identifier_rows(profile),
            "devices": profile_devices(profile.pk),
            "consents": consents,
            "tags": tags,
            "tag_suggestions": suggestions,
            "timeline": profile_timeline_page(profile.pk, request.GET),
            "aggregates": aggregates,
            "aggregate_rows": rows,
            "windows": windows,
            "window_totals": list(zip(windows, rows[0]["counts"], strict=True)),
            "last_event_ago": timesince(aggregates["lastEventTime"], depth=1) if aggregates["lastEventTime"] else "",
            "commerce": aggregates["commerce"],
            "chart": activity_chart(selectors.profile_weekly_activity(profile_id=profile.pk)),
            "chart_weeks": selectors.ACTIVITY_WEEKS,
            "merges": merge_rows(profile),
            "mail_blocked": mail_blocked,
            "recognized": not profile.anonymous,
            "segments": profile_segments(profile_id=profile.pk),
            "expressions": profile_expressions(profile),
        }
    }
