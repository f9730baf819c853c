"""The ledger is append-only in the database too, and the seven default agreements get a first text."""

from django.db import migrations

# Erasure may blank ip_address and user_agent (kept out of the hash); any other change, and any delete, is refused.
APPEND_ONLY_SQL = """
CREATE FUNCTION consents_record_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'consent ledger records are append-only: delete of record % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.id, NEW.client_id, NEW.seq, NEW.agreement_id, NEW.text_id, NEW.old_status, NEW.new_status, NEW.source,
        NEW.actor, NEW.details, NEW.created_at, NEW.prev_hash, NEW.hash)
       IS DISTINCT FROM
       (OLD.id, OLD.client_id, OLD.seq, OLD.agreement_id, OLD.text_id, OLD.old_status, OLD.new_status, OLD.source,
        OLD.actor, OLD.details, OLD.created_at, OLD.prev_hash, OLD.hash) THEN
        RAISE EXCEPTION 'consent ledger records are append-only: update of record % refused', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER consents_record_append_only
    BEFORE UPDATE OR DELETE ON consents_consentrecord
    FOR EACH ROW EXECUTE FUNCTION consents_record_append_only();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS consents_record_append_only ON consents_consentrecord;
DROP FUNCTION IF EXISTS consents_record_append_only();
"""

DEFAULT_TEXTS = {
    "email": "I agree to receive marketing information by e-mail.",
    "sms": "I agree to receive marketing information by text message (SMS).",
    "push": "I agree to receive marketing push notifications in the mobile app.",
    "webPush": "I agree to receive marketing notifications in my web browser.",
    "bluetooth": "I agree to receive offers over Bluetooth when I am near a store beacon.",
    "rfid": "I agree that my loyalty card's RFID tag may be read in stores.",
    "wifi": "I agree that my device may be recognised on in-store Wi-Fi.",
}


def add_texts(apps, schema_editor):
    Agreement = apps.get_model("consents", "Agreement")
    AgreementText = apps.get_model("consents", "AgreementText")
    for agreement in Agreement.objects.filter(key__in=DEFAULT_TEXTS, is_default=True):
        if not AgreementText.objects.filter(agreement=agreement).exists():
            AgreementText.objects.create(agreement=agreement, version=1, text=DEFAULT_TEXTS[agreement.key])


def remove_texts(apps, schema_editor):
    AgreementText = apps.get_model("consents", "AgreementText")
    AgreementText.objects.filter(agreement__is_default=True, version=1, records__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("consents", "0003_texts_and_ledger")]

    operations = [
        migrations.RunSQL(APPEND_ONLY_SQL, DROP_SQL),
        migrations.RunPython(add_texts, remove_texts),
    ]
