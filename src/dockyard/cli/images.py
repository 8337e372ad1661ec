"""Image commands: images, rmi, pull, push, tag, save, load, import, history, search,
login, logout (and the ``image`` group's ls/inspect/rm/prune, see groups.py)."""

from __future__ import annotations

from dockyard.cli.context import Context, Parser, StatusError, UsageError
from dockyard.cli.format import (
    ago,
    format_local_time,
    human_size,
    parse_filters,
    render_list,
    rfc3339,
    short_id,
    truncate,
)
from dockyard.client.wire import quote
from dockyard.errors import DockyardError

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

IMAGE_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                 "Size": "SIZE", "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE",
                 "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}
IMAGE_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"


def image_rows(images: list[dict[str, Any]], *, trunc: bool = True,
               digests: bool = False) -> list[dict[str, Any]]:
    """One row per repo:tag (``<none>`` for dangling), like docker images."""
    rows = []
    for img in images:
        ident = short_id(img["Id"]) if trunc else img["Id"]
        created = float(img.get("Created") or 0)
        base = {"ID": ident, "CreatedSince": ago(created), "CreatedAt": format_local_time(created),
                "Size": human_size(img.get("Size") or 0),
                "VirtualSize": human_size(img.get("VirtualSize") or img.get("Size") or 0, 4),
                "Containers": str(img.get("Containers", -1)) if img.get("Containers", -1) >= 0
                else "N/A", "SharedSize": "N/A", "UniqueSize": "N/A", "Digest": "<none>"}
        digest_by_repo = {}
        for rd in img.get("RepoDigests") or []:
            repo, _, dg = rd.partition("@")
            digest_by_repo[repo] = dg
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        if not tags:
            for rd in img.get("RepoDigests") or [None]:
                repo = rd.partition("@")[0] if rd else "<none>"
                rows.append({**base, "Repository": repo, "Tag": "<none>",
                             "Digest": digest_by_repo.get(repo, "<none>")})
            continue
        for t in tags:
            repo, _, tag = t.rpartition(":")
            rows.append({**base, "Repository": repo, "Tag": tag,
                         "Digest": digest_by_repo.get(repo, "<none>")})
    return rows


def images(ctx: Context, args: list[str], command: str = "images") -> int:
    p = Parser(ctx, command, "[OPTIONS] [REPOSITORY[:TAG]]", "List images")
    p.add_argument("-a", "--all", action="store_true", help="Show all images")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("-f", "--filter", action="append", help="Filter output based on conditions")
    p.add_argument("--format", help="Format output using a Go template, 'table' or 'json'")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("reference", nargs="?")
    ns = p.parse(args)
    filters = parse_filters(ns.filter)
    if ns.reference:
        filters.setdefault("reference", []).append(ns.reference)
    imgs = ctx.client.images(all=ns.all, filters=filters)
    imgs.sort(key=lambda i: i.get("Created") or 0, reverse=True)
    rows = image_rows(imgs, trunc=not ns.no_trunc, digests=ns.digests)
    if ns.quiet:
        seen: list[str] = []
        for row in rows:
            if row["ID"] not in seen:
                seen.append(row["ID"])
        ctx.out("".join(f"{i}\n" for i in seen))
        return 0
    fmt = ns.format
    if not fmt or fmt == "table":
        fmt = IMAGE_DEFAULT
        if ns.digests:
            fmt = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}"
                   "\t{{.Size}}")
    render_list(ctx, rows, fmt, IMAGE_DEFAULT, IMAGE_HEADERS, imgs)
    return 0


def rmi(ctx: Context, args: list[str], command: str = "rmi") -> int:
    p = Parser(ctx, command, "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    ns = p.parse(args)
    failed = False
    for name in ns.images:
        try:
            for item in ctx.client.remove_image(name, force=ns.force, noprune=ns.no_prune):
                for key in ("Untagged", "Deleted"):
                    if key in item:
                        ctx.out(f"{key}: {item[key]}\n")
        except DockyardError as exc:
            prefix = "Error response from daemon: " if hasattr(exc, "status") else ""
            ctx.err(f"{prefix}{exc.message}\n")
            failed = True
    return 1 if failed else 0


def pull(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.run import pull_image
    from dockyard.oci.reference import parse_reference

    p = Parser(ctx, "pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry")
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", help="Skip image verification")
    p.add_argument("name")
    ns = p.parse(args)
    ref = parse_reference(ns.name)
    if ns.all_tags:
        if ref.tag or ref.digest:
            raise UsageError("tag can't be used with --all-tags/-a", "pull")
        pull_image(ctx, str(ref), platform=ns.platform, quiet=ns.quiet, all_tags=True)
        ctx.out(f"{ref}\n")
        return 0
    if not ref.tag and not ref.digest:
        if not ns.quiet:
            ctx.out("Using default tag: latest\n")
        ref = ref.with_default_tag()
    pull_image(ctx, str(ref), platform=ns.platform, quiet=ns.quiet)
    ctx.out(f"{ref}\n")
    return 0


def push(ctx: Context, args: list[str]) -> int:
    from dockyard.cli import auth
    from dockyard.cli.progress import display
    from dockyard.oci.reference import parse_reference

    p = Parser(ctx, "push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry")
    p.add_argument("-a", "--all-tags", action="store_true", help="Push all tags")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", help="Skip image signing")
    p.add_argument("name")
    ns = p.parse(args)
    ref = parse_reference(ns.name)
    tag = None if ns.all_tags else (ref.tag or "latest")
    if not ref.tag and not ns.all_tags and not ns.quiet:
        ctx.out("Using default tag: latest\n")
    creds = auth.get(ctx.docker_config_dir(), auth.registry_for(ns.name))
    header = auth.encode_auth(creds) if creds else "e30="
    stream = ctx.client.push(ref.familiar_name(), tag, auth=header)
    display(stream, ctx.stdout, ctx.is_tty(ctx.stdout), quiet=ns.quiet)
    if ns.quiet:
        ctx.out(f"{ref.familiar_name()}:{tag or 'latest'}\n")
    return 0


def tag(ctx: Context, args: list[str]) -> int:
    from dockyard.oci.reference import parse_reference

    p = Parser(ctx, "tag", "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
               "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source")
    p.add_argument("target")
    ns = p.parse(args)
    ref = parse_reference(ns.target)
    if ref.digest:
        raise StatusError(1, "Error: refusing to create a tag with a digest reference")
    ctx.client.tag(ns.source, ref.name, ref.tag or "latest")
    return 0


def save(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.files import write_stream

    p = Parser(ctx, "save", "[OPTIONS] IMAGE [IMAGE...]",
               "Save one or more images to a tar archive (streamed to STDOUT by default)")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("--platform", help="Save only the given platform")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    ns = p.parse(args)
    if not ns.output and ctx.is_tty(ctx.stdout):
        raise StatusError(1, "Error: cowardly refusing to save to a terminal. "
                             "Use the -o flag or redirect")
    resp = ctx.client.request("GET", "/images/get", [("names", n) for n in ns.images])
    write_stream(ctx, resp.read1, ns.output)
    return 0


def load(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.progress import display

    p = Parser(ctx, "load", "[OPTIONS]", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")
    p.add_argument("--platform", help="Load only the given platform")
    ns = p.parse(args)
    if not ns.input and ctx.is_tty(ctx.stdin):
        raise StatusError(1, "requested load from stdin, but stdin is empty")
    source = open(ns.input, "rb") if ns.input else ctx.stdin_binary()  # noqa: SIM115
    try:
        stream = ctx.client.stream("POST", "/images/load", {"quiet": ns.quiet or None}, source,
                                   {"Content-Type": "application/x-tar"})
        display(stream, ctx.stdout, ctx.is_tty(ctx.stdout))
    finally:
        if ns.input:
            source.close()
    return 0


def import_(ctx: Context, args: list[str]) -> int:
    from dockyard.cli.progress import display

    p = Parser(ctx, "import", "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
               "Import the contents from a tarball to create a filesystem image")
    p.add_argument("-c", "--change", action="append", default=[], help="Apply Dockerfile instruction")
    p.add_argument("-m", "--message", help="Set commit message for imported image")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("source")
    p.add_argument("reference", nargs="?")
    ns = p.parse(args)
    params: dict[str, Any] = {"message": ns.message, "platform": ns.platform}
    if ns.change:
        params["changes"] = ns.change[0] if len(ns.change) == 1 else None
    repo, tag_ = None, None
    if ns.reference:
        from dockyard.oci.reference import parse_reference
        ref = parse_reference(ns.reference)
        repo, tag_ = ref.familiar_name(), ref.tag
    params["repo"], params["tag"] = repo, tag_
    body: Any = None
    close = None
    if ns.source == "-":
        params["fromSrc"] = "-"
        body = ctx.stdin_binary()
    elif "://" in ns.source:
        params["fromSrc"] = ns.source
    else:
        params["fromSrc"] = "-"
        body = close = open(ns.source, "rb")  # noqa: SIM115
    try:
        stream = ctx.client.stream("POST", "/images/create", params, body,
                                   {"Content-Type": "application/x-tar"} if body else None)
        seen = []
        for msg in stream:
            if msg.get("error") or msg.get("errorDetail"):
                raise StatusError(1, (msg.get("errorDetail") or {}).get("message") or msg["error"])
            seen.append(msg)
        for msg in seen:
            if msg.get("status"):
                ctx.out(msg["status"].strip() + "\n")
        if not seen:
            display([], ctx.stdout, False)
    finally:
        if close is not None:
            close.close()
    return 0


def history(ctx: Context, args: list[str], command: str = "history") -> int:
    p = Parser(ctx, command, "[OPTIONS] IMAGE", "Show the history of an image")
    p.add_argument("-H", "--human", default="true", help="Print sizes and dates in human "
                   "readable format")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--format", help="Format output using a Go template")
    p.add_argument("image")
    ns = p.parse(args)
    entries = ctx.client.get(f"/images/{quote(ns.image, safe='/:@')}/history") or []
    rows = []
    for e in entries:
        ident = e.get("Id") or "<missing>"
        if ident != "<missing>" and not ns.no_trunc:
            ident = short_id(ident)
        created_by = (e.get("CreatedBy") or "").replace("\t", " ")
        if not ns.no_trunc:
            created_by = truncate(created_by, 45)
        rows.append({"ID": ident, "CreatedSince": ago(float(e.get("Created") or 0)),
                     "CreatedAt": rfc3339(float(e.get("Created") or 0)),
                     "CreatedBy": created_by, "Size": human_size(e.get("Size") or 0),
                     "Comment": e.get("Comment") or ""})
    if ns.quiet:
        ctx.out("".join(f"{r['ID']}\n" for r in rows))
        return 0
    render_list(ctx, rows, ns.format,
                "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
                {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                 "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}, entries)
    return 0


def search(ctx: Context, args: list[str]) -> int:
    p = Parser(ctx, "search", "[OPTIONS] TERM", "Search Docker Hub for images")
    p.add_argument("-f", "--filter", action="append", help="Filter output based on conditions")
    p.add_argument("--format", help="Pretty-print search using a Go template")
    p.add_argument("--limit", type=int, default=None, help="Max number of search results")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("term")
    ns = p.parse(args)
    from dockyard.cli import auth
    creds = auth.get(ctx.docker_config_dir(), auth.registry_for(ns.term.split("/")[0] + "/x")
                     if "." in ns.term.split("/")[0] or ":" in ns.term.split("/")[0]
                     else auth.DOCKER_HUB)
    results = ctx.client.call("GET", "/images/search",
                              {"term": ns.term, "limit": ns.limit,
                               "filters": parse_filters(ns.filter) or None},
                              None, {"X-Registry-Auth": auth.encode_auth(creds) if creds
                                     else "e30="}) or []
    rows = []
    for r in results:
        desc = (r.get("description") or "").replace("\n", " ")
        if not ns.no_trunc:
            desc = truncate(desc, 45)
        rows.append({"Name": r.get("name", ""), "Description": desc,
                     "StarCount": str(r.get("star_count", 0)),
                     "IsOfficial": "[OK]" if r.get("is_official") else "",
                     "IsAutomated": "[OK]" if r.get("is_automated") else ""})
    render_list(ctx, rows, ns.format,
                "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
                {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                 "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}, results)
    return 0


def login(ctx: Context, args: list[str]) -> int:
    from dockyard.cli import auth

    p = Parser(ctx, "login", "[OPTIONS] [SERVER]", "Log in to a registry")
    p.add_argument("-u", "--username", help="Username")
    p.add_argument("-p", "--password", help="Password or Personal Access Token (PAT)")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    p.add_argument("server", nargs="?")
    ns = p.parse(args)
    server = auth.normalize_server(ns.server)
    password = ns.password
    if ns.password_stdin:
        if ns.password:
            raise UsageError("--password and --password-stdin are mutually exclusive", "login")
        if not ns.username:
            raise UsageError("Must provide --username with --password-stdin", "login")
        password = ctx.stdin.read().rstrip("\r\n")
    elif ns.password:
        ctx.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    username = ns.username
    if not username or password is None:
        if not ctx.is_tty(ctx.stdin):
            raise StatusError(1, "Error: Cannot perform an interactive login from a non TTY "
                                 "device")
        if not username:
            ctx.out("Username: ")
            username = ctx.stdin.readline().strip()
        if password is None:
            import getpass
            password = getpass.getpass("Password: ")
    reply = ctx.client.post("/auth", {"username": username, "password": password,
                                      "serveraddress": server}) or {}
    auth.store(ctx.docker_config_dir(), server, username or "", password or "",
               reply.get("IdentityToken") or "")
    ctx.out(f"{reply.get('Status') or 'Login Succeeded'}\n")
    return 0


def logout(ctx: Context, args: list[str]) -> int:
    from dockyard.cli import auth

    p = Parser(ctx, "logout", "[SERVER]", "Log out from a registry")
    p.add_argument("server", nargs="?")
    ns = p.parse(args)
    server = auth.normalize_server(ns.server)
    if auth.erase(ctx.docker_config_dir(), server):
        ctx.out(f"Removing login credentials for {server}\n")
    else:
        ctx.out(f"Not logged in to {server}\n")
    return 0


__all__ = ["history", "images", "import_", "load", "login", "logout", "pull", "push",
           "rmi", "save", "search", "tag"]
