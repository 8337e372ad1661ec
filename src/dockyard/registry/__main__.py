"""``python -m dockyard.registry serve|gc ...`` until the ``dockyard`` command hooks it in."""

import sys

from dockyard.registry.cli import main

sys.exit(main(sys.argv[1:]))
