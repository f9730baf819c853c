"""RFC 7807 problem details for the endpoints that speak no vendor's API (the website tracker, …).

A body is ``{type, title, status, detail, instance, code}`` plus ``field`` (the offending input) when there is
one, sent as ``application/problem+json``. ``render_problem`` has the signature ``api.base.ApiView`` expects of
an error renderer; ``Problem`` documents the body in the OpenAPI schema.
"""

from __future__ import annotations

from http import HTTPStatus

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

PROBLEM_JSON = "application/problem+json"

Problem = inline_serializer(
    "Problem",
    {
        "type": serializers.CharField(help_text="about:blank: the status says it all."),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "instance": serializers.CharField(help_text="The request's path."),
        "code": serializers.CharField(help_text="Our stable error code (an RFC 7807 extension member)."),
        "field": serializers.CharField(required=False, help_text="The offending input, e.g. fields.email."),
    },
)


def problem_body(
    *, status: int, detail: str, instance: str, type_: str = "about:blank", title: str | None = None, **members
) -> dict:
    """An RFC 7807 body: the five standard members, then ``members`` (the extension members) in the order given.

    A surface with its own vocabulary (ExpertSender's) passes its ``type_`` and ``title``; otherwise the title is
    the status's reason phrase.
    """
    if title is None:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
    body = {"type": type_, "title": title, "status": status, "detail": detail, "instance": instance}
    body.update(members)
    return body


def render_problem(*, status, code, message, field, request, extra=None) -> Response:
    members = {"code": code, "field": field} if field else {"code": code}
    body = problem_body(status=status, detail=message, instance=request.path, **members)
    return Response(body, status=status, content_type=PROBLEM_JSON)


def problem_responses(*statuses: int, body=Problem) -> dict:
    """OpenAPI responses for these statuses: ``body`` (by default ``Problem``) as ``application/problem+json``."""
    return {(status, PROBLEM_JSON): OpenApiResponse(body) for status in statuses}
