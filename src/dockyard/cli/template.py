"""The subset of Go's text/template that docker's ``--format`` users write.

Supported::

    text {{.Field.Sub}} {{.}} {{$}} {{$var.Field}} {{"str"}} {{123}} {{true}}
    {{json .Config}}  {{index .RepoDigests 0}}  {{index .Config.Labels "k"}}  {{len .Mounts}}
    {{join .Args ","}} {{split .Name "/"}} {{lower .X}} {{upper .X}} {{title .X}}
    {{printf "%s:%d" .A .B}} {{print .A}} {{println .A}} {{pad .X 1 2}} {{truncate .X 5}}
    {{eq .A "x"}} ne lt le gt ge and or not     {{.X | json}}  {{(index .A 0).B}}
    {{if P}}..{{else if P}}..{{else}}..{{end}}   {{with P}}..{{else}}..{{end}}
    {{range P}}..{{else}}..{{end}}  {{range $v := P}}  {{range $k, $v := P}}
    {{- trims whitespace on the left,  -}} on the right

Values are JSON (dicts, lists, str, int, float, bool, None) and print the way Go's ``fmt``
prints the decoded structs: ``map[k:v]``, ``[a b]``, ``<nil>``; a missing key prints
``<no value>``. Errors are :class:`TemplateError` ("template parsing error: ...").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

TYPE_CHECKING = False  # not "from typing": importing typing costs start-up

if TYPE_CHECKING:
    from typing import Any

__all__ = ["Template", "TemplateError", "go_str", "render"]


class TemplateError(Exception):
    pass


class _Missing:
    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<field>(?:\$[A-Za-z_0-9]*)?(?:\.[A-Za-z_][A-Za-z_0-9]*)+|\.|\$[A-Za-z_0-9]*)
    | (?P<decl>:=|,)
    | (?P<pipe>\|)
    | (?P<lpar>\()
    | (?P<rpar>\)(?:\.[A-Za-z_][A-Za-z_0-9]*)*)
    | (?P<ident>[A-Za-z_][A-Za-z_0-9]*)
    )""", re.X)


def go_str(value: Any) -> str:
    """``fmt.Sprint`` of a JSON value as Go would print the decoded struct."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value)) if abs(value) < 1e21 else repr(value)
        return repr(value)
    if isinstance(value, list):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def go_json(value: Any) -> str:
    """``json.Marshal``: compact, HTML characters escaped like Go does."""
    if value is MISSING:
        value = None
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _truth(value: Any) -> bool:
    return value not in (None, MISSING, False, 0, "", [], {}) and value is not MISSING


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            if isinstance(value, dict):
                return MISSING
            raise TemplateError(f"error calling index: cannot index {go_str(value)} with {key!r}")
    return value


def _printf(fmt: str, *args: Any) -> str:
    out = []
    arg_iter = iter(args)
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        m = re.match(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([vsdqfgtxX%])", fmt[i:])
        if not m:
            out.append(c)
            i += 1
            continue
        flags, width, prec, verb = m.groups()
        i += m.end()
        if verb == "%":
            out.append("%")
            continue
        arg = next(arg_iter, MISSING)
        if verb == "q":
            text = json.dumps(go_str(arg))
        elif verb == "d" and isinstance(arg, (int, float)):
            text = str(int(arg))
        elif verb in "fg" and isinstance(arg, (int, float)):
            text = format(float(arg), f".{prec or 6}{verb}")
        elif verb in "xX" and isinstance(arg, int):
            text = format(arg, verb)
        else:
            text = go_str(arg)
            if prec:
                text = text[:int(prec)]
        if width:
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width))
        out.append(text)
    return "".join(out)


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def f(a: Any, *bs: Any) -> bool:
        return any(op(a, b) for b in bs) if op is _eq else all(op(a, b) for b in bs)
    return f


def _eq(a: Any, b: Any) -> bool:
    return bool(a == b)


FUNCS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "index": _index,
    "len": lambda v: len(v) if v not in (None, MISSING) else 0,
    "join": lambda v, sep: sep.join(go_str(x) for x in (v or [])),
    "split": lambda s, sep: go_str(s).split(sep),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: go_str(s).title(),
    "pad": lambda s, left, right: " " * int(left) + go_str(s) + " " * int(right),
    "truncate": lambda s, n: go_str(s)[:int(n)],
    "printf": _printf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "eq": _cmp(_eq),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "not": lambda a: not _truth(a),
    "and": lambda *a: next((x for x in a if not _truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if _truth(x)), a[-1]),
}

# -- parsing: a template is a list of nodes ------------------------------------------------
# ("text", s) | ("out", pipe) | ("if"|"with", pipe, body, else) | ("range", vars, pipe, body, else)
# a pipe is a list of commands; a command is a list of args;
# an arg is ("lit", v) | ("field", var or None, [names]) | ("func", name) | ("sub", pipe, [names])

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"template parsing error: unexpected {text[pos:]!r}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _parse_pipe(tokens: list[tuple[str, str]], i: int = 0,
                stop: str = "") -> tuple[list[list[Any]], int]:
    pipe: list[list[Any]] = [[]]
    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "rpar" and stop == "rpar":
            return pipe, i
        i += 1
        if kind == "pipe":
            pipe.append([])
        elif kind == "str":
            pipe[-1].append(("lit", val[1:-1] if val[0] == "`" else json.loads(val)))
        elif kind == "num":
            pipe[-1].append(("lit", float(val) if "." in val else int(val)))
        elif kind == "field":
            var = None
            rest = val
            if val.startswith("$"):
                var, _, rest = val.partition(".")
                rest = "." + rest if rest else ""
            names = [n for n in rest.split(".") if n]
            pipe[-1].append(("field", var, names))
        elif kind == "lpar":
            sub, i = _parse_pipe(tokens, i, "rpar")
            if i >= len(tokens):
                raise TemplateError("template parsing error: unclosed left paren")
            names = [n for n in tokens[i][1][1:].split(".") if n]
            i += 1
            pipe[-1].append(("sub", sub, names))
        elif kind == "ident":
            if val in ("true", "false"):
                pipe[-1].append(("lit", val == "true"))
            elif val == "nil":
                pipe[-1].append(("lit", None))
            elif val in FUNCS:
                pipe[-1].append(("func", val))
            else:
                raise TemplateError(f'template parsing error: function "{val}" not defined')
        else:
            raise TemplateError(f"template parsing error: unexpected {val!r}")
    if any(not cmd for cmd in pipe):
        raise TemplateError("template parsing error: missing value for command")
    return pipe, i


class Template:
    """A parsed template; :meth:`execute` renders it against a JSON value."""

    def __init__(self, source: str) -> None:
        self.source = source
        pieces: list[tuple[str, str]] = []
        pos = 0
        for m in _ACTION.finditer(source):
            text = source[pos:m.start()]
            if m.group(1):
                text = text.rstrip()
            if pieces and pieces[-1][0] == "trim":
                pieces.pop()
                text = text.lstrip()
            pieces.append(("text", text))
            pieces.append(("action", m.group(2).strip()))
            if m.group(3):
                pieces.append(("trim", ""))
            pos = m.end()
        tail = source[pos:]
        if pieces and pieces[-1][0] == "trim":
            pieces.pop()
            tail = tail.lstrip()
        pieces.append(("text", tail))
        if "{{" in tail:
            raise TemplateError("template parsing error: unclosed action")
        self.nodes, end, rest = self._parse(pieces, 0)
        if end != len(pieces):
            raise TemplateError(f"template parsing error: unexpected {{{{{rest}}}}}")

    def _parse(self, pieces: list[tuple[str, str]], i: int) -> tuple[list[Any], int, str]:
        nodes: list[Any] = []
        while i < len(pieces):
            kind, val = pieces[i]
            if kind == "text":
                if val:
                    nodes.append(("text", val))
                i += 1
                continue
            word = val.split(None, 1)[0] if val else ""
            if word in ("end", "else"):
                return nodes, i, val
            i += 1
            if val.startswith("/*"):
                continue
            if word in ("if", "with", "range"):
                node, i = self._parse_block(pieces, i, word, val)
                nodes.append(node)
            else:
                m = re.match(r"^(\$\w*)\s*:=\s*(.*)$", val, re.S)
                if m:
                    pipe, _ = _parse_pipe(_tokenize(m.group(2)))
                    nodes.append(("set", m.group(1), pipe))
                else:
                    pipe, _ = _parse_pipe(_tokenize(val))
                    nodes.append(("out", pipe))
        return nodes, i, ""

    def _parse_block(self, pieces: list[tuple[str, str]], i: int, word: str,
                     val: str) -> tuple[Any, int]:
        """``{{if|with|range P}}`` at ``pieces[i-1]``: body, optional else, through its end."""
        expr = val[len(word):].strip()
        variables: list[str] = []
        m = re.match(r"^(\$\w*)\s*(?:,\s*(\$\w*))?\s*:=\s*(.*)$", expr, re.S)
        if m:
            variables = [v for v in m.groups()[:2] if v]
            expr = m.group(3)
        pipe, _ = _parse_pipe(_tokenize(expr))
        body, i, closer = self._parse(pieces, i)
        else_body: list[Any] = []
        if closer.startswith("else"):
            rest = closer[4:].strip()
            inner = rest.split(None, 1)[0] if rest else ""
            if inner in ("if", "with"):
                # {{else if P}}: a nested block that consumes the shared {{end}}
                node, i = self._parse_block(pieces, i + 1, inner, rest)
                return (word, variables, pipe, body, [node]), i
            else_body, i, closer = self._parse(pieces, i + 1)
        if i >= len(pieces) or closer != "end":
            raise TemplateError("template parsing error: unexpected EOF")
        return (word, variables, pipe, body, else_body), i + 1

    def execute(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, data, {"$": data}, out)
        return "".join(out)

    def _run(self, nodes: list[Any], dot: Any, env: dict[str, Any], out: list[str]) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "out":
                out.append(go_str(self._pipe(node[1], dot, env)))
            elif kind == "set":
                env[node[1]] = self._pipe(node[2], dot, env)
            else:
                _, variables, pipe, body, else_body = node
                value = self._pipe(pipe, dot, env)
                if kind == "range":
                    items = (list(value.items()) if isinstance(value, dict) else
                             list(enumerate(value)) if isinstance(value, list) else
                             list(enumerate(range(value))) if isinstance(value, int) else [])
                    if isinstance(value, dict):
                        items.sort(key=lambda kv: kv[0])
                    if not items:
                        self._run(else_body, dot, env, out)
                    for key, item in items:
                        scope = dict(env)
                        if len(variables) == 2:
                            scope[variables[0]], scope[variables[1]] = key, item
                        elif variables:
                            scope[variables[0]] = item
                        self._run(body, item, scope, out)
                elif _truth(value):
                    scope = dict(env)
                    if variables:
                        scope[variables[0]] = value
                    self._run(body, value if kind == "with" else dot, scope, out)
                else:
                    self._run(else_body, dot, env, out)

    def _pipe(self, pipe: list[list[Any]], dot: Any, env: dict[str, Any]) -> Any:
        result: Any = MISSING
        for n, cmd in enumerate(pipe):
            args = cmd[1:] if cmd[0][0] == "func" else cmd
            values = [self._arg(a, dot, env) for a in args]
            if n > 0:
                values.append(result)
            if cmd[0][0] == "func":
                try:
                    result = FUNCS[cmd[0][1]](*values)
                except TemplateError:
                    raise
                except Exception as exc:
                    raise TemplateError(
                        f"template: error calling {cmd[0][1]}: {exc}") from exc
            elif len(values) == 1:
                result = values[0]
            else:
                raise TemplateError("template: can't give argument to non-function")
        return result

    def _arg(self, arg: Any, dot: Any, env: dict[str, Any]) -> Any:
        kind = arg[0]
        if kind == "lit":
            return arg[1]
        if kind == "func":
            return FUNCS[arg[1]]()
        if kind == "sub":
            value = self._pipe(arg[1], dot, env)
            names = arg[2]
        else:
            _, var, names = arg
            if var is not None:
                if var not in env:
                    raise TemplateError(f'template: undefined variable "{var}"')
                value = env[var]
            else:
                value = dot
        for name in names:
            if isinstance(value, dict):
                value = value.get(name, MISSING)
            elif value is None or value is MISSING:
                return MISSING
            else:
                raise TemplateError(f"template: can't evaluate field {name} in type "
                                    f"{type(value).__name__}")
        return value


def render(source: str, data: Any) -> str:
    return Template(source).execute(data)
