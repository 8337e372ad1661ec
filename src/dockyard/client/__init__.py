"""Typed client over the Engine API v1.41 (what the ``dockyard`` CLI uses).

``Client(host)`` in :mod:`dockyard.client.api`; host resolution in
:mod:`dockyard.client.transport`; stream framing in :mod:`dockyard.client.streams`.
"""

from __future__ import annotations

from dockyard.client.api import MAX_API_VERSION, Client, error_for
from dockyard.client.streams import Hijacked, demux, json_stream
from dockyard.client.transport import DEFAULT_HOST, parse_host, resolve_host

__all__ = ["DEFAULT_HOST", "MAX_API_VERSION", "Client", "Hijacked", "demux", "error_for",
           "json_stream", "parse_host", "resolve_host"]
