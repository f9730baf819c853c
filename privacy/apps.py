from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self):
        from privacy import privacy, tombstones
        from profiles.tombstones import tombstones_register

        privacy.register()
        tombstones_register(erased_client_ids=tombstones.erased_client_ids, erased_uuids=tombstones.erased_uuids)
