from django.urls import path

from api.capillary import views

urlpatterns = [
    path("v2/integrations/customer/upsert/bulk", views.UpsertBulkView.as_view(), name="capillary-upsert-bulk"),
]
