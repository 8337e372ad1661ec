"""HTTP to one registry: endpoint choice, the /v2/ ping, auth on every request, redirects.

Endpoint choice (as dockerd does)::

    mirrors of the domain (pull only)  ->  https://<domain>            (secure registry)
                                       ->  https://<domain>, no TLS verification, then
                                           http://<domain>              (insecure registry)

The first endpoint whose ``GET /v2/`` answers (200, or 401 with a challenge) wins; its
challenge decides how later requests authenticate. Redirects are followed by hand so the
limit is ours and ``Authorization`` never leaks to another origin (blob storage behind a
redirect gets no registry credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from dockyard.distribution.auth import Challenge, TokenCache, basic_header, parse_challenges
from dockyard.distribution.credentials import AuthConfig
from dockyard.distribution.settings import RegistrySettings
from dockyard.errors import DockyardError, InvalidArgument, NotFound, Unauthorized, Unavailable

__all__ = [
    "Endpoint",
    "RegistryClient",
    "endpoints_for",
    "open_session",
    "read_limited",
    "registry_error",
    "session_scope",
    "status_error",
    "tls_context",
]

_REDIRECTS = (301, 302, 303, 307, 308)
HUB_ENDPOINT = "https://registry-1.docker.io"


@dataclass(frozen=True)
class Endpoint:
    url: str  # scheme://host[:port][/prefix], no trailing slash
    verify_tls: bool = True
    mirror: bool = False
    tls: ssl.SSLContext | None = field(default=None, compare=False)  # from certs.d

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        # aiohttp: True = default verification, False = none, or a context of our own
        if self.tls is not None and self.url.startswith("https://"):
            return self.tls
        return self.verify_tls


def tls_context(authority: str, verify: bool, certs_dirs: Iterable[str]) -> ssl.SSLContext | None:
    """Docker's certs.d: ``<dir>/<host[:port]>/*.crt`` are extra CA roots, ``*.cert`` with
    the ``*.key`` of the same name a client certificate. None when no such directory."""
    for base in certs_dirs:
        directory = os.path.join(base, authority)
        if not os.path.isdir(directory):
            continue
        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            try:
                if name.endswith(".crt"):
                    ctx.load_verify_locations(cafile=path)
                elif name.endswith(".cert"):
                    key = path[: -len(".cert")] + ".key"
                    if not os.path.exists(key):
                        raise InvalidArgument(f"missing key {key} for client certificate {path}")
                    ctx.load_cert_chain(path, key)
            except (ssl.SSLError, OSError) as exc:
                raise InvalidArgument(f"bad certificate file {path}: {exc}") from exc
        return ctx
    return None


async def endpoints_for(domain: str, settings: RegistrySettings, *, pull: bool) -> list[Endpoint]:
    out: list[Endpoint] = []
    if pull:
        for url in settings.mirrors_for(domain):
            authority = URL(url).authority
            insecure = await asyncio.to_thread(settings.is_insecure, authority)
            tls = await asyncio.to_thread(tls_context, authority, not insecure, settings.certs_dirs)
            out.append(Endpoint(url, verify_tls=not insecure, mirror=True, tls=tls))
    host = "registry-1.docker.io" if domain == "docker.io" else domain
    insecure = await asyncio.to_thread(settings.is_insecure, domain)
    tls = await asyncio.to_thread(tls_context, domain, not insecure, settings.certs_dirs)
    if insecure:
        out += [Endpoint(f"https://{host}", verify_tls=False, tls=tls), Endpoint(f"http://{host}")]
    else:
        out.append(Endpoint(f"https://{host}", tls=tls))
    return out


def open_session(settings: RegistrySettings) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
    )
    connector = aiohttp.TCPConnector(limit=32, limit_per_host=16)
    return aiohttp.ClientSession(
        timeout=timeout,
        connector=connector,
        auto_decompress=False,
        read_bufsize=1 << 20,
        headers={"User-Agent": settings.user_agent},
    )


@contextlib.asynccontextmanager
async def session_scope(
    settings: RegistrySettings, session: aiohttp.ClientSession | None
) -> AsyncIterator[aiohttp.ClientSession]:
    """The caller's session if given, else one of our own for the duration."""
    if session is not None:
        yield session
        return
    async with open_session(settings) as own:
        yield own


async def read_limited(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (registries are untrusted)."""
    length = resp.content_length
    if length is not None and length > limit:
        raise InvalidArgument(f"{what} is too large ({length} bytes)")
    buf = bytearray()
    try:
        async for chunk in resp.content.iter_any():
            buf += chunk
            if len(buf) > limit:
                raise InvalidArgument(f"{what} is too large (over {limit} bytes)")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise Unavailable(f"error reading {what}: {exc or type(exc).__name__}") from exc
    return bytes(buf)


async def registry_error(resp: aiohttp.ClientResponse) -> str:
    """The registry's error envelope as Docker prints it: ``code lowered: message``."""
    try:
        raw = await resp.read()
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    try:
        body = json.loads(raw[:65536])
        errors = body.get("errors") if isinstance(body, dict) else None
    except ValueError:
        errors = None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        parts = []
        for err in errors[:3]:
            code = str(err.get("code", "")).lower().replace("_", " ")
            message = str(err.get("message", ""))
            parts.append(f"{code}: {message}" if code else message)
        return "; ".join(parts)
    text = raw[:200].decode("utf-8", "replace").strip()
    return f"{resp.status} {resp.reason}" + (f": {text}" if text else "")


class RegistryClient:
    """Requests to one registry on behalf of one pull/push/login."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: RegistrySettings,
        endpoint: Endpoint,
        auth: AuthConfig | None = None,
        tokens: TokenCache | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.endpoint = endpoint
        self.auth = auth if auth is not None and not auth.empty else None
        self.tokens = tokens or TokenCache()
        self.challenge: Challenge | None = None
        self.refresh_token = ""

    @classmethod
    async def connect(
        cls,
        session: aiohttp.ClientSession,
        settings: RegistrySettings,
        endpoints: Iterable[Endpoint],
        auth: AuthConfig | None = None,
        tokens: TokenCache | None = None,
    ) -> RegistryClient:
        """Ping the endpoints in order; return a client for the first that answers."""
        errors: list[str] = []
        for endpoint in endpoints:
            client = cls(session, settings, endpoint, auth, tokens)
            try:
                await client.ping()
            except Unavailable as exc:
                errors.append(str(exc))
                continue
            return client
        raise Unavailable("; ".join(errors) or "no registry endpoint")

    async def ping(self) -> None:
        url = f"{self.endpoint.url}/v2/"
        try:
            async with self.session.get(url, ssl=self.endpoint.ssl, allow_redirects=False) as resp:
                await resp.read()
                if resp.status == 401:
                    challenges = parse_challenges(resp.headers.getall("WWW-Authenticate", []))
                    self.challenge = _preferred(challenges)
                    if self.challenge is None:
                        raise Unavailable(f"registry {self.endpoint.url} sent 401 without a usable challenge")
                elif resp.status >= 400 and resp.status != 404:
                    # 404: a mirror or old registry without /v2/ ping; requests will tell
                    raise Unavailable(f'Get "{url}": {resp.status} {resp.reason}')
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable(f'Get "{url}": {_describe(exc)}') from exc

    async def authorization(self, scopes: Iterable[str], *, offline: bool = False) -> str | None:
        challenge = self.challenge
        if challenge is None:
            return basic_header(self.auth) if self.auth and self.auth.username else None
        if challenge.scheme == "basic":
            if self.auth is None or not self.auth.username:
                return None
            return basic_header(self.auth)
        same_host = URL(challenge.realm).host == URL(self.endpoint.url).host
        token, refresh = await self.tokens.token(
            self.session,
            challenge,
            scopes,
            self.auth,
            ssl=self.endpoint.ssl if same_host else True,
            offline=offline,
        )
        if refresh:
            self.refresh_token = refresh
        return f"Bearer {token}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        scopes: Iterable[str] = (),
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        follow: bool = True,
        params: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request with auth; the caller releases the response.

        ``path`` is relative to the endpoint (``/v2/...``) or an absolute URL (upload
        locations). A 401 retries once with fresh credentials when the body can be resent.
        """
        scopes = tuple(scopes)
        url = URL(path) if path.startswith(("http://", "https://")) else URL(self.endpoint.url + path)
        if params:
            url = url.update_query(params)
        resendable = data is None or isinstance(data, bytes | bytearray)
        for attempt in (0, 1):
            hdrs = dict(headers or {})
            if self.challenge is not None and self.challenge.scheme == "basic" and self.auth is None:
                # dockerd's answer, before sending anything the registry will refuse
                raise Unauthorized(f'{method.capitalize()} "{url}": no basic auth credentials')
            authz = await self.authorization(scopes)
            if authz:
                hdrs["Authorization"] = authz
            resp = await self._send(method, url, hdrs, data, follow)
            if resp.status != 401 or attempt == 1 or not resendable:
                return resp
            challenges = parse_challenges(resp.headers.getall("WWW-Authenticate", []))
            resp.release()
            new = _preferred(challenges)
            if new is None:
                return await self._send(method, url, hdrs, data, follow)
            if self.challenge is not None:
                self.tokens.forget(self.challenge, scopes)
            self.challenge = new
        raise AssertionError("unreachable")

    async def _send(
        self, method: str, url: URL, headers: dict[str, str], data: Any, follow: bool
    ) -> aiohttp.ClientResponse:
        origin = url.origin()
        for _ in range(self.settings.max_redirects + 1):
            tls = self.endpoint.ssl if url.origin() == origin else True
            try:
                resp = await self.session.request(
                    method, url, headers=headers, data=data, ssl=tls, allow_redirects=False
                )
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise Unavailable(f'{method.capitalize()} "{url}": {_describe(exc)}') from exc
            if not follow or resp.status not in _REDIRECTS or "Location" not in resp.headers:
                return resp
            location = url.join(URL(resp.headers["Location"]))
            resp.release()
            if resp.status == 303:
                method, data = "GET", None
            if location.origin() != origin:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = location
        raise Unavailable(
            f'{method.capitalize()} "{url}": stopped after {self.settings.max_redirects} redirects'
        )


def _preferred(challenges: list[Challenge]) -> Challenge | None:
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "i/o timeout"
    text = str(exc)
    return text or type(exc).__name__


def status_error(resp: aiohttp.ClientResponse, message: str, what: str) -> DockyardError:
    """Map a failed registry response to our error tree."""
    if resp.status == 401:
        return Unauthorized(f"{what}: {message}")
    if resp.status == 403:
        return Unauthorized(f"{what}: denied: {message}")
    if resp.status == 404:
        return NotFound(f"{what}: {message}")
    return Unavailable(f"{what}: {message}")
