"""One module per area of the API, each with ``register(routes: dockyard.api.app.Routes)``.

To add an area (the registry engineer's pull/push/login/search, networks, build ...), write
``dockyard/api/routes/<area>.py`` and append it to :data:`MODULES`.
"""

from __future__ import annotations

from types import ModuleType

from dockyard.api.routes import containers, distribution, exec, images, networks, system, volumes

MODULES: list[ModuleType] = [system, containers, exec, images, volumes, networks, distribution]

__all__ = ["MODULES"]
