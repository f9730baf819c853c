"""Imports permissions for the two admin roles: Marketers import files (and keep mappings); Admin staff get every
permission of the app, incoming integrations (their secrets) included."""

from django.db import migrations

MARKETERS = {"importjob": ["view", "add", "change"], "savedmapping": ["view", "add", "change", "delete"]}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("imports")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ours = Permission.objects.filter(content_type__app_label="imports")
    marketers, _ = Group.objects.get_or_create(name="Marketers")
    marketers.permissions.add(
        *[p for p in ours if p.codename in {f"{a}_{m}" for m, actions in MARKETERS.items() for a in actions}]
    )
    staff, _ = Group.objects.get_or_create(name="Admin staff")
    staff.permissions.add(*ours)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ours = list(Permission.objects.filter(content_type__app_label="imports"))
    for group in Group.objects.filter(name__in=["Marketers", "Admin staff"]):
        group.permissions.remove(*ours)


class Migration(migrations.Migration):
    dependencies = [("imports", "0001_initial"), ("crm", "0003_roles")]

    operations = [migrations.RunPython(grant, revoke)]
