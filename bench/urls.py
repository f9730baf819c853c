"""The app's URLs plus a stock DRF view, the reference point of benchmark B4.

The stock view is what a plain DRF project would write: ``RetrieveAPIView`` with a
``ModelSerializer(fields="__all__")``, the profile found by e-mail through the identifier table, behind the
same authentication and permission classes (REST_FRAMEWORK defaults) and the same API key. Its route comes
first, so the app's endpoints pay one extra pattern test and the comparison never favours them.
"""

from django.urls import path
from rest_framework import serializers
from rest_framework.generics import RetrieveAPIView

from crm import urls as crm_urls
from profiles.models import Profile

STOCK_PATH = "bench/stock/by-email/"


class StockProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = "__all__"


class StockProfileByEmailView(RetrieveAPIView):
    queryset = Profile.objects.filter(identifiers__kind="email")
    serializer_class = StockProfileSerializer
    lookup_field = "identifiers__value"
    lookup_url_kwarg = "email"


urlpatterns = [
    path(f"{STOCK_PATH}<str:email>", StockProfileByEmailView.as_view(), name="bench-stock-by-email"),
    *crm_urls.urlpatterns,
]
handler404 = crm_urls.handler404
handler500 = crm_urls.handler500
