"""format.render_list fills plain templates (``{{.Field}}`` and text) without the template
engine; the output must be the engine's."""

from __future__ import annotations

import io

import pytest

from dockyard.cli.context import Context
from dockyard.cli.format import _plain_template, render_list
from dockyard.cli.template import Template

ROWS = [{"ID": "abc", "Names": "web", "Status": "Up 2 seconds", "Ports": "", "Size": 12},
        {"ID": "def", "Names": "db", "Status": "Exited (0)", "Ports": "80/tcp", "Size": 0}]
HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Status": "STATUS", "Ports": "PORTS",
           "Size": "SIZE"}


def _render(fmt: str) -> str:
    out = io.StringIO()
    render_list(Context(stdin=io.StringIO(), stdout=out, stderr=out, env={}), ROWS, fmt,
                "table {{.ID}}", HEADERS)
    return out.getvalue()


def _engine(fmt: str) -> str:
    table = fmt.startswith("table")
    body = (fmt[5:].lstrip() if table else fmt).replace("\\t", "\t")
    template = Template(body)
    lines = [template.execute(dict(row)) for row in ROWS]
    if not table:
        return "".join(line + "\n" for line in lines)
    from dockyard.cli.format import tabulate
    return tabulate([template.execute(dict(HEADERS)).split("\t")]
                    + [line.split("\t") for line in lines])


@pytest.mark.parametrize("fmt", [
    "table {{.ID}}\\t{{.Names}}\\t{{.Status}}\\t{{.Ports}}",
    "{{.Names}}",
    "id={{ .ID }} name={{.Names}}!",
    "{{.Size}}",                       # not a string: the engine prints it
    "{{.Missing}}",                    # <no value>: the engine's
    "{{.Names | upper}}",              # not plain
    "{{- .Names -}}",                  # trim markers: not plain
    "table {{.ID}}",
])
def test_plain_templates_print_what_the_engine_prints(fmt: str) -> None:
    assert _render(fmt) == _engine(fmt)


def test_which_templates_are_plain() -> None:
    assert _plain_template("a{{.B}}c{{ .D }}") == ["a", "B", "c", "D", ""]
    for body in ("{{.B.C}}", "{{json .}}", "{{.B}", "x}}", "{{-.B}}", "{{.}}"):
        assert _plain_template(body) is None
