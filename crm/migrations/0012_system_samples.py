"""The System page's samples, and its permission for Admin staff: the group got every permission that existed when
it was made (0003_roles), so the new model's are added here. Marketers get none of them."""

from django.db import migrations, models


def admin_staff_see_system(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # On a fresh database the model permissions are made after all migrations (post_migrate): make them now.
    app_config = apps.get_app_config("crm")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    staff, _ = Group.objects.get_or_create(name="Admin staff")
    staff.permissions.add(*Permission.objects.filter(content_type__app_label="crm", content_type__model="systemsample"))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("crm", "0011_task_paths_moved"),
    ]

    operations = [
        migrations.CreateModel(
            name="SystemSample",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("taken_at", models.DateTimeField(db_index=True)),
                ("values", models.JSONField(default=dict)),
            ],
            options={
                "verbose_name": "system",
                "verbose_name_plural": "system",
            },
        ),
        migrations.RunPython(admin_staff_see_system, migrations.RunPython.noop),
    ]
