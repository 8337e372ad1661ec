"""The flag parser's fast path (dockyard.cli.flags) against argparse, on the CLI's own parsers.

Each command line is run through ``dockyard.cli.main.main`` up to its ``Parser.parse``; there
both the fast path and argparse parse it. Where the fast path answers, the namespaces must be
equal; the lists below also pin which lines it takes (so the test cannot pass by the fast path
giving up on everything) and which it hands to argparse.
"""

from __future__ import annotations

import io
import shlex

import pytest

from dockyard.cli import context
from dockyard.cli.argparser import ArgParser
from dockyard.cli.context import StatusError, UsageError
from dockyard.cli.flags import fast_parse
from dockyard.cli.main import main

FAST = [
    "run busybox",
    "run -d --network none busybox sleep 60",
    "run --rm busybox true",
    "run -dit --rm -e A=1 -eB=2 --env=C=3 --name=web -p8080:80 -p 9090:90 busybox sh -c 'x -y'",
    "run -i -t --rm busybox echo Hello World!",
    "run -a stdout -a stderr --restart on-failure:3 -m 64m --cpus 0.5 busybox ls -l /",
    "run --health-cmd 'true' --health-retries 2 -v /a:/b --mount type=tmpfs,target=/t busybox",
    "run -w /tmp -u 1000:1000 --entrypoint sh busybox -c 'echo -n'",
    "run --sig-proxy=false busybox top -b",
    "run - busybox",
    "create --name c1 -l a=b busybox",
    "exec -it c1 sh",
    "exec -d -e X=1 c1 ls -la",
    "start -a -i c1",
    "ps",
    "ps -a -q",
    "ps -aq",
    "ps -n 3 --no-trunc",
    "ps --filter status=exited -f name=x --format '{{.ID}}'",
    "rm -f a b c",
    "rm -fv a",
    "stop -t 5 a b",
    "logs -f --tail 10 c1",
    "logs -n=5 c1",
    "top c1 -o pid,args",
    "kill -s HUP c1",
    "wait a b",
    "inspect -f '{{.Id}}' a",
    "cp c1:/etc/hosts -",
    "commit -m msg c1 repo:tag",
    "images -a --digests",
    "pull -q busybox",
    "volume ls -q",
    "network create --subnet 10.9.0.0/24 n1",
]

SLOW = [
    "run",                      # missing IMAGE
    "run --bogus busybox",      # unknown flag
    "run -x busybox",           # unknown shorthand
    "run --name",               # value missing
    "run -e -x busybox",        # a value that looks like a flag
    "run --rm=true busybox",    # explicit value for a switch
    "run --sig-proxy=maybe busybox",  # not among the choices
    "run -- busybox",           # "--"
    "ps -n x",                  # not an int
    "ps extra",                 # too many arguments
    "rm a -f",                  # a flag after a positional
    "rm",                       # missing argument
    "ps --help",                # help is argparse's
    "run --nam x busybox",      # an abbreviation (refused by argparse)
]


def _capture(line: str, monkeypatch: pytest.MonkeyPatch) -> tuple[context.Parser, list[str]]:
    seen: list[tuple[context.Parser, list[str]]] = []

    class Seen(Exception):
        pass

    def parse(self: context.Parser, args: list[str]) -> None:
        seen.append((self, list(args)))
        raise Seen

    monkeypatch.setattr(context.Parser, "parse", parse)
    out = io.StringIO()
    with pytest.raises(Seen):
        main(shlex.split(line), stdout=out, stderr=out, env={"DOCKYARD_HOST": "unix:///nonexistent"})
    monkeypatch.undo()
    return seen[0]


def _argparse(parser: context.Parser, args: list[str]) -> dict[str, object] | str:
    try:
        return vars(ArgParser(parser).parse_args(args))
    except (UsageError, StatusError) as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("line", FAST)
def test_fast_path_equals_argparse(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parser, args = _capture(line, monkeypatch)
    ns = fast_parse(parser.specs, args)
    assert ns is not None, "expected the fast path to take this line"
    assert vars(ns) == _argparse(parser, args)


@pytest.mark.parametrize("line", SLOW)
def test_unusual_lines_go_to_argparse(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parser, args = _capture(line, monkeypatch)
    ns = fast_parse(parser.specs, args)
    if ns is not None:  # only help may parse fine on the fast path (Parser.parse hands it on)
        assert ns.help
        assert vars(ns) == _argparse(parser, args)


def test_append_defaults_are_not_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    parser, args = _capture("run -e A=1 busybox", monkeypatch)
    first = fast_parse(parser.specs, args)
    again = fast_parse(parser.specs, ["busybox"])
    assert first is not None and again is not None
    assert first.env == ["A=1"]
    assert again.env == []
