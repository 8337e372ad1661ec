"""The Docker Engine API v1.41 over aiohttp.

``app.build_app(engine)`` assembles: the versioning middleware (``/_ping``, ``/v1.NN`` prefixes),
the error middleware (one table: ``errors.http_status``), and one route module per area in
:data:`dockyard.api.routes.MODULES`, each exposing ``register(routes)``.
"""
