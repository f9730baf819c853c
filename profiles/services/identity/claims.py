"""Claims: a profile takes its identifiers against concurrent writers (the last stop of a single write).

Each (kind, value) belongs to one profile at most: the unique row in ``profiles_identifier`` decides. A write
reads the owners, decides, and then claims what its diff (or its new profile) takes: ``identifiers_claim``
inserts the rows and, when another profile took one of them between the read and the insert, raises ``Retry``
so that the whole write is resolved again (``write.with_retries`` runs it again in a new transaction). A value
the profile already holds (sent twice) is no race. The batch claims its identifiers in one set-based statement
of its own and raises the same ``Retry``.
"""

from __future__ import annotations

import json

from django.db import connection

from profiles.selectors import identifier_owners
from profiles.services.identity.input import Pair


class Retry(Exception):
    """Another transaction claimed an identifier between our read and our write: resolve again."""


def identifiers_claim(*, profile_id: int, pairs: list[Pair]) -> None:
    """Insert identifiers for a profile; a value another profile took meanwhile raises Retry."""
    if not pairs:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO profiles_identifier (profile_id, kind, value, first_seen, last_seen)
            SELECT %s, t.k, t.v, now(), now() FROM json_to_recordset(%s::json) AS t(k text, v text)
            ON CONFLICT (kind, value) DO NOTHING
            RETURNING kind, value
            """,
            [profile_id, json.dumps([{"k": k, "v": v} for k, v in pairs])],
        )
        claimed = set(cursor.fetchall())
    lost = [pair for pair in pairs if pair not in claimed]
    if lost and any(pid != profile_id for pid in identifier_owners(pairs=lost).values()):
        raise Retry
    # Otherwise already ours (sent twice): nothing to do.
