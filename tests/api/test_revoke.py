"""Token revocation (RFC 7009) through the in-process app."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from authserver.crud.audit import AuditRepository
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.revoked_token import RevokedTokenRepository
from authserver.models import RevokedToken, TokenFamily
from authserver.services import maintenance
from tests.api.helpers import (
    ME_URL,
    REVOKE_URL,
    access_claims,
    assert_oauth_error,
    bearer,
    introspect,
    refresh_grant,
    revoke,
    sign_token,
    tokens,
    unverified,
    user_tokens,
)
from tests.factories import make_client, make_user


async def test_revoking_a_refresh_token_revokes_its_family(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    first = await user_tokens(api, client, user.username)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))

    response = await revoke(api, client, second["refresh_token"])

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    async with session_factory() as session:
        repo = RefreshTokenRepository(session)
        for token in (first["refresh_token"], second["refresh_token"]):
            record = await repo.get(unverified(token)[1]["jti"])
            assert record.revoked_at is not None
    again = await refresh_grant(api, client, second["refresh_token"])
    assert_oauth_error(again, 400, "invalid_grant")


async def test_revoking_an_access_token_deny_lists_it(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    access = (await user_tokens(api, client, user.username))["access_token"]
    assert (await api.get(ME_URL, headers=bearer(access))).status_code == 200

    response = await revoke(api, client, access, token_type_hint="access_token")

    assert response.status_code == 200
    me = await api.get(ME_URL, headers=bearer(access))
    assert me.status_code == 401
    assert (await introspect(api, client, access)) == {"active": False}
    claims = unverified(access)[1]
    async with session_factory() as session:
        entry = await RevokedTokenRepository(session).get(claims["jti"])
    assert int(entry.expires_at.timestamp()) == claims["exp"]


async def test_revoking_twice_is_fine(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    body = await user_tokens(api, client, user.username)

    for token in [body["access_token"]] * 2 + [body["refresh_token"]] * 2:
        assert (await revoke(api, client, token)).status_code == 200

    async with session_factory() as session:
        count = await session.scalar(select(func.count()).select_from(RevokedToken))
        families = (await session.scalars(select(TokenFamily))).all()
    assert count == 1  # the access token's jti, once
    assert [f.revoked_at is not None for f in families] == [True]


@pytest.mark.parametrize(
    "hint", ["access_token", "refresh_token"], ids=["hint-access", "hint-refresh"]
)
async def test_a_wrong_hint_is_not_trusted(api, session_factory, hint):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    body = await user_tokens(api, client, user.username)
    wrong = {"access_token": "refresh_token", "refresh_token": "access_token"}[hint]

    response = await revoke(api, client, body[wrong], token_type_hint=hint)

    assert response.status_code == 200
    assert (await introspect(api, client, body[wrong])) == {"active": False}


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
async def test_an_unknown_hint_is_ignored(api, session_factory, kind):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    body = await user_tokens(api, client, user.username)

    response = await revoke(api, client, body[kind], token_type_hint="id_token")

    assert response.status_code == 200
    assert (await introspect(api, client, body[kind])) == {"active": False}


async def test_public_client_may_revoke_its_own_tokens(api, session_factory):
    client = await make_client(session_factory, public=True)
    user = await make_user(session_factory)
    body = await user_tokens(api, client, user.username)

    response = await revoke(api, client, body["refresh_token"])

    assert response.status_code == 200
    again = await refresh_grant(api, client, body["refresh_token"])
    assert_oauth_error(again, 400, "invalid_grant")


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
async def test_another_clients_token_is_refused_and_kept(api, session_factory, kind):
    owner = await make_client(session_factory)
    other = await make_client(session_factory)
    user = await make_user(session_factory)
    body = await user_tokens(api, owner, user.username)

    response = await revoke(api, other, body[kind])

    assert_oauth_error(response, 400, "invalid_grant")
    assert (await introspect(api, owner, body[kind]))["active"] is True


async def test_another_clients_dead_token_answers_200(api, session_factory):
    owner = await make_client(session_factory)
    other = await make_client(session_factory)
    user = await make_user(session_factory)
    body = await user_tokens(api, owner, user.username)
    assert (await revoke(api, owner, body["refresh_token"])).status_code == 200

    response = await revoke(api, other, body["refresh_token"])

    assert response.status_code == 200


INVALID_TOKENS = {
    "garbage": lambda app, client, user: "not-a-token",
    "jwt-shaped-garbage": lambda app, client, user: "eyJhbGciOi.eyJzdWIi.c2ln",
    "expired": lambda app, client, user: sign_token(
        app, access_claims(user.id, client, exp=1_000_000, iat=999_000)
    ),
    "other-issuer": lambda app, client, user: sign_token(
        app, access_claims(user.id, client, iss="https://evil.example")
    ),
    "unknown-refresh-jti": lambda app, client, user: sign_token(
        app,
        access_claims(user.id, client, aud="http://localhost/oauth2/token"),
        typ="rt+jwt",
    ),
}


@pytest.mark.parametrize(
    "make", list(INVALID_TOKENS.values()), ids=list(INVALID_TOKENS)
)
async def test_invalid_or_unknown_tokens_answer_200(api, app, session_factory, make):
    client = await make_client(session_factory)
    user = await make_user(session_factory)

    response = await revoke(api, client, make(app, client, user))

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


REJECTIONS = {
    "no-token": ({}, 400, "invalid_request"),
    "token-too-long": ({"token": "x" * 5000}, 400, "invalid_request"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("form", "status", "error"), list(REJECTIONS.values()), ids=list(REJECTIONS)
)
async def test_rejects(api, session_factory, form, status, error):
    client = await make_client(session_factory)

    response = await api.post(REVOKE_URL, data=form, auth=client.basic_auth)

    assert_oauth_error(response, status, error)


CLIENT_FAILURES = {
    "wrong-secret": {"auth": ("{cid}", "wrong")},
    "unknown-client": {"auth": ("nobody", "secret")},
    "no-credentials": {},
    "confidential-without-secret": {"data": {"client_id": "{cid}"}},
}


@pytest.mark.parametrize(
    "case", list(CLIENT_FAILURES.values()), ids=list(CLIENT_FAILURES)
)
async def test_client_must_authenticate(api, session_factory, case):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    body = await user_tokens(api, client, user.username)
    auth = None
    if "auth" in case:
        auth = tuple(part.format(cid=client.client_id) for part in case["auth"])
    extra = {k: v.format(cid=client.client_id) for k, v in case.get("data", {}).items()}

    response = await api.post(
        REVOKE_URL, data={"token": body["refresh_token"], **extra}, auth=auth
    )

    assert_oauth_error(response, 401, "invalid_client")
    assert (await introspect(api, client, body["refresh_token"]))["active"] is True


async def test_json_body_is_invalid_request(api, session_factory):
    client = await make_client(session_factory)

    response = await api.post(REVOKE_URL, json={"token": "x"}, auth=client.basic_auth)

    assert_oauth_error(response, 400, "invalid_request")


async def test_purge_forgets_long_expired_entries(api, session_factory):
    now = datetime.now(UTC)
    async with session_factory() as session:
        repo = RevokedTokenRepository(session)
        await repo.add("old", expires_at=now - timedelta(days=2), at=now)
        await repo.add("recent", expires_at=now - timedelta(hours=1), at=now)
        await repo.add("live", expires_at=now + timedelta(minutes=5), at=now)
        await session.commit()

    await maintenance.purge_once(session_factory)

    async with session_factory() as session:
        kept = set(await session.scalars(select(RevokedToken.jti)))
    assert kept == {"recent", "live"}


async def test_revocations_are_audited(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    issued = await user_tokens(api, client, user.username)

    await revoke(api, client, issued["access_token"])
    await revoke(api, client, issued["refresh_token"])

    async with session_factory() as session:
        events = await AuditRepository(session).list(subject=str(user.id))
    revoked = {e.event: e for e in events if e.event.endswith("_revoked")}
    assert set(revoked) == {"access_token_revoked", "refresh_family_revoked"}
    assert all(e.client_id == client.client_id for e in revoked.values())
    assert (
        revoked["access_token_revoked"].detail["jti"]
        == unverified(issued["access_token"])[1]["jti"]
    )


async def test_revoking_a_family_ends_its_access_tokens(api, session_factory):
    client = await make_client(session_factory)
    user = await make_user(session_factory)
    first = await user_tokens(api, client, user.username)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    other_login = await user_tokens(api, client, user.username)

    await revoke(api, client, second["refresh_token"], token_type_hint="refresh_token")

    for issued in (first, second):
        assert unverified(issued["access_token"])[1]["sid"]
        me = await api.get(ME_URL, headers=bearer(issued["access_token"]))
        assert me.status_code == 401
        assert (await introspect(api, client, issued["access_token"])) == {
            "active": False
        }
    # Another login of the same user is another family: untouched.
    other = await api.get(ME_URL, headers=bearer(other_login["access_token"]))
    assert other.status_code == 200
