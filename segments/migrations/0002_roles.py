"""Segment permissions for the two admin roles: Marketers build and use segments and read expressions; Admin staff
get every permission of this app."""

from django.db import migrations

MARKETERS = {"segment": ["view", "add", "change", "delete"], "expression": ["view"]}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("segments")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ours = Permission.objects.filter(content_type__app_label="segments")
    wanted = [f"{action}_{model}" for model, actions in MARKETERS.items() for action in actions]
    marketers, _ = Group.objects.get_or_create(name="Marketers")
    marketers.permissions.add(*ours.filter(codename__in=wanted))
    staff, _ = Group.objects.get_or_create(name="Admin staff")
    staff.permissions.add(*ours)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    ours = Permission.objects.filter(content_type__app_label="segments")
    for group in Group.objects.filter(name__in=["Marketers", "Admin staff"]):
        group.permissions.remove(*ours)


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0001_initial"),
        ("crm", "0003_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
