from django.db import migrations


class Migration(migrations.Migration):
    """Rate-limit counters need no crash safety: an unlogged table writes no WAL, so counting a request costs no
    WAL flush at commit (a crash empties the counters, which only resets the current windows)."""

    dependencies = [("crm", "0006_job_progress")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE crm_ratelimitcounter SET UNLOGGED", reverse_sql="ALTER TABLE crm_ratelimitcounter SET LOGGED"
        )
    ]
