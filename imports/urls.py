from django.urls import path

from imports import api

urlpatterns = [
    path("v4/imports", api.ImportsView.as_view(), name="imports"),
    path("v4/imports/<uuid:job_id>", api.ImportJobView.as_view(), name="imports-job"),
    path("v4/imports/<uuid:job_id>/errors.csv", api.ImportReportView.as_view(), name="imports-report"),
    path("integrations/incoming/<slug:slug>", api.IncomingIntegrationView.as_view(), name="integrations-incoming"),
]
