"""Attribute names: the spelling-independent key of a name, and the names no custom attribute may take.

Pure helpers (no database, no services), shared by the attribute catalog and the consents app,
whose custom agreements travel as attribute keys.
"""

from __future__ import annotations

import functools
import re

from profiles.fields import EDITABLE_API_NAMES, api_name
from profiles.fields import IDENTIFIER_COLUMNS as _IDENTIFIER_COLUMNS

# Native fields (as the API names them), read-only document keys and system attributes shown in
# `attributes`: never custom.
NATIVE_FIELDS = (
    "clientId",
    *(api_name(column) for column in _IDENTIFIER_COLUMNS.values()),
    *EDITABLE_API_NAMES.values(),
    "lastActivityDate", "anonymous", "agreements", "attributes", "tags", "previousClients",
)  # fmt: skip
SYSTEM_ATTRIBUTES = ("eventCreateTime", "correlationId", "createdAt", "updatedAt", "id", "profileId")

_SEPARATORS = re.compile(r"[\s_\-.]+")


@functools.lru_cache(maxsize=4096)
def attribute_key(name: str) -> str:
    """The spelling-independent key of a name: lower case, separators removed (cached: batches repeat names)."""
    return _SEPARATORS.sub("", name).lower()


RESERVED_KEYS = {attribute_key(name): name for name in NATIVE_FIELDS + SYSTEM_ATTRIBUTES}
