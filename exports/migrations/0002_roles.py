"""Marketers export: the "export profiles" permission and the scheduled exports (and their run logs); Admin staff
get the new models' permissions too."""

from django.db import migrations

MARKETERS = [
    ("profiles", "export_profile"),
    ("exports", "view_scheduledexport"),
    ("exports", "add_scheduledexport"),
    ("exports", "change_scheduledexport"),
    ("exports", "delete_scheduledexport"),
    ("exports", "view_exportrun"),
]


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # On a fresh database the model permissions are made after all migrations (post_migrate): make them now.
    app_config = apps.get_app_config("exports")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    perms = [Permission.objects.filter(content_type__app_label=a, codename=c).first() for a, c in MARKETERS]
    marketers, _ = Group.objects.get_or_create(name="Marketers")
    marketers.permissions.add(*[p for p in perms if p is not None])
    staff, _ = Group.objects.get_or_create(name="Admin staff")
    staff.permissions.add(*Permission.objects.filter(content_type__app_label="exports"))


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    marketers = Group.objects.filter(name="Marketers").first()
    if marketers is not None:
        for app_label, codename in MARKETERS:
            marketers.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("exports", "0001_initial"),
        ("crm", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
