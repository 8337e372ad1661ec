"""``docker login`` and ``docker search`` against a registry.

Login (Docker's loginV2): ping ``/v2/``; with a Basic challenge, ``GET /v2/`` again with the
credentials; with a Bearer challenge, ask the token service with the credentials (and
``offline_token=true``: a refresh token in the answer becomes the identity token the client
may store instead of the password). No challenge at all: nothing to check, login succeeds.

Search: ``GET /v1/search?q=&n=`` (Docker Hub, our registry); a registry without it (the Go
registry) is searched through ``GET /v2/_catalog``, matching names by substring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from dockyard.distribution.credentials import AuthConfig
from dockyard.distribution.settings import RegistrySettings
from dockyard.distribution.transport import (
    RegistryClient,
    endpoints_for,
    read_limited,
    registry_error,
    session_scope,
)
from dockyard.errors import InvalidArgument, Unauthorized, Unavailable
from dockyard.oci.reference import DEFAULT_DOMAIN

__all__ = ["LoginResult", "login", "registry_domain", "search"]

_SEARCH_MAX = 4 << 20


@dataclass(frozen=True)
class LoginResult:
    status: str  # "Login Succeeded"
    identity_token: str = ""


def registry_domain(server: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://h:5000/x`` -> ``h:5000``."""
    text = server.strip()
    for prefix in ("http://", "https://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.split("/", 1)[0]
    if not text or text in ("index.docker.io", "registry-1.docker.io", "docker.io"):
        return DEFAULT_DOMAIN
    return text


async def login(
    server: str,
    auth: AuthConfig,
    *,
    settings: RegistrySettings | None = None,
    session: aiohttp.ClientSession | None = None,
) -> LoginResult:
    settings = settings or RegistrySettings()
    domain = registry_domain(server or auth.server_address)
    async with session_scope(settings, session) as sess:
        endpoints = await endpoints_for(domain, settings, pull=False)
        client = await RegistryClient.connect(sess, settings, endpoints, auth)
        challenge = client.challenge
        if challenge is None:
            return LoginResult("Login Succeeded")
        if auth.empty:
            raise Unauthorized("unauthorized: authentication required")
        if challenge.scheme == "bearer":
            await client.authorization((), offline=True)
        resp = await client.request("GET", "/v2/")
        try:
            if resp.status in (401, 403):
                message = await registry_error(resp)
                raise Unauthorized(f"unauthorized: incorrect username or password ({message})")
            if resp.status >= 400:
                raise Unavailable(f"login to {domain} failed: {await registry_error(resp)}")
        finally:
            resp.release()
        return LoginResult("Login Succeeded", client.refresh_token)


def _split_term(term: str) -> tuple[str, str]:
    first, sep, rest = term.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return DEFAULT_DOMAIN, term


async def search(
    term: str,
    *,
    limit: int = 25,
    auth: AuthConfig | None = None,
    settings: RegistrySettings | None = None,
    session: aiohttp.ClientSession | None = None,
) -> list[dict[str, Any]]:
    """Search a registry; results in Docker's shape
    (``name, description, star_count, is_official, is_automated``)."""
    if not term:
        raise InvalidArgument("search term must not be empty")
    if not 1 <= limit <= 100:
        raise InvalidArgument(f"limit {limit} is outside the range of [1, 100]")
    settings = settings or RegistrySettings()
    domain, query = _split_term(term)
    async with session_scope(settings, session) as sess:
        if domain == DEFAULT_DOMAIN:
            endpoints = await endpoints_for("index.docker.io", settings, pull=False)
        else:
            endpoints = await endpoints_for(domain, settings, pull=False)
        client = await RegistryClient.connect(sess, settings, endpoints, auth)
        resp = await client.request("GET", "/v1/search", params={"q": query, "n": str(limit)})
        try:
            if resp.status == 200:
                body = _json(await read_limited(resp, _SEARCH_MAX, "search results"))
                results = body.get("results") if isinstance(body, dict) else None
                if isinstance(results, list):
                    return [_result(r) for r in results if isinstance(r, dict)][:limit]
                raise Unavailable(f"search on {domain}: malformed answer")
            if resp.status not in (404, 405, 400):
                raise Unavailable(f"search on {domain}: {await registry_error(resp)}")
        finally:
            resp.release()
        return await _catalog_search(client, query, limit)


async def _catalog_search(client: RegistryClient, query: str, limit: int) -> list[dict[str, Any]]:
    resp = await client.request(
        "GET", "/v2/_catalog", scopes=["registry:catalog:*"], params={"n": "1000"}
    )
    try:
        if resp.status != 200:
            raise Unavailable(f"registry has no search and no catalog: {await registry_error(resp)}")
        body = _json(await read_limited(resp, _SEARCH_MAX, "catalog"))
    finally:
        resp.release()
    repos = body.get("repositories") if isinstance(body, dict) else None
    if not isinstance(repos, list):
        raise Unavailable("malformed catalog")
    needle = query.lower()
    return [
        _result({"name": name})
        for name in repos
        if isinstance(name, str) and needle in name.lower()
    ][:limit]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise Unavailable(f"registry returned invalid JSON: {exc}") from exc


def _result(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(r.get("name", "")),
        "description": str(r.get("description") or ""),
        "star_count": int(r.get("star_count") or 0),
        "is_official": bool(r.get("is_official", False)),
        "is_automated": bool(r.get("is_automated", False)),
    }
