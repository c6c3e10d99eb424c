"""Ceilings: the most any server could do on this machine with this stack.

`app` is a minimal Starlette app (FastAPI is built on Starlette, so no FastAPI
route can be cheaper) with no middleware, served by uvicorn the way `authctl
serve` runs the token server. Each route does only the work its scenario
cannot avoid:

  GET  /bytes  pre-serialised bytes the size of a one-key JWKS: the ceiling of
               the stack and of the load generator (bounds JWKS and discovery)
  POST /sign1  reads the form body, signs one RS256 JWT (client credentials)
  POST /sign2  reads the form body, signs two RS256 JWTs: a new access and a
               new refresh token (bounds a refresh with rotation)

The password grant's ceiling is not served: `bcrypt_ceiling` runs the very
verify the server runs on every core.

Signing uses joserfc with a 2048-bit key, like the server. Each worker makes
its own key at import; that costs ~0.1 s at start and nothing per request.
"""

import json
import os
import statistics
import threading
import time
import uuid

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from passlib.context import CryptContext
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ISSUER = "http://127.0.0.1"
AUDIENCE = "urn:bench:api"
JSON = "application/json"

_KEY = RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex})
_JWKS = json.dumps(
    {
        "keys": [
            {
                **KeySet([_KEY]).as_dict(private=False)["keys"][0],
                "use": "sig",
                "alg": "RS256",
            }
        ]
    },
    separators=(",", ":"),
).encode()


def _sign(typ: str, audience: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "bench-client",
        "aud": audience,
        "exp": now + 900,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "client_id": "bench-client",
        "scope": "api:read api:write",
    }
    header = {"alg": "RS256", "typ": typ, "kid": _KEY.kid}
    return jwt.encode(header, claims, _KEY, algorithms=["RS256"])


async def raw_bytes(request: Request) -> Response:
    return Response(_JWKS, media_type=JSON)


async def sign1(request: Request) -> Response:
    await request.body()
    body = {"access_token": _sign("at+jwt", AUDIENCE), "token_type": "Bearer"}
    return Response(json.dumps(body).encode(), media_type=JSON)


async def sign2(request: Request) -> Response:
    await request.body()
    body = {
        "access_token": _sign("at+jwt", AUDIENCE),
        "refresh_token": _sign("rt+jwt", f"{ISSUER}/oauth2/token"),
        "token_type": "Bearer",
    }
    return Response(json.dumps(body).encode(), media_type=JSON)


app = Starlette(
    routes=[
        Route("/bytes", raw_bytes, methods=["GET"]),
        Route("/sign1", sign1, methods=["POST"]),
        Route("/sign2", sign2, methods=["POST"]),
    ]
)


def bcrypt_ceiling(rounds: int, seconds: float = 3.0) -> tuple[float, float]:
    """(verifies/s, seconds per verify): the password grant's ceiling.

    Runs the verify the server runs (libpass bcrypt_sha256 at `rounds`) in one
    thread per usable core for `seconds`. bcrypt releases the GIL, so this is
    what the cores can do now, whatever else the machine is running.
    """
    context = CryptContext(schemes=["bcrypt_sha256"], bcrypt_sha256__rounds=rounds)
    password_hash = context.hash("bench password")
    cores = len(os.sched_getaffinity(0))
    timings: list[list[float]] = [[] for _ in range(cores)]
    deadline = time.perf_counter() + seconds

    def verify(mine: list[float]) -> None:
        while (t0 := time.perf_counter()) < deadline:
            assert context.verify("bench password", password_hash)
            mine.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=verify, args=(t,)) for t in timings]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [t for mine in timings for t in mine]
    return len(every) / (time.perf_counter() - started), statistics.median(every)
