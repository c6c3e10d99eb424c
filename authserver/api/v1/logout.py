"""The end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0)."""

from fastapi import APIRouter, Request, Response

from authserver.api.browser import clear_cookie, read_params, redirect, session_cookie
from authserver.api.deps import PagesDep, StateDep, UnitOfWorkDep
from authserver.api.templates import Pages, csp_source
from authserver.core.exceptions import OAuthError
from authserver.crud.client import ClientRepository
from authserver.crud.login_session import LoginSessionRepository
from authserver.services import sessions
from authserver.services.authorization_request import redirect_url
from authserver.services.logout import LogoutRequest, validate_logout

router = APIRouter(tags=["authorization"])

LOGOUT_PATH = "/oauth2/logout"


@router.get(
    LOGOUT_PATH,
    summary="End the browser session (RP-Initiated Logout)",
    operation_id="end_session_get",
)
@router.post(
    LOGOUT_PATH,
    summary="End the browser session (RP-Initiated Logout)",
    operation_id="end_session_post",
)
async def end_session(
    request: Request, state: StateDep, uow: UnitOfWorkDep, pages: PagesDep
) -> Response:
    settings = state.settings
    now = state.clock()
    try:
        params = await read_params(request)
        logout = await validate_logout(
            params, state.tokens, ClientRepository(uow.session), now=now
        )
    except OAuthError as exc:
        return pages.error(exc)
    repo = LoginSessionRepository(uow.session)
    cookie = session_cookie(request, settings)
    current = await sessions.current(repo, cookie, now=now)
    if current is None or cookie is None:
        return _finished(request, pages, logout, signed_out=True)
    login, user = current
    posted = request.method == "POST" and sessions.logout_csrf_matches(
        cookie, params.get("csrf_token")
    )
    # A valid hint naming this user is the RP's word that the user asked; any
    # other request might be a cross-site link, so the user confirms (§2).
    if logout.hint_subject == str(user.id) or (
        posted and params.get("confirm") == "yes"
    ):
        await sessions.sign_out(uow, login, at=now, event="session_ended")
        response = _finished(request, pages, logout, signed_out=True)
        clear_cookie(response, settings, sessions.cookie_name(settings.issuer))
        return response
    if posted and params.get("confirm") == "no":
        return _finished(request, pages, logout, signed_out=False)
    carry = {
        name: params[name]
        for name in ("client_id", "post_logout_redirect_uri", "state")
        if name in params
    }
    if logout.client is not None and "client_id" not in carry:
        carry["client_id"] = logout.client.client_id
    return pages.render(
        "logout.html",
        form_targets=csp_source(logout.redirect_uri) if logout.redirect_uri else "",
        action=pages.url(LOGOUT_PATH),
        username=user.username,
        client_name=logout.client.name if logout.client else None,
        csrf_token=sessions.logout_csrf(cookie),
        carry=carry,
    )


def _finished(
    request: Request, pages: Pages, logout: LogoutRequest, *, signed_out: bool
) -> Response:
    if logout.redirect_uri is not None and signed_out:
        return redirect(
            request, redirect_url(logout.redirect_uri, {"state": logout.state})
        )
    return pages.render("logged_out.html", signed_out=signed_out)
