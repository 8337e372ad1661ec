"""One exception tree for all of Dockyard.

::

    DockyardError                  (500 unless a subclass says otherwise)
     +-- NotFound                  404  no such container / image / volume / network / blob
     |    +-- ImageNotFound        404  "No such image: <ref>"
     |    +-- ContainerNotFound    404  "No such container: <id>"
     +-- Conflict                  409  name in use, container running, image in use ...
     +-- InvalidArgument           400  malformed input: bad JSON, names, references, specs
     |    +-- InvalidReference     400  "invalid reference format"
     +-- Forbidden                 403
     +-- Unauthorized              401  registry credentials missing or refused
     +-- NotModified               304  start of a started container, stop of a stopped one
     +-- Unavailable               503  a dependency (registry, kernel feature) is not reachable
     +-- Unsupported               501  a feature this host or build cannot provide
     +-- Internal                  500  a bug or an unexpected OS failure

Library code raises these (wrapping third-party errors with ``raise X(...) from exc``);
the API layer maps ``http_status`` to the response in exactly one place. Messages are lower
case, without a trailing period, and name the object involved, except where Docker's exact
wording is part of the protocol (docker-py parses "No such container: x").
"""

from __future__ import annotations


class DockyardError(Exception):
    """Root of every error Dockyard raises on purpose."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(DockyardError):
    http_status = 404


class ImageNotFound(NotFound):
    def __init__(self, ref: str) -> None:
        super().__init__(f"No such image: {ref}")
        self.ref = ref


class ContainerNotFound(NotFound):
    def __init__(self, ident: str) -> None:
        super().__init__(f"No such container: {ident}")
        self.ident = ident


class Conflict(DockyardError):
    http_status = 409


class InvalidArgument(DockyardError):
    http_status = 400


class InvalidReference(InvalidArgument):
    def __init__(self, ref: str, detail: str = "invalid reference format") -> None:
        super().__init__(detail)
        self.ref = ref


class Forbidden(DockyardError):
    http_status = 403


class Unauthorized(DockyardError):
    http_status = 401


class NotModified(DockyardError):
    http_status = 304


class Unavailable(DockyardError):
    http_status = 503


class Unsupported(DockyardError):
    http_status = 501


class Internal(DockyardError):
    http_status = 500


__all__ = [
    "Conflict",
    "ContainerNotFound",
    "DockyardError",
    "Forbidden",
    "ImageNotFound",
    "Internal",
    "InvalidArgument",
    "InvalidReference",
    "NotFound",
    "NotModified",
    "Unauthorized",
    "Unavailable",
    "Unsupported",
]
