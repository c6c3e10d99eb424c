"""The authorization endpoint's flow (RFC 6749 §4.1, OIDC Core §3.1.2):
decide whether the user must sign in or consent, keep the pending request
meanwhile, and issue the code. Free of HTTP: the routes turn outcomes into
responses. Each step that writes ends its transaction: it commits what it
decided, and an error shown as a page leaves nothing of it.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from authserver.core.exceptions import (
    AccessDeniedError,
    ConsentRequiredError,
    InvalidRequestError,
    InvalidScopeError,
    LoginRequiredError,
)
from authserver.core.security import (
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
from authserver.db.unit_of_work import UnitOfWork
from authserver.models import (
    AuthorizationCode,
    AuthorizationRequest,
    Client,
    LoginSession,
    User,
)
from authserver.services import consent
from authserver.services.authorization_request import (
    AuthorizationParams,
    RedirectError,
    redirect_url,
)
from authserver.services.grants.common import scopes_for_user

EXPIRED = "this sign-in request has expired or was already used"


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


@dataclass
class AuthorizationService:
    """One authorization step per call, in the caller's unit of work."""

    uow: UnitOfWork
    issuer: str
    code_ttl: timedelta
    request_ttl: timedelta
    now: datetime

    @property
    def session(self) -> AsyncSession:
        return self.uow.session

    async def begin(
        self, params: AuthorizationParams, login: tuple[LoginSession, User] | None
    ) -> Outcome:
        """What a fresh /authorize request leads to (committed)."""
        if login is None or self._must_sign_in_again(params, login[0]):
            if "none" in params.prompt:
                raise params.fail(LoginRequiredError("the user is not signed in"))
            outcome: Outcome = await self._pending(params, "login", session_id=None)
        else:
            outcome = await self._continue(params, *login, asked_consent=False)
        await self.uow.commit()
        return outcome

    async def after_login(
        self, request: AuthorizationRequest, login: LoginSession, user: User
    ) -> Outcome:
        """Where the pending request goes now that the user signed in as `login`;
        commits the sign-in (begun in this transaction) with the outcome."""
        params = await self._finish(request)
        try:
            outcome = await self._continue(params, login, user, asked_consent=False)
        except RedirectError:
            await self.uow.commit()  # the session stays: the user did sign in
            raise
        await self.uow.commit()
        return outcome

    async def after_consent(
        self,
        request: AuthorizationRequest,
        login: LoginSession,
        user: User,
        *,
        allow: bool,
    ) -> Outcome:
        """Where the pending request goes on the user's answer (committed)."""
        if request.session_id != login.id:
            raise InvalidRequestError(EXPIRED, detail="consent from another session")
        params = await self._finish(request)
        try:
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
            outcome = await self._continue(params, login, user, asked_consent=True)
        except RedirectError:
            await self.uow.commit()  # the pending request is used up either way
            raise
        await self.uow.commit()
        return outcome

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
        """A fresh token for a page shown again (only the hash is kept; committed)."""
        token = new_opaque_token()
        request.csrf_hash = opaque_token_hash(token)
        await self.uow.commit()
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
