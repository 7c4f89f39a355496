"""config.yaml read as the person wrote it, not as YAML 1.1 guesses it.

PyYAML follows YAML 1.1, which turns unquoted ``yes``, ``no``, ``on``, ``off``,
``y`` and ``n`` into booleans, ``012`` into 10, ``1:30`` into 90, and
``2026-12-15`` into a date, in keys as well as values. Here an unquoted scalar
stays the text that was typed (:class:`Plain`) until the config's own types say
what it must be: ``true``/``false`` where a switch is expected, decimal digits
where a number is, and text otherwise. A scalar whose meaning differs between
YAML versions is refused with a message that says how to write it. Only
``null``/``~``/an empty value still mean "not set".
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")
# What YAML 1.1 reads as booleans besides true and false.
_YAML11_BOOLS = ("yes", "no", "on", "off", "y", "n")
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*(_[0-9]+)*)")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+(\.[0-9_]*)?")
_BASE_60 = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf")}


class Plain(str):
    """An unquoted scalar, kept as typed until the config says what it must be."""

    __slots__ = ()


class UnclearValue(ValueError):
    """A scalar that cannot be what the config expects, or that YAML versions read apart."""


class _TextLoader(yaml.SafeLoader):
    """SafeLoader whose only implicit types are null and the merge key ``<<``."""

    def construct_plain_or_quoted(self, node: ScalarNode) -> str:
        text = self.construct_scalar(node)
        return Plain(text) if node.style is None else text


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag.endswith((":null", ":merge"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_TextLoader.add_constructor("tag:yaml.org,2002:str", _TextLoader.construct_plain_or_quoted)


def parse(text: str) -> tuple[Any, dict[str, int]]:
    """The document, and the line of every dotted key (``a.b``, ``a.list[0]``) in it."""
    loader = _TextLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines = {"": node.start_mark.line + 1}
        _record_lines(node, "", lines)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _record_lines(node: Node, key: str, lines: dict[str, int]) -> None:
    """Where each entry starts (a mapping entry at its key), and every key kept as text."""
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            name = str(key_node.value)
            if isinstance(key_node, ScalarNode) and name != "<<":
                # A key is a name: ``null:`` or ``on:`` is the text typed, never None or True.
                key_node.tag = "tag:yaml.org,2002:str"
            _enter(f"{key}.{name}" if key else name, key_node, value_node, lines)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _enter(f"{key}[{index}]", item, item, lines)


def _enter(key: str, start: Node, value: Node, lines: dict[str, int]) -> None:
    line = start.start_mark.line + 1
    if key in lines and not key.endswith("<<"):
        raise UnclearValue(f"{key} is written twice (lines {lines[key]} and {line})")
    lines[key] = line
    _record_lines(value, key, lines)


def typed(hint: Any, raw: Plain) -> Any:
    """The unquoted scalar as the type the config expects (bool, int, float or text)."""
    if hint is bool:
        return to_bool(raw)
    if hint is int:
        return to_int(raw)
    if hint is float:
        return to_float(raw)
    return to_text(raw)


def to_bool(raw: Plain) -> bool:
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    if raw.lower() in _YAML11_BOOLS:
        raise UnclearValue(f"{raw} is a boolean only to YAML 1.1: write true or false")
    raise UnclearValue(f"expected true or false, got {raw!r}")


def to_int(raw: Plain) -> int:
    _refuse_other_bases(raw)
    if not _DECIMAL.fullmatch(raw):
        raise UnclearValue(f"expected a whole number in decimal digits, got {raw!r}")
    return int(raw)


def to_float(raw: Plain) -> float:
    _refuse_other_bases(raw)
    if raw.lower() in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[raw.lower()]
    if not _FLOAT.fullmatch(raw):
        raise UnclearValue(f"expected a number, got {raw!r}")
    return float(raw)


def _refuse_other_bases(raw: Plain) -> None:
    if _LEADING_ZERO.fullmatch(raw):
        plain = raw.lstrip("+-0_") or "0"
        raise UnclearValue(f"{raw} is octal to YAML 1.1: write {plain} without the leading zero")
    if _BASE_60.fullmatch(raw):
        raise UnclearValue(f"{raw} is base 60 to YAML 1.1: write one number (of seconds)")


def to_text(raw: Plain) -> str:
    if raw.lower() in _YAML11_BOOLS or raw in _TRUE or raw in _FALSE:
        raise UnclearValue(f"{raw} unquoted is a boolean to YAML: quote it ('{raw}') to mean text")
    return str(raw)
