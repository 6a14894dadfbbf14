"""The RPC timeout lives on each lightningd socket, not on the process (issue 15 item 5), and
each thread keeps one connection open between calls.

Through a real unix-socket JSON-RPC server (the simulator's lightningd socket) and the exact
objects plugin.py builds: LightningdRpc(fast_lightning_rpc(socket_path)).
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from revops.node.rpc import TIMEOUT, LightningdRpc, NodeRpcError, fast_lightning_rpc
from revops.sim.jsonrpc_server import JsonRpcServer


@pytest.fixture
def server(tmp_path):
    release = threading.Event()
    seen = []  # the server-side connection of each request

    def handle(request, conn):
        seen.append(conn)
        if request["method"] == "hang":  # a lightningd that never answers this call
            release.wait(30)
        return {"jsonrpc": "2.0", "id": request["id"], "result": {"method": request["method"]}}

    srv = JsonRpcServer(str(tmp_path / "lightning-rpc"), handle)
    srv.seen = seen
    yield srv
    release.set()
    srv.close()


def test_rpc_calls_leave_the_process_default_timeout_alone(server):
    assert socket.getdefaulttimeout() is None
    rpc = LightningdRpc(fast_lightning_rpc(server.path))
    assert rpc.call("getinfo") == {"method": "getinfo"}
    assert socket.getdefaulttimeout() is None
    # a socket the metrics server or the LNbits client opens now has no inherited timeout
    other = socket.socket()
    try:
        assert other.gettimeout() is None
    finally:
        other.close()


def test_a_hung_rpc_still_times_out_on_its_own_socket(server):
    rpc = LightningdRpc(fast_lightning_rpc(server.path, timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(NodeRpcError) as err:
        rpc.call("hang")
    assert err.value.code == TIMEOUT and err.value.method == "hang"
    assert 0.4 < time.monotonic() - started < 5
    assert socket.getdefaulttimeout() is None
    assert rpc.call("getinfo") == {"method": "getinfo"}  # the next call works on a fresh socket


def test_each_thread_keeps_one_connection_and_survives_lightningd_closing_it(server):
    rpc = LightningdRpc(fast_lightning_rpc(server.path))
    for _ in range(5):
        assert rpc.call("getinfo") == {"method": "getinfo"}
    assert len({id(c) for c in server.seen}) == 1
    other = threading.Thread(target=lambda: rpc.call("listfunds"))
    other.start()
    other.join(5)
    assert len({id(c) for c in server.seen}) == 2 and server.seen[-1] is not server.seen[0]
    server.seen[0].sock.shutdown(socket.SHUT_RDWR)  # lightningd drops the kept connection
    assert rpc.call("getinfo") == {"method": "getinfo"}  # one retry on a new connection
    assert len({id(c) for c in server.seen}) == 3
