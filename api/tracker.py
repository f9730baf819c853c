"""The tracker's surfaces: the script (``GET /tracker.js``), the collect endpoint (``POST /t/collect``) and the
demo page (``/tracker/demo/``).

The collect endpoint takes no API key (the script runs in visitors' browsers): a site is named by its public
key and may send only from its allowed origins (CORS, with credentials, for those origins alone). It answers
204 and keeps the browser's uuid in a cookie it sets itself (``HttpOnly``, ``SameSite=Lax``, ``Secure`` over
HTTPS, long-lived): cookies written by scripts are capped at seven days by Safari, cookies from a first-party
server are not. Errors are RFC 7807 problem details.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from api.base import ApiView
from api.problems import problem_responses as problems
from api.problems import render_problem
from api.serializers import StrictBoolean, StrictSerializer, Text
from crm.errors import Forbidden, ValidationFailed
from tracker.models import Site, origin_normalize
from tracker.services import (
    FormFields,
    Page,
    browser_uuid,
    form_submit_record,
    origin_allowed,
    origin_known,
    page_visit_record,
    site_for_request,
)

PAGE_VISIT, FORM_SUBMIT, CONSENT_WITHDRAW = "page.visit", "form.submit", "consent.withdraw"
URL_MAX_LENGTH = 2048


# --- the script ------------------------------------------------------------------------------------


@cache
def _script() -> tuple[bytes, str]:
    path = finders.find("tracker/tracker.js")
    if not path:
        raise Http404("tracker.js is missing from the static files.")
    content = Path(path).read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


@require_safe
@gzip_page
def tracker_js(request):
    """The tracker script: static, cacheable (``TRACKER_SCRIPT_MAX_AGE``), revalidated by its ETag."""
    content, etag = _script()
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(content, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={settings.TRACKER_SCRIPT_MAX_AGE}"
    # Pages on other sites load it with a script tag; a Cross-Origin-Resource-Policy of same-origin would block it.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# --- the collect endpoint ------------------------------------------------------------------------------


class FormFieldsSerializer(StrictSerializer):
    email = Text(required=False, max_length=1000)
    firstName = Text(required=False, max_length=1000)
    lastName = Text(required=False, max_length=1000)
    phone = Text(required=False, max_length=1000)
    attributes = serializers.DictField(
        child=Text(max_length=1000), required=False, help_text="Custom attributes already defined, by name."
    )
    tags = serializers.ListField(
        child=Text(max_length=100), required=False, max_length=20, help_text="Names of existing tags."
    )


class CollectSerializer(StrictSerializer):
    siteKey = Text(max_length=64, allow_blank=False, help_text="The site's public key (from its script tag).")
    type = serializers.ChoiceField(
        choices=[PAGE_VISIT, FORM_SUBMIT, CONSENT_WITHDRAW],
        help_text="consent.withdraw records nothing: it expires the browser's cookie.",
    )
    url = Text(required=False, max_length=URL_MAX_LENGTH, help_text="The page's address (page.visit, form.submit).")
    title = Text(required=False, max_length=500)
    referrer = Text(required=False, max_length=URL_MAX_LENGTH)
    consent = StrictBoolean(
        required=False, help_text="true once the visitor consented; required by sites that wait for consent."
    )
    form = Text(required=False, max_length=200, help_text="The form's name (its data-crm-form value).")
    fields = FormFieldsSerializer(required=False, help_text="The form's marked fields (form.submit).")


def _url(value: str | None, name: str, *, required: bool) -> str:
    if not value:
        if required:
            raise ValidationFailed(f"{name} is required.", field=name, code="field.required")
        return ""
    if not value.lower().startswith(("http://", "https://")):
        raise ValidationFailed(f"{name} must be an http(s) address.", field=name, code="field.url")
    return value


class CollectView(ApiView):
    """``POST /t/collect``: what the tracker script sends. No API key; the site key and the Origin decide."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    error_renderer = staticmethod(render_problem)
    ip_rate_limit = "TRACKER_RATE_LIMIT"
    ip_rate_policy = "tracker"
    idempotency_keys = False  # visitors have no key scope of their own: a key would be shared by all of them

    def max_body_bytes(self) -> int:
        return settings.TRACKER_MAX_BODY_BYTES

    @extend_schema(
        operation_id="tracker_collect",
        tags=["Website tracker"],
        summary="Record a page visit or a form submission from the tracker script (site key, allowed Origin)",
        description=(
            "Sent by tracker.js from the visitor's browser, with credentials. The `Origin` header must be one of "
            "the site's allowed origins (CORS answers only those). Answers 204 and sets the browser's uuid cookie "
            "(`TRACKER_COOKIE_NAME`, HttpOnly, SameSite=Lax, Secure over HTTPS); a form whose e-mail differs from "
            "the one the browser's profile holds gets a new uuid, so two people on one browser stay two profiles. "
            "`consent.withdraw` expires the cookie and records nothing."
        ),
        parameters=[
            OpenApiParameter(
                "Origin", str, OpenApiParameter.HEADER, description="The page's origin (the browser sends it)."
            ),
        ],
        request=CollectSerializer,
        responses={
            204: OpenApiResponse(description="Recorded; Set-Cookie carries the browser's uuid (or expires it)."),
            **problems(400, 403, 409, 411, 413, 415, 429, 503),
        },
        examples=[
            OpenApiExample(
                "A page visit",
                value={"siteKey": "Xq2…", "type": PAGE_VISIT, "url": "https://shop.example/", "title": "Shop"},
                request_only=True,
            ),
            OpenApiExample(
                "A sign-up form",
                value={
                    "siteKey": "Xq2…",
                    "type": FORM_SUBMIT,
                    "url": "https://shop.example/newsletter",
                    "form": "newsletter",
                    "fields": {"email": "ann@example.com", "firstName": "Ann", "tags": ["newsletter"]},
                },
                request_only=True,
            ),
        ],
    )
    def post(self, request):
        serializer = CollectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
        site = site_for_request(key=body["siteKey"], origin=request.headers.get("Origin"))
        self._cors_origin = request.headers.get("Origin")
        cookie_name = settings.TRACKER_COOKIE_NAME
        response = Response(status=204)
        if body["type"] == CONSENT_WITHDRAW:
            response.delete_cookie(cookie_name, path="/", samesite="Lax")
            return response
        if site.consent_required and body.get("consent") is not True:
            raise Forbidden(
                "This site waits for the visitor's consent: send consent: true once it is given.",
                field="consent",
                code="tracking.consent_required",
            )
        page = Page(
            url=_url(body.get("url"), "url", required=True),
            title=body.get("title") or "",
            referrer=_url(body.get("referrer"), "referrer", required=False),
            user_agent=request.headers.get("User-Agent", "")[:512],
        )
        uuid = browser_uuid(cookie=request.COOKIES.get(cookie_name))
        if body["type"] == PAGE_VISIT:
            tracked = page_visit_record(site=site, uuid=uuid, page=page)
        else:
            given = body.get("fields") or {}
            fields = FormFields(
                email=given.get("email"),
                first_name=given.get("firstName"),
                last_name=given.get("lastName"),
                phone=given.get("phone"),
                attributes=dict(given.get("attributes") or {}),
                tags=list(given.get("tags") or []),
            )
            tracked = form_submit_record(site=site, uuid=uuid, page=page, form=body.get("form") or "", fields=fields)
        response.set_cookie(
            cookie_name,
            tracked.uuid,
            max_age=settings.TRACKER_COOKIE_MAX_AGE,
            path="/",
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
        return response

    @extend_schema(exclude=True)
    def options(self, request, *args, **kwargs):
        """CORS preflight: allowed for an origin some active site lists (the preflight carries no site key)."""
        origin = request.headers.get("Origin")
        if not origin_known(origin=origin):
            return render_problem(
                status=403,
                code="site.origin_forbidden",
                message=f"Origin {origin or '(none)'} is not an allowed origin of any site.",
                field="Origin",
                request=request,
            )
        self._cors_origin = origin
        response = Response(status=204)
        response["Access-Control-Allow-Methods"] = "POST"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = getattr(self, "_cors_origin", None)
        if origin is None and response.status_code >= 400 and origin_known(origin=request.headers.get("Origin")):
            origin = request.headers.get("Origin")  # an error the page's script may read
        if origin:
            response["Access-Control-Allow-Origin"] = origin_normalize(origin)
            response["Access-Control-Allow-Credentials"] = "true"
        patch_vary_headers(response, ["Origin"])
        return response


# --- the demo page -----------------------------------------------------------------------------------------


def _demo_site(request, own_origin: str) -> Site | None:
    if key := request.GET.get("site"):
        return Site.objects.filter(key=key, active=True).first()
    return Site.objects.filter(active=True, allowed_origins__contains=[own_origin]).order_by("pk").first()


@require_safe
def demo(request):
    """A sign-up page that includes the tracker like any website would (``?site=KEY``, else the first active site
    whose allowed origins hold this server's own)."""
    origin = f"{request.scheme}://{request.get_host()}".lower()
    site = _demo_site(request, origin)
    allowed = site is not None and origin_allowed(site=site, origin=origin)
    return render(request, "tracker/demo.html", {"site": site, "origin": origin, "allowed": allowed})


urlpatterns = [
    path("tracker.js", tracker_js, name="tracker-js"),
    path("t/collect", CollectView.as_view(), name="tracker-collect"),
    path("tracker/demo/", demo, name="tracker-demo"),
]
