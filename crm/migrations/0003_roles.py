"""The two admin roles, as groups: Marketers and Admin staff; and the "export profiles" permission.

Marketers work on profiles: the card and its side actions (tags, notes, events, consents on profiles, e-mail),
the list and its bulk tag actions, and they may look at the consent ledger, attribute definitions and batch
jobs. They get no API keys, no agreement definitions, no deleting profiles, no undoing merges and no export.
Admin staff get every permission that exists when this runs, export included.

Exporting is a permission of its own, on the profile's content type. It is created here rather than declared
in ``Profile.Meta.permissions`` so the profiles app's models and migrations stay untouched; ``create_roles``
is idempotent (tests that flush the database call it again).
"""

from django.db import migrations

EXPORT = ("profiles", "profile", "export_profile", "Can export profiles")

MARKETERS = {
    "profiles": {
        "profile": ["view", "add", "change"],
        "tag": ["view", "add", "change", "delete"],
        "event": ["view", "add"],
        "attributedefinition": ["view"],
        "mergerecord": ["view"],
    },
    "consents": {
        "consentstate": ["view", "add", "change"],
        "consentrecord": ["view"],
    },
    "crm": {"job": ["view"]},
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # On a fresh database the model permissions are made after all migrations (post_migrate): make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")

    app_label, model, codename, name = EXPORT
    content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
    Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})

    wanted = [
        (app, f"{action}_{model}")
        for app, models in MARKETERS.items()
        for model, actions in models.items()
        for action in actions
    ]
    marketer_perms = [
        Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in wanted
    ]
    marketers, _ = Group.objects.get_or_create(name="Marketers")
    marketers.permissions.set(marketer_perms)
    staff, _ = Group.objects.get_or_create(name="Admin staff")
    staff.permissions.set(Permission.objects.all())


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["Marketers", "Admin staff"]).delete()
    app_label, model, codename, _ = EXPORT
    apps.get_model("auth", "Permission").objects.filter(
        content_type__app_label=app_label, content_type__model=model, codename=codename
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("crm", "0002_jobs_and_idempotency"),
        ("profiles", "0003_tags_events_transactions"),
        ("consents", "0004_ledger_append_only_and_texts"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
