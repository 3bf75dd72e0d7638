"""Label and field selectors, parsed the way the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import BadRequest

Matcher = Callable[[Mapping[str, str]], bool]

_TERM = re.compile(
    r"""\s*(?:
        (?P<not>!)\s*(?P<absent>[A-Za-z0-9./_-]+)
      | (?P<key>[A-Za-z0-9./_-]+)(?:
            \s*(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)
          | \s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
        )?
    )\s*(?:,|$)""",
    re.VERBOSE,
)


def _term(key: str, op: str, values: frozenset[str]) -> Matcher:
    if op == "exists":
        return lambda labels: key in labels
    if op == "absent":
        return lambda labels: key not in labels
    if op in ("in", "="):
        return lambda labels: labels.get(key) in values
    return lambda labels: labels.get(key) not in values


def parse_label_selector(text: str) -> Matcher:
    """A matcher for ``a=b,c!=d,e in (x,y),f notin (z),g,!h``; BadRequest if malformed."""
    terms: list[Matcher] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TERM.match(text, pos)
        if not match or match.end() == pos:
            raise BadRequest(f"unable to parse requirement: invalid label selector {text!r}")
        pos = match.end()
        if match["absent"]:
            terms.append(_term(match["absent"], "absent", frozenset()))
        elif match["op"]:
            op = "!=" if match["op"] == "!=" else "="
            terms.append(_term(match["key"], op, frozenset([match["value"]])))
        elif match["setop"]:
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            terms.append(_term(match["key"], match["setop"], values))
        else:
            terms.append(_term(match["key"], "exists", frozenset()))
    return lambda labels: all(term(labels) for term in terms)


def label_selector_matcher(selector: Mapping[str, Any] | None) -> Matcher:
    """A matcher for a ``LabelSelector`` object (matchLabels and matchExpressions).

    An empty selector matches everything; a missing one (None) matches nothing, as in
    the API's own helpers.
    """
    if selector is None:
        return lambda labels: False
    terms: list[Matcher] = [
        _term(k, "=", frozenset([v])) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "absent"}
    for expression in selector.get("matchExpressions") or []:
        op = operators.get(expression.get("operator", ""))
        if op is None:
            raise BadRequest(f"invalid label selector operator {expression.get('operator')!r}")
        terms.append(_term(expression["key"], op, frozenset(expression.get("values") or [])))
    return lambda labels: all(term(labels) for term in terms)


def selector_string(selector: Mapping[str, Any]) -> str:
    """The text form of a LabelSelector, as the scale subresource reports it."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op = e["operator"]
        if op in ("In", "NotIn"):
            parts.append(f"{e['key']} {op.lower()} ({','.join(sorted(e.get('values') or []))})")
        else:
            parts.append(e["key"] if op == "Exists" else f"!{e['key']}")
    return ",".join(parts)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string value at a dotted path, as field selectors compare it ('' if absent)."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return "false" if path == "spec.unschedulable" else ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):  # an Event's "source" compares its component
        return str(value.get("component", ""))
    return str(value)


def parse_field_selector(
    text: str, supported: tuple[str, ...], kind: str
) -> Callable[[Mapping[str, Any]], bool]:
    """A matcher for ``metadata.name=x,status.phase!=Running``; BadRequest for fields the
    kind does not index, as a real server refuses them."""
    terms: list[tuple[str, bool, str]] = []
    for raw in filter(None, (t.strip() for t in text.split(","))):
        match = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)", raw)
        if not match:
            raise BadRequest(f"invalid selector: {text!r}; can't understand {raw!r}")
        path, op, value = match.groups()
        if path not in supported:
            raise BadRequest(f'field label not supported: "{path}" for kind {kind}')
        terms.append((path, op != "!=", value))
    return lambda obj: all((field_value(obj, p) == v) == eq for p, eq, v in terms)
