"""The consent ledger: append a record to a profile's hash chain, and verify chains.

Each record's hash is SHA-256 over a canonical JSON of the previous record's hash and the record's
own ids, states, source, actor, details and time. Personal data (IP address, user agent) stays out
of the hash, so erasure can blank it and the chain still verifies. Editing any hashed column,
deleting a record from the middle of a chain or its tail (the current state no longer matches the
last record) is reported by ``verify_chains``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection

from consents.models import ConsentRecord

GENESIS = "0" * 64


def record_hash(
    *,
    prev_hash: str,
    client_id: int,
    seq: int,
    agreement_id: int,
    text_id: int | None,
    old_status: str,
    new_status: str,
    source: str,
    actor: str,
    details: dict,
    created_at: datetime,
) -> str:
    payload = [prev_hash, client_id, seq, agreement_id, text_id, old_status, new_status, source, actor, details]
    return _digest(payload, _time_text(created_at))


def _time_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _digest(payload: list, created_at_text: str) -> str:
    """SHA-256 of the canonical JSON of ``payload`` + [the creation time as UTC ISO text, to the microsecond]."""
    canonical = json.dumps([*payload, created_at_text], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def hash_of(record: ConsentRecord) -> str:
    return record_hash(
        prev_hash=record.prev_hash,
        client_id=record.client_id,
        seq=record.seq,
        agreement_id=record.agreement_id,
        text_id=record.text_id,
        old_status=record.old_status,
        new_status=record.new_status,
        source=record.source,
        actor=record.actor,
        details=record.details,
        created_at=record.created_at,
    )


@dataclass
class NewRecord:
    """A record to append; ``seq``, ``prev_hash``, ``hash`` and ``id`` are filled in by ``records_append``."""

    client_id: int
    agreement_id: int
    text_id: int | None
    old_status: str
    new_status: str
    source: str
    actor: str
    ip_address: str | None
    user_agent: str
    details: dict
    created_at: datetime
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""
    id: int | None = None


CHAIN_HEADS_SQL = """
SELECT c.id, h.seq, h.hash
FROM unnest(%s::bigint[]) AS c(id)
CROSS JOIN LATERAL (
    SELECT seq, hash FROM consents_consentrecord r WHERE r.client_id = c.id ORDER BY r.seq DESC LIMIT 1
) h
"""
RECORDS_INSERT_SQL = """
INSERT INTO consents_consentrecord (client_id, seq, agreement_id, text_id, old_status, new_status, source, actor,
                                    ip_address, user_agent, details, created_at, prev_hash, hash)
SELECT c, q, a, x, o, n, s, r, i, u, d, t, p, h
FROM json_to_recordset(%s::json) AS j(c bigint, q integer, a bigint, x bigint, o text, n text, s text, r text,
                                      i inet, u text, d jsonb, t timestamptz, p text, h text)
RETURNING id, client_id, seq
"""


def records_append(records: list[NewRecord]) -> list[NewRecord]:
    """Append records to their profiles' chains, in list order, with two statements whatever their number.

    The chain heads of all the profiles concerned are read in one query; seq, previous hash and hash
    are computed in one pass; the records go in as one INSERT. The caller holds the row locks of the
    profiles (chains are per profile), so no other writer can append between the read and the insert.
    """
    if not records:
        return records
    client_ids = sorted({r.client_id for r in records})
    heads: dict[int, tuple[int, str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(CHAIN_HEADS_SQL, ["{" + ",".join(map(str, client_ids)) + "}"])
        for client_id, seq, digest in cursor.fetchall():
            heads[client_id] = (seq, digest)
        rows = []
        times: dict[datetime, str] = {}  # a call's records usually share one creation time: format it once
        for record in records:
            seq, prev_hash = heads.get(record.client_id, (0, GENESIS))
            # Round-trip the details through JSON so the stored value and the hashed value are the same.
            record.details = json.loads(json.dumps(record.details)) if record.details else {}
            record.actor = (record.actor or "")[:256]
            record.user_agent = (record.user_agent or "")[:512]
            record.seq, record.prev_hash = seq + 1, prev_hash
            created = times.get(record.created_at)
            if created is None:
                created = times[record.created_at] = _time_text(record.created_at)
            record.hash = _digest(
                [
                    prev_hash,
                    record.client_id,
                    record.seq,
                    record.agreement_id,
                    record.text_id,
                    record.old_status,
                    record.new_status,
                    record.source,
                    record.actor,
                    record.details,
                ],
                created,
            )
            heads[record.client_id] = (record.seq, record.hash)
            rows.append(
                {
                    "c": record.client_id,
                    "q": record.seq,
                    "a": record.agreement_id,
                    "x": record.text_id,
                    "o": record.old_status,
                    "n": record.new_status,
                    "s": record.source,
                    "r": record.actor,
                    "i": record.ip_address,
                    "u": record.user_agent,
                    "d": record.details,
                    "t": created,
                    "p": record.prev_hash,
                    "h": record.hash,
                }
            )
        cursor.execute(RECORDS_INSERT_SQL, [json.dumps(rows, separators=(",", ":"), ensure_ascii=False)])
        ids = {(client_id, seq): pk for pk, client_id, seq in cursor.fetchall()}
    for record in records:
        record.id = ids[(record.client_id, record.seq)]
    return records


@dataclass(frozen=True)
class Problem:
    client_id: int
    seq: int | None
    record_id: int | None
    message: str

    def __str__(self) -> str:
        where = f"clientId {self.client_id}"
        if self.seq is not None:
            where += f", record #{self.seq} (id {self.record_id})"
        return f"{where}: {self.message}"


@dataclass
class VerifyResult:
    profiles: int = 0
    records: int = 0


def verify_chains(*, client_ids: list[int] | None = None, result: VerifyResult | None = None) -> Iterator[Problem]:
    """Walk every chain (or those of ``client_ids``) in order, yielding each problem found. Streams the records."""
    result = result if result is not None else VerifyResult()
    records = ConsentRecord.objects.order_by("client_id", "seq")
    if client_ids is not None:
        records = records.filter(client_id__in=client_ids)
    current_client, expected_seq, prev_hash = None, 1, GENESIS
    for record in records.iterator(chunk_size=2000):
        if record.client_id != current_client:
            current_client, expected_seq, prev_hash = record.client_id, 1, GENESIS
            result.profiles += 1
        result.records += 1
        if record.seq != expected_seq:
            yield Problem(
                record.client_id,
                record.seq,
                record.pk,
                f"expected record #{expected_seq} here; records are missing or renumbered",
            )
        if record.prev_hash != prev_hash:
            yield Problem(record.client_id, record.seq, record.pk, "does not link to the previous record's hash")
        if hash_of(record) != record.hash:
            yield Problem(record.client_id, record.seq, record.pk, "content does not match its hash (edited)")
        expected_seq, prev_hash = record.seq + 1, record.hash
    yield from _verify_states(client_ids)


STATE_WITHOUT_MATCHING_RECORD_SQL = """
SELECT s.profile_id, s.agreement_id, s.status, r.new_status
FROM consents_consentstate s
LEFT JOIN LATERAL (
    SELECT new_status FROM consents_consentrecord r
    WHERE r.client_id = s.profile_id AND r.agreement_id = s.agreement_id ORDER BY r.seq DESC LIMIT 1
) r ON true
WHERE (r.new_status IS NULL OR r.new_status <> s.status) AND (%(ids)s::bigint[] IS NULL OR s.profile_id = ANY(%(ids)s))
"""
RECORD_WITHOUT_STATE_SQL = """
SELECT r.client_id, r.agreement_id, r.new_status
FROM (
    SELECT DISTINCT ON (client_id, agreement_id) client_id, agreement_id, new_status FROM consents_consentrecord
    WHERE %(ids)s::bigint[] IS NULL OR client_id = ANY(%(ids)s)
    ORDER BY client_id, agreement_id, seq DESC
) r
JOIN profiles_profile p ON p.id = r.client_id
LEFT JOIN consents_consentstate s ON s.profile_id = r.client_id AND s.agreement_id = r.agreement_id
WHERE r.new_status <> '' AND s.id IS NULL
"""


def _verify_states(client_ids: list[int] | None) -> Iterator[Problem]:
    """Each live profile's states must be what their agreement's last record says (a deleted tail, an edited state)."""
    params = {"ids": client_ids}
    with connection.cursor() as cursor:
        cursor.execute(STATE_WITHOUT_MATCHING_RECORD_SQL, params)
        for profile_id, agreement_id, status, recorded in cursor.fetchall():
            yield Problem(
                profile_id,
                None,
                None,
                f"the state '{status}' of agreement {agreement_id} does not match its last ledger record "
                f"({recorded or 'none'!r})",
            )
        cursor.execute(RECORD_WITHOUT_STATE_SQL, params)
        for profile_id, agreement_id, recorded in cursor.fetchall():
            yield Problem(
                profile_id,
                None,
                None,
                f"the ledger says '{recorded}' for agreement {agreement_id}, but the profile has no state for it",
            )
