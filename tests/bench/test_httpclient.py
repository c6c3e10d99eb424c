"""The load generator's own HTTP/1.1 client, against a scripted socket server.

It replaces a general-purpose client in the benchmark, so the cases a real
server produces must work: keep-alive, chunked bodies, a server that closes
the connection after answering, and one that closes without answering.
"""

import asyncio
from collections.abc import AsyncIterator

import pytest

from bench.httpclient import Connection, HTTPClientError, build_request

ANSWERS = {
    b"/plain": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    ),
    b"/close": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
}


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[int]]]:
    """Port, and the number of requests each accepted connection served."""
    served: list[int] = []

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        index = len(served)
        served.append(0)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1]
                served[index] += 1
                if path == b"/drop":
                    break  # hang up without answering
                writer.write(ANSWERS[path])
                await writer.drain()
                if path == b"/close":
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield port, served
    finally:
        listener.close()
        await listener.wait_closed()


def get(path: str, port: int) -> bytes:
    return build_request("GET", path, f"127.0.0.1:{port}")


async def test_keep_alive_and_chunked(server: tuple[int, list[int]]) -> None:
    port, served = server
    connection = Connection("127.0.0.1", port)
    first = await connection.request(get("/plain", port))
    second = await connection.request(get("/chunked", port))
    connection.close()
    assert (first.status, first.body) == (200, b"hello")
    assert (second.status, second.body) == (201, b"abcdefg")
    assert served == [2]  # one connection served both


async def test_reconnects_after_connection_close(
    server: tuple[int, list[int]],
) -> None:
    port, served = server
    connection = Connection("127.0.0.1", port)
    assert (await connection.request(get("/close", port))).body == b"ok"
    assert (await connection.request(get("/plain", port))).body == b"hello"
    connection.close()
    assert served == [1, 1]


async def test_hang_up_without_answer_fails(server: tuple[int, list[int]]) -> None:
    port, _ = server
    connection = Connection("127.0.0.1", port)
    with pytest.raises(HTTPClientError, match="connection lost"):
        await connection.request(get("/drop", port))
    # The next request gets a fresh connection.
    assert (await connection.request(get("/plain", port))).status == 200
    connection.close()


def test_build_request_has_length_and_headers() -> None:
    raw = build_request(
        "POST", "/t", "h:1", body=b"a=1", headers={"Authorization": "Basic x"}
    )
    assert raw == (
        b"POST /t HTTP/1.1\r\nHost: h:1\r\nAuthorization: Basic x\r\n"
        b"Content-Length: 3\r\n\r\na=1"
    )
