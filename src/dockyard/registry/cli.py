"""``dockyard registry serve|gc`` (hooked into the ``dockyard`` command by the CLI package).

::

    serve --listen 127.0.0.1:5000 --root DIR [--config registry.yml] [--workers N]
    gc [--dry-run] --root DIR [--config registry.yml] [--grace 1h]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

from dockyard.errors import DockyardError, InvalidArgument
from dockyard.registry.config import load_config, parse_duration
from dockyard.registry.gc import collect_garbage
from dockyard.registry.server import serve
from dockyard.registry.storage import FilesystemDriver
from dockyard.registry.store import Store

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dockyard registry",
                                     description="Docker/OCI registry server")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the registry API")
    s.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:5000, or http.addr)")
    s.add_argument("--root", help="storage directory (or storage.filesystem.rootdirectory)")
    s.add_argument("--config", help="YAML config file (distribution's config.yml keys)")
    s.add_argument("--workers", type=int, help="processes sharing the port (http.workers)")
    s.add_argument("--access-log", action="store_true", help="log every request to stderr")
    g = sub.add_parser("gc", help="delete blobs no manifest references")
    g.add_argument("--root", help="storage directory (or storage.filesystem.rootdirectory)")
    g.add_argument("--config", help="YAML config file")
    g.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    g.add_argument("-m", "--delete-untagged", action="store_true",
                   help="also delete manifests no tag reaches (older than the grace period)")
    g.add_argument("--grace", help="keep unreferenced blobs younger than this (default gc.grace, 1h)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            config = load_config(args.config, root=args.root, listen=args.listen)
            if args.workers:
                config = replace(config, workers=args.workers)
            if args.access_log:
                config = replace(config, access_log=True)
            serve(config)
            return 0
        config = load_config(args.config, root=args.root)
        if not os.path.isdir(config.root):
            raise InvalidArgument(f"no registry storage at {config.root}")
        grace = parse_duration(args.grace) if args.grace else config.gc_grace
        store = Store(FilesystemDriver(config.root))
        report = collect_garbage(store, dry_run=args.dry_run, grace=grace,
                                 delete_untagged=args.delete_untagged,
                                 upload_grace=min(grace, config.upload_grace) if args.grace
                                 else config.upload_grace)
    except DockyardError as exc:
        print(f"dockyard registry: {exc}", file=sys.stderr)
        return 1
    verb = "would delete" if args.dry_run else "deleted"
    for manifest in report.deleted_manifests:
        print(f"{verb} manifest {manifest}")
    for digest, size in report.deleted_blobs:
        print(f"{verb} blob {digest} ({size} bytes)")
    for ident in report.deleted_uploads:
        print(f"{verb} upload {ident}")
    print(f"{len(report.marked)} referenced, {len(report.kept_recent)} unreferenced but recent; "
          f"{verb} {len(report.deleted_blobs)} blobs ({report.freed} bytes) and "
          f"{len(report.deleted_uploads)} uploads")
    return 0
