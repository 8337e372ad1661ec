"""Access control: none, htpasswd Basic (bcrypt), or Bearer tokens from our own endpoint.

Token flow (docker-registry/auth-token.md, auth-jwt.md)::

    client --GET /v2/<name>/manifests/x-->  registry
           <-- 401 WWW-Authenticate: Bearer realm="<realm>",service="<service>",
                                     scope="repository:<name>:pull"[,error="invalid_token"]
    client --GET <realm>?service=..&scope=..  (Basic user:password, or nothing)--> /token
           <-- {"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ...}
    client --GET ... Authorization: Bearer JWT--> registry (checks iss, aud, exp, access)

The JWT is signed with the key the server is given (RS256 for RSA, ES256 for P-256, EdDSA for
Ed25519) and verified with its public half; its ``access`` claim lists
``{"type": "repository", "name": ..., "actions": [...]}`` as distribution expects.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import bcrypt
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from dockyard.errors import InvalidArgument
from dockyard.registry.apierrors import RegistryError
from dockyard.registry.config import TokenConfig

__all__ = [
    "Access",
    "Authorizer",
    "HtpasswdAuth",
    "NoAuth",
    "TokenAuth",
    "load_htpasswd",
    "parse_scope",
]


@dataclass(frozen=True)
class Access:
    type: str
    name: str
    action: str


class Authorizer(Protocol):
    def authorize(self, headers: Mapping[str, str], base_url: str, wanted: list[Access]) -> str | None:
        """Return the user (None for anonymous) or raise RegistryError 401/403 with a challenge."""
        ...


class NoAuth:
    def authorize(self, headers: Mapping[str, str], base_url: str, wanted: list[Access]) -> str | None:
        return None


def load_htpasswd(path: str) -> dict[str, bytes]:
    users: dict[str, bytes] = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and ":" in line:
                    user, hashed = line.split(":", 1)
                    users[user] = hashed.encode()
    except OSError as exc:
        raise InvalidArgument(f"cannot read htpasswd file {path}: {exc}") from exc
    return users


class _Passwords:
    """bcrypt checks (~0.1 s each) remembered per credential so every request is not that slow."""

    def __init__(self, path: str) -> None:
        self.users = load_htpasswd(path)
        self._ok: dict[bytes, str] = {}

    def check(self, header: str | None) -> str | None:
        """The user named by a valid Basic header; None without one; raises on a bad one."""
        if not header or not header.lower().startswith("basic "):
            return None
        key = hashlib.sha256(header.encode()).digest()
        if key in self._ok:
            return self._ok[key]
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        hashed = self.users.get(user)
        valid = False
        if hashed is not None and hashed.startswith((b"$2a$", b"$2b$", b"$2y$")):
            try:
                valid = bcrypt.checkpw(password.encode(), hashed.replace(b"$2y$", b"$2b$", 1))
            except ValueError:
                valid = False
        if not valid:
            raise RegistryError("UNAUTHORIZED", "invalid username or password")
        if len(self._ok) > 1024:
            self._ok.clear()
        self._ok[key] = user
        return user


class HtpasswdAuth:
    def __init__(self, path: str, realm: str) -> None:
        self.passwords = _Passwords(path)
        self.realm = realm

    def authorize(self, headers: Mapping[str, str], base_url: str, wanted: list[Access]) -> str | None:
        challenge = {"WWW-Authenticate": f'Basic realm="{self.realm}"'}
        try:
            user = self.passwords.check(headers.get("Authorization"))
        except RegistryError as exc:
            raise RegistryError("UNAUTHORIZED", exc.message, headers=challenge) from exc
        if user is None:
            raise RegistryError("UNAUTHORIZED", headers=challenge, detail=_detail(wanted))
        return user


def parse_scope(scope: str) -> list[Access]:
    """``repository:library/busybox:pull,push`` -> one Access per action."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        return []
    return [Access(kind, name, a) for a in actions.split(",") if a]


def scope_param(wanted: Iterable[Access]) -> str:
    grouped: dict[tuple[str, str], set[str]] = {}
    for a in wanted:
        grouped.setdefault((a.type, a.name), set()).add(a.action)
    return " ".join(f"{t}:{n}:{','.join(sorted(acts))}" for (t, n), acts in grouped.items())


def _detail(wanted: list[Access]) -> list[dict[str, str]] | None:
    return [{"Type": a.type, "Name": a.name, "Action": a.action} for a in wanted] or None


def _load_key(path: str) -> tuple[Any, Any, str]:
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidArgument(f"cannot load token signing key {path}: {exc}") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        alg = "RS256"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        alg = "EdDSA"
    else:
        raise InvalidArgument(f"unsupported token signing key type in {path}")
    return key, key.public_key(), alg


class TokenAuth:
    """Bearer tokens, and the token endpoint that issues them (``issue``)."""

    def __init__(self, config: TokenConfig) -> None:
        self.config = config
        self._private, self._public, self.algorithm = _load_key(config.key_path)
        der = self._public.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = hashlib.sha256(der).hexdigest()[:32]
        self.passwords = _Passwords(config.htpasswd) if config.htpasswd else None

    def realm(self, base_url: str) -> str:
        return self.config.realm or f"{base_url}/token"

    def challenge(self, base_url: str, wanted: list[Access], error: str | None) -> dict[str, str]:
        value = f'Bearer realm="{self.realm(base_url)}",service="{self.config.service}"'
        scope = scope_param(wanted)
        if scope:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value}

    def authorize(self, headers: Mapping[str, str], base_url: str, wanted: list[Access]) -> str | None:
        header = headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            raise RegistryError("UNAUTHORIZED", headers=self.challenge(base_url, wanted, None),
                                detail=_detail(wanted))
        try:
            claims = jwt.decode(header[7:].strip(), self._public, algorithms=[self.algorithm],
                                audience=self.config.service, issuer=self.config.issuer,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            raise RegistryError("UNAUTHORIZED", f"invalid token: {exc}",
                                headers=self.challenge(base_url, wanted, "invalid_token")) from exc
        granted = {
            Access(str(entry.get("type")), str(entry.get("name")), str(action))
            for entry in claims.get("access") or [] if isinstance(entry, dict)
            for action in entry.get("actions") or []
        }
        for a in wanted:
            if a not in granted and Access(a.type, a.name, "*") not in granted:
                raise RegistryError("UNAUTHORIZED", "insufficient scope",
                                    headers=self.challenge(base_url, wanted, "insufficient_scope"),
                                    detail=_detail(wanted))
        sub = claims.get("sub")
        return str(sub) if sub else None

    def may_list(self, headers: Mapping[str, str]) -> bool:
        """Whether the caller may see every repository (search): an account, by Basic
        credentials (docker 20.10 searches that way) or by a token issued to it, or anyone
        when anonymous callers may pull."""
        if self.passwords is None or "pull" in self.config.anonymous:
            return True
        header = headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                return self.passwords.check(header) is not None
            except RegistryError:
                return False
        if header.lower().startswith("bearer "):
            try:
                claims = jwt.decode(header[7:].strip(), self._public, algorithms=[self.algorithm],
                                    audience=self.config.service, issuer=self.config.issuer)
            except jwt.PyJWTError:
                return False
            return bool(claims.get("sub"))
        return False

    def issue(self, headers: Mapping[str, str], base_url: str, scopes: list[str]) -> dict[str, Any]:
        """Answer the token endpoint: grant what the account may have of what was asked."""
        user = None
        if self.passwords is not None:
            try:
                user = self.passwords.check(headers.get("Authorization"))
            except RegistryError as exc:
                raise RegistryError("UNAUTHORIZED", exc.message, headers={
                    "WWW-Authenticate": f'Basic realm="{self.realm(base_url)}"'}) from exc
        else:
            user = "anonymous"
        allowed = None if user is not None else set(self.config.anonymous)
        access: dict[tuple[str, str], list[str]] = {}
        for scope in scopes:
            for a in parse_scope(scope):
                if allowed is None or a.action in allowed:
                    acts = access.setdefault((a.type, a.name), [])
                    if a.action not in acts:
                        acts.append(a.action)
        now = int(time.time())
        claims = {
            "iss": self.config.issuer,
            "sub": user or "",
            "aud": self.config.service,
            "exp": now + int(self.config.expiration),
            "nbf": now - 10,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "access": [{"type": t, "name": n, "actions": acts} for (t, n), acts in access.items()],
        }
        token = jwt.encode(claims, self._private, algorithm=self.algorithm, headers={"kid": self.kid})
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token,
                "expires_in": int(self.config.expiration), "issued_at": issued}

