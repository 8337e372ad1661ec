"""Docker's output conventions: tables, sizes, durations, ``--format`` and ``--filter``.

Tables are laid out like Go's ``text/tabwriter`` as the docker CLI configures it
(minimum cell width 10, padding 3, spaces); the last column is not padded.
Sizes are go-units' ``HumanSizeWithPrecision(n, 3)`` (decimal: ``4.26MB``); durations are
go-units' ``HumanDuration`` (``About a minute``, ``3 hours``).
"""

from __future__ import annotations

import time

from dockyard.cli.context import Context, UsageError
from dockyard.units import binary_size as human_binary_size
from dockyard.units import human_duration, human_size

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime
    from typing import Any

__all__ = ["human_binary_size", "human_duration", "human_size", "parse_filters", "parse_time",
           "print_deletions", "render_list", "tabulate"]

MIN_WIDTH = 10
PADDING = 3


def tabulate(lines: Sequence[Sequence[str]], min_width: int = MIN_WIDTH) -> str:
    """Align tab-separated cells like tabwriter.NewWriter(out, min_width, 1, 3, ' ', 0)
    (docker uses 10, and 20 for ``top``)."""
    widths: dict[int, int] = {}
    for cells in lines:
        for i, cell in enumerate(cells[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell) + PADDING, min_width)
    out = []
    for cells in lines:
        parts = [cell.ljust(widths[i]) for i, cell in enumerate(cells[:-1])]
        parts.append(cells[-1] if cells else "")
        out.append("".join(parts).rstrip(" ") if not cells[-1:] or cells[-1] else
                   "".join(parts))
    return "\n".join(out) + ("\n" if out else "")


def ago(unix: float, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return human_duration(max(0.0, now - unix)) + " ago"


def _split_rfc3339(text: str) -> tuple[datetime, str]:
    """``2024-01-02T03:04:05.123456789+01:00`` -> (the aware datetime to the second, the
    fraction's digits exactly as written). Python's parser stops at microseconds."""
    from datetime import datetime  # here, not at the top: ps and rm need none of it (~2 ms)

    main, frac, zone = text, "", ""
    if "." in text:
        main, _, tail = text.partition(".")
        i = 0
        while i < len(tail) and tail[i].isdigit():
            i += 1
        frac, zone = tail[:i], tail[i:]
    elif len(text) > 19:
        main, zone = text[:19], text[19:]
    return datetime.fromisoformat(main + ("+00:00" if zone in ("Z", "") else zone)), frac


def parse_rfc3339(text: str) -> float:
    """``2024-01-02T03:04:05.123456789Z`` (or with an offset) -> unix seconds."""
    if not text or text.startswith("0001-01-01"):
        return 0.0
    dt, frac = _split_rfc3339(text)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def format_local_time(unix: float) -> str:
    """``2024-01-02 03:04:05 +0000 UTC`` as Go prints a time.Time."""
    from datetime import UTC, datetime

    dt = datetime.fromtimestamp(unix, tz=UTC).astimezone()
    return dt.strftime("%Y-%m-%d %H:%M:%S %z ") + (dt.tzname() or "")


def go_time_string(text: str) -> str:
    """An RFC 3339 timestamp as Go's ``time.Time.String()`` prints it in local time:
    ``2026-11-27 21:48:06.059227016 +0000 UTC`` (fraction kept exactly, zeros trimmed)."""
    if not text:
        return ""
    dt, frac = _split_rfc3339(text)
    dt = dt.astimezone()
    frac = frac.rstrip("0")
    return (dt.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "")
            + dt.strftime(" %z ") + (dt.tzname() or ""))


def rfc3339(unix: float) -> str:
    """Go's ``time.Unix(n, 0).Format(time.RFC3339)`` in local time."""
    from datetime import UTC, datetime

    dt = datetime.fromtimestamp(unix, tz=UTC).astimezone()
    offset = dt.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + zone


def parse_time(text: str, now: float | None = None) -> str:
    """A ``--since``/``--until`` value for the API: unix seconds, RFC 3339 or a duration."""
    now = time.time() if now is None else now
    try:
        float(text)
        return text
    except ValueError:
        pass
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    import re
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)
    if parts and "".join(a + b for a, b in parts) == text:
        seconds = sum(float(a) * units[b] for a, b in parts)
        return f"{now - seconds:.9f}".rstrip("0").rstrip(".")
    try:
        if "T" not in text:
            text = text + "T00:00:00Z"
        return f"{parse_rfc3339(text):.9f}".rstrip("0").rstrip(".")
    except ValueError:
        raise UsageError(f'invalid value for "since": "{text}"') from None


def parse_filters(values: Sequence[str] | None) -> dict[str, list[str]]:
    """``--filter a=b --filter a=c`` -> ``{"a": ["b", "c"]}`` (the API's filters JSON)."""
    filters: dict[str, list[str]] = {}
    for value in values or []:
        key, eq, val = value.partition("=")
        if not eq:
            raise UsageError(f"bad format of filter (expected name=value)\n'{value}'")
        filters.setdefault(key.strip().lower(), []).append(val)
    return filters


def render_list(ctx: Context, rows: Sequence[Mapping[str, Any]], fmt: str | None,
                default: str, headers: Mapping[str, str],
                objects: Sequence[Any] | None = None) -> None:
    """Print rows as docker does: a table (default or ``table ...``), ``json``, or a template.

    ``rows`` hold the already formatted fields templates see (``.ID``, ``.Names``); ``objects``
    are the raw API objects that ``--format json`` prints instead when given.
    """
    fmt = default if not fmt or fmt == "table" else fmt
    if fmt == "json":  # docker prints the formatted fields, as {{json .}} would
        from dockyard.cli.template import go_json
        for row in rows:
            ctx.out(go_json(dict(sorted(row.items()))) + "\n")
        return
    table = fmt.startswith("table")
    body = fmt[5:].lstrip() if table else fmt
    body = body.replace("\\t", "\t").replace("\\n", "\n")
    parts = _plain_template(body)
    filled = [_fill(parts, row) for row in rows] if parts is not None else [None]
    filled_header = _fill(parts, headers) if parts is not None and table else ""
    rendered = [text for text in filled if text is not None]
    header = filled_header or ""
    if len(rendered) != len(filled) or filled_header is None:
        from dockyard.cli.template import Template, TemplateError

        try:
            template = Template(body)
            rendered = [template.execute(dict(row)) for row in rows]
            header = template.execute(dict(headers)) if table else ""
        except TemplateError as exc:
            raise UsageError(str(exc)) from None
    if table:
        lines = [header.split("\t")] + [r.split("\t") for r in rendered]
        ctx.out(tabulate(lines))
    else:
        for text in rendered:
            ctx.out(text + "\n")


def _plain_template(body: str) -> list[str] | None:
    """``text{{.Field}}text{{ .Other }}...`` -> [text, Field, text, Other, ...] (odd items are
    field names); None for any other template. The default tables are all like this, and
    filling them in needs none of the template engine (which imports ``re`` and ``json``:
    ~7 ms of ``ps``'s start-up)."""
    parts = []
    rest = body
    while "{{" in rest:
        text, _, rest = rest.partition("{{")
        action, found, rest = rest.partition("}}")
        name = action.strip()
        if not found or not name.startswith(".") or not name[1:].isidentifier() or (
                action[:1] == "-" or action[-1:] == "-"):
            return None
        parts += [text, name[1:]]
    if "}}" in rest:
        return None
    parts.append(rest)
    return parts


def _fill(parts: list[str], row: Mapping[str, Any]) -> str | None:
    """The plain template filled in from ``row``, or None unless every field is a string
    there (anything else is the template engine's to print)."""
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            value = row.get(part)
            if not isinstance(value, str):
                return None
            out.append(value)
        else:
            out.append(part)
    return "".join(out)


def truncate(text: str, width: int) -> str:
    """docker's Ellipsis: cut to ``width`` runes, the last one an ellipsis."""
    if len(text) <= width:
        return text
    return text[:width - 1] + "…"


def short_id(ident: str) -> str:
    return ident.split(":", 1)[-1][:12]


def print_deletions(ctx: Context, title: str, items: Sequence[Any] | None,
                    reclaimed: int | None = None) -> None:
    """A prune's report: ``Deleted X:`` then one line per item (image items are
    ``{"Untagged"|"Deleted": ref}``), a blank line, and the reclaimed space if given."""
    if items:
        ctx.out(f"{title}:\n")
        for item in items:
            if isinstance(item, dict):
                for key in ("Untagged", "Deleted"):
                    if key in item:
                        ctx.out(f"{key.lower()}: {item[key]}\n")
            else:
                ctx.out(f"{item}\n")
        ctx.out("\n")
    if reclaimed is not None:
        ctx.out(f"Total reclaimed space: {human_size(reclaimed)}\n")
