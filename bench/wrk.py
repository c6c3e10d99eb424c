"""Load from wrk: one wrk process per measurement, scripted by load.lua.

wrk runs one thread with N keep-alive connections, each sending its next
request when the previous answer arrives (closed loop) or `delay_ms` after it
(paced). Its latencies are per request, from wrk's own histogram.
"""

import base64
import hashlib
import http.client
import http.cookiejar
import json
import re
import secrets
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("load.lua")
LOGIN_THREADS = 8
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never visited: only its code


class LoadError(Exception):
    """wrk could not run, or the setup logins failed."""


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "python -m bench: wrk is not installed (apt-get install -y wrk)"
        )
    return wrk


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: form-encode id and secret before the Basic encoding.
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def password_form(username: str, password: str) -> str:
    return urllib.parse.urlencode(
        {"grant_type": "password", "username": username, "password": password}
    )


@dataclass(frozen=True)
class Load:
    """What each of `connections` connections sends."""

    method: str
    path: str
    connections: int
    auth: str | None = None
    bodies: tuple[str, ...] = ()  # sent round-robin
    tokens: tuple[str, ...] = ()  # refresh chains: one token per connection
    once: tuple[str, ...] = ()  # bodies sent once each (authorization codes)
    delay_ms: int = 0
    max_requests: int = 0  # stop after this many answers (0: no limit)

    def spec(self) -> str:
        lines = [f"method {self.method}", f"path {self.path}"]
        mode = "chain" if self.tokens else "once" if self.once else "static"
        lines.append(f"mode {mode}")
        lines.append(f"delay {self.delay_ms}")
        lines.append(f"max {self.max_requests}")
        if self.auth:
            lines.append(f"auth {self.auth}")
        lines += [f"body {body}" for body in self.bodies]
        lines += [f"token {token}" for token in self.tokens + self.once]
        return "\n".join(lines) + "\n"


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    error_kinds: dict[str, int]
    sample: str  # the first answer that was not a 200

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Run:
    """A wrk process in flight (the mixed scenario runs two at once)."""

    def __init__(
        self, base_url: str, load: Load, seconds: int, workdir: Path, name: str
    ) -> None:
        spec = workdir / f"{name}.spec"
        spec.touch(mode=0o600)
        spec.write_text(load.spec())
        self.out = (workdir / f"{name}.out").open("w+")
        # 30 s timeout: a login queued behind 15 others takes seconds.
        command = [
            require_wrk(),
            "-t1",
            f"-c{load.connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(SCRIPT),
            base_url,
            "--",
            str(spec),
        ]
        self.popen = subprocess.Popen(
            command, stdout=self.out, stderr=subprocess.STDOUT
        )

    def result(self) -> Result:
        self.popen.wait()
        self.out.seek(0)
        text = self.out.read()
        self.out.close()
        line = next((x for x in text.splitlines() if x.startswith("{")), None)
        if self.popen.returncode != 0 or line is None:
            raise LoadError(f"wrk failed ({self.popen.returncode}): {text[-500:]}")
        data: dict[str, Any] = json.loads(line)
        kinds = {
            key: data[key]
            for key in (
                "connect_errors",
                "read_errors",
                "write_errors",
                "status_errors",
                "timeouts",
                "bad_bodies",
            )
            if data[key]
        }
        return Result(
            requests=data["requests"],
            seconds=data["duration_us"] / 1e6,
            errors=sum(kinds.values()),
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            error_kinds=kinds,
            sample=data["sample"],
        )


def run(base_url: str, load: Load, seconds: int, workdir: Path, name: str) -> Result:
    return Run(base_url, load, seconds, workdir, name).result()


def post_form(base_url: str, path: str, auth: str, body: str) -> tuple[int, Any]:
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
    try:
        headers = {
            "Authorization": auth,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        conn.request("POST", path, body, headers)
        answer = conn.getresponse()
        text = answer.read()
        try:
            return answer.status, json.loads(text)
        except ValueError:
            return answer.status, text[:200]
    finally:
        conn.close()


def refresh_tokens(
    base_url: str, path: str, auth: str, users: list[tuple[str, str]], count: int
) -> tuple[str, ...]:
    """`count` refresh tokens from password grants, users round-robin."""

    def login(i: int) -> str:
        status, doc = post_form(
            base_url, path, auth, password_form(*users[i % len(users)])
        )
        if status != 200 or not isinstance(doc, dict) or "refresh_token" not in doc:
            raise LoadError(f"password grant for the refresh chains: {status} {doc}")
        return str(doc["refresh_token"])

    with ThreadPoolExecutor(LOGIN_THREADS) as pool:
        return tuple(pool.map(login, range(count)))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the Location is what we want, not the page behind it


def code_exchanges(
    base_url: str, client_id: str, user: tuple[str, str], count: int
) -> tuple[str, ...]:
    """`count` token-request bodies, each exchanging a fresh authorization code.

    Signs in once through the login page (its CSRF token and cookie); the
    session cookie then makes each further authorization answer a code at
    once, as a signed-in browser's would.
    """
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "state": "bench",
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    opener = urllib.request.build_opener(
        _NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )

    def location(request: urllib.request.Request | str) -> str:
        try:
            with opener.open(request, timeout=30) as answer:
                return str(answer.read().decode())  # a page: the login form
        except urllib.error.HTTPError as exc:
            if exc.code in (302, 303):
                return str(exc.headers["Location"])
            raise LoadError(f"authorization: {exc.code} {exc.read()[:200]!r}") from exc

    page = location(f"{base_url}/oauth2/authorize?{query}")
    if page.startswith("/"):
        page = location(base_url + page)
    fields = dict(re.findall(r'name="(request|csrf_token)" value="([^"]+)"', page))
    login = {**fields, "username": user[0], "password": user[1]}
    body = urllib.parse.urlencode(login).encode()
    location(urllib.request.Request(f"{base_url}/oauth2/login", body))

    def exchange(_: int) -> str:
        target = urllib.parse.urlsplit(location(f"{base_url}/oauth2/authorize?{query}"))
        codes = urllib.parse.parse_qs(target.query).get("code")
        if not codes:
            raise LoadError(f"authorization answered no code: {target.geturl()[:200]}")
        return urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": codes[0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            }
        )

    with ThreadPoolExecutor(LOGIN_THREADS) as pool:
        return tuple(pool.map(exchange, range(count)))
