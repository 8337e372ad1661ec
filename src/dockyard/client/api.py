"""A typed client over the Engine API v1.41 (stdlib sockets only, see wire.py).

Every session starts like the docker CLI's: ``HEAD /_ping`` (unversioned); the reply's
``Api-Version`` header, capped at :data:`MAX_API_VERSION`, sets the ``/v1.xx`` prefix of every
later request. Errors come back as ``{"message": "..."}`` and are raised as the matching class
of :mod:`dockyard.errors` (404 -> NotFound/ImageNotFound/ContainerNotFound, 409 -> Conflict, ...)
carrying the daemon's message verbatim, so the CLI prints exactly what the daemon said.

A :class:`Client` owns one keep-alive connection and is not thread-safe; use :meth:`clone`
for a second concurrent request (``wait`` while attached, a hijacked stream).
"""

from __future__ import annotations

from dockyard import errors, fastjson
from dockyard.client.streams import Hijacked, json_stream
from dockyard.client.transport import Endpoint, connect, parse_host
from dockyard.client.wire import Connection, Response, quote, urlencode

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

    Params = Mapping[str, Any] | list[tuple[str, str]] | None

__all__ = ["MAX_API_VERSION", "Client", "error_for"]

MAX_API_VERSION = "1.41"
USER_AGENT = "Dockyard-Client/0.1.0"

_STATUS_ERRORS: dict[int, type[errors.DockyardError]] = {
    304: errors.NotModified,
    400: errors.InvalidArgument,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    501: errors.Unsupported,
    503: errors.Unavailable,
}


def error_for(status: int, message: str) -> errors.DockyardError:
    """The dockyard error for an API error reply; ``.status`` keeps the HTTP status."""
    err: errors.DockyardError
    if status == 404 and message.startswith("No such image: "):
        err = errors.ImageNotFound(message[len("No such image: "):])
    elif status == 404 and message.startswith("No such container: "):
        err = errors.ContainerNotFound(message[len("No such container: "):])
    else:
        err = _STATUS_ERRORS.get(status, errors.Internal)(message)
    err.message = message
    err.status = status  # type: ignore[attr-defined]
    return err


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return (0,)


def encode_params(params: Params) -> str:
    """Query string the way the docker CLI writes it: bools as 1/0, dicts/lists as JSON."""
    if not params:
        return ""
    if isinstance(params, list):  # repeated keys: names=a&names=b
        return "?" + urlencode(params)
    items: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            items.append((key, "1" if value else "0"))
        elif isinstance(value, (dict, list)):
            items.append((key, fastjson.dumps(value, compact=True)))
        else:
            items.append((key, str(value)))
    return "?" + urlencode(items) if items else ""


class Client:
    """One daemon, one keep-alive connection. ``host`` is a ``-H`` string."""

    def __init__(self, host: str, *, version: str | None = None,
                 timeout: float | None = None) -> None:
        self.host = host
        self.endpoint: Endpoint = parse_host(host)
        self.timeout = timeout
        self.version = version
        self.server_headers: dict[str, str] = {}
        self._conn: Connection | None = None

    # -- plumbing -----------------------------------------------------------------------------

    def clone(self) -> Client:
        """A second client on its own connection, sharing the negotiated version."""
        other = Client(self.host, version=self.version, timeout=self.timeout)
        other.server_headers = self.server_headers
        return other

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def unreachable(self, exc: BaseException | None = None) -> errors.Unavailable:
        err = errors.Unavailable(
            f"Cannot connect to the Docker daemon at {self.endpoint}. Is the docker daemon running?")
        if exc is not None:
            err.__cause__ = exc
        return err

    def ping(self) -> str:
        """``HEAD /_ping``; negotiates and returns the API version used from now on."""
        resp = self._send("HEAD", "/_ping", versioned=False)
        resp.read()
        self.server_headers = dict(resp.headers)
        if resp.status >= 400:
            raise error_for(resp.status, f"ping failed: {resp.status} {resp.reason}")
        server = self.server_headers.get("api-version", MAX_API_VERSION)
        if _version_tuple(server) < _version_tuple(MAX_API_VERSION):
            self.version = server
        else:
            self.version = MAX_API_VERSION
        return self.version

    def _url(self, path: str, params: Params, versioned: bool) -> str:
        prefix = f"/v{self.version}" if versioned and self.version else ""
        return prefix + quote(path, safe="/:@") + encode_params(params)

    def _send(self, method: str, path: str, params: Params = None, body: Any = None,
              headers: Mapping[str, str] | None = None, *, versioned: bool = True,
              own_connection: bool = False) -> Response:
        hdrs = {"User-Agent": USER_AGENT}
        if headers:
            hdrs.update(headers)
        payload: Any = body
        if isinstance(body, (dict, list)):
            payload = fastjson.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        url = self._url(path, params, versioned)
        for attempt in (0, 1):
            conn = None if own_connection else self._conn
            reused = conn is not None and conn.reusable
            try:
                if conn is None or not conn.reusable:
                    if conn is not None:
                        conn.close()
                    conn = connect(self.endpoint, timeout=self.timeout)
                    if not own_connection:
                        self._conn = conn
                return conn.request(method, url, payload, hdrs)
            except (ConnectionResetError, BrokenPipeError) as exc:
                if conn is not None:
                    conn.close()
                # an idle keep-alive connection closed by the daemon: retry once on a new one
                if attempt == 0 and reused and (payload is None or isinstance(payload, bytes)):
                    continue
                raise self.unreachable(exc) from exc
            except OSError as exc:
                if conn is not None:
                    conn.close()
                raise self.unreachable(exc) from exc
        raise self.unreachable()  # pragma: no cover - the loop returns or raises

    def request(self, method: str, path: str, params: Params = None, body: Any = None,
                headers: Mapping[str, str] | None = None) -> Response:
        """Send a request; raise the mapped error for a status >= 400 (the body is consumed)."""
        if self.version is None:
            self.ping()
        resp = self._send(method, path, params, body, headers)
        if resp.status >= 400:
            raise error_for(resp.status, _message(resp.read(), resp))
        return resp

    def call(self, method: str, path: str, params: Params = None, body: Any = None,
             headers: Mapping[str, str] | None = None) -> Any:
        """A request whose reply is JSON (or empty: returns None)."""
        resp = self.request(method, path, params, body, headers)
        data = resp.read()
        if not data.strip():
            return None
        try:
            return fastjson.loads(data)
        except ValueError:
            return data.decode(errors="replace")

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.call("POST", path, params, body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.call("DELETE", path, params)

    def stream(self, method: str, path: str, params: Params = None, body: Any = None,
               headers: Mapping[str, str] | None = None) -> Iterator[Any]:
        """A JSON-lines reply (pull, push, load, events, stats), decoded as it arrives."""
        resp = self.request(method, path, params, body, headers)
        try:
            yield from json_stream(resp.read1)
        finally:
            resp.close()

    def hijack(self, method: str, path: str, params: Params = None,
               body: Any = None) -> Hijacked:
        """Upgrade a request to a raw stream (attach, exec start) on a connection of its own."""
        if self.version is None:
            self.ping()
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        resp = self._send(method, path, params, body, headers, own_connection=True)
        if resp.status not in (101, 200):
            # the connection is this call's own: nobody else would close it
            try:
                if resp.status >= 400:
                    raise error_for(resp.status, _message(resp.read(), resp))
                raise errors.Internal(f"unexpected reply to {method} {path}: {resp.status}")
            finally:
                resp.conn.close()
        return Hijacked(resp.conn.sock, resp.conn.rfile)

    # -- containers -----------------------------------------------------------------------------

    def containers(self, *, all: bool = False, limit: int | None = None, size: bool = False,
                   filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"all": all or None, "size": size or None,
                                  "limit": limit if limit and limit > 0 else None,
                                  "filters": filters or None}
        return self.get("/containers/json", **params)  # type: ignore[no-any-return]

    def create_container(self, config: dict[str, Any], name: str | None = None,
                         platform: str | None = None) -> dict[str, Any]:
        return self.call("POST", "/containers/create",  # type: ignore[no-any-return]
                         {"name": name, "platform": platform}, config)

    def inspect_container(self, ident: str, size: bool = False) -> dict[str, Any]:
        return self.get(f"/containers/{quote(ident)}/json",  # type: ignore[no-any-return]
                        size=size or None)

    def start(self, ident: str, detach_keys: str | None = None) -> None:
        self.post(f"/containers/{quote(ident)}/start", detachKeys=detach_keys)

    def stop(self, ident: str, timeout: int | None = None) -> None:
        self.post(f"/containers/{quote(ident)}/stop", t=timeout)

    def restart(self, ident: str, timeout: int | None = None) -> None:
        self.post(f"/containers/{quote(ident)}/restart", t=timeout)

    def kill(self, ident: str, signal: str | None = None) -> None:
        self.post(f"/containers/{quote(ident)}/kill", signal=signal)

    def remove(self, ident: str, *, force: bool = False, volumes: bool = False,
               link: bool = False) -> None:
        self.delete(f"/containers/{quote(ident)}", force=force or None, v=volumes or None,
                    link=link or None)

    def wait(self, ident: str, condition: str | None = None) -> dict[str, Any]:
        return self.post(f"/containers/{quote(ident)}/wait",  # type: ignore[no-any-return]
                         condition=condition)

    def resize(self, ident: str, height: int, width: int, *, exec_id: bool = False) -> None:
        kind = "exec" if exec_id else "containers"
        self.post(f"/{kind}/{quote(ident)}/resize", h=height, w=width)

    def attach(self, ident: str, *, stdin: bool, stdout: bool = True, stderr: bool = True,
               logs: bool = False, detach_keys: str | None = None) -> Hijacked:
        params = {"stream": True, "stdin": stdin or None, "stdout": stdout or None,
                  "stderr": stderr or None, "logs": logs or None, "detachKeys": detach_keys}
        return self.hijack("POST", f"/containers/{quote(ident)}/attach", params)

    def logs(self, ident: str, **params: Any) -> Response:
        return self.request("GET", f"/containers/{quote(ident)}/logs", params)

    # -- exec -----------------------------------------------------------------------------------

    def exec_create(self, ident: str, config: dict[str, Any]) -> str:
        reply = self.post(f"/containers/{quote(ident)}/exec", config)
        return str(reply["Id"])

    def exec_start(self, exec_id: str, *, tty: bool, detach: bool = False) -> Hijacked | None:
        body = {"Detach": detach, "Tty": tty}
        if detach:
            self.post(f"/exec/{exec_id}/start", body)
            return None
        return self.hijack("POST", f"/exec/{exec_id}/start", None, body)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return self.get(f"/exec/{exec_id}/json")  # type: ignore[no-any-return]

    # -- images ---------------------------------------------------------------------------------

    def images(self, *, all: bool = False, filters: dict[str, list[str]] | None = None,
               digests: bool = False) -> list[dict[str, Any]]:
        return self.get("/images/json", all=all or None,  # type: ignore[no-any-return]
                        filters=filters or None, digests=digests or None)

    def inspect_image(self, ident: str) -> dict[str, Any]:
        return self.get(f"/images/{ident}/json")  # type: ignore[no-any-return]

    def pull(self, image: str, tag: str | None, *, auth: str = "e30=",
             platform: str | None = None) -> Iterator[dict[str, Any]]:
        params = {"fromImage": image, "tag": tag, "platform": platform}
        return self.stream("POST", "/images/create", params, None, {"X-Registry-Auth": auth})

    def push(self, name: str, tag: str | None, *, auth: str = "e30=") -> Iterator[dict[str, Any]]:
        return self.stream("POST", f"/images/{name}/push", {"tag": tag}, None,
                           {"X-Registry-Auth": auth})

    def tag(self, source: str, repo: str, tag: str | None) -> None:
        self.post(f"/images/{source}/tag", repo=repo, tag=tag)

    def remove_image(self, ident: str, *, force: bool = False,
                     noprune: bool = False) -> list[dict[str, str]]:
        return self.delete(f"/images/{ident}", force=force or None,  # type: ignore[no-any-return]
                           noprune=noprune or None) or []

    # -- system ---------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return self.get("/info")  # type: ignore[no-any-return]

    def server_version(self) -> dict[str, Any]:
        return self.get("/version")  # type: ignore[no-any-return]


def _message_text(raw: bytes) -> str:
    text = raw.decode(errors="replace").strip()
    try:
        doc = fastjson.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict) and "message" in doc:
        return str(doc["message"])
    return text


def _message(raw: bytes, resp: Response) -> str:
    return _message_text(raw) or f"{resp.status} {resp.reason}"
