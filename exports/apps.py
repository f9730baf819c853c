from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self):
        from exports import services  # noqa: F401  (registers the recurring dispatcher)
        from segments.usage import register_segment_user

        register_segment_user("exports", _exports_using)


def _exports_using(segment_id: int) -> list[str]:
    """Scheduled exports limited to the segment: it cannot be deleted while they are."""
    from exports.models import ScheduledExport

    return [
        f"scheduled export {pk} '{name}'"
        for pk, name in ScheduledExport.objects.filter(segment_id=segment_id).values_list("pk", "name")
    ]
