"""Attribute names: the spelling-independent key of a name, and the names no custom attribute may take.

Pure helpers (no database, no services), shared by the attribute catalog and the consents app,
whose custom agreements travel as attribute keys.
"""

from __future__ import annotations

import functools
import re

from profiles.fields import API_NAMES, DOCUMENT_KEYS

# Native fields (as the API names them, system ones such as correlationId included), the document's own keys and
# the other system attributes shown in `attributes`: never custom.
NATIVE_FIELDS = tuple(dict.fromkeys((*API_NAMES, *DOCUMENT_KEYS)))
SYSTEM_ATTRIBUTES = ("eventCreateTime", "id", "profileId")

_SEPARATORS = re.compile(r"[\s_\-.]+")


@functools.lru_cache(maxsize=4096)
def attribute_key(name: str) -> str:
    """The spelling-independent key of a name: lower case, separators removed (cached: batches repeat names)."""
    return _SEPARATORS.sub("", name).lower()


RESERVED_KEYS = {attribute_key(name): name for name in NATIVE_FIELDS + SYSTEM_ATTRIBUTES}
