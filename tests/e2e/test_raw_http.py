"""Raw bytes on a socket to a real uvicorn: odd requests get a 4xx, never a 500.

What the HTTP parser refuses (control characters in a header, a bad
Content-Length) uvicorn answers 400 itself; what it passes on (any byte of
obs-text in a header value) the app must refuse cleanly.
"""

import asyncio
from urllib.parse import urlsplit

FORM = b"grant_type=client_credentials"


def request(
    *headers: bytes, path: bytes = b"/oauth2/token", body: bytes = FORM
) -> bytes:
    head = [
        b"POST " + path + b" HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Content-Type: application/x-www-form-urlencoded",
        b"Content-Length: " + str(len(body)).encode(),
        *headers,
        b"Connection: close",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


RAW: dict[str, tuple[bytes, int]] = {
    "control-character-in-header": (request(b"X-Request-ID: a\x01b"), 400),
    "nul-in-header": (request(b"X-Note: a\x00b"), 400),
    "escape-in-user-agent": (request(b"User-Agent: a\x1b[31mb"), 400),
    "negative-content-length": (
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        400,
    ),
    "content-length-and-chunked": (
        b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    "basic-with-latin-1-bytes": (request(b"Authorization: Basic \xe9\xe9"), 401),
    "bearer-with-latin-1-bytes": (
        b"GET /oauth2/userinfo HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
        401,
    ),
    "x-request-id-latin-1": (request(b"X-Request-ID: \xff\xfe"), 401),
}


async def status_of(url: str, raw: bytes) -> int:
    parts = urlsplit(url)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(parts.hostname, parts.port), timeout=5
    )
    try:
        writer.write(raw)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_odd_bytes_get_a_4xx(live):
    # One server for the whole table: each case is its own connection.
    seen = {case: await status_of(live, raw) for case, (raw, _) in RAW.items()}

    assert seen == {case: status for case, (_, status) in RAW.items()}
