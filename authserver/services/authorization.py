"""The authorization endpoint's logic (RFC 6749 §4.1, RFC 7636, OIDC Core
§3.1.2): validate a request, decide whether the user must sign in or consent,
and issue the code. Free of HTTP: the routes turn outcomes into responses.

Errors come in two kinds (RFC 6749 §4.1.2.1): before the client and its
redirect URI are established, an OAuthError is shown to the user and nothing
is redirected; after, a RedirectError carries the error back to the client.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.exceptions import (
    AccessDeniedError,
    ConsentRequiredError,
    InvalidRequestError,
    InvalidScopeError,
    LoginRequiredError,
    OAuthError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
)
from authserver.core.security import (
    PKCE_CHALLENGE,
    new_opaque_token,
    opaque_token_hash,
    opaque_token_matches,
)
from authserver.crud.authorization import (
    AuthorizationCodeRepository,
    AuthorizationRequestRepository,
)
from authserver.crud.client import ClientRepository
from authserver.crud.consent import ConsentRepository
from authserver.models import (
    AuthorizationCode,
    AuthorizationRequest,
    Client,
    LoginSession,
    User,
)
from authserver.services import consent
from authserver.services.grants.common import requested_scopes, scopes_for_user

GRANT_TYPE = "authorization_code"
PROMPTS = frozenset({"none", "login", "consent"})
MAX_STATE = 1024
MAX_NONCE = 512
MAX_LOGIN_HINT = 150
MAX_MAX_AGE = 10 * 365 * 86400
EXPIRED = "this sign-in request has expired or was already used"


class RedirectError(Exception):
    """An error for the client, sent to its (verified) redirect URI."""

    def __init__(self, error: OAuthError, redirect_uri: str, state: str | None):
        super().__init__(error.detail or error.description or error.error)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True)
class AuthorizationParams:
    """A validated authorization request."""

    client: Client
    redirect_uri: str
    scopes: list[str]
    scope_explicit: bool
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None

    def fail(self, error: OAuthError) -> RedirectError:
        return RedirectError(error, self.redirect_uri, self.state)


@dataclass(frozen=True)
class Redirect:
    """Send the browser back to the client (with a code or an error)."""

    url: str


@dataclass(frozen=True)
class Interaction:
    """Show the user a page (`login` or `consent`) for a pending request."""

    step: str
    request: AuthorizationRequest
    client: Client
    csrf_token: str
    username: str | None = None  # who is signed in (the consent step)


Outcome = Redirect | Interaction
Fail = Callable[[OAuthError], RedirectError]


async def validate_request(
    params: dict[str, str], clients: ClientRepository
) -> AuthorizationParams:
    """The request's parameters, checked in the order RFC 6749 §4.1.2.1 needs."""
    client_id = params.get("client_id")
    if not client_id:
        raise InvalidRequestError("client_id is required")
    client = await clients.get_by_client_id(client_id[:100])
    if client is None:
        raise InvalidRequestError("unknown client", detail=f"client {client_id[:40]}")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise InvalidRequestError("redirect_uri is required")
    # Exact string comparison (RFC 9700 §4.1.3): no prefix, no normalisation.
    if redirect_uri not in client.redirect_uris:
        raise InvalidRequestError(
            "redirect_uri is not registered for this client",
            detail=f"client {client.client_id}",
        )
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE:
        # Not echoed: the client gets the error without its oversized state.
        raise RedirectError(
            InvalidRequestError("state is too long"), redirect_uri, None
        )

    def fail(error: OAuthError) -> RedirectError:
        return RedirectError(error, redirect_uri, state)

    if GRANT_TYPE not in client.grant_types:
        raise fail(UnauthorizedClientError("this client may not use the code flow"))
    if "request" in params:
        raise fail(RequestNotSupportedError("request objects are not supported"))
    if "request_uri" in params:
        raise fail(RequestUriNotSupportedError("request_uri is not supported"))
    response_type = params.get("response_type")
    if response_type is None:
        raise fail(InvalidRequestError("response_type is required"))
    if response_type != "code":
        raise fail(UnsupportedResponseTypeError("only response_type=code"))
    if params.get("response_mode", "query") != "query":
        raise fail(InvalidRequestError("only response_mode=query is supported"))
    challenge = params.get("code_challenge")
    if challenge is None:
        raise fail(InvalidRequestError("code_challenge is required (PKCE, S256)"))
    # RFC 7636 §4.3: an omitted method means "plain", which we refuse.
    if params.get("code_challenge_method") != "S256":
        raise fail(InvalidRequestError("code_challenge_method must be S256"))
    if not PKCE_CHALLENGE.fullmatch(challenge):
        raise fail(InvalidRequestError("code_challenge is not a S256 challenge"))
    try:
        scopes = requested_scopes(params.get("scope"), client)
    except InvalidScopeError as exc:
        raise fail(exc) from None
    return AuthorizationParams(
        client=client,
        redirect_uri=redirect_uri,
        scopes=scopes,
        scope_explicit="scope" in params,
        state=state,
        nonce=_bounded(params, "nonce", MAX_NONCE, fail),
        code_challenge=challenge,
        prompt=_prompt(params.get("prompt"), fail),
        max_age=_max_age(params.get("max_age"), fail),
        login_hint=_bounded(params, "login_hint", MAX_LOGIN_HINT, fail),
    )


def _bounded(params: dict[str, str], name: str, limit: int, fail: Fail) -> str | None:
    value = params.get(name)
    if value is not None and len(value) > limit:
        raise fail(InvalidRequestError(f"{name} is too long"))
    return value


def _prompt(value: str | None, fail: Fail) -> frozenset[str]:
    prompt = frozenset((value or "").split())
    if prompt - PROMPTS:
        raise fail(InvalidRequestError("prompt may be none, login or consent"))
    if "none" in prompt and len(prompt) > 1:
        # OIDC Core §3.1.2.1: none with any other value is an error.
        raise fail(InvalidRequestError("prompt=none goes alone"))
    return prompt


def _max_age(value: str | None, fail: Fail) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) > MAX_MAX_AGE:
        raise fail(InvalidRequestError("max_age must be a number of seconds"))
    return int(value)


@dataclass
class AuthorizationService:
    """One authorization step per call, in the caller's unit of work."""

    session: AsyncSession
    issuer: str
    code_ttl: timedelta
    request_ttl: timedelta
    now: datetime

    async def begin(
        self, params: AuthorizationParams, login: tuple[LoginSession, User] | None
    ) -> Outcome:
        """What a fresh /authorize request leads to."""
        if login is None or self._must_sign_in_again(params, login[0]):
            if "none" in params.prompt:
                raise params.fail(LoginRequiredError("the user is not signed in"))
            return await self._pending(params, "login", session_id=None)
        return await self._continue(params, *login, asked_consent=False)

    async def after_login(
        self, request: AuthorizationRequest, login: LoginSession, user: User
    ) -> Outcome:
        params = await self._finish(request)
        return await self._continue(params, login, user, asked_consent=False)

    async def after_consent(
        self,
        request: AuthorizationRequest,
        login: LoginSession,
        user: User,
        *,
        allow: bool,
    ) -> Outcome:
        if request.session_id != login.id:
            raise InvalidRequestError(EXPIRED, detail="consent from another session")
        params = await self._finish(request)
        if not allow:
            raise params.fail(AccessDeniedError("the user declined"))
        scopes = self._user_scopes(params, user)
        await consent.grant(
            ConsentRepository(self.session),
            user.id,
            params.client,
            scopes,
            now=self.now,
        )
        return await self._continue(params, login, user, asked_consent=True)

    async def pending(self, request_id: str | None) -> AuthorizationRequest:
        """A live pending request by id, or an error page."""
        request = None
        if request_id and len(request_id) <= 64:
            request = await AuthorizationRequestRepository(self.session).get(request_id)
        if request is None or request.expires_at <= self.now:
            raise InvalidRequestError(EXPIRED)
        return request

    def check_csrf(
        self, request: AuthorizationRequest, form_token: str | None, cookie: str | None
    ) -> None:
        """The form must carry the page's token, and the browser its cookie: a
        page of another site can post neither (double submit, bound to the
        pending request)."""
        if (
            not form_token
            or not cookie
            or not opaque_token_matches(form_token, request.csrf_hash)
            or not opaque_token_matches(cookie, request.csrf_hash)
        ):
            raise InvalidRequestError(
                "the form expired; start the sign-in again", detail="csrf mismatch"
            )

    async def renew_csrf(self, request: AuthorizationRequest) -> str:
        """A fresh token for a page shown again (only the hash is kept)."""
        token = new_opaque_token()
        request.csrf_hash = opaque_token_hash(token)
        await self.session.flush()
        return token

    async def params_of(self, request: AuthorizationRequest) -> AuthorizationParams:
        client = await ClientRepository(self.session).get(request.client_id)
        if client is None or request.redirect_uri not in client.redirect_uris:
            raise InvalidRequestError(EXPIRED, detail="client changed meanwhile")
        return AuthorizationParams(
            client=client,
            redirect_uri=request.redirect_uri,
            scopes=request.scope.split(),
            scope_explicit=request.scope_explicit,
            state=request.state,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            prompt=frozenset((request.prompt or "").split()),
            max_age=request.max_age,
            login_hint=request.login_hint,
        )

    async def _finish(self, request: AuthorizationRequest) -> AuthorizationParams:
        params = await self.params_of(request)
        if not await AuthorizationRequestRepository(self.session).consume(request.id):
            raise InvalidRequestError(EXPIRED, detail="pending request used twice")
        return params

    def _must_sign_in_again(
        self, params: AuthorizationParams, login: LoginSession
    ) -> bool:
        if "login" in params.prompt:
            return True
        if params.max_age is not None:
            return self.now - login.auth_time > timedelta(seconds=params.max_age)
        return False

    async def _continue(
        self,
        params: AuthorizationParams,
        login: LoginSession,
        user: User,
        *,
        asked_consent: bool,
    ) -> Outcome:
        scopes = self._user_scopes(params, user)
        if not asked_consent:
            granted = await consent.is_granted(
                ConsentRepository(self.session), user.id, params.client, scopes
            )
            forced = "consent" in params.prompt
            if forced or not granted:
                if "none" in params.prompt:
                    raise params.fail(ConsentRequiredError("the user must consent"))
                return await self._pending(
                    params, "consent", session_id=login.id, username=user.username
                )
        code = await self._issue_code(params, scopes, login, user)
        return Redirect(self.success_url(params, code))

    def _user_scopes(self, params: AuthorizationParams, user: User) -> list[str]:
        try:
            return scopes_for_user(
                params.scopes, is_admin=user.is_admin, explicit=params.scope_explicit
            )
        except InvalidScopeError as exc:
            raise params.fail(exc) from None

    async def _pending(
        self,
        params: AuthorizationParams,
        step: str,
        *,
        session_id: uuid.UUID | None,
        username: str | None = None,
    ) -> Interaction:
        csrf = new_opaque_token()
        request = AuthorizationRequest(
            id=new_opaque_token(),
            client_id=params.client.id,
            redirect_uri=params.redirect_uri,
            scope=" ".join(params.scopes),
            scope_explicit=params.scope_explicit,
            state=params.state,
            nonce=params.nonce,
            code_challenge=params.code_challenge,
            prompt=" ".join(sorted(params.prompt - {"login"})) or None,
            max_age=None,  # satisfied by the sign-in this request leads to
            login_hint=params.login_hint,
            csrf_hash=opaque_token_hash(csrf),
            session_id=session_id,
            created_at=self.now,
            expires_at=self.now + self.request_ttl,
        )
        await AuthorizationRequestRepository(self.session).add(request)
        return Interaction(step, request, params.client, csrf, username)

    async def _issue_code(
        self,
        params: AuthorizationParams,
        scopes: list[str],
        login: LoginSession,
        user: User,
    ) -> str:
        code = new_opaque_token()
        await AuthorizationCodeRepository(self.session).add(
            AuthorizationCode(
                code_hash=opaque_token_hash(code),
                client_id=params.client.id,
                user_id=user.id,
                redirect_uri=params.redirect_uri,
                scope=" ".join(scopes),
                nonce=params.nonce,
                code_challenge=params.code_challenge,
                auth_time=login.auth_time,
                session_id=login.id,
                family_id=uuid.uuid4(),
                issued_at=self.now,
                expires_at=self.now + self.code_ttl,
            )
        )
        return code

    def success_url(self, params: AuthorizationParams, code: str) -> str:
        return redirect_url(
            params.redirect_uri,
            {"code": code, "state": params.state, "iss": self.issuer},
        )


def error_url(error: RedirectError, issuer: str) -> str:
    """The client's redirect URI with the error (RFC 6749 §4.1.2.1, RFC 9207)."""
    return redirect_url(
        error.redirect_uri,
        {
            "error": error.error.error,
            "error_description": error.error.description,
            "state": error.state,
            "iss": issuer,
        },
    )


def redirect_url(base: str, params: dict[str, str | None]) -> str:
    """`base` with `params` added to its query, which is kept (RFC 6749 §3.1.2)."""
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(name, value) for name, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))
