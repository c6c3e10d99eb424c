"""The application's shared objects, typed, built once by `create_app`."""

from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request

from authserver.api.templates import Pages
from authserver.core.clock import Clock, utc_now
from authserver.core.config import Settings
from authserver.core.lockout import LockPolicy
from authserver.crud.rotation_batch import RotationRow
from authserver.db.breaker import DatabaseBreaker
from authserver.db.rotation_batcher import RotationBatcher
from authserver.db.session import SessionFactory
from authserver.db.unit_of_work import UnitOfWork
from authserver.services.clients import ClientCache
from authserver.services.keystore import SigningKeyStore
from authserver.services.passwords import PasswordHasher
from authserver.services.tokens import TokenService


@dataclass
class AppState:
    settings: Settings
    keystore: SigningKeyStore
    tokens: TokenService
    hasher: PasswordHasher
    client_cache: ClientCache
    # One brute-force lock for every place a user's password is checked.
    lock_policy: LockPolicy
    db_breaker: DatabaseBreaker
    discovery_json: bytes
    pages: Pages  # the sign-in, consent and logout pages
    # Every path's idea of "now"; tests move it to cross expiry times.
    clock: Clock = utc_now
    # Made at start-up with the engine (the batcher on PostgreSQL only).
    session_factory: SessionFactory | None = None
    rotation_batcher: RotationBatcher[RotationRow] | None = None

    def sessions(self) -> SessionFactory:
        assert self.session_factory is not None, "the lifespan has not started"
        return self.session_factory

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions())


def app_state(app: Starlette) -> AppState:
    """The typed state of an app made by `create_app`."""
    state = app.state.authserver
    assert isinstance(state, AppState)
    return state


def request_state(request: Request) -> AppState:
    return app_state(request.app)
