"""Named volumes, ``local`` driver: a directory per volume under the data root.

Layout::

    <root>/<name>/
        opts.json       {"Name", "Driver", "Labels", "Options", "CreatedAt"} (atomic)
        _data/          the mountpoint bind-mounted into containers

Whether a volume is in use, and copying image content up into a fresh volume, are the
daemon's business (it knows the containers).
"""

from dockyard.volumes.store import Volume, VolumeStore, valid_name

__all__ = ["Volume", "VolumeStore", "valid_name"]
