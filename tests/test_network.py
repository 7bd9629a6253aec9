import socket

import pytest
from pytest_socket import SocketConnectBlockedError


def test_internet_access_is_blocked_in_tests():
    with pytest.raises((SocketConnectBlockedError, OSError)) as excinfo:
        socket.create_connection(("93.184.215.14", 443), timeout=2)

    assert isinstance(excinfo.value, SocketConnectBlockedError)


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        client = socket.create_connection(server.getsockname(), timeout=2)
        client.close()
    finally:
        server.close()
