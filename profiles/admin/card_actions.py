"""The card's side actions: small POST forms handled by admin URLs (``ProfileAdmin.get_urls``).

Each view checks the permission the card checked before showing its control (``card.card_permissions``),
calls one service, reports the outcome as an admin message and returns to the card (keeping the timeline's
filters). CSRF and staff login come from ``admin_site.admin_view``; every write goes through the services,
so the card records the same events and ledger rows as the APIs.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from consents.context import RequestMeta
from consents.mail import marketing_email_send
from consents.models import Agreement
from consents.selectors import can_contact
from consents.services import consent_set
from crm.actors import actor_of
from crm.errors import DomainError
from privacy.services import profile_export
from profiles.admin.card import EMAIL_SENT, card_permissions
from profiles.models import Profile, Tag
from profiles.services.events import EventInput, event_record, note_add
from profiles.services.merge import profile_unmerge
from profiles.services.tags import tag_create, tags_add, tags_remove

SOURCE = "admin"


class TagForm(forms.Form):
    name = forms.CharField(max_length=64, strip=True)


class NoteForm(forms.Form):
    text = forms.CharField(strip=True)


class EventForm(forms.Form):
    action = forms.CharField(max_length=64, strip=True)
    label = forms.CharField(max_length=256, required=False, strip=True)
    params = forms.JSONField(required=False)

    def clean_params(self):
        params = self.cleaned_data.get("params")
        if params in (None, ""):
            return {}
        if not isinstance(params, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"sku": "A-1"}.')
        return params


class ConsentForm(forms.Form):
    agreement = forms.IntegerField()
    state = forms.CharField(max_length=32, required=False)  # empty: the "choose" entry, nothing to do


class MailForm(forms.Form):
    subject = forms.CharField(max_length=200, strip=True)
    text = forms.CharField(strip=True)


class UnmergeForm(forms.Form):
    merged_client_id = forms.IntegerField()


def _actor(request) -> str:
    return actor_of(request.user)


def _back(request, profile: Profile, anchor: str = ""):
    """To the card, or to the card URL the form came from (same host only: it carries the timeline filters)."""
    default = reverse("admin:profiles_profile_change", args=[profile.pk])
    target = request.POST.get("next", "")
    if not (target.startswith(default) and url_has_allowed_host_and_scheme(target, allowed_hosts=None)):
        target = default
    return HttpResponseRedirect(target + (f"#{anchor}" if anchor and "#" not in target else ""))


def _form_errors(request, form: forms.Form, what: str) -> None:
    for field, errors in form.errors.items():
        name = "" if field == "__all__" else f"{field}: "
        messages.error(request, f"{what}: {name}{' '.join(errors)}")


class CardActions:
    """Bound to one ProfileAdmin; each method is one admin URL (see ``urls``)."""

    def __init__(self, model_admin):
        self.model_admin = model_admin

    def urls(self):
        from django.urls import path

        wrap = self.model_admin.admin_site.admin_view
        info = f"{Profile._meta.app_label}_{Profile._meta.model_name}"
        views = {
            "tag_add": self.tag_add,
            "tag_remove": self.tag_remove,
            "note": self.note,
            "event": self.event,
            "consent": self.consent,
            "mail": self.mail,
            "unmerge": self.unmerge,
        }
        return [
            path(
                f"<int:object_id>/card/{name.replace('_', '-')}/", wrap(require_POST(view)), name=f"{info}_card_{name}"
            )
            for name, view in views.items()
        ] + [path("<int:object_id>/card/download/", wrap(require_GET(self.download)), name=f"{info}_card_download")]

    def download(self, request, object_id: int):
        """Everything held about the person as the API's portability document, as a file to hand them."""

        profile = self._profile(request, object_id, "export")  # the personal-data export is export's permission
        response = JsonResponse(profile_export(profile=profile), json_dumps_params={"ensure_ascii": False, "indent": 2})
        response["Content-Disposition"] = f'attachment; filename="profile-{profile.pk}.json"'
        response["Cache-Control"] = "no-store"
        return response

    def _profile(self, request, object_id: int, permission: str) -> Profile:
        profile = get_object_or_404(Profile, pk=object_id)
        if not self.model_admin.has_view_permission(request, profile) or not card_permissions(request.user)[permission]:
            raise PermissionDenied
        return profile

    def tag_add(self, request, object_id: int):
        profile = self._profile(request, object_id, "tag")
        form = TagForm(request.POST)
        if not form.is_valid():
            _form_errors(request, form, "Tag")
            return _back(request, profile, "card-tags")
        name = form.cleaned_data["name"]
        try:
            with transaction.atomic():
                tag = Tag.objects.filter(name__iexact=name).first()
                if tag is None:
                    if not card_permissions(request.user)["create_tag"]:
                        raise PermissionDenied
                    tag = tag_create(name=name, actor=_actor(request))
                added = tags_add(profiles=[profile], tags=[tag], source=SOURCE, actor=_actor(request))
        except DomainError as exc:
            messages.error(request, f"Tag: {exc.message}")
        else:
            if added:
                messages.success(request, f"Tag {tag.name} added.")
            else:
                messages.info(request, f"The profile already has the tag {tag.name}.")
        return _back(request, profile, "card-tags")

    def tag_remove(self, request, object_id: int):
        profile = self._profile(request, object_id, "tag")
        form = TagForm(request.POST)
        tag = Tag.objects.filter(name__iexact=form.data.get("name", "")).first() if form.is_valid() else None
        if tag is None:
            messages.error(request, "Tag: no such tag.")
        elif tags_remove(profiles=[profile], tags=[tag], source=SOURCE, actor=_actor(request)):
            messages.success(request, f"Tag {tag.name} removed.")
        return _back(request, profile, "card-tags")

    def note(self, request, object_id: int):
        profile = self._profile(request, object_id, "note")
        form = NoteForm(request.POST)
        if form.is_valid():
            try:
                note_add(profile=profile, text=form.cleaned_data["text"], author=_actor(request), source=SOURCE)
            except DomainError as exc:
                messages.error(request, f"Note: {exc.message}")
            else:
                messages.success(request, "Note added.")
        else:
            _form_errors(request, form, "Note")
        return _back(request, profile, "card-timeline")

    def event(self, request, object_id: int):
        profile = self._profile(request, object_id, "event")
        form = EventForm(request.POST)
        if form.is_valid():
            data = EventInput(
                action=form.cleaned_data["action"],
                client={"clientId": profile.pk},
                label=form.cleaned_data["label"],
                params=form.cleaned_data["params"],
            )
            try:
                event_record(data=data, source=SOURCE, actor=_actor(request))
            except DomainError as exc:
                messages.error(request, f"Event: {exc.message}")
            else:
                messages.success(request, f"Event {data.action} added.")
        else:
            _form_errors(request, form, "Event")
        return _back(request, profile, "card-timeline")

    def consent(self, request, object_id: int):
        profile = self._profile(request, object_id, "consent")
        form = ConsentForm(request.POST)
        if not form.is_valid():
            _form_errors(request, form, "Consent")
            return _back(request, profile, "card-consents")
        agreement = get_object_or_404(Agreement, pk=form.cleaned_data["agreement"])
        if not form.cleaned_data["state"]:
            messages.info(request, f"Consent {agreement.title}: nothing changed (no state chosen).")
            return _back(request, profile, "card-consents")
        try:
            changed = consent_set(
                profile=profile,
                agreement=agreement,
                state=form.cleaned_data["state"],
                source=SOURCE,
                actor=_actor(request),
                request_meta=RequestMeta.from_request(request),
            )
        except DomainError as exc:
            messages.error(request, f"Consent {agreement.title}: {exc.message}")
        else:
            if changed:
                messages.success(request, f"Consent {agreement.title}: {form.cleaned_data['state']}.")
            else:
                messages.info(request, f"Consent {agreement.title} was already {form.cleaned_data['state']}.")
        return _back(request, profile, "card-consents")

    def mail(self, request, object_id: int):
        profile = self._profile(request, object_id, "mail")
        form = MailForm(request.POST)
        if not form.is_valid():
            _form_errors(request, form, "E-mail")
            return _back(request, profile, "card-timeline")
        if not can_contact(profile=profile, channel="email"):
            reason = "it has no e-mail address" if not profile.email else "it has not granted the e-mail agreement"
            messages.error(request, f"E-mail not sent: {reason}.")
            return _back(request, profile, "card-timeline")
        subject, text = form.cleaned_data["subject"], form.cleaned_data["text"]
        with transaction.atomic():
            # Recorded first: if sending fails, the transaction takes the event back with it.
            event_record(
                data=EventInput(
                    action=EMAIL_SENT,
                    client={"clientId": profile.pk},
                    label=subject[:256],
                    params={"subject": subject, "text": text, "to": profile.email, "sentBy": _actor(request)},
                ),
                source=SOURCE,
                actor=_actor(request),
            )
            sent = marketing_email_send(profile=profile, subject=subject, text=text)
            if not sent:
                transaction.set_rollback(True)
        if sent:
            messages.success(request, f"E-mail sent to {profile.email}.")
        else:
            messages.error(request, "E-mail not sent: the consent guard refused it.")
        return _back(request, profile, "card-timeline")

    def unmerge(self, request, object_id: int):
        profile = self._profile(request, object_id, "unmerge")
        form = UnmergeForm(request.POST)
        if not form.is_valid():
            _form_errors(request, form, "Undo merge")
            return _back(request, profile, "card-merges")
        try:
            result = profile_unmerge(
                profile=profile,
                previous_client_id=form.cleaned_data["merged_client_id"],
                source=SOURCE,
                actor=_actor(request),
            )
        except DomainError as exc:
            messages.error(request, f"Undo merge: {exc.message}")
        else:
            notes = " ".join(result.notes)
            messages.success(request, f"Profile {result.restored.pk} restored. {notes}".strip())
        return _back(request, profile, "card-merges")
