"""Identity: which profile a write's identifiers name, and what the write does to it, one rule per module.

- ``input``: the write as a surface builds it (``ProfileInput``) and cleaned (``input_clean`` → ``CleanInput``).
- ``uuid_reset``: a shared device's uuid follows the person (``uuid_resets``).
- ``limits``: the most values of a kind one profile may hold, and the merge that would exceed them
  (``identifier_limit``, ``identifier_limits_check``).
- ``survivor``: the profile a write lands on: none (create), one, or the survivor of a merge (``resolve``).
- ``diff``: what the write changes on that profile (``profile_diff``) or the profile it creates (``profile_new``).
- ``claims``: the identifiers the profile takes, against concurrent writers (``identifiers_claim``, ``Retry``).
- ``write``: the single write that walks them in that order (``profile_upsert``, ``profile_update``,
  ``resolve_and_write``), in a transaction run again when it lost a race (``with_retries``).

The rule modules decide without queries (but for ``input``'s agreements and ``claims``' insert); the reads are
``profiles.selectors`` (``identifier_owners``, ``identifiers_held``), the writes around them ``write``'s.

A single write enters each module once: input → uuid_reset → limits → survivor → diff → claims (a new profile:
input → diff → claims; see ``write``). A batch item (``profiles.services.batch``) enters input, then, in the
batch's in-memory pass, uuid_reset (only when it names a profile) and diff, and its identifiers are claimed by
the batch's set-based statements; an item that needs a merge, a UUID reset or follows one is written afterwards
by ``write.resolve_and_write``, on the single write's walk.
"""
