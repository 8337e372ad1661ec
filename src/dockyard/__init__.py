"""Dockyard: a Docker-compatible container engine in Python.

Layers, outermost first (see docs/ARCHITECTURE.md)::

    cli -> client ~~HTTP~~> api -> daemon -> {images, distribution, runtime, network, volumes}
                                              -> {oci, linux, cgroups}

Nothing imports "upwards" along that chain; tests/unit/test_layers.py checks it.
"""

__version__ = "0.1.0"
API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
