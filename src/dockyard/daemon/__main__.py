"""``python -m dockyard.daemon``."""

import sys

from dockyard.daemon.main import main

sys.exit(main(sys.argv[1:]))
