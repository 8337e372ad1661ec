"""The daemon: asyncio services (containers, exec, images, volumes, events) over the monitors.

Entry point: :func:`dockyard.daemon.main.main` (``dockyard daemon``, ``python -m dockyard.daemon``).
"""
