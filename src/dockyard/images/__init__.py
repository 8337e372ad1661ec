"""The image store: content-addressed blobs, shared unpacked layers, images and their
names, containers' root filesystems (overlayfs or plain copies), docker-archive save/load.

A pure library: synchronous, no HTTP, never talks to a registry (``distribution`` feeds it
streams plus the digests they must have). On disk, under ``ImageStore(root)``::

    <root>/
    ├── blobs/sha256/<hex>              configs, manifests, compressed layers: by digest,
    │                                   written to tmp/, verified, fsynced, renamed
    ├── layers/sha256/<chain hex>/      one unpacked layer, keyed by chain id
    │   ├── diff/                       its files, whiteouts in overlay form (char 0/0,
    │   │                               trusted.overlay.opaque=y)
    │   ├── tar-split.gz, payloads.json how to rebuild the exact original tar (tarsplit.py)
    │   ├── payload/<n>                 tar contents no longer in diff/ (rare)
    │   └── meta.json                   {chain_id, diff_id, parent, size, tar_size}
    ├── l/<20 hex> -> ../layers/sha256/<chain hex>/diff    short names for lowerdir=
    ├── images/sha256/<config hex>.json image records {id, parent, manifests}; the config
    │                                   itself is the blob of the same digest
    ├── repositories.json               names -> image ids (Docker's reference store shape)
    ├── compressed/sha256/<diff hex>.json   compressed forms seen for a layer (for push)
    ├── containers/<id>/                a container's root filesystem (rootfs.py):
    │   ├── meta.json                   {image, chain, driver}
    │   ├── upper/ work/ merged/        overlay driver
    │   └── rootfs/                     copy driver
    ├── empty/                          the lowerdir of containers made from no image
    └── tmp/                            writes in flight, named <kind>-<pid>-<rand>;
                                        what dead processes left is removed at open

Commit points are single renames (a blob, a layer directory, a record), so a process killed
at any moment leaves the store as it was before the operation or after it.

Entry point: :class:`ImageStore`. Modules: blobs, unpack (layer tar -> directory, hostile
input refused), tarsplit (directory -> exact tar), layers, refs (names), store (images),
removal (rmi/prune rules, gc), rootfs (overlay/copy snapshots, diff, commit, export),
diff (tar writing, ``docker diff``), archive (save/load/import), bootstrap (a busybox image
from the host).
"""

from dockyard.images.layers import Layer, chain_id_of
from dockyard.images.rootfs import RootfsMount
from dockyard.images.store import ContainerUse, Image, ImageStore

__all__ = ["ContainerUse", "Image", "ImageStore", "Layer", "RootfsMount", "chain_id_of"]
