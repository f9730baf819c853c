"""One question about an idle connection's socket, asked by the database pool and the webhook connections."""

from __future__ import annotations

import selectors


def idle_socket_readable(fileobj) -> bool:
    """Whether an idle socket (or anything with ``fileno()``) has something to read right now, without waiting.

    On an idle client connection that means the peer closed it or wrote what nobody asked for; True also when
    it cannot be told (a closed descriptor). epoll/kqueue: no limit on the descriptor's number."""
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(fileobj, selectors.EVENT_READ)
            return bool(selector.select(0))
    except (OSError, ValueError):
        return True
