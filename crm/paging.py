"""The cursors of keyset-paged logs (a timeline, a webhook's messages): an opaque, URL-safe token that carries
the position of the last row of a page. Each selector puts its own key in the text; this module is the one wire
format. Page-number paging (``pageIndex``/``pageSize``) and the ``nextCursor`` answers are ``api.paging``'s."""

from __future__ import annotations

import base64
import binascii


def cursor_encode(*, text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_decode(*, cursor: str) -> str:
    """The text a cursor carries; ``ValueError`` for anything that is not one of ours."""
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("not a cursor") from None
