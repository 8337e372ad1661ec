"""The ``dockyard`` command line (docker's commands over :mod:`dockyard.client`).

Entry point: :func:`dockyard.cli.main.main`. Kept empty so that start-up imports only what
the command being run needs.
"""
