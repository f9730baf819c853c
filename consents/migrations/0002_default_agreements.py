from django.db import migrations

DEFAULTS = [
    ("email", "E-mail marketing", "email"),
    ("sms", "SMS marketing", "sms"),
    ("push", "Mobile push notifications", "push"),
    ("webPush", "Web push notifications", "webPush"),
    ("bluetooth", "Bluetooth proximity messages", "bluetooth"),
    ("rfid", "RFID tracking", "rfid"),
    ("wifi", "Wi-Fi tracking", "wifi"),
]


def create_defaults(apps, schema_editor):
    Agreement = apps.get_model("consents", "Agreement")
    for key, title, channel in DEFAULTS:
        Agreement.objects.get_or_create(key=key, defaults={"title": title, "channel": channel, "is_default": True})


def remove_defaults(apps, schema_editor):
    apps.get_model("consents", "Agreement").objects.filter(is_default=True, states__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("consents", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
