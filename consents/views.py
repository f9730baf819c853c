"""The pages people reach from e-mails: the double opt-in confirmation and the resignation page.

The resignation page is CSRF-exempt only for RFC 8058 one-click requests (``List-Unsubscribe=One-Click``
in a POST body, sent by mail clients without any token); its own forms are checked as usual.
"""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from consents.context import RequestMeta
from consents.models import Agreement, ConsentSource
from consents.services import consent_confirm, consents_withdraw, withdrawable_states
from consents.tokens import LinkExpired, resignation_token_read
from crm.actors import actor_of
from crm.errors import DomainError, NotFound
from crm.ratelimit import ip_rate_limited
from profiles.selectors import profile_lookup

ONE_CLICK = "One-Click"


def _link_problem(request, exc: DomainError):
    return render(
        request,
        "consents/link_invalid.html",
        {"expired": isinstance(exc, LinkExpired), "message": exc.message},
        status=exc.status,
    )


@ip_rate_limited("CONSENT_PAGE_RATE_LIMIT")
@require_http_methods(["GET"])  # not HEAD: link checkers probe with it, and a probe must not grant
def confirm(request, token: str):
    """Opening the link from the double opt-in e-mail grants the agreement it names."""
    try:
        result = consent_confirm(token=token, request_meta=RequestMeta.from_request(request))
    except DomainError as exc:
        return _link_problem(request, exc)
    return render(request, "consents/confirmed.html", {"result": result, "agreement": result.agreement})


def _resolve(token: str):

    data = resignation_token_read(token)
    try:
        profile = profile_lookup(kind="clientId", value=data["c"])  # follows merges to the survivor
    except NotFound:
        raise NotFound("The profile of this link no longer exists.", field="token", code="link.gone") from None
    return profile, data


def _csrf_rejection(request):
    """The CSRF middleware's verdict on this request (None when it passes), for the non-one-click forms."""
    check = CsrfViewMiddleware(lambda req: None)
    return check.process_view(request, None, (), {})


@csrf_exempt
@ip_rate_limited("CONSENT_PAGE_RATE_LIMIT")
@require_http_methods(["GET", "HEAD", "POST"])
def resign(request, token: str):
    """Lists what the person granted, with one-click withdraw buttons; RFC 8058 one-click withdraws e-mail."""
    try:
        profile, data = _resolve(token)
    except DomainError as exc:
        return _link_problem(request, exc)
    meta = RequestMeta.from_request(request)
    actor = actor_of(profile_id=profile.pk)
    if request.method == "POST" and request.POST.get("List-Unsubscribe") == ONE_CLICK:
        agreement = Agreement.objects.filter(pk=data["a"]) if "a" in data else Agreement.objects.filter(key="email")
        consents_withdraw(
            profile=profile,
            agreements=list(agreement),
            source=ConsentSource.RESIGNATION,
            actor=actor,
            request_meta=meta,
        )
        return HttpResponse("Unsubscribed.\n", content_type="text/plain; charset=utf-8")
    if request.method == "POST":
        if rejection := _csrf_rejection(request):
            return rejection
        states = {str(s.agreement_id): s for s in withdrawable_states(profile=profile)}
        choice = request.POST.get("agreement", "")
        if choice == "all":
            chosen = [s.agreement for s in states.values()]
        elif choice in states:
            chosen = [states[choice].agreement]
        else:
            return render(
                request,
                "consents/resign.html",
                {"profile": profile, "states": list(states.values()), "error": "Choose a consent to withdraw."},
                status=400,
            )
        changed = consents_withdraw(
            profile=profile, agreements=chosen, source=ConsentSource.RESIGNATION, actor=actor, request_meta=meta
        )
        # Post/redirect/get: a reload does not resubmit; the page names what was withdrawn.
        done = ",".join(str(a.pk) for a in changed) or "none"
        return HttpResponseRedirect(f"{request.path}?withdrawn={done}")
    withdrawn_ids = [int(x) for x in request.GET.get("withdrawn", "").split(",") if x.isdigit()]
    return render(
        request,
        "consents/resign.html",
        {
            "profile": profile,
            "states": withdrawable_states(profile=profile),
            "withdrawn": list(Agreement.objects.filter(pk__in=withdrawn_ids)) if withdrawn_ids else [],
        },
    )
