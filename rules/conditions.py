"""Conditions in catalogue files: small expressions over the config, never `eval`.

A condition is a Python-syntax expression limited to names, attribute access, literals,
`==`, `!=`, `in`, `not in`, `and`, `or`, `not`. Examples::

    service.auth == 'token'
    service.domain == 'auto' and cloud == 'public'
    'registry' in network.private_endpoints

Conditions are compiled once when the catalogue loads, so a typo fails at load time with
the catalogue's name, not later during a run.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

from rules.errors import CatalogueError

Context = Mapping[str, Any]
Condition = Callable[[Context], bool]

_COMPARE: Mapping[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b),
    ast.NotEq: lambda a, b: bool(a != b),
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}

_MISSING = object()


def _lookup(path: tuple[str, ...], context: Context) -> Any:
    value: Any = context
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _compile(node: ast.AST, known: Context, text: str) -> Callable[[Context], Any]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool | None):
        constant = node.value
        return lambda _ctx: constant
    if isinstance(node, ast.List | ast.Tuple):
        items = [_compile(e, known, text) for e in node.elts]
        return lambda ctx: [item(ctx) for item in items]
    if isinstance(node, ast.Name | ast.Attribute):
        path = _dotted(node, text)
        if _lookup(path, known) is _MISSING:
            raise CatalogueError(f"condition {text!r}: unknown name {'.'.join(path)!r}")
        return lambda ctx: _lookup(path, ctx)
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, known, text) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda ctx: all(p(ctx) for p in parts)
        return lambda ctx: any(p(ctx) for p in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        operand = _compile(node.operand, known, text)
        return lambda ctx: not operand(ctx)
    if isinstance(node, ast.Compare):
        left = _compile(node.left, known, text)
        ops = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise CatalogueError(f"condition {text!r}: operator not allowed")
            ops.append((fn, _compile(right, known, text)))

        def compare(ctx: Context) -> bool:
            current = left(ctx)
            for fn, right_fn in ops:
                value = right_fn(ctx)
                if not fn(current, value):
                    return False
                current = value
            return True

        return compare
    raise CatalogueError(f"condition {text!r}: {type(node).__name__} is not allowed")


def _dotted(node: ast.AST, text: str) -> tuple[str, ...]:
    if isinstance(node, ast.Name):
        return (node.id,)
    if isinstance(node, ast.Attribute):
        return (*_dotted(node.value, text), node.attr)
    raise CatalogueError(f"condition {text!r}: only dotted names may be looked up")


def compile_condition(text: str, known: Context) -> Condition:
    """Compile `text` against the names `known` has (a sample context), or raise."""
    if len(text) > 500:
        raise CatalogueError("condition longer than 500 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise CatalogueError(f"condition {text!r}: not an expression ({exc.msg})") from exc
    fn = _compile(tree.body, known, text)
    return lambda ctx: bool(fn(ctx))
