"""X-Forwarded-For from a trusted proxy: whatever it says, no 500 and only an
IP address (or nothing) reaches the audit trail and the access log."""

import httpx2

from authserver.crud.audit import AuditRepository
from tests.factories import make_client, make_user
from tests.live import free_socket, live_server, live_settings
from tests.logs import capture_logs

# X-Forwarded-For as the proxy passed it on: what the audit row's ip must be.
FORWARDED: dict[str, tuple[bytes, str | None]] = {
    "ipv4": (b"203.0.113.9", "203.0.113.9"),
    "ipv6-canonicalised": (b"2001:DB8:0:0::1", "2001:db8::1"),
    "ipv4-with-port": (b"198.51.100.7:4711", "198.51.100.7"),
    "first-of-a-chain": (b"192.0.2.1, 10.0.0.1", "192.0.2.1"),
    "over-long": (b"A" * 300, None),
    "over-long-ipv6-brackets": (b"[" + b"f" * 100 + b"]:80", None),
    "not-an-address": (b"evil.example; DROP TABLE", None),
    "latin-1-bytes": (b"\xff\xfe\xfd", None),
    "zone-id-text": (b"fe80::1%" + b"z" * 40, "fe80::1"),
}


async def test_forwarded_for_is_bounded_and_sanitised(
    database_url, tmp_path, clean_db, session_factory
):
    sock = free_socket()
    settings = live_settings(database_url, tmp_path / "keys", sock)
    client = await make_client(session_factory)
    users = {case: await make_user(session_factory) for case in FORWARDED}
    # Trust every peer, as a server behind a proxy that forwards the client's
    # X-Forwarded-For untouched would: uvicorn then takes its first entry.
    async with live_server(settings, sock, forwarded_allow_ips="*") as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            with capture_logs() as logs:
                answers = {
                    case: await http.post(
                        "/oauth2/token",
                        data={
                            "grant_type": "password",
                            "username": users[case].username,
                            "password": "not the password",
                        },
                        auth=client.basic_auth,
                        headers={"X-Forwarded-For": forwarded},
                    )
                    for case, (forwarded, _) in FORWARDED.items()
                }

    for case, answer in answers.items():
        assert answer.status_code == 400, (case, answer.text)
        assert answer.json()["error"] == "invalid_grant", case
    async with session_factory() as session:
        repo = AuditRepository(session)
        stored = {
            case: (await repo.list(subject=str(user.id), event="login_failed"))[0].ip
            for case, user in users.items()
        }
    assert stored == {case: ip for case, (_, ip) in FORWARDED.items()}
    logged = {r["client_ip"] for r in logs.named("http_request")}
    assert logged == {ip for _, ip in FORWARDED.values()}
