"""`authctl serve --workers 2` for real: each worker listens on a socket of its
own (SO_REUSEPORT), a burst of connections reaches both, and a killed
worker's replacement serves its socket.

Which process holds which socket is read from /proc (Linux, as deployed): a
listening or connected socket is a line of /proc/net/tcp with its inode, and a
process holds it if one of its /proc/PID/fd links names that inode.
"""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import authctl_path, clean_environ, cli_env
from tests.scale.test_two_servers import _free_port

LISTEN, ESTABLISHED = "0A", "01"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = _free_port()
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}", tmp_path / "keys")
    env["AUTH_ISSUER"] = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("wb")
    command = [authctl_path(), "serve", "--port", str(port), "--workers", "2"]
    process = subprocess.Popen(
        command, env=clean_environ(env), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while len(workers_listening(process.pid, port)) < 2:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        yield port, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=20) == 0, (tmp_path / "serve.log").read_text()
        finally:
            process.kill()
            log.close()


def tcp_sockets(state: str, port: int) -> dict[int, int]:
    """inode -> remote port of the 127.0.0.1:`port` sockets in `state`."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, st, inode = fields[1], fields[2], fields[3], int(fields[9])
        if st == state and int(local.split(":")[1], 16) == port:
            found[inode] = int(remote.split(":")[1], 16)
    return found


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def children(pid: int) -> list[int]:
    """The supervisor's worker processes (not its multiprocessing helpers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = stat.with_name("cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and b"resource_tracker" not in cmdline:
            found.append(int(stat.parent.name))
    return found


def workers_listening(supervisor: int, port: int) -> dict[int, set[int]]:
    """worker pid -> the listening sockets it holds, for workers holding any."""
    listening = set(tcp_sockets(LISTEN, port))
    held = {}
    for pid in children(supervisor):
        try:
            mine = socket_inodes(pid) & listening
        except OSError:
            continue
        if mine:
            held[pid] = mine
    return held


def get_on(conn: socket.socket) -> None:
    conn.settimeout(30)
    conn.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert conn.recv(65536).startswith(b"HTTP/1.1 200")


def test_each_worker_listens_on_a_socket_of_its_own(server) -> None:
    port, process = server
    held = workers_listening(process.pid, port)
    assert len(held) == 2
    first, second = held.values()
    assert len(first) == len(second) == 1 and first != second
    # The supervisor keeps both, so a worker's replacement finds its socket.
    assert first | second <= socket_inodes(process.pid)


def test_a_burst_of_connections_reaches_both_workers(server) -> None:
    port, process = server
    held = workers_listening(process.pid, port)
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
    try:
        for conn in connections:
            get_on(conn)
        ours = {conn.getsockname()[1] for conn in connections}
        served = {
            inode
            for inode, remote in tcp_sockets(ESTABLISHED, port).items()
            if remote in ours
        }
        per_worker = [len(socket_inodes(pid) & served) for pid in held]
    finally:
        for conn in connections:
            conn.close()
    assert sum(per_worker) == 32
    # By the kernel's hash of 32 client ports: fewer than 4 on one side is a
    # chance of about 3 in a million. Accepting from one shared socket, all 32
    # often went to one worker.
    assert min(per_worker) >= 4, per_worker


def test_a_killed_worker_is_replaced_on_the_same_socket(server) -> None:
    port, process = server
    before = workers_listening(process.pid, port)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        after = workers_listening(process.pid, port)
        if victim not in after and len(after) == 2:
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.1)
    assert sorted(map(sorted, after.values())) == sorted(map(sorted, before.values()))
    for _ in range(20):  # new connections, over both sockets
        with socket.create_connection(("127.0.0.1", port)) as conn:
            get_on(conn)


def test_sighup_replaces_the_workers_on_their_sockets(server) -> None:
    port, process = server
    before = workers_listening(process.pid, port)
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 90
    while True:
        after = workers_listening(process.pid, port)
        if len(after) == 2 and not set(after) & set(before):
            break
        assert time.monotonic() < deadline, (before, after)
        time.sleep(0.1)
    assert sorted(map(sorted, after.values())) == sorted(map(sorted, before.values()))
    with socket.create_connection(("127.0.0.1", port)) as conn:
        get_on(conn)
