"""The idle-connection check the database pool and the webhook connections ask before reusing a socket."""

import socket

from crm.sockets import idle_socket_readable


def test_an_idle_socket_is_not_readable_and_one_the_peer_wrote_to_or_closed_is():
    mine, peer = socket.socketpair()
    try:
        assert idle_socket_readable(mine) is False
        assert idle_socket_readable(mine.fileno()) is False
        peer.send(b"x")
        assert idle_socket_readable(mine) is True
        assert mine.recv(1) == b"x"
        peer.close()
        assert idle_socket_readable(mine) is True  # the peer hung up: end of file is readable
    finally:
        mine.close()
    assert idle_socket_readable(mine) is True  # a closed socket cannot be told: not reused
