"""Erasures and tombstones; Admin staff may look at erasures (the staff role got every permission that existed
before this app did)."""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

import crm.request_id


def staff_may_view_erasures(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    app_config = apps.get_app_config("privacy")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    staff = Group.objects.filter(name="Admin staff").first()
    if staff is not None:
        staff.permissions.add(
            *Permission.objects.filter(content_type__app_label="privacy", codename__startswith="view_")
        )


class Migration(migrations.Migration):
    initial = True

    dependencies = [("crm", "0003_roles"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.CreateModel(
            name="Erasure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("client_id", models.BigIntegerField(unique=True, verbose_name="clientId")),
                (
                    "merged_client_ids",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), blank=True, default=list
                    ),
                ),
                ("source", models.CharField(max_length=32)),
                (
                    "actor",
                    models.CharField(
                        blank=True, default="", help_text="Who asked (api-key:…, user:…).", max_length=256
                    ),
                ),
                (
                    "request_id",
                    models.CharField(
                        blank=True, db_default="", default=crm.request_id.current_request_id, max_length=128
                    ),
                ),
                ("requested_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "counts",
                    models.JSONField(
                        blank=True, default=dict, help_text="Rows each erasure step removed or anonymised."
                    ),
                ),
                ("replayed_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-requested_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="Tombstone",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("clientId", "Client Id"), ("uuid", "Uuid")], max_length=16)),
                ("value", models.CharField(max_length=64)),
                (
                    "erasure",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="tombstones", to="privacy.erasure"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("kind", "value"),
                        name="tombstone_kind_value_unique",
                        violation_error_message="This id is already tombstoned.",
                    )
                ],
            },
        ),
        migrations.RunPython(staff_may_view_erasures, migrations.RunPython.noop),
    ]
