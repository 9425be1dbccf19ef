"""Embedding a node: context manager, stop twice, threads gone, asyncio hosts (and a program
without asyncio spared its import), current_node."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from typing import Any

import pytest

import hotmesh
from hotmesh._mesh import registry
from tests.waiting import wait_until

pytestmark = pytest.mark.cluster
RPC = "tests.cluster.test_rpc"


def hotmesh_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hotmesh-")]


def test_stop_twice_is_safe_and_leaves_no_thread_or_registry_entry() -> None:
    before = hotmesh_threads()
    node = hotmesh.start("stopper")
    assert registry.lookup(node.name) is not None
    assert node.is_alive()
    node.stop()
    node.stop()
    assert not node.is_alive()
    assert hotmesh_threads() == before
    assert registry.lookup(node.name) is None


def test_context_manager_stops_the_node() -> None:
    with hotmesh.start("ctx") as node:
        assert node.call(node.name, "len", "abc") == 3
    assert not node.is_alive()
    with pytest.raises(hotmesh.NodeStopped):
        node.call("someone@else", "len", "x")


def test_current_node_is_the_single_running_node() -> None:
    with hotmesh.start("only") as node:
        assert hotmesh.current_node() is node


def test_current_node_inside_a_call_is_the_target(start_node: Any) -> None:
    a = start_node("cur-a")
    b = start_node("cur-b", seeds=[a.endpoint])
    assert a.wait_connected([b.name], timeout=10)
    assert a.call(b.name, f"{RPC}.whoami") == b.name
    with pytest.raises(hotmesh.HotmeshError, match="several nodes"):
        hotmesh.current_node()


def test_node_in_an_asyncio_app_does_not_use_or_block_its_loop(start_node: Any) -> None:
    peer = start_node("aio-peer")

    async def app() -> tuple[Any, int]:
        loop = asyncio.get_running_loop()
        node = await asyncio.to_thread(hotmesh.start, "aio-app", seeds=[peer.endpoint], tick=1.0)
        try:
            assert node.loop is not loop
            # While the app's loop keeps running its own tasks, the peer calls
            # into this node and this node calls the peer (from a thread).
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(ticker())
            remote = await asyncio.to_thread(peer.call, node.name, f"{RPC}.whoami")
            local = await loop.run_in_executor(None, node.call, peer.name, "os.getpid")
            task.cancel()
            return (remote, local), ticks
        finally:
            await asyncio.to_thread(node.stop)

    (remote, local), ticks = asyncio.run(app())
    assert remote == "aio-app@" + peer.name.split("@")[1]
    assert isinstance(local, int)
    assert ticks > 0


def test_blocking_call_from_the_io_thread_is_refused(start_node: Any) -> None:
    node = start_node("io-guard")
    errors: list[BaseException] = []
    done = threading.Event()

    def on_io() -> None:
        try:
            node.call(node.name, "len", "x")
        except BaseException as exc:
            errors.append(exc)
        done.set()

    node.loop.call_soon_threadsafe(on_io)
    assert done.wait(5)
    assert isinstance(errors[0], hotmesh.HotmeshError)


def test_register_handler_and_send_to_reach_clients(start_node: Any) -> None:
    from hotmesh._mesh import client as mesh_client
    from hotmesh._mesh.cookie import load_cookie

    node = start_node("handler")
    node.register_handler("echo", lambda sender, msg: node.send_to(sender, {**msg, "t": "echoed"}))
    with pytest.raises(hotmesh.ConfigError):
        node.register_handler("call", lambda sender, msg: None)
    with mesh_client.Connection(node.endpoint, load_cookie()) as conn:
        conn.send({"t": "echo", "n": 1})
        reply = conn.recv(5.0)
    assert reply == {"t": "echoed", "n": 1}


def test_a_burst_of_messages_that_are_not_calls_is_handled_in_full(start_node: Any) -> None:
    # More than one read's worth (256) of messages for the I/O thread, and no
    # call among them: the reader must read on, not sleep on the inbox's fd,
    # which signals only for input that comes later.
    from hotmesh._mesh import client as mesh_client
    from hotmesh._mesh.cookie import load_cookie

    node = start_node("burst")
    handled: list[int] = []
    node.register_handler("count", lambda sender, msg: handled.append(msg["n"]))
    with mesh_client.Connection(node.endpoint, load_cookie()) as conn:
        for n in range(1000):
            conn.send({"t": "count", "n": n})
        wait_until(lambda: len(handled) == 1000, timeout=10, message="all 1000 handled")
    assert handled == list(range(1000))


def test_a_full_read_that_held_a_frame_it_dropped_is_followed_by_another(
    start_node: Any,
) -> None:
    # The read's budget counts frames, dropped ones too: a burst whose first
    # read fills up but yields one message fewer must still be read to its end.
    from hotmesh._mesh import client as mesh_client
    from hotmesh._mesh.cookie import load_cookie

    node = start_node("burst-garbage")
    handled: list[int] = []
    node.register_handler("count", lambda sender, msg: handled.append(msg["n"]))
    with mesh_client.Connection(node.endpoint, load_cookie()) as conn:
        for n in range(1000):
            if n % 50 == 10:  # in every read's worth of the burst
                conn.send_raw(b"garbage that is no frame")
            conn.send({"t": "count", "n": n})
        wait_until(lambda: len(handled) == 1000, timeout=10, message="all 1000 handled")
    assert handled == list(range(1000))


def test_options_are_read_only_and_state_dir_exists(start_node: Any, tmp_path: Any) -> None:
    node = start_node("opts", tick=0.8, state_dir=tmp_path / "state")
    assert node.options["tick"] == 0.8
    assert node.options["release"] is None
    assert node.state_dir == tmp_path / "state" and node.state_dir.is_dir()
    with pytest.raises(TypeError):
        node.options["tick"] = 1.0  # type: ignore[index]


def test_code_roots_are_handed_to_the_code_server(start_node: Any) -> None:
    import hotmesh.code

    start_node("rooted", code_roots=["hotmesh_test_app_root_xyz"])
    assert "hotmesh_test_app_root_xyz" in hotmesh.code.roots()


def test_app_is_called_with_the_node(start_node: Any) -> None:
    seen: list[hotmesh.Node] = []
    node = start_node("with-app", app=seen.append)
    assert seen == [node]


def test_node_joins_when_its_seed_comes_up_later(start_node: Any) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    early = start_node("early", seeds=[f"tcp://127.0.0.1:{port}"], join_timeout=0.2)
    assert early.nodes() == []
    late = start_node("late-seed", listen=f"tcp://127.0.0.1:{port}")
    assert early.wait_connected([late.name], timeout=10)
    assert late.wait_connected([early.name], timeout=10)


def _not_joined_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "hotmesh.node" and r.getMessage().startswith(f"{name}: no seed of")
    ]


def test_a_node_that_does_not_wait_to_join_warns_only_if_still_alone_two_ticks_later(
    start_node: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    caplog.set_level(logging.WARNING, logger="hotmesh.node")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    seed = f"tcp://127.0.0.1:{port}"  # nobody listens there
    alone = start_node("alone-bg", seeds=[seed], join_timeout=0, tick=0.3)
    assert _not_joined_lines(caplog, alone.name) == []  # start() returned without a word
    wait_until(lambda: _not_joined_lines(caplog, alone.name), timeout=10)
    assert _not_joined_lines(caplog, alone.name) == [
        f"{alone.name}: no seed of {seed} answered yet; joining when one does"
    ]


def test_a_node_that_does_not_wait_and_joins_says_nothing(
    start_node: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hotmesh.node")
    first = start_node("first-bg")
    joiner = start_node("joiner-bg", seeds=[first.endpoint], join_timeout=0, tick=0.3)
    assert joiner.wait_connected([first.name], timeout=10)
    joiner._io.run_sync(joiner._warn_not_joined)  # what its timer does two ticks in
    assert _not_joined_lines(caplog, joiner.name) == []


def test_a_node_imports_neither_asyncio_nor_openssl_unless_the_program_does(tmp_path: Any) -> None:
    # asyncio pulls in ssl: about 8 MB of every node's memory, and CPU at start;
    # hashlib and secrets pull in OpenSSL's libcrypto (3.4 MB) through _hashlib.
    script = (
        "import sys, hotmesh\n"
        "node = hotmesh.start('plain', cookie_file=sys.argv[1])\n"
        "node.call(node.name, 'hotmesh.deploy.node_version')\n"
        "print(sorted({'asyncio', 'ssl', '_hashlib'} & set(sys.modules)))\n"
        "node.stop()\n"
    )
    cookie = tmp_path / "cookie"
    cookie.write_text("no-asyncio-cookie\n")
    cookie.chmod(0o600)
    env = dict(os.environ, HOTMESH_STATE_DIR=str(tmp_path / "state"))
    done = subprocess.run(
        [sys.executable, "-c", script, str(cookie)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout


def test_a_node_start_leaves_what_only_upgrades_and_other_commands_use_unloaded(
    tmp_path: Any,
) -> None:
    # Every node of a fleet pays its start in CPU and memory; these load on
    # first use (a load, purge or check; a release's manifest; another command).
    lazy = [
        "hotmesh.code.batch",
        "hotmesh.code.build",
        "hotmesh.code.purging",
        "hotmesh.code.scan",
        "hotmesh.code.stale",
        "hotmesh.code.suspend",
        "hotmesh.code.xref_index",
        "hotmesh.code.xref_source",
        "hotmesh.cli.console",
        "hotmesh.cli.demo",
        "tomllib",
        # C libraries: bz2, lzma and zlib come with shutil (tempfile, argparse's
        # help width), _ctypes with ctypes, _decimal with decimal.
        "shutil",
        "tempfile",
        "ctypes",
        "decimal",
        "uuid",
        # dataclasses compiles several methods per class and brings inspect,
        # ast and dis: the classes a start defines are records (hotmesh._record).
        "dataclasses",
        "inspect",
        # Code shipping parses and disassembles only when it ships a function.
        "ast",
        "dis",
        # The console server, its sessions' outboxes, leases, timers and audit
        # log come with the first console message; code shipping with the
        # first function shipped.
        "hotmesh._console.server",
        "hotmesh._console.output",
        "hotmesh._console.leases",
        "hotmesh._console.timers",
        "hotmesh._console.audit",
        "hotmesh._rpc.shipping",
        # The code server comes with the first code root (a release's packages).
        "hotmesh.code.server",
        "hotmesh.code.dependent_modules",
        "hotmesh.code.facade",
        "hotmesh.code.managed_roots",
        "hotmesh.code.versions",
        "sysconfig",
        # Upgrades, the airbag, fleet-wide status and calls: on first use.
        "hotmesh.deploy._job",
        "hotmesh.deploy._preload",
        "hotmesh.deploy._services",
        "hotmesh.deploy.actions",
        "hotmesh.deploy.airbag",
        "hotmesh.deploy.fleet",
        "hotmesh.deploy.report",
        "hotmesh.deploy.window",
        "hotmesh._gil",
        "hotmesh._rpc.fanout",
        # A DNS SRV seed's client.
        "hotmesh._membership.srv",
    ]
    cookie = tmp_path / "cookie"
    cookie.write_text("lazy-start-cookie\n")
    cookie.chmod(0o600)
    # The app: a module of its own that imports nothing, then the node stops.
    (tmp_path / "lazy_app.py").write_text(
        "import os, signal, sys\n"
        "def report(node):\n"
        f"    print('LOADED', sorted(set({lazy!r}) & set(sys.modules)), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    command = [sys.executable, "-m", "hotmesh", "node", "--name", "lazy"]
    command += ["--cookie-file", str(cookie), "--app", "lazy_app:report"]
    env = dict(os.environ, HOTMESH_STATE_DIR=str(tmp_path / "state"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout


_gate = threading.Event()


def wait_at_gate(timeout: float) -> bool:
    """A call that holds its worker until the test opens the gate."""
    return _gate.wait(timeout)


def test_membership_goes_on_while_every_worker_is_busy(start_node: Any) -> None:
    busy = start_node("busy", max_workers=2)
    caller = start_node("busy-caller", seeds=[busy.endpoint])
    assert caller.wait_connected([busy.name], timeout=10)
    _gate.clear()
    results: list[Any] = []

    def call() -> None:
        try:
            results.append(caller.call(busy.name, f"{__name__}.wait_at_gate", 20.0, timeout=30))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        # Both workers hold a call, the third call waits for one of them (maybe
        # beside a job of the nodes' own meeting: a status cast at nodeup)...
        wait_until(lambda: busy._pool._running == 2 and len(busy._pool._jobs) >= 1, timeout=10)
        # ...while the inbox is still read: a newcomer is welcomed and meets everyone.
        newcomer = start_node("busy-newcomer", seeds=[busy.endpoint])
        assert newcomer.wait_connected([busy.name, caller.name], timeout=10)
        assert busy.wait_connected([newcomer.name], timeout=10)
        assert busy._pool._running == 2 and not results
    finally:
        _gate.set()
        for thread in threads:
            thread.join(30)
    assert results == [True, True, True]
