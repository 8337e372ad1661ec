"""Registry authentication: challenges, Bearer tokens (cached, refreshed) and Basic auth.

The dance (docker-registry/auth-token.md)::

    client                         registry                      token service (realm)
      | GET /v2/                     |                                 |
      |----------------------------->| 401 WWW-Authenticate: Bearer    |
      |<-----------------------------|   realm=..,service=..[,scope=..]|
      | GET realm?service=..&scope=repository:<path>:pull[,push]       |
      |   (Authorization: Basic user:pass when we have credentials;    |
      |    POST grant_type=refresh_token with an identity token)       |
      |--------------------------------------------------------------->|
      |<---------------------------------------------------------------| {"token", "expires_in"}
      | GET /v2/<path>/manifests/..  Authorization: Bearer <token>     |
      |----------------------------->|

Tokens are cached per (realm, service, scopes) until shortly before they expire; a 401 on a
request made with a cached token drops it and fetches a new one once.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from dockyard.distribution.credentials import AuthConfig
from dockyard.errors import Unauthorized, Unavailable

__all__ = ["Challenge", "TokenCache", "basic_header", "parse_challenges"]

_PARAM_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
_DEFAULT_EXPIRY = 60.0
_REFRESH_MARGIN = 10.0
CLIENT_ID = "dockyard"


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic", lower case
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (RFC 7235 auth-params)."""
    out: list[Challenge] = []
    for value in headers:
        value = value.strip()
        scheme, _, rest = value.partition(" ")
        if not scheme:
            continue
        params: dict[str, str] = {}
        pos = 0
        while pos < len(rest):
            m = _PARAM_RE.match(rest, pos)
            if m is None or m.end() == pos:
                break
            raw = m.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[m.group(1).lower()] = raw
            pos = m.end()
        out.append(Challenge(scheme.lower(), params))
    return out


def basic_header(auth: AuthConfig) -> str:
    raw = f"{auth.username}:{auth.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class _Token:
    value: str
    expires_at: float
    refresh_token: str = ""


class TokenCache:
    """Bearer tokens for one client session, keyed by (realm, service, scopes)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, frozenset[str]], _Token] = {}
        self._lock = asyncio.Lock()  # parallel layer transfers ask at once: fetch one token

    def forget(self, challenge: Challenge, scopes: Iterable[str]) -> None:
        self._tokens.pop((challenge.realm, challenge.service, frozenset(scopes)), None)

    async def token(
        self,
        session: aiohttp.ClientSession,
        challenge: Challenge,
        scopes: Iterable[str],
        auth: AuthConfig | None,
        *,
        ssl: Any = True,
        offline: bool = False,
    ) -> tuple[str, str]:
        """Return (access token, refresh token) for the scopes, fetching when needed."""
        key = (challenge.realm, challenge.service, frozenset(scopes))
        async with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at - _REFRESH_MARGIN > time.monotonic():
                return cached.value, cached.refresh_token
            token = await fetch_token(session, challenge, sorted(key[2]), auth, ssl=ssl, offline=offline)
            self._tokens[key] = token
            return token.value, token.refresh_token


async def fetch_token(
    session: aiohttp.ClientSession,
    challenge: Challenge,
    scopes: list[str],
    auth: AuthConfig | None,
    *,
    ssl: Any = True,
    offline: bool = False,
) -> _Token:
    if auth is not None and auth.registry_token:
        return _Token(auth.registry_token, time.monotonic() + 3600.0)
    realm = challenge.realm
    if not realm.startswith(("http://", "https://")):
        raise Unauthorized(f"unsupported auth challenge: realm {realm!r} is not an http(s) URL")
    service = challenge.service
    try:
        if auth is not None and auth.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": auth.identity_token,
                "client_id": CLIENT_ID,
                "service": service,
                "scope": " ".join(scopes),
            }
            async with session.post(realm, data=form, ssl=ssl) as resp:
                body = await _token_body(resp)
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scopes)
            headers = {}
            if auth is not None and auth.username:
                params.append(("account", auth.username))
                headers["Authorization"] = basic_header(auth)
                if offline:
                    params += [("offline_token", "true"), ("client_id", CLIENT_ID)]
            async with session.get(realm, params=params, headers=headers, ssl=ssl) as resp:
                body = await _token_body(resp)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"error fetching token from {realm}: {exc or type(exc).__name__}") from exc
    value = body.get("token") or body.get("access_token")
    if not isinstance(value, str) or not value:
        raise Unauthorized(f"token service {realm} returned no token")
    expires = body.get("expires_in")
    lifetime = float(expires) if isinstance(expires, int | float) and expires > 0 else _DEFAULT_EXPIRY
    refresh = body.get("refresh_token")
    return _Token(value, time.monotonic() + lifetime, refresh if isinstance(refresh, str) else "")


async def _token_body(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    if resp.status in (401, 403):
        detail = (await resp.text())[:200].strip()
        raise Unauthorized(
            f"unauthorized: incorrect username or password ({resp.status}{': ' + detail if detail else ''})"
        )
    if resp.status != 200:
        raise Unavailable(f"token service {resp.url.origin()} answered {resp.status}")
    try:
        body = await resp.json(content_type=None)
    except ValueError as exc:
        raise Unavailable(f"token service {resp.url.origin()} returned invalid JSON") from exc
    if not isinstance(body, dict):
        raise Unavailable(f"token service {resp.url.origin()} returned invalid JSON")
    return body
