"""The Go-template subset behind ``--format``."""

from __future__ import annotations

import pytest

from dockyard.cli.template import TemplateError, render

DATA = {
    "Id": "abc", "Name": "/web",
    "State": {"Running": True, "Pid": 42, "ExitCode": 0},
    "Config": {"Cmd": ["sh", "-c", "x"], "Labels": {"b": "2", "a": "1"}, "Env": None},
    "RepoDigests": ["busybox@sha256:aaa"],
    "NetworkSettings": {"IPAddress": "172.17.0.2", "Networks": {"bridge": {"IPAddress": "1"}}},
    "Html": "<a&b>",
}


@pytest.mark.parametrize(("template", "expected"), [
    ("{{.State.Running}}", "true"),
    ("{{.State.Pid}}", "42"),
    ("{{.NetworkSettings.IPAddress}}", "172.17.0.2"),
    ("{{json .Config.Cmd}}", '["sh","-c","x"]'),
    ("{{json .Html}}", '"\\u003ca\\u0026b\\u003e"'),
    ("{{index .RepoDigests 0}}", "busybox@sha256:aaa"),
    ('{{index .Config.Labels "a"}}', "1"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Cmd}}", "[sh -c x]"),
    ("{{.Config.Env}}", "<nil>"),
    ("{{.Missing}}", "<no value>"),
    ("{{range .Config.Cmd}}<{{.}}>{{end}}", "<sh><-c><x>"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}", "a=1 b=2 "),
    ("{{range $n, $v := .NetworkSettings.Networks}}{{$n}}:{{$v.IPAddress}}{{end}}", "bridge:1"),
    ("{{range .Config.Env}}x{{else}}empty{{end}}", "empty"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if not .State.Running}}a{{else if .State.Pid}}b{{else}}c{{end}}", "b"),
    ('{{if eq .Name "/web"}}yes{{end}}', "yes"),
    ("{{with .State}}{{.Pid}}{{end}}", "42"),
    ('{{.Name | printf "%s!"}}', "/web!"),
    ('{{printf "%5s|%-4d|" .Id .State.Pid}}', "  abc|42  |"),
    ('{{join .Config.Cmd "+"}}', "sh+-c+x"),
    ("{{len .Config.Cmd}}", "3"),
    ("{{upper .Id}} {{lower .Id}}", "ABC abc"),
    ("a  {{- .Id -}}  b", "aabcb"),
    ("{{(index .Config.Cmd 1)}}", "-c"),
    ("{{/* comment */}}ok", "ok"),
])
def test_renders_like_go(template: str, expected: str) -> None:
    assert render(template, DATA) == expected


@pytest.mark.parametrize("template", [
    "{{nosuchfunc .Id}}", "{{if .Id}}unterminated", "{{.Id", "{{end}}",
])
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template, DATA)


def test_index_out_of_range_is_an_error() -> None:
    with pytest.raises(TemplateError, match="index"):
        render("{{index .RepoDigests 5}}", DATA)
