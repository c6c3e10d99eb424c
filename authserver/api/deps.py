"""FastAPI dependencies: the app's typed state, units of work, services, forms.

Every dependency is async: FastAPI runs a plain `def` one in a worker thread,
a hop per dependency per request for no gain.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response

from authserver.api.oauth_wire import parse_oauth_form, validate_oauth_form
from authserver.api.state import AppState, request_state
from authserver.api.templates import Pages
from authserver.core.config import Settings
from authserver.core.lockout import LockPolicy
from authserver.db.unit_of_work import UnitOfWork
from authserver.schemas.introspection import IntrospectionForm
from authserver.schemas.revocation import RevocationForm
from authserver.services.keystore import SigningKeyStore
from authserver.services.token_state import TokenContext
from authserver.services.users import UserService


async def get_state(request: Request) -> AppState:
    return request_state(request)


StateDep = Annotated[AppState, Depends(get_state)]


async def get_unit_of_work(state: StateDep) -> AsyncIterator[UnitOfWork]:
    async with state.unit_of_work() as uow:
        yield uow


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work)]


async def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_keystore(state: StateDep) -> SigningKeyStore:
    return state.keystore


KeyStoreDep = Annotated[SigningKeyStore, Depends(get_keystore)]


async def get_pages(state: StateDep) -> Pages:
    return state.pages


PagesDep = Annotated[Pages, Depends(get_pages)]


async def get_lock_policy(state: StateDep) -> LockPolicy:
    """The token endpoint's brute-force lock, for passwords checked elsewhere."""
    return state.lock_policy


LockPolicyDep = Annotated[LockPolicy, Depends(get_lock_policy)]


async def read_oauth_form(request: Request) -> dict[str, str]:
    """The form of an OAuth endpoint (see oauth_wire.parse_oauth_form)."""
    return parse_oauth_form(request.headers.get("content-type"), await request.body())


async def get_revocation_form(request: Request) -> RevocationForm:
    return validate_oauth_form(RevocationForm, await read_oauth_form(request))


RevocationFormDep = Annotated[RevocationForm, Depends(get_revocation_form)]


async def get_introspection_form(request: Request) -> IntrospectionForm:
    return validate_oauth_form(IntrospectionForm, await read_oauth_form(request))


IntrospectionFormDep = Annotated[IntrospectionForm, Depends(get_introspection_form)]


async def get_token_context(state: StateDep, uow: UnitOfWorkDep) -> TokenContext:
    now = state.clock()
    return TokenContext.create(uow, state.tokens.for_request(now), now)


TokenContextDep = Annotated[TokenContext, Depends(get_token_context)]


async def get_user_service(state: StateDep, uow: UnitOfWorkDep) -> UserService:
    return UserService.over(uow, state.hasher, clock=state.clock)


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


async def no_store(response: Response) -> None:
    """Responses with tokens or personal data must not be cached (RFC 6749 §5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
