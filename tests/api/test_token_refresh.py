"""Refresh grant (RFC 6749 §6): rotation, retry window, reuse detection."""

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx2
import jwt as pyjwt
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey

from authserver.api.state import app_state
from authserver.core.security import seal
from authserver.crud.refresh_token import RefreshTokenRepository
from authserver.crud.token_family import TokenFamilyRepository
from authserver.main import create_app
from authserver.schemas.account import PasswordSet
from tests.api.helpers import (
    assert_oauth_error,
    password_grant,
    refresh_grant,
    tokens,
    unverified,
)
from tests.conftest import TEST_ISSUER
from tests.factories import demote, make_client, make_user, user_service


@asynccontextmanager
async def app_with(settings, **overrides) -> AsyncIterator[httpx2.AsyncClient]:
    """The app with other settings, on the same database and keys."""
    app = create_app(settings.model_copy(update=overrides))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=TEST_ISSUER) as c:
            yield c


ROTATION_CLAIMS = {"client_id", "scope", "sid", "auth_time", "family_exp"}


async def login(api, session_factory, **client_options):
    client = await make_client(session_factory, **client_options)
    user = await make_user(session_factory)
    body = tokens(await password_grant(api, client, user.username))
    return client, user, body


async def test_refresh_rotates_and_old_access_token_stays_valid(
    api, session_factory, app
):
    client, user, first = await login(api, session_factory)

    second = tokens(await refresh_grant(api, client, first["refresh_token"]))

    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    claims = app_state(app).tokens.verify_access(
        first["access_token"], now=datetime.now(UTC)
    )
    assert claims["sub"] == str(user.id)
    third = tokens(await refresh_grant(api, client, second["refresh_token"]))
    assert third["refresh_token"] not in (
        first["refresh_token"],
        second["refresh_token"],
    )


async def test_retry_within_window_returns_the_same_pair(api, session_factory):
    client, _, first = await login(api, session_factory)

    second = await refresh_grant(api, client, first["refresh_token"])
    retried = await refresh_grant(api, client, first["refresh_token"])

    assert tokens(retried) == tokens(second)
    # The answer given twice is one live token, not a reuse alarm.
    assert tokens(await refresh_grant(api, client, tokens(second)["refresh_token"]))


async def test_a_retry_later_in_the_window_gets_the_same_tokens_signed_again(
    api, session_factory, clock
):
    # The answer is not stored: it is signed again from the records, so every
    # timestamp and id in it must be the rotation's, not the retry's.
    client, _, first = await login(api, session_factory)  # scopes include openid
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    clock(timedelta(seconds=7))

    retried = tokens(await refresh_grant(api, client, first["refresh_token"]))

    assert "id_token" in second
    assert retried == second
    _, access = unverified(second["access_token"])
    _, refresh = unverified(second["refresh_token"])
    _, id_token = unverified(second["id_token"])
    assert len({access["jti"], refresh["jti"], id_token["jti"]}) == 3


async def test_no_answer_or_token_is_stored_for_a_retry(api, session_factory):
    client, _, first = await login(api, session_factory)
    narrow = first["scope"].split()[0]
    tokens(await refresh_grant(api, client, first["refresh_token"], scope=narrow))

    _, claims = unverified(first["refresh_token"])
    async with session_factory() as session:
        record = await RefreshTokenRepository(session).get(claims["jti"])
    assert record is not None
    assert record.retry_blob is None
    assert record.retry_scope == narrow  # all a retry needs beyond the records
    assert record.retry_until is not None


async def test_a_rotation_sealed_before_migration_0008_is_still_answered(
    api, session_factory
):
    # A rotation made by the previous release kept its answer sealed under a
    # key derived from the presented token; within its window it is the answer.
    client, _, first = await login(api, session_factory)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    _, claims = unverified(first["refresh_token"])
    stored = {**second, "access_token": "the-answer-the-old-release-gave"}
    async with session_factory() as session:
        record = await RefreshTokenRepository(session).get(claims["jti"])
        assert record is not None
        record.retry_scope = None
        record.retry_blob = seal(first["refresh_token"], record.jti, stored)
        await session.commit()

    retried = tokens(await refresh_grant(api, client, first["refresh_token"]))

    assert retried == stored


async def test_a_retry_asking_for_the_same_scope_gets_the_same_pair(
    api, session_factory
):
    client, _, first = await login(api, session_factory)
    narrow = first["scope"].split()[0]

    second = await refresh_grant(api, client, first["refresh_token"], scope=narrow)
    retried = await refresh_grant(api, client, first["refresh_token"], scope=narrow)

    assert tokens(retried) == tokens(second)
    assert tokens(second)["scope"] == narrow


async def test_a_retry_asking_for_another_scope_is_reuse(api, session_factory):
    client, _, first = await login(api, session_factory)
    narrow = first["scope"].split()[0]
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))

    # Not a lost answer retried: the first request asked for every scope.
    replayed = await refresh_grant(api, client, first["refresh_token"], scope=narrow)

    assert_oauth_error(replayed, 400, "invalid_grant")
    assert_oauth_error(
        await refresh_grant(api, client, second["refresh_token"]), 400, "invalid_grant"
    )


async def test_reuse_after_window_revokes_the_whole_family(api, session_factory, clock):
    client, _, first = await login(api, session_factory)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    clock(timedelta(seconds=11))

    reused = await refresh_grant(api, client, first["refresh_token"])
    newest = await refresh_grant(api, client, second["refresh_token"])

    assert_oauth_error(reused, 400, "invalid_grant")
    assert_oauth_error(newest, 400, "invalid_grant")


async def test_retry_after_the_child_was_used_is_reuse(api, session_factory):
    client, _, first = await login(api, session_factory)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    third = tokens(await refresh_grant(api, client, second["refresh_token"]))

    replayed = await refresh_grant(api, client, first["refresh_token"])

    assert_oauth_error(replayed, 400, "invalid_grant")
    assert_oauth_error(
        await refresh_grant(api, client, third["refresh_token"]), 400, "invalid_grant"
    )


async def test_without_retry_window_any_second_use_is_reuse(
    settings, api, session_factory
):
    async with app_with(settings, refresh_retry_window=timedelta(0)) as strict:
        client, _, first = await login(strict, session_factory)
        second = tokens(await refresh_grant(strict, client, first["refresh_token"]))

        again = await refresh_grant(strict, client, first["refresh_token"])

        assert_oauth_error(again, 400, "invalid_grant")
        assert_oauth_error(
            await refresh_grant(strict, client, second["refresh_token"]),
            400,
            "invalid_grant",
        )


async def test_family_cannot_outlive_its_absolute_lifetime(
    settings, api, session_factory, app
):
    short = {
        "refresh_token_ttl": timedelta(seconds=100),
        "refresh_token_max_lifetime": timedelta(seconds=150),
    }
    async with app_with(settings, **short) as capped:
        client, _, first = await login(capped, session_factory)
        offset = timedelta(0)
        capped_app = capped._transport.app  # type: ignore[attr-defined]
        app_state(capped_app).clock = lambda: datetime.now(UTC) + offset
        offset = timedelta(seconds=90)
        second = tokens(await refresh_grant(capped, client, first["refresh_token"]))
        offset = timedelta(seconds=140)
        third = tokens(await refresh_grant(capped, client, second["refresh_token"]))
        offset = timedelta(seconds=151)
        late = await refresh_grant(capped, client, third["refresh_token"])

    assert_oauth_error(late, 400, "invalid_grant")


async def test_disabled_user_cannot_refresh(api, session_factory):
    client, user, first = await login(api, session_factory)
    async with session_factory() as session:
        service = user_service(session)
        await service.set_active(await service.resolve(str(user.id)), False)
        await session.commit()

    assert_oauth_error(
        await refresh_grant(api, client, first["refresh_token"]), 400, "invalid_grant"
    )


async def test_password_change_ends_refresh(api, session_factory):
    client, user, first = await login(api, session_factory)
    async with session_factory() as session:
        service = user_service(session)
        await service.set_password(
            await service.resolve(user.username),
            PasswordSet(password="a new passphrase"),
        )
        await session.commit()

    assert_oauth_error(
        await refresh_grant(api, client, first["refresh_token"]), 400, "invalid_grant"
    )


async def test_deleted_user_cannot_refresh(api, session_factory):
    client, user, first = await login(api, session_factory)
    async with session_factory() as session:
        service = user_service(session)
        await service.delete(await service.resolve(user.username))
        await session.commit()

    assert_oauth_error(
        await refresh_grant(api, client, first["refresh_token"]), 400, "invalid_grant"
    )


async def test_scope_may_narrow_but_not_widen(api, session_factory):
    client, _, first = await login(
        api, session_factory, scopes=("openid", "profile", "email")
    )

    narrowed = tokens(
        await refresh_grant(api, client, first["refresh_token"], scope="profile")
    )
    widened = await refresh_grant(
        api, client, narrowed["refresh_token"], scope="profile admin"
    )
    assert_oauth_error(widened, 400, "invalid_scope")
    # The refresh token keeps the original grant (RFC 6749 §6).
    restored = tokens(await refresh_grant(api, client, narrowed["refresh_token"]))

    assert narrowed["scope"] == "profile"
    assert "id_token" not in narrowed
    assert restored["scope"] == "openid profile email"
    assert "id_token" in restored


async def test_another_clients_refresh_token_is_refused(api, session_factory):
    _, _, first = await login(api, session_factory)
    other = await make_client(session_factory)

    assert_oauth_error(
        await refresh_grant(api, other, first["refresh_token"]), 400, "invalid_grant"
    )


def _forge(header: dict, claims: dict, key) -> str:
    return jwt.encode(header, claims, key, algorithms=[header["alg"]])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "rt+jwt"}).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}."


def _hs256(header: dict, claims: dict, public_pem: bytes) -> str:
    """The classic confusion attack: HMAC keyed with the RSA public key."""
    signing_input = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


FORGERIES = [
    "access-token",
    "other-key-same-kid",
    "alg-none",
    "hs256-public-key",
    "unknown-kid",
    "garbage",
    "expired",
    "mac-when-rs256",
    *(f"no-{name}" for name in sorted(ROTATION_CLAIMS)),
]


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_refresh_tokens_are_invalid_grant(
    api, session_factory, app, forgery
):
    client, _, first = await login(api, session_factory)
    real = app_state(app).keystore.view()
    kid = real.signing_key.kid
    claims = jwt.decode(
        first["refresh_token"], real.verify_keys, algorithms=["RS256"]
    ).claims
    expired = {**claims, "exp": claims["iat"] - 1}
    rogue_rsa = RSAKey.generate_key(2048, parameters={"kid": kid})
    public_pem = real.signing_key.as_pem(private=False)
    header = {"alg": "RS256", "typ": "rt+jwt", "kid": kid}
    hs256 = {**header, "alg": "HS256"}
    presented = {
        "access-token": lambda: first["access_token"],
        "other-key-same-kid": lambda: _forge(header, claims, rogue_rsa),
        "alg-none": lambda: _unsigned(claims),
        "hs256-public-key": lambda: _hs256(hs256, claims, public_pem),
        "unknown-kid": lambda: _forge(
            {**header, "kid": "nope"},
            claims,
            RSAKey.generate_key(2048, parameters={"kid": "nope"}),
        ),
        "garbage": lambda: "not.a.jwt",
        "expired": lambda: _forge(header, expired, real.signing_key),
        # The opt-in MAC is not accepted while RS256 is configured.
        "mac-when-rs256": lambda: _forge(hs256, claims, real.refresh_key),
        # Every claim a rotation is made from is required.
        **{
            f"no-{name}": lambda name=name: _forge(
                header,
                {k: v for k, v in claims.items() if k != name},
                real.signing_key,
            )
            for name in sorted(ROTATION_CLAIMS)
        },
    }[forgery]()

    response = await refresh_grant(api, client, presented)

    assert_oauth_error(response, 400, "invalid_grant")
    # None of them disturbed the real family.
    assert tokens(await refresh_grant(api, client, first["refresh_token"]))


async def test_refresh_token_is_required(api, session_factory):
    client = await make_client(session_factory)

    response = await api.post(
        "/oauth2/token", data={"grant_type": "refresh_token"}, auth=client.basic_auth
    )

    assert_oauth_error(response, 400, "invalid_request")


async def test_public_client_refreshes_with_client_id(api, session_factory):
    client, _, first = await login(api, session_factory, public=True)

    assert tokens(await refresh_grant(api, client, first["refresh_token"]))[
        "access_token"
    ]


async def test_reuse_also_ends_the_familys_access_tokens(
    api, session_factory, app, clock
):
    client, _, first = await login(api, session_factory)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    clock(timedelta(seconds=11))

    assert_oauth_error(
        await refresh_grant(api, client, first["refresh_token"]), 400, "invalid_grant"
    )

    me = await api.get(
        "/api/v1/users/me",
        headers={"Authorization": f"Bearer {second['access_token']}"},
    )
    assert me.status_code == 401


async def test_refresh_token_claims_describe_its_record(api, session_factory, app):
    client, user, first = await login(api, session_factory)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))

    _, claims = unverified(second["refresh_token"])
    async with session_factory() as session:
        record = await RefreshTokenRepository(session).get(claims["jti"])
        assert record is not None
        family = await TokenFamilyRepository(session).get(record.family_id)
    assert family is not None
    assert claims["sid"] == str(record.family_id)
    assert claims["auth_time"] == int(record.auth_time.timestamp())
    assert claims["family_exp"] == int(family.expires_at.timestamp())
    assert claims["exp"] == int(record.expires_at.timestamp())
    assert claims["sub"] == str(user.id) == str(record.user_id)


async def test_password_logins_belong_to_no_browser_session(api, session_factory):
    client, _, first = await login(api, session_factory)
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))

    for body in (first, second):
        assert "sid" not in unverified(body["id_token"])[1]
        assert "login_sid" not in unverified(body["refresh_token"])[1]
    family_id = unverified(second["refresh_token"])[1]["sid"]
    async with session_factory() as session:
        family = await TokenFamilyRepository(session).get(uuid.UUID(family_id))
    assert family is not None and family.session_id is None


async def test_refresh_tokens_are_rs256_and_verify_with_the_jwks(
    api, session_factory, app
):
    client, _, first = await login(api, session_factory)
    view = app_state(app).keystore.view()
    jwks = (await api.get("/.well-known/jwks.json")).json()

    header, claims = unverified(first["refresh_token"])

    assert header == {"alg": "RS256", "typ": "rt+jwt", "kid": view.signing_key.kid}
    # An independent library with only the published keys verifies it.
    public_key = pyjwt.PyJWK(jwks["keys"][0]).key
    verified = pyjwt.decode(
        first["refresh_token"],
        public_key,
        algorithms=["RS256"],
        audience=f"{TEST_ISSUER}/oauth2/token",
        issuer=TEST_ISSUER,
    )
    assert verified == claims


async def test_refresh_tokens_may_carry_an_hs256_mac_instead(
    settings, api, session_factory, app
):
    async with app_with(settings, refresh_token_alg="HS256") as mac_api:
        client, _, first = await login(mac_api, session_factory)
        view = app_state(app).keystore.view()
        jwks = (await mac_api.get("/.well-known/jwks.json")).json()

        header, claims = unverified(first["refresh_token"])
        second = tokens(await refresh_grant(mac_api, client, first["refresh_token"]))
        # A MAC is deterministic too: a retry is signed again to the same bytes.
        again = tokens(await refresh_grant(mac_api, client, first["refresh_token"]))

    assert again == second
    assert header == {"alg": "HS256", "typ": "rt+jwt", "kid": view.signing_key.kid}
    assert unverified(second["refresh_token"])[0]["alg"] == "HS256"
    # The published keys cannot check it; the server's MAC key for that kid can.
    public_key = pyjwt.PyJWK(jwks["keys"][0]).key
    with pytest.raises(pyjwt.InvalidTokenError):
        pyjwt.decode(first["refresh_token"], public_key, algorithms=["RS256"])
    verified = pyjwt.decode(
        first["refresh_token"],
        view.refresh_key.raw_value,
        algorithms=["HS256"],
        audience=f"{TEST_ISSUER}/oauth2/token",
    )
    assert verified == claims
    # Each setting accepts its one algorithm: the default refuses the MAC.
    assert_oauth_error(
        await refresh_grant(api, client, second["refresh_token"]), 400, "invalid_grant"
    )


async def test_a_demoted_admin_loses_the_admin_scope_on_refresh(api, session_factory):
    client = await make_client(session_factory, scopes=("profile", "admin"))
    user = await make_user(session_factory, is_admin=True)
    first = tokens(await password_grant(api, client, user.username))
    still = tokens(await refresh_grant(api, client, first["refresh_token"]))
    await demote(session_factory, user.username)

    demoted = tokens(await refresh_grant(api, client, still["refresh_token"]))

    assert first["scope"] == still["scope"] == "profile admin"
    assert demoted["scope"] == "profile"
    assert unverified(demoted["refresh_token"])[1]["scope"] == "profile"


async def test_a_replayed_token_asking_a_wider_scope_is_still_reuse(
    api, session_factory, clock
):
    client, _, first = await login(api, session_factory, scopes=("profile", "email"))
    second = tokens(await refresh_grant(api, client, first["refresh_token"]))
    clock(timedelta(seconds=11))  # past the retry window

    replay = await refresh_grant(
        api, client, first["refresh_token"], scope="profile admin"
    )

    assert_oauth_error(replay, 400, "invalid_grant")  # not invalid_scope
    assert_oauth_error(  # and the family is gone
        await refresh_grant(api, client, second["refresh_token"]), 400, "invalid_grant"
    )
