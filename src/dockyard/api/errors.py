"""Errors -> HTTP: the one table, and Docker's JSON error body ``{"message": ...}``."""

from __future__ import annotations

import json

from aiohttp import web

from dockyard.errors import DockyardError


def http_status(exc: BaseException) -> int:
    """The status for any exception: a DockyardError's own, 400 for bad input, else 500."""
    if isinstance(exc, DockyardError):
        return exc.http_status
    if isinstance(exc, (ValueError, TypeError, KeyError, json.JSONDecodeError)):
        return 400
    return 500


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return web.Response(body=json.dumps({"message": message}).encode() + b"\n", status=status,
                        headers={"Content-Type": "application/json"})


__all__ = ["error_response", "http_status"]
