"""The events table becomes partitioned by month, and eventSalt's uniqueness moves to a small dedup table.

PostgreSQL cannot hold a unique index on a partitioned table unless it contains the partition key, so the
table's key becomes a unique index on ``(id, time)`` (ids still come from one sequence) and a trigger records
every salted event in ``profiles_eventsalt``, whose primary key refuses a second one. A unique index, not a
PRIMARY KEY constraint: ``pg_restore --clean`` cannot drop the constraint a partition inherits, and a backup
restored over a live database is an operation this product supports (the erasure replay). Existing events move into
one partition per month they fall in; months ahead are created too, and a default partition catches
anything outside the created months (``profiles.partitions`` moves such rows out when it creates their
month). Index definitions are copied from the old table, so indexes other migrations added come along.
"""

import django.db.models.functions.datetime
from django.db import migrations, models

MONTHS_AHEAD = 3
KEY_INDEX = "profiles_event_id_time_key"

SALT_TRIGGER = """
CREATE FUNCTION profiles_event_salt_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO profiles_eventsalt (salt, event_id, time, created_at) VALUES (NEW.salt, NEW.id, NEW.time, now());
    RETURN NULL;
END
$$;
CREATE TRIGGER profiles_event_salt_claim AFTER INSERT ON profiles_event
    FOR EACH ROW WHEN (NEW.salt IS NOT NULL) EXECUTE FUNCTION profiles_event_salt_claim();
"""


def partition(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        # Index definitions (all but the primary key), to build again on the partitioned table after the copy.
        cursor.execute(
            """
            SELECT c.relname, pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'profiles_event'::regclass AND NOT i.indisprimary
            """
        )
        indexes = cursor.fetchall()
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'profiles_event'::regclass AND contype = 'f'
            """
        )
        foreign_keys = cursor.fetchall()
        cursor.execute("ALTER TABLE profiles_event RENAME TO profiles_event_unpartitioned")
        cursor.execute(
            "ALTER TABLE profiles_event_unpartitioned RENAME CONSTRAINT profiles_event_pkey TO profiles_event_unpartitioned_pkey"
        )
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("SELECT coalesce(max(id), 0) FROM profiles_event_unpartitioned")
        (max_id,) = cursor.fetchone()
        # One sequence owned by the new table's id (an identity column on a partitioned table needs PostgreSQL 17).
        cursor.execute("ALTER TABLE profiles_event_unpartitioned ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cursor.execute(
            """
            CREATE TABLE profiles_event (LIKE profiles_event_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
            PARTITION BY RANGE (time)
            """
        )
        cursor.execute("CREATE SEQUENCE profiles_event_id_seq AS bigint OWNED BY profiles_event.id")
        cursor.execute("SELECT setval('profiles_event_id_seq', %s + 1, false)", [max_id])
        cursor.execute("ALTER TABLE profiles_event ALTER COLUMN id SET DEFAULT nextval('profiles_event_id_seq')")
        cursor.execute(
            """
            SELECT DISTINCT date_trunc('month', time) FROM profiles_event_unpartitioned
            UNION SELECT date_trunc('month', now()) + n * interval '1 month' FROM generate_series(0, %s) AS n
            ORDER BY 1
            """,
            [MONTHS_AHEAD],
        )
        for (month,) in cursor.fetchall():
            cursor.execute(
                f"CREATE TABLE profiles_event_p{month:%Y%m} PARTITION OF profiles_event FOR VALUES FROM (%s) TO (%s + interval '1 month')",
                [month, month],
            )
        cursor.execute("CREATE TABLE profiles_event_default PARTITION OF profiles_event DEFAULT")
        cursor.execute("INSERT INTO profiles_event SELECT * FROM profiles_event_unpartitioned")
        cursor.execute(
            """
            INSERT INTO profiles_eventsalt (salt, event_id, time, created_at)
            SELECT salt, id, time, created_at FROM profiles_event_unpartitioned WHERE salt IS NOT NULL
            """
        )
        cursor.execute(f"CREATE UNIQUE INDEX {KEY_INDEX} ON profiles_event (id, time)")
        for name, definition in indexes:
            if name == "event_salt_unique":
                continue
            cursor.execute(definition)  # read before the rename: it names profiles_event
        # The foreign keys last: one validating scan each instead of a deferred check per copied row.
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE profiles_event ADD CONSTRAINT "{name}" {definition}')
        cursor.execute(SALT_TRIGGER)
        cursor.execute("DROP TABLE profiles_event_unpartitioned")
        cursor.execute("ANALYZE profiles_event")


def unpartition(apps, schema_editor):
    """Back to one plain table (identity id, the partial unique index on salt); detached partitions stay out."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_indexdef(i.indexrelid)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'profiles_event'::regclass AND NOT i.indisprimary
            """
        )
        indexes = cursor.fetchall()
        cursor.execute(
            """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'profiles_event'::regclass AND contype = 'f'
            """
        )
        foreign_keys = cursor.fetchall()
        cursor.execute("SELECT coalesce(max(id), 0) FROM profiles_event")
        (max_id,) = cursor.fetchone()
        cursor.execute("ALTER TABLE profiles_event RENAME TO profiles_event_partitioned")
        cursor.execute("ALTER SEQUENCE profiles_event_id_seq RENAME TO profiles_event_partitioned_id_seq")
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("CREATE TABLE profiles_event (LIKE profiles_event_partitioned INCLUDING CONSTRAINTS)")
        cursor.execute("ALTER TABLE profiles_event ALTER COLUMN created_at SET DEFAULT statement_timestamp()")
        cursor.execute("ALTER TABLE profiles_event ALTER COLUMN request_id SET DEFAULT ''")
        cursor.execute("INSERT INTO profiles_event SELECT * FROM profiles_event_partitioned")
        cursor.execute("ALTER TABLE profiles_event ADD PRIMARY KEY (id)")
        cursor.execute(
            f"ALTER TABLE profiles_event ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {max_id + 1})"
        )
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE profiles_event ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            if name != KEY_INDEX:
                cursor.execute(definition)
        cursor.execute('CREATE UNIQUE INDEX "event_salt_unique" ON profiles_event (salt) WHERE salt IS NOT NULL')
        cursor.execute("DROP TABLE profiles_event_partitioned CASCADE")
        cursor.execute("DROP FUNCTION profiles_event_salt_claim()")


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0006_request_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventSalt",
            fields=[
                ("salt", models.CharField(max_length=128, primary_key=True, serialize=False)),
                ("event_id", models.BigIntegerField(help_text="The event that recorded this salt.")),
                ("time", models.DateTimeField(help_text="Its time (which names the partition it is in).")),
                ("created_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "verbose_name": "event salt",
            },
        ),
        # The old unique index goes with the old table; the model state forgets it here.
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveConstraint(model_name="event", name="event_salt_unique")],
            database_operations=[migrations.RunPython(partition, unpartition, elidable=False)],
        ),
    ]
