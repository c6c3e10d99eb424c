"""A real `authctl serve` on 127.0.0.1: its first start, its HTTP limits, its stop.

Each limit is attacked over a raw socket as a client would break it, with the
server's limits set low so that every wait is short; every socket read has a
timeout, so a server that holds on fails the test instead of hanging it.
"""

import http.client
import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.helpers import authctl_path, clean_environ, cli_env

LIMITS = {
    "AUTH_HTTP_MAX_HEADER_BYTES": "4096",
    "AUTH_HTTP_MAX_HEADERS": "30",
    "AUTH_HTTP_HEADER_TIMEOUT": "1",
    "AUTH_HTTP_BODY_TIMEOUT": "1",
    "AUTH_HTTP_KEEP_ALIVE_TIMEOUT": "2",
    "AUTH_HTTP_MAX_CONNECTIONS": "6",
}
READ_BOUND = 15.0  # seconds any read may wait: far above every limit above


@dataclass
class Served:
    process: "subprocess.Popen[str]"
    port: int
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=READ_BOUND)
        return sock


def start(tmp: Path, **env: str) -> Served:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    environ = clean_environ(
        {**cli_env(f"sqlite+aiosqlite:///{tmp / 'serve.db'}", tmp / "keys"), **env}
    )
    log = tmp / "serve.log"
    with log.open("w") as out:  # the child keeps its own copy
        process = subprocess.Popen(
            [authctl_path(), "serve", "--port", str(port)],
            cwd=tmp,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = Served(process, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"authctl serve exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live") as r:
                if r.status == 200:
                    return served
        except OSError:
            time.sleep(0.1)
    process.kill()
    pytest.fail("authctl serve did not answer within 60 s")


def stop(served: Served) -> None:
    if served.process.poll() is None:
        served.process.terminate()
        try:
            served.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            served.process.kill()
            served.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("serve"), **LIMITS)
    yield served
    stop(served)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; fails if it never does."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            pytest.fail(f"still open after {READ_BOUND} s; got {data[:200]!r}")
        if not chunk:
            return data
        data += chunk


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send, accepting that the server may close the connection part way."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def still_serving(served: Served) -> None:
    url = f"http://127.0.0.1:{served.port}/health/live"
    with urllib.request.urlopen(url, timeout=READ_BOUND) as response:
        assert response.status == 200


# --- the first start ---------------------------------------------------------------


def test_first_start_says_what_it_made_in_one_json_line(server: Served) -> None:
    records = [json.loads(line) for line in server.lines()]  # every line is JSON

    [made] = [r for r in records if r["message"] == "created"]
    assert made["schema"].startswith("created at revision ")
    assert made["database"].endswith("serve.db") and made["signing_key"] == "created"
    assert made["keys_dir"].endswith("keys")
    assert not [r for r in records if r["logger"].startswith("alembic")]


# --- headers -------------------------------------------------------------------


HEADER_ATTACKS = {
    "one-huge-header": b"X-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
    "never-ending-header": b"X-Big: " + b"a" * 200_000,
    "huge-url": b"",  # the request line itself, below
    "too-many-headers": b"".join(b"X-%d: v\r\n" % i for i in range(40)) + b"\r\n",
}


@pytest.mark.parametrize(
    "rest", list(HEADER_ATTACKS.values()), ids=list(HEADER_ATTACKS)
)
def test_oversized_headers_get_431_and_the_connection_closed(
    server: Served, rest: bytes
) -> None:
    target = b"/" + b"a" * 100_000 if not rest else b"/health/live"
    with server.connect() as sock:
        send_quietly(sock, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + rest)
        response = read_until_closed(sock)
    assert status_of(response) == 431, response[:200]
    still_serving(server)


def test_headers_within_the_limits_are_served(server: Served) -> None:
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 100) for i in range(25))
    with server.connect() as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert status_of(sock.recv(65536)) == 200


# --- time ------------------------------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed(server: Served) -> None:
    with server.connect() as sock:
        assert read_until_closed(sock) == b""  # closed by the server, no answer


def test_headers_sent_a_byte_at_a_time_get_408(server: Served) -> None:
    """Slowloris: each byte comes well within any idle timeout, the headers never."""
    with server.connect() as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.2)
        response = b""
        for _ in range(int(READ_BOUND / 0.2)):
            send_quietly(sock, b"X")
            try:
                response += sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not response or response.endswith(b"Request Timeout"):
                break
        assert status_of(response) == 408, response[:200]


def test_a_body_that_never_arrives_gets_408(server: Served) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100\r\n\r\ngrant_type"
        )
        response = read_until_closed(sock)
    assert status_of(response) == 408, response[:200]
    still_serving(server)


def test_an_idle_keep_alive_connection_is_closed(server: Served) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200 and response.read()
        assert read_until_closed(sock) == b""


def test_bare_line_ends_do_not_keep_a_connection_open(server: Served) -> None:
    """The parser skips CRLFs before a request: they must not reset idleness."""
    with server.connect() as sock:
        sock.settimeout(0.3)
        for _ in range(int(READ_BOUND / 0.3)):
            send_quietly(sock, b"\r\n")
            try:
                if sock.recv(1) == b"":
                    return
            except TimeoutError:
                continue
            except ConnectionResetError:
                return
        pytest.fail(f"still open after {READ_BOUND} s of line ends")


# --- connections -----------------------------------------------------------------


def test_requests_beyond_the_connection_limit_get_503(server: Served) -> None:
    limit = int(LIMITS["AUTH_HTTP_MAX_CONNECTIONS"])
    held = [server.connect() for _ in range(limit)]
    try:
        with server.connect() as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(sock.recv(65536)) == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)  # the server sees the held ones go
    still_serving(server)


# --- stopping -------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stops_within_seconds_of_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    served = start(tmp_path)
    still_serving(served)
    served.process.send_signal(sig)
    try:
        code = served.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        stop(served)
        pytest.fail(f"still running 10 s after {sig.name}")
    assert code in (0, -sig)  # uvicorn re-raises SIGTERM once it has shut down
    assert any("Finished server process" in line for line in served.lines())
