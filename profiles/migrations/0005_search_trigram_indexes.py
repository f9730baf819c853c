"""Trigram indexes for the admin's search by part of an e-mail or a name, built without locking writes.

``CREATE INDEX CONCURRENTLY`` cannot run inside a transaction, hence ``atomic = False``. pg_trgm is a trusted
extension (PostgreSQL 13+): the database owner may create it.
"""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently, TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("profiles", "0004_merge_reason"),
    ]

    operations = [
        TrigramExtension(),
        AddIndexConcurrently(
            model_name="profile",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass("email", name="gin_trgm_ops"), name="profile_email_trgm"
            ),
        ),
        AddIndexConcurrently(
            model_name="profile",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Lower("first_name"), name="gin_trgm_ops"
                ),
                name="profile_first_name_trgm",
            ),
        ),
        AddIndexConcurrently(
            model_name="profile",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Lower("last_name"), name="gin_trgm_ops"
                ),
                name="profile_last_name_trgm",
            ),
        ),
    ]
