"""The pool's check of a connection it is about to hand out, free while the connection is healthy.

psycopg's own check (``ConnectionPool.check_connection``) sends an empty query: one more round trip on every
request. A connection resting in the pool has nothing to read unless the server wrote to it, and the server
does write when it drops a connection (``pg_terminate_backend``, a restart, ``idle_session_timeout``: an error
message, then the end of the stream). So the full check runs only when the socket has something to read, or
when the connection already knows it is closed; a healthy connection is handed out with no round trip.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from crm.sockets import idle_socket_readable


def connection_check(conn: psycopg.Connection) -> None:
    """Return quietly for a usable connection, raise for a broken one (the pool then replaces it)."""
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    try:
        pending = idle_socket_readable(conn.fileno())
    except psycopg.Error:
        pending = True  # cannot tell without asking the server
    if pending:
        ConnectionPool.check_connection(conn)
