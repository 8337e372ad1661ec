"""Files in and out of containers: cp, diff, commit, export (and downloads to a file)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from dockyard.cli.context import Context, Parser, StatusError, UsageError
from dockyard.client.wire import quote

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    import tarfile
    from typing import Any

__all__ = ["commit", "cp", "diff", "export", "write_stream"]


def _split_container_path(arg: str) -> tuple[str | None, str]:
    if ":" in arg and not arg.startswith(("/", ".")):
        name, _, path = arg.partition(":")
        return name, path
    return None, arg


def _path_stat(ctx: Context, container: str, path: str) -> dict[str, Any] | None:
    import base64
    resp = ctx.client._send("HEAD", f"/containers/{quote(container)}/archive", {"path": path})
    resp.read()
    if resp.status == 404:
        return None
    if resp.status >= 400:
        from dockyard.client.api import error_for
        raise error_for(resp.status, f"Could not find the file {path} in container {container}")
    header = resp.getheader("X-Docker-Container-Path-Stat")
    if not header:
        return {}
    return json.loads(base64.b64decode(header))  # type: ignore[no-any-return]


def cp(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
               "       dockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
               "Copy files/folders between a container and the local filesystem")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Follow symbolic links")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress progress output")
    p.add_argument("src")
    p.add_argument("dest")
    ns = p.parse(args)
    src_c, src = _split_container_path(ns.src)
    dst_c, dst = _split_container_path(ns.dest)
    if (src_c is None) == (dst_c is None):
        raise UsageError("must specify at least one container source" if src_c is None else
                         "copying between containers is not supported", "cp")
    if src_c is not None:
        return _copy_from(ctx, src_c, src, dst, archive=ns.archive, follow=ns.follow_link)
    assert dst_c is not None
    return _copy_to(ctx, src, dst_c, dst, archive=ns.archive, follow=ns.follow_link)


def _copy_from(ctx: Context, container: str, src: str, dest: str, *, archive: bool,
               follow: bool) -> int:
    """Container -> host. The tar comes from the container, so it is untrusted: every entry
    goes through :func:`_cp_check` before tarfile writes it (see there for the rules)."""
    import tarfile

    if follow:
        st = _path_stat(ctx, container, src)
        if st and st.get("linkTarget"):
            src = st["linkTarget"]
    resp = ctx.client.request("GET", f"/containers/{quote(container)}/archive", {"path": src})
    if dest == "-":
        while chunk := resp.read1(65536):
            ctx.out_bytes(chunk)
        return 0
    rename_to = None
    target_dir = dest
    if not os.path.isdir(dest):
        target_dir = os.path.dirname(os.path.abspath(dest))
        rename_to = os.path.basename(dest.rstrip("/"))
        if not os.path.isdir(target_dir):
            raise StatusError(1, f"Error: destination directory {target_dir} does not exist")
    real_dir = os.path.realpath(target_dir)
    # Our checks are the filter. Python >= 3.11.4 has PEP 706 filters too (and 3.14 applies
    # "data" by default, 3.12-3.13 warn without one): tell it ours already ran.
    trusted: dict[str, Any] = {"filter": "fully_trusted"} if hasattr(
        tarfile, "fully_trusted_filter") else {}
    with tarfile.open(fileobj=resp, mode="r|*") as tar:  # type: ignore[call-overload]
        for member in tar:
            if rename_to is not None:  # the copied root takes the destination's name
                member.name = _rebase(member.name, rename_to)
                if member.islnk():
                    member.linkname = _rebase(member.linkname, rename_to)
            try:
                _cp_check(member, real_dir, archive=archive)
            except _Refused as exc:
                raise StatusError(1, f"Error: refusing {member.name!r}: {exc}") from None
            tar.extract(member, target_dir, numeric_owner=True, **trusted)
    return 0


def _rebase(name: str, root: str) -> str:
    rest = name.split("/", 1)[1] if "/" in name else ""
    return root + ("/" + rest if rest else "")


class _Refused(Exception):
    """A tar entry from the container that ``cp`` will not write (the message says why)."""


def _cp_check(member: tarfile.TarInfo, dest: str, *, archive: bool) -> None:
    """Refuse ``member`` or make it safe to extract under ``dest`` (a realpath), in place.

    The same on every Python (3.11.2 has no tarfile filters; later ones are told
    "fully_trusted"). Close to tarfile's "data" filter, except that symlinks are kept whatever
    they point at, as docker does: a symlink is harmless to create, and writing *through* one
    is still refused because every name is resolved with realpath (following the links already
    on disk, ours or the tar's) before anything is written. Refused: absolute names, names
    landing outside ``dest``, hard links to anything outside it (or to a symlink leading out:
    link(2) follows it), device nodes, FIFOs and other special files. Setuid, setgid and sticky
    bits and group/other write are dropped; files get our uid/gid unless ``archive`` (``-a``)
    keeps the numeric owners from the tar."""
    name = member.name
    if os.path.isabs(name):
        raise _Refused("absolute path")
    target = os.path.realpath(os.path.join(dest, name))
    if not _inside(target, dest):
        raise _Refused(f"would be extracted to {target!r}, which is outside the destination")
    if member.islnk():
        if os.path.isabs(member.linkname):
            raise _Refused(f"hard link to absolute path {member.linkname!r}")
        linked = os.path.realpath(os.path.join(dest, member.linkname))
        if not _inside(linked, dest):
            raise _Refused(f"hard link to {linked!r}, which is outside the destination")
    elif not (member.isreg() or member.isdir() or member.issym()):
        raise _Refused("device nodes, FIFOs and other special files are not copied")
    mode = member.mode & 0o755
    if not archive:
        if member.isreg() or member.islnk():
            mode = (mode if mode & 0o100 else mode & ~0o111) | 0o600
        elif member.isdir():
            mode |= 0o700  # we must be able to fill it
        member.uid, member.gid = os.getuid(), os.getgid()
        member.uname = member.gname = ""
    member.mode = mode


def _inside(path: str, dest: str) -> bool:
    return os.path.commonpath([path, dest]) == dest


def _copy_to(ctx: Context, src: str, container: str, dest: str, *, archive: bool,
             follow: bool) -> int:
    import io
    import tarfile

    st = _path_stat(ctx, container, dest)
    buf = io.BytesIO()
    if src == "-":
        buf.write(ctx.stdin_binary().read())
        target = dest
    else:
        if not os.path.lexists(src):
            raise StatusError(1, f"Error: lstat {os.path.abspath(src)}: no such file or directory")
        if st is not None and (st.get("mode", 0) & 0x80000000 or not st):
            # an existing directory: copy inside it under the source's own name
            target, arcname = dest, os.path.basename(os.path.normpath(src))
        else:
            target = os.path.dirname(dest.rstrip("/")) or "/"
            arcname = os.path.basename(dest.rstrip("/"))
        with tarfile.open(fileobj=buf, mode="w", dereference=follow) as tar:
            tar.add(src, arcname=arcname)
    ctx.client.call("PUT", f"/containers/{quote(container)}/archive",
                    {"path": target, "copyUIDGID": archive or None}, buf.getvalue(),
                    {"Content-Type": "application/x-tar"})
    return 0


def diff(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "diff", "CONTAINER", "Inspect changes to files on a container's filesystem")
    p.add_argument("container")
    ns = p.parse(args)
    for change in ctx.client.get(f"/containers/{quote(ns.container)}/changes") or []:
        kind = {0: "C", 1: "A", 2: "D"}.get(change.get("Kind"), "?")
        ctx.out(f"{kind} {change.get('Path')}\n")
    return 0


def commit(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
               "Create a new image from a container's changes")
    p.add_argument("-a", "--author", help="Author")
    p.add_argument("-c", "--change", action="append", help="Apply Dockerfile instruction")
    p.add_argument("-m", "--message", help="Commit message")
    p.add_argument("-p", "--pause", action="store_true", default=True,
                   help="Pause container during commit (default true)")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")
    ns = p.parse(args)
    repo, tag = None, None
    if ns.repository:
        from dockyard.oci.reference import parse_reference
        ref = parse_reference(ns.repository)
        repo, tag = ref.familiar_name(), ref.tag or "latest"
    params: dict[str, Any] = {"container": ns.container, "repo": repo, "tag": tag,
                              "comment": ns.message, "author": ns.author, "pause": ns.pause}
    if ns.change:
        params["changes"] = "\n".join(ns.change)
    reply = ctx.client.call("POST", "/commit", params, {})
    ctx.out(f"{reply['Id']}\n")
    return 0


def export(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "export", "[OPTIONS] CONTAINER",
               "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container")
    ns = p.parse(args)
    if not ns.output and ctx.is_tty(ctx.stdout):
        raise StatusError(1, "cowardly refusing to save to a terminal. "
                             "Use the -o flag or redirect")
    resp = ctx.client.request("GET", f"/containers/{quote(ns.container)}/export")
    write_stream(ctx, resp.read1, ns.output)
    return 0


def write_stream(ctx: Context, read: Callable[[int], bytes], path: str | None) -> None:
    """Copy a download to ``path`` (atomically) or to stdout."""
    if not path:
        while chunk := read(65536):
            ctx.out_bytes(chunk)
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            while chunk := read(65536):
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


