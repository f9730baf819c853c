from django.urls import path

from segments import api

urlpatterns = [
    path("v4/segments", api.SegmentListCreateView.as_view(), name="segments"),
    path("v4/segments/preview", api.SegmentPreviewView.as_view(), name="segments-preview"),
    path("v4/segments/<int:segment_id>", api.SegmentDetailView.as_view(), name="segment"),
    path("v4/segments/<int:segment_id>/count", api.SegmentCountView.as_view(), name="segment-count"),
    path("v4/segments/<int:segment_id>/clients", api.SegmentClientsView.as_view(), name="segment-clients"),
    path("v4/clients/<int:client_id>/segments", api.ClientSegmentsView.as_view(), name="client-segments"),
]
