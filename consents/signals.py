"""Custom signals the consent services send; the events app's receivers turn them into timeline events.

- ``consent_changed(changes: list[ConsentChange], source: str, actor: str)``: sent inside the
  writing transaction, once per change set, after the ledger record and the state are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from profiles.signals import HoldableSignal


@dataclass(frozen=True)
class ConsentChange:
    client_id: int
    agreement_id: int
    agreement_key: str
    old_status: str  # "" when there was no decision
    new_status: str  # "" when the decision was removed (a merged-away profile)
    record_id: int  # the ConsentRecord in the ledger
    changed_at: datetime


consent_changed = HoldableSignal()  # a profile write holds it until its profile signals are sent
