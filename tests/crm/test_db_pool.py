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
            killed = admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()
            assert killed == (True,)
        with connection.cursor() as cursor:  # the next "request"
            cursor.execute("SELECT pg_backend_pid()")
            assert cursor.fetchone()[0] != pid
    finally:
        connection.close()
        connection.close_pool()
