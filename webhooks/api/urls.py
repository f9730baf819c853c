from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("v4/webhooks", views.WebhookListCreateView.as_view(), name="webhooks"),
    path("v4/webhooks/<int:webhook_id>", views.WebhookDetailView.as_view(), name="webhook"),
    path("v4/webhooks/<int:webhook_id>/messages", views.WebhookMessagesView.as_view(), name="webhook-messages"),
    path(
        "v4/webhooks/<int:webhook_id>/messages/<int:message_id>/resend",
        views.WebhookResendView.as_view(),
        name="webhook-message-resend",
    ),
]
