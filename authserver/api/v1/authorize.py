"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2) and the hosted
sign-in and consent pages it leads to."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from authserver.api.browser import (
    csrf_cookie_name,
    read_params,
    redirect,
    session_cookie,
    set_cookie,
)
from authserver.api.deps import PagesDep, SettingsDep, StateDep, UnitOfWorkDep
from authserver.api.templates import Pages, csp_source
from authserver.core.config import Settings
from authserver.core.exceptions import (
    InvalidGrantError,
    InvalidRequestError,
    OAuthError,
)
from authserver.crud.client import ClientRepository
from authserver.crud.login_session import LoginSessionRepository
from authserver.models import AuthorizationRequest, Client
from authserver.schemas.token import MAX_PASSWORD, MAX_USERNAME
from authserver.services import sessions
from authserver.services.authorization import (
    AuthorizationService,
    Interaction,
    Outcome,
)
from authserver.services.authorization_request import (
    RedirectError,
    error_url,
    validate_request,
)
from authserver.services.login import sign_in

router = APIRouter(tags=["authorization"])

AUTHORIZE_PATH = "/oauth2/authorize"
LOGIN_PATH = "/oauth2/login"
CONSENT_PATH = "/oauth2/consent"
WRONG_CREDENTIALS = "Incorrect username or password."
MISSING_CREDENTIALS = "Enter your username and password."


async def _service(uow: UnitOfWorkDep, state: StateDep) -> AuthorizationService:
    settings = state.settings
    return AuthorizationService(
        uow=uow,
        issuer=settings.issuer,
        code_ttl=settings.authorization_code_ttl,
        request_ttl=settings.authorization_request_ttl,
        now=state.clock(),
    )


ServiceDep = Annotated[AuthorizationService, Depends(_service)]


@router.get(
    AUTHORIZE_PATH,
    summary="Authorization endpoint (code flow with PKCE S256)",
    operation_id="authorize_get",
)
@router.post(
    AUTHORIZE_PATH,
    summary="Authorization endpoint (code flow with PKCE S256)",
    operation_id="authorize_post",
)
async def authorize(
    request: Request,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    pages: PagesDep,
    service: ServiceDep,
) -> Response:
    try:
        params = await validate_request(
            await read_params(request), ClientRepository(uow.session)
        )
        login = await sessions.current(
            LoginSessionRepository(uow.session),
            session_cookie(request, settings),
            now=service.now,
        )
        outcome = await service.begin(params, login)
        return _answer(request, settings, pages, outcome)
    except RedirectError as exc:
        return redirect(request, error_url(exc, settings.issuer))
    except OAuthError as exc:
        return pages.error(exc)


@router.get(LOGIN_PATH, summary="The sign-in page of a pending authorization")
async def login_page(
    request: Request,
    settings: SettingsDep,
    pages: PagesDep,
    service: ServiceDep,
) -> Response:
    try:
        pending = await service.pending(request.query_params.get("request"))
        client = (await service.params_of(pending)).client
        csrf = await service.renew_csrf(pending)
    except OAuthError as exc:
        return pages.error(exc)
    response = _login(pages, pending, client, csrf, username=pending.login_hint)
    _set_csrf(response, settings, csrf)
    return response


@router.post(LOGIN_PATH, summary="Sign in with a username and password")
async def login(
    request: Request,
    state: StateDep,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    pages: PagesDep,
    service: ServiceDep,
) -> Response:
    try:
        form = await read_params(request)
        pending = await service.pending(form.get("request"))
        service.check_csrf(
            pending,
            form.get("csrf_token"),
            request.cookies.get(csrf_cookie_name(settings)),
        )
        client = (await service.params_of(pending)).client
        username, password = form.get("username"), form.get("password")
        if not username or not password:
            return _login(
                pages,
                pending,
                client,
                form["csrf_token"],
                username,
                MISSING_CREDENTIALS,
            )
        if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
            # Never truncated, never hashed: no account has such a password.
            return _login(
                pages, pending, client, form["csrf_token"], None, WRONG_CREDENTIALS
            )
        try:
            user = await sign_in(
                uow,
                state.hasher,
                username,
                password,
                now=service.now,
                lock_policy=state.lock_policy,
                client_id=client.client_id,
                via="login_page",
            )
        except InvalidGrantError:
            return _login(
                pages, pending, client, form["csrf_token"], username, WRONG_CREDENTIALS
            )
        browser_login, token = await sessions.start(
            LoginSessionRepository(uow.session),
            user,
            now=service.now,
            ttl=settings.login_session_ttl,
            ip=request.client.host if request.client else None,
            user_agent=request.headers.get("user-agent"),
        )
        outcome = await service.after_login(pending, browser_login, user)
    except RedirectError as exc:
        response = redirect(request, error_url(exc, settings.issuer))
    except OAuthError as exc:
        return pages.error(exc)
    else:
        response = _answer(request, settings, pages, outcome)
    max_age = int(settings.login_session_ttl.total_seconds())
    set_cookie(
        response, settings, sessions.cookie_name(settings.issuer), token, max_age
    )
    return response


@router.post(CONSENT_PATH, summary="Allow or deny a client's access")
async def consent(
    request: Request,
    uow: UnitOfWorkDep,
    settings: SettingsDep,
    pages: PagesDep,
    service: ServiceDep,
) -> Response:
    try:
        form = await read_params(request)
        pending = await service.pending(form.get("request"))
        service.check_csrf(
            pending,
            form.get("csrf_token"),
            request.cookies.get(csrf_cookie_name(settings)),
        )
        login = await sessions.current(
            LoginSessionRepository(uow.session),
            session_cookie(request, settings),
            now=service.now,
        )
        if login is None:
            raise InvalidRequestError(
                "your sign-in has ended; start again", detail="no session"
            )
        outcome = await service.after_consent(
            pending, *login, allow=form.get("decision") == "allow"
        )
        return _answer(request, settings, pages, outcome)
    except RedirectError as exc:
        return redirect(request, error_url(exc, settings.issuer))
    except OAuthError as exc:
        return pages.error(exc)


def _answer(
    request: Request,
    settings: Settings,
    pages: Pages,
    outcome: Outcome,
) -> Response:
    if not isinstance(outcome, Interaction):
        return redirect(request, outcome.url)
    if outcome.step == "login":
        response = _login(
            pages,
            outcome.request,
            outcome.client,
            outcome.csrf_token,
            outcome.request.login_hint,
        )
    else:
        response = pages.render(
            "consent.html",
            form_targets=csp_source(outcome.request.redirect_uri),
            action=pages.url(CONSENT_PATH),
            client_name=outcome.client.name,
            username=outcome.username or "",
            scopes=outcome.request.scope.split(),
            request_id=outcome.request.id,
            csrf_token=outcome.csrf_token,
        )
    _set_csrf(response, settings, outcome.csrf_token)
    return response


def _login(
    pages: Pages,
    pending: AuthorizationRequest,
    client: Client,
    csrf_token: str,
    username: str | None,
    error: str | None = None,
) -> Response:
    return pages.render(
        "login.html",
        status_code=400 if error else 200,
        form_targets=csp_source(pending.redirect_uri),
        action=pages.url(LOGIN_PATH),
        client_name=client.name,
        request_id=pending.id,
        csrf_token=csrf_token,
        username=username,
        error=error,
    )


def _set_csrf(response: Response, settings: Settings, token: str) -> None:
    max_age = int(settings.authorization_request_ttl.total_seconds())
    set_cookie(response, settings, csrf_cookie_name(settings), token, max_age)
