from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self):
        from exports import metrics, tasks  # noqa: F401 - tasks registers the recurring dispatcher
        from profiles.services.tags import register_tag_user
        from segments.usage import register_segment_user

        register_segment_user("exports", _exports_using)
        register_tag_user("exports", _exports_naming_tag)
        metrics.register()


def _exports_using(segment_id: int) -> list[str]:
    """Scheduled exports limited to the segment: it cannot be deleted while they are."""
    from exports.models import ScheduledExport

    return [
        f"scheduled export {pk} '{name}'"
        for pk, name in ScheduledExport.objects.filter(segment_id=segment_id).values_list("pk", "name")
    ]


def _exports_naming_tag(tag_id: int) -> list[str]:
    """Scheduled exports whose filters name the tag (``tags=vip``, repeatable or comma-separated)."""
    from django.http import QueryDict

    from exports.models import ScheduledExport
    from profiles.models import Tag

    name = Tag.objects.filter(pk=tag_id).values_list("name", flat=True).first()
    if name is None:
        return []
    users = []
    for pk, export_name, filters in ScheduledExport.objects.exclude(filters="").values_list("pk", "name", "filters"):
        named = {n.strip().lower() for item in QueryDict(filters).getlist("tags") for n in item.split(",")}
        if name.lower() in named:
            users.append(f"scheduled export {pk} '{export_name}'")
    return users
