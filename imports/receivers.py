"""An import's file leaves the storage with its job (the retention purge deletes finished jobs)."""

from django.db.models.signals import post_delete
from django.dispatch import receiver

from imports.models import ImportJob


@receiver(post_delete, sender=ImportJob, dispatch_uid="imports.file_delete")
def on_import_deleted(sender, instance: ImportJob, **kwargs) -> None:
    if instance.file:
        instance.file.storage.delete(instance.file.name)
