"""Read a Terraform configuration with python-hcl2 and evaluate its expressions, without providers.

`terraform validate`/`plan` need the google provider, which cannot be downloaded here, so the tests
evaluate the configuration themselves: variables (defaults or overrides), locals, module calls with
their arguments, resource `for_each`, `dynamic` blocks, and the subset of the expression language the
configuration uses (operators, conditionals, `for` expressions, templates, the functions below).
Whatever depends on a resource or data source that does not exist yet evaluates to `Unknown(path)`,
the way `terraform plan` shows "(known after apply)"; a template renders it as `<path>`, so a push
endpoint evaluates to "<module.fetcher.uri>/" and the test can see which service it targets.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import yaml

META_ARGUMENTS = {"source", "version", "for_each", "count", "depends_on", "providers", "provider", "lifecycle"}


class Partial(str):
    """A string template with an unknown part, rendered with <path> placeholders (still unknown)."""


class EvalError(Exception):
    """An expression that Terraform itself would reject (missing key, bad operand, failed regex...)."""


@dataclass(frozen=True)
class Unknown:
    """A value known only after apply: a resource attribute, a module output, a data source."""

    path: str

    def child(self, step: str) -> Unknown:
        return Unknown(f"{self.path}{step}")


# --------------------------------------------------------------------------------------------------
# Loading


class Block(dict):
    """A block body (as opposed to an object-valued attribute)."""


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = Block() if node.get("__is_block__") else {}
        for key, value in node.items():
            if key in ("__is_block__", "__comments__", "__inline_comments__"):
                continue
            out[_unquote(key)] = _clean(value)
        return out
    if isinstance(node, list):
        return [_clean(x) for x in node]
    return node


@dataclass
class Config:
    """One directory of .tf files (a root or a child module)."""

    directory: Path
    variables: dict[str, Block] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    resources: dict[tuple[str, str], Block] = field(default_factory=dict)
    data: dict[tuple[str, str], Block] = field(default_factory=dict)
    modules: dict[str, Block] = field(default_factory=dict)
    outputs: dict[str, Block] = field(default_factory=dict)
    checks: dict[str, Block] = field(default_factory=dict)

    def module_config(self, name: str) -> Config:
        return load_config((self.directory / _literal(self.modules[name]["source"])).resolve())


def parse_file(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        return _clean(hcl2.load(fh))


_CONFIG_CACHE: dict[tuple[Path, tuple[tuple[str, float], ...]], Config] = {}


def load_config(directory: Path | str) -> Config:
    directory = Path(directory).resolve()
    files = sorted(directory.glob("*.tf"))
    stamp = tuple((f.name, f.stat().st_mtime) for f in files)
    cached = _CONFIG_CACHE.get((directory, stamp))
    if cached is not None:
        return cached
    config = Config(directory)
    for path in files:
        parsed = parse_file(path)
        for block in parsed.get("variable", []):
            config.variables.update(block)
        for block in parsed.get("locals", []):
            config.locals.update(block)
        for block in parsed.get("output", []):
            config.outputs.update(block)
        for block in parsed.get("module", []):
            config.modules.update(block)
        for block in parsed.get("check", []):
            config.checks.update(block)
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for rname, body in named.items():
                        target[(rtype, rname)] = body
    _CONFIG_CACHE[(directory, stamp)] = config
    return config


def _literal(raw: Any) -> Any:
    """A literal attribute value (no references), e.g. a module `source`."""
    return evaluate_raw(raw, {})


# --------------------------------------------------------------------------------------------------
# Expressions: tokenizer, parser (to tuples), evaluator

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<string>")
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<op>\.\.\.|==|!=|<=|>=|&&|\|\||=>|[-+*/%<>!?:.,()\[\]{}=])
    """,
    re.VERBOSE,
)


def _string_end(text: str, start: int) -> int:
    """Index just past the closing quote of the string literal opening at text[start]."""
    i, depth = start + 1, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if depth == 0 and ch == '"':
            return i + 1
        if text.startswith("${", i) or text.startswith("%{", i):
            depth += 1
            i += 2
            continue
        if depth and ch == '"':
            i = _string_end(text, i)
            continue
        if depth and ch == "{":
            depth += 1
        elif depth and ch == "}":
            depth -= 1
        i += 1
    raise EvalError(f"unterminated string in {text!r}")


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if not m:
            raise EvalError(f"cannot read {text[i : i + 20]!r} in {text!r}")
        kind = m.lastgroup
        if kind == "string":
            end = _string_end(text, i)
            out.append(("string", text[i + 1 : end - 1]))
            i = end
            continue
        if kind != "ws":
            out.append((kind, m.group()))  # type: ignore[arg-type]
        i = m.end()
    out.append(("end", ""))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            raise EvalError(f"expected {value!r}, got {tok[1]!r} in {self.text!r}")
        self.i += 1
        return tok

    def at(self, value: str) -> bool:
        return self.peek()[1] == value and self.peek()[0] != "string"

    def parse(self) -> tuple:
        node = self.expr()
        if self.peek()[0] != "end":
            raise EvalError(f"unexpected {self.peek()[1]!r} in {self.text!r}")
        return node

    def expr(self) -> tuple:
        cond = self.binary(0)
        if self.at("?"):
            self.take("?")
            yes = self.expr()
            self.take(":")
            no = self.expr()
            return ("cond", cond, yes, no)
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> tuple:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek()[0] == "op" and self.peek()[1] in self._LEVELS[level]:
            op = self.take()[1]
            node = ("bin", op, node, self.binary(level + 1))
        return node

    def unary(self) -> tuple:
        if self.peek()[0] == "op" and self.peek()[1] in ("-", "!"):
            op = self.take()[1]
            return ("unary", op, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: tuple) -> tuple:
        while True:
            if self.at("."):
                self.take(".")
                kind, value = self.take()
                node = ("splat", node) if kind == "op" and value == "*" else ("attr", node, value)
            elif self.at("[") and self.peek(1)[1] == "*" and self.peek(2)[1] == "]":
                self.i += 3
                node = ("splat", node)
            elif self.at("["):
                self.take("[")
                index = self.expr()
                self.take("]")
                node = ("index", node, index)
            else:
                return node

    def primary(self) -> tuple:
        kind, value = self.peek()
        if kind == "number":
            self.take()
            return ("lit", float(value) if any(c in value for c in ".eE") else int(value))
        if kind == "string":
            self.take()
            return ("template", _template_parts(value))
        if kind == "ident":
            self.take()
            if value in ("true", "false"):
                return ("lit", value == "true")
            if value == "null":
                return ("lit", None)
            if self.at("("):
                self.take("(")
                args, expand = [], False
                while not self.at(")"):
                    args.append(self.expr())
                    if self.at("..."):
                        self.take("...")
                        expand = True
                    if self.at(","):
                        self.take(",")
                self.take(")")
                return ("call", value, args, expand)
            return ("name", value)
        if self.at("("):
            self.take("(")
            node = self.expr()
            self.take(")")
            return node
        if self.at("["):
            return self.tuple_or_for()
        if self.at("{"):
            return self.object_or_for()
        raise EvalError(f"unexpected {value!r} in {self.text!r}")

    def for_head(self) -> tuple[str | None, str, tuple]:
        self.take("for")
        first = self.take()[1]
        second = None
        if self.at(","):
            self.take(",")
            second = self.take()[1]
        self.take("in")
        collection = self.expr()
        self.take(":")
        return (first, second, collection) if second else (None, first, collection)

    def for_tail(self) -> tuple | None:
        if self.peek() == ("ident", "if"):
            self.take()
            return self.expr()
        return None

    def tuple_or_for(self) -> tuple:
        self.take("[")
        if self.peek() == ("ident", "for"):
            key, val, coll = self.for_head()
            body = self.expr()
            cond = self.for_tail()
            self.take("]")
            return ("for_list", key, val, coll, body, cond)
        items = []
        while not self.at("]"):
            items.append(self.expr())
            if self.at(","):
                self.take(",")
        self.take("]")
        return ("tuple", items)

    def object_or_for(self) -> tuple:
        self.take("{")
        if self.peek() == ("ident", "for"):
            key, val, coll = self.for_head()
            kexpr = self.expr()
            self.take("=>")
            vexpr = self.expr()
            group = False
            if self.at("..."):
                self.take("...")
                group = True
            cond = self.for_tail()
            self.take("}")
            return ("for_obj", key, val, coll, kexpr, vexpr, cond, group)
        items = []
        while not self.at("}"):
            kind, value = self.peek()
            if kind == "ident" and self.peek(1)[1] in ("=", ":"):
                self.take()
                kexpr: tuple = ("lit", value)
            else:
                kexpr = self.expr()
            self.take()  # = or :
            items.append((kexpr, self.expr()))
            if self.at(","):
                self.take(",")
        self.take("}")
        return ("object", items)


def _unescape(text: str) -> str:
    text = text.replace("$${", "\x00").replace("%%{", "\x01")
    text = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), text)
    return text.replace("\x00", "${").replace("\x01", "%{")


def _template_parts(body: str) -> list[Any]:
    """A string literal's body as [str | parsed expression, ...]."""
    parts: list[Any] = []
    i, start = 0, 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body.startswith("$${", i):
            i += 3
            continue
        if body.startswith("${", i):
            parts.append(_unescape(body[start:i]))
            depth, j = 1, i + 2
            while depth:
                if body[j] == '"':
                    j = _string_end(body, j)
                    continue
                depth += {"{": 1, "}": -1}.get(body[j], 0)
                j += 1
            inner = body[i + 2 : j - 1].strip().strip("~").strip()
            parts.append(_Parser(inner).parse())
            i = start = j
            continue
        i += 1
    parts.append(_unescape(body[start:]))
    return [p for p in parts if p != ""]


def _render(value: Any) -> str:
    if isinstance(value, Unknown):
        return f"<{value.path}>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    raise EvalError(f"cannot put {value!r} in a string template")


def _is_unknown(*values: Any) -> bool:
    return any(isinstance(v, Unknown | Partial) for v in values)


def _items(collection: Any) -> list[tuple[Any, Any]]:
    if isinstance(collection, Mapping):
        return [(k, collection[k]) for k in sorted(collection)]
    if isinstance(collection, list | tuple):
        return list(enumerate(collection))
    raise EvalError(f"cannot iterate {collection!r}")


def _regex(pattern: str, text: str) -> Any:
    # Terraform's engine is RE2, which refuses repeat counts above 1000 (Python's re accepts them).
    counts = [int(n) for pair in re.findall(r"\{(\d+)(?:,(\d*))?\}", pattern) for n in pair if n]
    if any(count > 1000 for count in counts):
        raise EvalError(f"regex {pattern!r}: RE2 repeat count above 1000")
    m = re.search(pattern, text)
    if m is None:
        raise EvalError(f"regex {pattern!r} does not match {text!r}")
    if m.groupdict():
        return m.groupdict()
    return list(m.groups()) if m.groups() else m.group()


def _coalesce(*args: Any) -> Any:
    for arg in args:
        if arg is not None and arg != "":
            return arg
    raise EvalError("coalesce: no non-null argument")


def _lookup(collection: Any, key: Any, *default: Any) -> Any:
    if isinstance(collection, Mapping) and key in collection:
        return collection[key]
    if default:
        return default[0]
    raise EvalError(f"lookup: no key {key!r}")


def _set(values: Any) -> list[Any]:
    return sorted(set(values), key=str)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "alltrue": lambda xs: all(xs),
    "anytrue": lambda xs: any(xs),
    "base64encode": lambda s: base64.b64encode(s.encode()).decode(),
    "ceil": math.ceil,
    "coalesce": _coalesce,
    "concat": lambda *ls: [x for lst in ls for x in lst],
    "contains": lambda coll, x: x in coll,
    "distinct": lambda xs: list(dict.fromkeys(xs)),
    "endswith": lambda s, suffix: s.endswith(suffix),
    "file": lambda p: Path(p).read_text(),
    "fileexists": lambda p: Path(p).is_file(),
    "floor": math.floor,
    "join": lambda sep, xs: sep.join(xs),
    "jsondecode": json.loads,
    "jsonencode": lambda v: json.dumps(v, separators=(",", ":")),
    "keys": lambda m: sorted(m),
    "length": len,
    "lookup": _lookup,
    "lower": str.lower,
    "max": max,
    "merge": lambda *ms: {k: v for m in ms for k, v in m.items()},
    "min": min,
    "regex": _regex,
    "reverse": lambda xs: list(reversed(xs)),
    "setsubtract": lambda a, b: _set(x for x in a if x not in b),
    "split": lambda sep, s: s.split(sep),
    "startswith": lambda s, prefix: s.startswith(prefix),
    "substr": lambda s, offset, length: s[offset:] if length < 0 else s[offset : offset + length],
    "sum": sum,
    "tonumber": lambda v: v if isinstance(v, int | float) else (float(v) if "." in v else int(v)),
    "toset": _set,
    "tostring": _render,
    "trimspace": str.strip,
    "trimsuffix": lambda s, suffix: s[: -len(suffix)] if suffix and s.endswith(suffix) else s,
    "upper": str.upper,
    "values": lambda m: [m[k] for k in sorted(m)],
    "yamldecode": yaml.safe_load,
}


def _binary(op: str, left: Any, right: Any) -> Any:
    if _is_unknown(left, right):
        return Unknown(f"({op})")
    try:
        match op:
            case "||":
                return bool(left) or bool(right)
            case "&&":
                return bool(left) and bool(right)
            case "==":
                return left == right
            case "!=":
                return left != right
            case "<":
                return left < right
            case "<=":
                return left <= right
            case ">":
                return left > right
            case ">=":
                return left >= right
            case "+":
                return left + right
            case "-":
                return left - right
            case "*":
                return left * right
            case "/":
                return left / right
            case "%":
                return left % right
    except TypeError as exc:
        raise EvalError(f"{left!r} {op} {right!r}: {exc}") from exc
    raise EvalError(f"unknown operator {op}")


def _traverse(value: Any, step: Any, label: str) -> Any:
    if isinstance(value, Unknown):
        return value.child(label)
    if isinstance(step, Unknown):
        return Unknown(f"<dynamic>{label}")
    if isinstance(value, Mapping):
        if step not in value:
            raise EvalError(f"no attribute or key {step!r}")
        return value[step]
    if isinstance(value, list | tuple):
        try:
            return value[int(step)]
        except (ValueError, IndexError) as exc:
            raise EvalError(f"bad index {step!r}") from exc
    raise EvalError(f"cannot take {label} of {value!r}")


def evaluate(node: tuple, scope: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "template":
        values = [p if isinstance(p, str) else evaluate(p, scope) for p in node[1]]
        if len(values) == 1 and not isinstance(node[1][0], str):
            return values[0]  # "${x}" keeps the type of x, as in Terraform
        text = "".join(v if isinstance(v, str) else _render(v) for v in values)
        return Partial(text) if any(isinstance(v, Unknown | Partial) for v in values) else text
    if kind == "name":
        return scope[node[1]] if node[1] in scope else Unknown(node[1])
    if kind == "attr":
        return _traverse(evaluate(node[1], scope), node[2], f".{node[2]}")
    if kind == "index":
        step = evaluate(node[2], scope)
        return _traverse(evaluate(node[1], scope), step, f"[{step}]" if not isinstance(step, Unknown) else "[?]")
    if kind == "splat":
        value = evaluate(node[1], scope)
        if isinstance(value, Unknown):
            return value.child("[*]")
        return [] if value is None else (list(value) if isinstance(value, list | tuple) else [value])
    if kind == "unary":
        value = evaluate(node[2], scope)
        if isinstance(value, Unknown):
            return value
        return -value if node[1] == "-" else not value
    if kind == "bin":
        return _binary(node[1], evaluate(node[2], scope), evaluate(node[3], scope))
    if kind == "cond":
        cond = evaluate(node[1], scope)
        if isinstance(cond, Unknown):
            return Unknown("(cond)")
        return evaluate(node[2] if cond else node[3], scope)
    if kind == "tuple":
        return [evaluate(x, scope) for x in node[1]]
    if kind == "object":
        return {_key(evaluate(k, scope)): evaluate(v, scope) for k, v in node[1]}
    if kind in ("for_list", "for_obj"):
        return _for(node, scope)
    if kind == "call":
        return _call(node, scope)
    raise EvalError(f"unknown node {kind}")


def _key(value: Any) -> Any:
    return value if isinstance(value, Unknown) else _render(value)


def _for(node: tuple, scope: Mapping[str, Any]) -> Any:
    collection = evaluate(node[3], scope)
    if isinstance(collection, Unknown):
        return collection.child("[for]")
    key_name, value_name = node[1], node[2]
    out_list: list[Any] = []
    out_obj: dict[Any, Any] = {}
    for key, value in _items(collection):
        inner = dict(scope)
        inner[value_name] = value
        if key_name:
            inner[key_name] = key
        cond = node[5] if node[0] == "for_list" else node[6]
        if cond is not None:
            keep = evaluate(cond, inner)
            if isinstance(keep, Unknown):
                raise EvalError("for expression filter is unknown")
            if not keep:
                continue
        if node[0] == "for_list":
            out_list.append(evaluate(node[4], inner))
        else:
            k = _key(evaluate(node[4], inner))
            v = evaluate(node[5], inner)
            if node[7]:
                out_obj.setdefault(k, []).append(v)
            elif k in out_obj:
                raise EvalError(f"duplicate object key {k!r} in for expression")
            else:
                out_obj[k] = v
    return out_list if node[0] == "for_list" else out_obj


def _call(node: tuple, scope: Mapping[str, Any]) -> Any:
    name, arg_nodes, expand = node[1], node[2], node[3]
    if name in ("try", "can"):
        for arg in arg_nodes:
            try:
                value = evaluate(arg, scope)
            except EvalError:
                continue
            if name == "can" and _contains_unknown(value):
                return Unknown("can(...)")
            return True if name == "can" else value
        if name == "can":
            return False
        raise EvalError("try: every argument failed")
    args = [evaluate(a, scope) for a in arg_nodes]
    if expand:
        if isinstance(args[-1], Unknown):
            return Unknown(f"{name}(...)")
        args = args[:-1] + list(args[-1])
    if name not in FUNCTIONS:
        raise EvalError(f"function {name}() is not supported by the test evaluator")
    if name == "join" and isinstance(args[0], str) and isinstance(args[1], list) and _contains_unknown(args[1]):
        # unknown until apply, but which values it joins stays visible: "<a>,<b>" (as a string template)
        return Partial(args[0].join(_render(x) for x in args[1]))
    if _is_unknown(*args) or any(
        isinstance(a, Mapping | list) and _contains_unknown(a)
        for a in args
        if name not in ("merge", "lookup", "keys", "length", "contains", "concat")
    ):
        return Unknown(f"{name}(...)")
    try:
        return FUNCTIONS[name](*args)
    except EvalError:
        raise
    except Exception as exc:  # a Python error here is what Terraform reports as an invalid call
        raise EvalError(f"{name}({args!r}): {exc}") from exc


def _contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown | Partial):
        return True
    if isinstance(value, Mapping):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_unknown(v) for v in value)
    return False


def evaluate_raw(raw: Any, scope: Mapping[str, Any]) -> Any:
    """Evaluate an attribute value as python-hcl2 returns it."""
    if isinstance(raw, Block):
        raise EvalError("a block is not a value")
    if isinstance(raw, dict):
        return {_key(evaluate_raw(_as_key(k), scope)): evaluate_raw(v, scope) for k, v in raw.items()}
    if isinstance(raw, list):
        return [evaluate_raw(x, scope) for x in raw]
    if isinstance(raw, str):
        if raw.startswith("${") and raw.endswith("}"):
            return evaluate(_Parser(raw[2:-1]).parse(), scope)
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            return evaluate(("template", _template_parts(raw[1:-1])), scope)
        return raw  # a bare keyword such as a type name or provider reference
    return raw


def _as_key(key: str) -> str:
    # python-hcl2 strips the quotes of keys; a template key still has its ${...}.
    return f'"{key}"' if "${" in key else json.dumps(key)


# --------------------------------------------------------------------------------------------------
# Modules, resources and blocks


class _Lazy(Mapping):
    """A mapping whose values are computed on first access (locals, module inputs)."""

    def __init__(self, names: list[str], compute: Callable[[str], Any]) -> None:
        self._names = names
        self._compute = compute
        self._cache: dict[str, Any] = {}
        self._busy: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._cache:
            if name in self._busy:
                raise EvalError(f"cycle through {name}")
            self._busy.add(name)
            try:
                self._cache[name] = self._compute(name)
            finally:
                self._busy.discard(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


@dataclass
class ResourceInstance:
    module: Module
    type: str
    name: str
    key: Any
    body: Block
    scope: dict[str, Any]

    @property
    def address(self) -> str:
        key = "" if self.key is None else f"[{self.key!r}]"
        return f"{self.module.address}{self.type}.{self.name}{key}"

    def get(self, attr: str, default: Any = None) -> Any:
        if attr not in self.body:
            return default
        return evaluate_raw(self.body[attr], self.scope)

    def blocks(self, name: str) -> list[BlockInstance]:
        return _blocks(self.body, name, self.scope)


@dataclass
class BlockInstance:
    body: Block
    scope: dict[str, Any]

    def get(self, attr: str, default: Any = None) -> Any:
        if attr not in self.body:
            return default
        return evaluate_raw(self.body[attr], self.scope)

    def blocks(self, name: str) -> list[BlockInstance]:
        return _blocks(self.body, name, self.scope)


def _blocks(body: Block, name: str, scope: dict[str, Any]) -> list[BlockInstance]:
    out = [BlockInstance(b, scope) for b in body.get(name, []) if isinstance(b, Block)]
    for dynamic in body.get("dynamic", []):
        for label, spec in dynamic.items():
            if label != name:
                continue
            iterator = evaluate_raw(spec["iterator"], {}) if "iterator" in spec else label
            collection = evaluate_raw(spec["for_each"], scope)
            if isinstance(collection, Unknown):
                raise EvalError(f"dynamic {label}: for_each is unknown")
            for key, value in _items(collection):
                inner = dict(scope)
                inner[iterator] = {"key": key, "value": value}
                out.extend(BlockInstance(content, inner) for content in spec["content"])
    return out


class Module:
    """One instance of a configuration: its variables bound, locals and resources evaluable."""

    def __init__(
        self,
        config: Config,
        inputs: Mapping[str, Any] | None = None,
        *,
        address: str = "",
        root_scope: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.address = address
        self._inputs = inputs or {}
        self._root_scope = dict(root_scope or {})
        self.var = _Lazy(list(config.variables), self._variable)
        self.local = _Lazy(list(config.locals), lambda n: evaluate_raw(config.locals[n], self.scope()))
        self._children: dict[str, dict[Any, Module]] = {}
        self.module = _Lazy(list(config.modules), self._module_outputs)

    def _variable(self, name: str) -> Any:
        if name in self._inputs:
            value = self._inputs[name]
            return value() if callable(value) else value
        body = self.config.variables[name]
        if "default" in body:
            return evaluate_raw(body["default"], {})
        return Unknown(f"var.{name}")

    def _module_outputs(self, name: str) -> Any:
        """module.<name>(.<key>).<output>: an output that depends on a resource stays Unknown, named
        after the module (e.g. module.fetcher.uri), so a reference still shows what it points at."""

        def outputs(child: Module) -> Mapping[str, Any]:
            def value(output: str) -> Any:
                address = f"{child.address}{output}"
                try:
                    result = child.eval(child.config.outputs[output]["value"])
                except EvalError:
                    return Unknown(address)
                return Unknown(address) if _contains_unknown(result) else result

            return _Lazy(list(child.config.outputs), value)

        children = self.modules(name)
        if "for_each" in self.config.modules[name]:
            return {key: outputs(child) for key, child in children.items()}
        return outputs(children[None])

    def scope(self, **extra: Any) -> dict[str, Any]:
        scope: dict[str, Any] = {
            **self._root_scope,
            "var": self.var,
            "local": self.local,
            "module": self.module,
            "path": {"module": str(self.config.directory), "root": str(self.config.directory), "cwd": "."},
        }
        scope.update(extra)
        return scope

    def eval(self, raw: Any, **extra: Any) -> Any:
        return evaluate_raw(raw, self.scope(**extra))

    def _expand(self, body: Block) -> list[tuple[Any, dict[str, Any]]]:
        if "for_each" not in body:
            return [(None, {})]
        collection = self.eval(body["for_each"])
        if isinstance(collection, Unknown):
            return [(Unknown("each.key"), {"each": {"key": Unknown("each.key"), "value": Unknown("each.value")}})]
        if isinstance(collection, list):
            collection = {v: v for v in collection}
        return [(k, {"each": {"key": k, "value": v}}) for k, v in _items(collection)]

    def modules(self, name: str) -> dict[Any, Module]:
        if name not in self._children:
            self._children[name] = self._instantiate(name)
        return self._children[name]

    def _instantiate(self, name: str) -> dict[Any, Module]:
        body = self.config.modules[name]
        child_config = self.config.module_config(name)
        out = {}
        for key, extra in self._expand(body):
            inputs = {
                arg: (lambda raw=raw, extra=extra: self.eval(raw, **extra))
                for arg, raw in body.items()
                if arg not in META_ARGUMENTS
            }
            suffix = "" if key is None else f"[{key!r}]"
            out[key] = Module(
                child_config, inputs, address=f"{self.address}module.{name}{suffix}.", root_scope=self._root_scope
            )
        return out

    def all_modules(self) -> Iterator[Module]:
        yield self
        for name in self.config.modules:
            for child in self.modules(name).values():
                yield from child.all_modules()

    def resources(self, rtype: str | None = None) -> list[ResourceInstance]:
        out = []
        for (t, n), body in self.config.resources.items():
            if rtype is not None and t != rtype:
                continue
            for key, extra in self._expand(body):
                out.append(ResourceInstance(self, t, n, key, body, self.scope(**extra)))
        return out

    def all_resources(self, rtype: str | None = None) -> list[ResourceInstance]:
        return [r for m in self.all_modules() for r in m.resources(rtype)]

    def check_assertions(self) -> list[tuple[str, Any, Any]]:
        """(check name, condition, error message) of every `assert` in this module's `check` blocks."""
        out = []
        for name, body in self.config.checks.items():
            for rule in BlockInstance(body, self.scope()).blocks("assert"):
                out.append((name, rule.get("condition"), rule.get("error_message")))
        return out


def root(
    directory: Path | str, variables: Mapping[str, Any] | None = None, stubs: Mapping[str, Any] | None = None
) -> Module:
    """The root module with variable overrides (like -var) and stubbed data sources."""
    return Module(load_config(directory), dict(variables or {}), root_scope=stubs)
