"""Authentication and hostile input: wrong cookies, unsafe cookie files, bad frames."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zmq

import hotmesh
from hotmesh._mesh import client as mesh_client
from hotmesh._mesh.cookie import curve_keypair
from hotmesh._rpc import client_calls
from hotmesh._wire.frames import encode_frame
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster


@pytest.fixture
def node(start_node: Any) -> hotmesh.Node:
    return start_node("guarded", cookie="the-right-cookie", max_message_size=64 * 1024)


def mesh_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "hotmesh.mesh")


def test_client_with_wrong_cookie_cannot_call_and_is_logged(
    node: hotmesh.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotmesh.mesh")
    conn = mesh_client.Connection(node.endpoint, "a-wrong-cookie")
    try:
        with pytest.raises((hotmesh.AuthError, hotmesh.CallTimeout)):
            client_calls.call(conn, "os.getpid", timeout=1.0)
    finally:
        conn.close()
    wait_until(lambda: "refused connection from" in mesh_log(caplog), timeout=5)
    assert f"on {node.endpoint}: CURVE handshake failed" in mesh_log(caplog)


def test_node_with_wrong_cookie_cannot_join(
    node: hotmesh.Node, start_node: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotmesh.mesh")
    intruder = start_node(
        "intruder", cookie="a-wrong-cookie", seeds=[node.endpoint], join_timeout=0.5
    )
    assert intruder.nodes() == []
    assert node.nodes() == []
    wait_until(lambda: "CURVE handshake failed" in mesh_log(caplog), timeout=5)
    # The intruder is told too, once, though it keeps trying.
    told = f"{intruder.name}: the seed {node.endpoint} refused our CURVE handshake"
    wait_until(lambda: told in mesh_log(caplog), timeout=5)
    for _ in range(2):  # refused again: not said again while the seed has not answered
        intruder._io.run_sync(lambda: intruder._driver._seed_refused(node.endpoint))
    assert mesh_log(caplog).count(told) == 1
    assert intruder._driver.refused_seeds() == [node.endpoint]


def test_seed_with_the_same_cookie_is_not_said_to_refuse(
    node: hotmesh.Node, start_node: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotmesh.mesh")
    friend = start_node("friend", cookie="the-right-cookie", seeds=[node.endpoint])
    assert friend.nodes() == [node.name]
    assert "refused our CURVE handshake" not in mesh_log(caplog)
    assert friend._driver.refused_seeds() == []


def test_client_presenting_another_key_to_the_right_server_is_refused_by_zap(
    node: hotmesh.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotmesh.mesh")
    server_public, _ = curve_keypair("the-right-cookie")
    own_public, own_secret = zmq.curve_keypair()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.linger = 0
        sock.curve_serverkey = server_public
        sock.curve_publickey = own_public
        sock.curve_secretkey = own_secret
        sock.connect(node.endpoint)
        sock.send(encode_frame({"t": "ping"}))
        assert sock.poll(500) == 0
    finally:
        sock.close()
        ctx.term()
    wait_until(lambda: "its key is not the cluster key" in mesh_log(caplog), timeout=5)
    assert "127.0.0.1" in mesh_log(caplog)


def test_cookie_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie"
    cookie.write_text("secret\n")
    cookie.chmod(0o644)
    with pytest.raises(hotmesh.CookieError, match="chmod 600"):
        hotmesh.start("careless", cookie_file=cookie)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hotmesh",
            "node",
            "--name",
            "careless",
            "--cookie-file",
            str(cookie),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "chmod 600" in result.stderr
    assert "READY" not in result.stdout


def test_bad_frames_are_dropped_and_logged_and_the_node_keeps_answering(
    node: hotmesh.Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotmesh.mesh")
    good = encode_frame({"t": "ping"})
    bad_frames = [
        b"garbage that is no frame",
        b"",
        good[:3],  # truncated header
        good[:2] + bytes([99]) + good[3:],  # unknown protocol version
        encode_frame({"t": "call", "id": 1, "fn": "len", "a": ("x" * 100_000,)}, max_size=10**6),
        os.urandom(4096),
    ]
    with mesh_client.Connection(node.endpoint, "the-right-cookie") as conn:
        for frame in bad_frames:
            conn.send_raw(frame)
        assert client_calls.call(conn, "len", "abc") == 3
    text = mesh_log(caplog)
    assert text.count("dropped a frame") >= len(bad_frames) - 1
    assert "protocol version 99" in text
    assert "limit" in text


def test_multipart_message_and_raw_tcp_garbage_do_not_hurt_the_node(node: hotmesh.Node) -> None:
    public, secret = curve_keypair("the-right-cookie")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.linger = 0
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = public, public, secret
        sock.connect(node.endpoint)
        sock.send_multipart([b"a", b"b", encode_frame({"t": "ping"})])
    finally:
        sock.close()
        ctx.term()
    host, port = node.endpoint.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(os.urandom(2048))
    with mesh_client.Connection(node.endpoint, "the-right-cookie") as conn:
        assert client_calls.ping(conn, timeout=5)["node"] == node.name


def test_oversized_call_is_refused_at_the_caller(node: hotmesh.Node) -> None:
    with pytest.raises(hotmesh.MessageTooLarge):
        node.call(node.name, "len", "x" * 100_000)


def test_oversized_reply_comes_back_as_an_encode_error(node: hotmesh.Node, start_node: Any) -> None:
    caller = start_node("asking", cookie="the-right-cookie", seeds=[node.endpoint])
    assert caller.wait_connected([node.name], timeout=10)
    with pytest.raises(hotmesh.RemoteError) as caught:
        caller.call(node.name, "str.__mul__", "x", 100_000)  # over the target's 64 KiB
    assert caught.value.exc_type == "hotmesh.EncodeError"
