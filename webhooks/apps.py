from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self):
        from segments.usage import register_segment_user
        from webhooks import metrics, privacy, receivers, segments, tasks  # noqa: F401 - tasks registers the purge

        receivers.connect_optional()
        metrics.register()
        privacy.register()
        register_segment_user("webhooks", segments.subscriptions_using)
