"""The psycopg pool heals: a connection the server dropped is replaced when taken, not handed to a request."""

import psycopg
import pytest
from django.db import connection


@pytest.mark.django_db(transaction=True)
def test_a_dropped_pooled_connection_is_replaced():
    assert connection.settings_dict["CONN_MAX_AGE"] == 0 and connection.pool is not None
    connection.close()
    connection.close_pool()  # a fresh pool holding one connection: the one taken next is the one killed
    try:
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        connection.close()  # back to the pool, as at the end of a request
        params = connection.get_connection_params()
        params.pop("pool", None)
        params.pop("cursor_factory", None)
        with psycopg.connect(**params, autocommit=True) as admin:
            # wait_for: the backend has exited (and so closed its end) when the call returns
            killed = admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()
            assert killed == (True,)
        with connection.cursor() as cursor:  # the next "request"
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != pid
    finally:
        connection.close()
        connection.close_pool()


@pytest.mark.django_db(transaction=True)
def test_the_check_asks_the_server_only_when_it_wrote_to_the_resting_connection(monkeypatch):
    """A healthy pooled connection is handed out with no round trip; one the server closed is checked (and
    fails, so the pool replaces it)."""
    from psycopg_pool import ConnectionPool

    from crm.pool_check import connection_check

    asked = []
    real = ConnectionPool.check_connection
    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(lambda conn: (asked.append(1), real(conn))))
    params = connection.get_connection_params()
    params.pop("pool", None)
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as resting, psycopg.connect(**params, autocommit=True) as admin:
        resting.execute("SELECT 1").fetchone()
        connection_check(resting)
        assert asked == []  # nothing to read: no query sent
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [resting.info.backend_pid])
        with pytest.raises(psycopg.OperationalError):
            connection_check(resting)
        assert asked == [1]
