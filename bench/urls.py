"""The app's URLs plus a stock DRF view, the reference point of benchmark B4.

The stock view is what a plain DRF project would write: ``RetrieveAPIView`` with a
``ModelSerializer(fields="__all__")``, the profile found by e-mail through the identifier table, behind the
same authentication and permission classes (REST_FRAMEWORK defaults) and the same API key. Its route comes
first, so the app's endpoints pay one extra pattern test and the comparison never favours them.
"""

from django.http import JsonResponse
from django.urls import path
from rest_framework import serializers
from rest_framework.generics import RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from crm import urls as crm_urls
from profiles.models import Profile

STOCK_PATH = "bench/stock/by-email/"
FLOOR_DJANGO_PATH = "bench/floor/django"
FLOOR_DRF_PATH = "bench/floor/drf"


class StockProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = "__all__"


class StockProfileByEmailView(RetrieveAPIView):
    queryset = Profile.objects.filter(identifiers__kind="email")
    serializer_class = StockProfileSerializer
    lookup_field = "identifiers__value"
    lookup_url_kwarg = "email"


def floor_django(request):
    """The framework's floor: middleware, URL resolution and a JSON response, no database."""
    return JsonResponse({"ok": True})


class FloorDrfView(APIView):
    """DRF's floor: an APIView with no authentication and no database."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [
    path(f"{STOCK_PATH}<str:email>", StockProfileByEmailView.as_view(), name="bench-stock-by-email"),
    path(FLOOR_DJANGO_PATH, floor_django),
    path(FLOOR_DRF_PATH, FloorDrfView.as_view()),
    *crm_urls.urlpatterns,
]
handler404 = crm_urls.handler404
handler500 = crm_urls.handler500
